"""Library approvals: L-01..L-13 on the LibraryApproval and ReferenceLibrary aggregates."""

from __future__ import annotations

from datetime import timedelta

import attrs
from domain_builders import (
    ADMIN,
    ANALYST,
    CONFIG,
    INSPECTOR,
    OP_LEAD,
    OUTSIDER,
    SERGEANT,
    SRO,
    SUPERINTENDENT,
    T0,
    application,
    approved,
    at,
    record,
    refused,
)

from rfr.domain.forms import AccessRestriction, LibraryKind, ReviewOutcome
from rfr.domain.images import ImageLevel, effective_level
from rfr.domain.library_approval import ApprovalStatus, LibraryApproval
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.rules_search import within_access
from rfr.domain.search_terms import SearchPurpose, Urgency, UrgencyBasis

URGENT = Urgency(UrgencyBasis.RISK_TO_LIFE_OR_HARM, "child missing, sighting in the last hour")


def applied(kind: LibraryKind = LibraryKind.TEMPORARY) -> LibraryApproval:
    return LibraryApproval.apply_for(ANALYST, T0, application(kind))


def test_L04_complete_application_is_accepted_as_form_2():
    """L-04: complete application is accepted as form 2."""
    approval = applied()
    assert approval.status is ApprovalStatus.APPLIED
    assert approval.application.kind.form == "Form 2"


def test_L04_missing_part_is_refused_into_a_refused_attempt():
    error = refused("L-04", lambda: LibraryApproval.apply_for(ANALYST, T0, application(legal_basis="  ")))
    assert "legal_basis" in error.reason
    attempt = error.record
    assert isinstance(attempt, RefusedAttempt)
    assert attempt.refusals[0].rule_ids == ("L-04",) and attempt.refusals[0].actor == ANALYST


def test_L02_substantive_library_approved_by_the_sro():
    """L-02: substantive library approved by the sro."""
    approval = applied(LibraryKind.SUBSTANTIVE)
    approval.approve(SRO, T0, record(review_days=300), CONFIG)
    assert approval.in_force_at(T0)


def test_L02_substantive_library_refused_to_a_superintendent():
    approval = applied(LibraryKind.SUBSTANTIVE)
    refused("L-02", lambda: approval.approve(SUPERINTENDENT, T0, record(), CONFIG), approval)


def test_L03_temporary_library_approved_by_superintendent_and_notified_to_operational_lead():
    """L-03: temporary library approved by superintendent and notified to operational lead."""
    approval = applied()
    approval.approve(SUPERINTENDENT, T0, record(), CONFIG)
    event = approval.pending_events[-1]
    assert type(event).__name__ == "Approved"
    assert event.notified == ["operational_lead"] and event.approver_rank == 4


def test_L03_temporary_library_needs_superintendent():
    approval = applied()
    refused("L-03", lambda: approval.approve(INSPECTOR, T0, record(), CONFIG), approval)


def test_L05_approval_records_rationale_access_level_conditions_purposes_review():
    """L-05: approval records rationale access level conditions purposes review."""
    approval = approved(level=ImageLevel.PUBLIC_WOULD_EXPECT)
    assert approval.approved_level is ImageLevel.PUBLIC_WOULD_EXPECT
    assert approval.record.conditions and approval.record.purposes and approval.review_due


def test_L05_approval_without_access_or_purposes_is_refused():
    approval = applied()
    bare = attrs.evolve(record(), access=AccessRestriction(), purposes=frozenset())
    error = refused("L-05", lambda: approval.approve(SUPERINTENDENT, T0, bare, CONFIG), approval)
    assert "access" in error.reason and "purposes" in error.reason


def test_L06_temporary_first_review_within_31_days_is_accepted():
    """L-06: temporary first review within 31 days is accepted."""
    approval = applied()
    approval.approve(SUPERINTENDENT, T0, record(review_days=31), CONFIG)
    assert approval.review_due == T0 + timedelta(days=31)


def test_L06_temporary_first_review_after_31_days_is_refused():
    approval = applied()
    refused("L-06", lambda: approval.approve(SUPERINTENDENT, T0, record(review_days=32), CONFIG), approval)


def test_L06_substantive_review_beyond_12_months_is_refused():
    approval = applied(LibraryKind.SUBSTANTIVE)
    refused("L-06", lambda: approval.approve(SRO, T0, record(review_days=370), CONFIG), approval)


def test_L06_overdue_review_is_flagged_then_blocks_searches_after_the_grace():
    approval = approved(review_days=30)
    assert not approval.review_overdue(at(30)) and approval.flags(at(30), CONFIG) == ()
    assert approval.review_overdue(at(31)) and not approval.blocks_search(at(31), CONFIG)
    assert [f.rule_id for f in approval.flags(at(31), CONFIG)] == ["L-06"]
    assert approval.blocks_search(at(45), CONFIG)
    lenient = attrs.evolve(CONFIG, overdue_review_blocks_search=False)
    assert not approval.blocks_search(at(45), lenient)


def test_L07_review_with_outcome_is_recorded_and_reported_to_operational_lead():
    """L-07: review with outcome is recorded and reported to operational lead."""
    approval = approved(review_days=30)
    approval.review(OP_LEAD, at(29), ReviewOutcome.CONTINUE, "still needed", CONFIG, next_review_due=at(200))
    event = approval.pending_events[-1]
    assert event.outcome == "continue" and event.notified == ["operational_lead"]
    assert approval.review_due == at(200) and approval.reviews[-1].reviewer_id == OP_LEAD.user_id


def test_L07_review_without_rationale_is_refused():
    approval = approved()
    refused(
        "L-07",
        lambda: approval.review(
            SUPERINTENDENT, at(1), ReviewOutcome.CONTINUE, " ", CONFIG, next_review_due=at(90)
        ),
        approval,
    )


def test_L06_later_temporary_review_beyond_six_months_is_refused():
    approval = approved()
    refused(
        "L-06",
        lambda: approval.review(
            OP_LEAD, at(1), ReviewOutcome.CONTINUE, "ok", CONFIG, next_review_due=at(200)
        ),
        approval,
    )


def test_L07_review_outcome_stop_ends_the_approval():
    """L-07: review outcome stop ends the approval."""
    approval = approved()
    approval.review(SUPERINTENDENT, at(10), ReviewOutcome.STOP, "operation over", CONFIG)
    assert approval.status is ApprovalStatus.STOPPED and not approval.in_force_at(at(10))


def test_L08_purpose_outside_scope_is_not_permitted_until_varied():
    """L-08: purpose outside scope is not permitted until varied."""
    approval = approved(purposes=frozenset({SearchPurpose.IDENTIFY}))
    assert approval.permits(SearchPurpose.IDENTIFY)
    assert not approval.permits(SearchPurpose.ASSOCIATION)
    wider = record(at(1), purposes=frozenset({SearchPurpose.IDENTIFY, SearchPurpose.ASSOCIATION}))
    approval.vary(SUPERINTENDENT, at(1), wider, "association now relevant", CONFIG)
    assert approval.permits(SearchPurpose.ASSOCIATION)


def test_L08_further_purpose_needs_the_approving_authority():
    """L-08: further purpose needs the approving authority."""
    approval = approved(purposes=frozenset({SearchPurpose.IDENTIFY}))
    wider = record(at(1), purposes=frozenset(SearchPurpose))
    refused("L-03", lambda: approval.vary(INSPECTOR, at(1), wider, "wider", CONFIG), approval)


def test_L09_verbal_approval_is_usable_at_once_and_flagged_until_written():
    approval = applied()
    approval.approve(SUPERINTENDENT, T0, record(rationale=""), CONFIG, urgency=URGENT)
    assert approval.in_force_at(T0)
    assert approval.written_rationale_due == T0 + timedelta(days=CONFIG.urgent_written_rationale_due_days)
    assert [f.rule_id for f in approval.flags(T0, CONFIG)] == ["L-09"]
    approval.record_written_rationale(SUPERINTENDENT, at(1), "written rationale")
    assert approval.flags(at(1), CONFIG) == () and approval.record.rationale == "written rationale"


def test_L09_written_rationale_only_from_the_verbal_approver():
    approval = applied()
    approval.approve(SUPERINTENDENT, T0, record(rationale=""), CONFIG, urgency=URGENT)
    refused("L-09", lambda: approval.record_written_rationale(SRO, at(1), "not mine"), approval)


def test_L09_verbal_approval_without_urgency_rationale_is_refused():
    approval = applied()
    no_reason = Urgency(UrgencyBasis.OPPORTUNITY_LOST, " ")
    refused(
        "L-09",
        lambda: approval.approve(SUPERINTENDENT, T0, record(rationale=""), CONFIG, urgency=no_reason),
        approval,
    )


def test_L10_inspector_urgent_temporary_approval_is_flagged_until_superintendent_ratifies():
    approval = applied()
    approval.approve_urgently_as_inspector(INSPECTOR, T0, record(), URGENT, CONFIG)
    assert approval.in_force_at(T0) and [f.rule_id for f in approval.flags(T0, CONFIG)] == ["L-10"]
    refused("L-10", lambda: approval.ratify(INSPECTOR, at(1), "fine"), approval)
    approval.ratify(SUPERINTENDENT, at(1), "continue: proportionate")
    assert approval.flags(at(1), CONFIG) == ()


def test_L10_superintendent_may_stop_an_urgent_inspector_approval():
    approval = applied()
    approval.approve_urgently_as_inspector(INSPECTOR, T0, record(), URGENT, CONFIG)
    refused("L-10", lambda: approval.stop(INSPECTOR, at(1), "stop", CONFIG), approval)
    approval.stop(SUPERINTENDENT, at(1), "not proportionate", CONFIG)
    assert not approval.in_force_at(at(1))


def test_L10_urgent_route_refused_for_substantive_library_and_below_inspector():
    substantive = applied(LibraryKind.SUBSTANTIVE)
    refused(
        "L-10", lambda: substantive.approve_urgently_as_inspector(INSPECTOR, T0, record(), URGENT, CONFIG)
    )
    temporary = applied()
    refused(
        "L-10",
        lambda: temporary.approve_urgently_as_inspector(SERGEANT, T0, record(), URGENT, CONFIG),
        temporary,
    )


def test_L11_level_may_be_raised_for_a_search_never_lowered():
    """L-11: level may be raised for a search never lowered."""
    assert (
        effective_level(ImageLevel.PUBLIC_WOULD_EXPECT, ImageLevel.ELEVATED_PRIVACY)
        is ImageLevel.ELEVATED_PRIVACY
    )
    assert (
        effective_level(ImageLevel.PUBLIC_WOULD_EXPECT, ImageLevel.COMPLIANT_POLICE)
        is ImageLevel.PUBLIC_WOULD_EXPECT
    )
    assert effective_level(ImageLevel.PUBLIC_WOULD_EXPECT, None) is ImageLevel.PUBLIC_WOULD_EXPECT


def test_L12_stopped_approval_is_unavailable_from_that_moment_with_deletion_due():
    approval = approved()
    approval.stop(SUPERINTENDENT, at(5), "operation closed", CONFIG)
    assert approval.in_force_at(at(4.99)) and not approval.in_force_at(at(5))
    assert approval.deletion_due == at(5) + timedelta(days=31)
    refused("L-12", lambda: approval.stop(SUPERINTENDENT, at(6), "again", CONFIG), approval)


def test_L12_expiry_only_once_the_end_date_is_reached():
    approval = approved(expires_at=at(20))
    refused("L-12", lambda: approval.expire(ADMIN, at(19), CONFIG), approval)
    assert approval.in_force_at(at(19)) and not approval.in_force_at(at(20))
    approval.expire(ADMIN, at(20), CONFIG)
    assert approval.status is ApprovalStatus.EXPIRED and approval.deletion_due == at(51)


def test_L12_no_enrolment_into_a_library_whose_approval_stopped():
    approval = approved()
    library = ReferenceLibrary.create(ADMIN, T0, "lib", approval)
    approval.stop(SUPERINTENDENT, at(1), "closed", CONFIG)
    from domain_builders import library_images

    refused("L-12", lambda: library.enrol(ADMIN, at(2), library_images(), approval, CONFIG), library)


def test_L01_library_is_created_only_under_an_approval_in_force():
    approval = applied()
    error = refused("L-01", lambda: ReferenceLibrary.create(ADMIN, T0, "lib", approval))
    assert isinstance(error.record, RefusedAttempt)
    approval.approve(SUPERINTENDENT, T0, record(), CONFIG)
    library = ReferenceLibrary.create(ADMIN, T0, "lib", approval)
    assert library.approved_level is approval.approved_level and library.kind is LibraryKind.TEMPORARY


def test_L13_access_restrictions_allow_named_teams_and_users_only():
    approval = approved(access=AccessRestriction(teams={"team-a"}, users={"outsider-2"}))
    assert within_access(approval, ANALYST).allowed
    refusal = within_access(approval, OUTSIDER)
    assert not refusal.allowed and refusal.rule_ids == ("L-13",)
    everyone = approved(access=AccessRestriction(all_rfr_users=True))
    assert within_access(everyone, OUTSIDER).allowed
    assert not within_access(None, ANALYST).allowed


def test_P12_library_applicant_cannot_approve_their_own_application():
    approval = LibraryApproval.apply_for(SUPERINTENDENT, T0, application())
    refused("P-12", lambda: approval.approve(SUPERINTENDENT, T0, record(), CONFIG), approval)
    approval.reject(SRO, T0, "not necessary")
    assert approval.status is ApprovalStatus.REJECTED
