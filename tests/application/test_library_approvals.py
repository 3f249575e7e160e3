"""Library approvals through the services: every command, the flags the Operational Lead sees."""

from __future__ import annotations

from datetime import timedelta

import domain_builders as b
import pytest
from app_world import World

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.forms import LibraryKind, ReviewOutcome
from rfr.domain.images import ImageLevel
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.search_terms import SearchPurpose, Urgency, UrgencyBasis

URGENCY = Urgency(UrgencyBasis.RISK_TO_LIFE_OR_HARM, "a child is missing")


def test_L03_a_temporary_library_is_applied_for_and_approved(world: World) -> None:
    """L-03: a temporary library is applied for and approved."""
    applied = world.approvals.apply("analyst", b.application())
    assert (applied.status, applied.form, applied.in_force) == ("applied", "Form 2", False)
    assert applied.application["legal_basis"].startswith("common law")
    view = world.approvals.approve("supt", applied.id, b.record(world.clock.now()))
    assert (view.status, view.in_force, view.approver_id) == ("approved", True, "supt")
    assert view.approved_level == int(ImageLevel.NON_COMPLIANT_POLICE)
    assert view.purposes == tuple(sorted(p.value for p in SearchPurpose))
    assert view.access_teams == ("team-a",)
    assert view.flags == () and not view.review_overdue
    assert world.approvals.get("analyst", applied.id) == view


def test_L02_A01_a_substantive_library_is_approved_only_by_the_sro_refusal_kept(world: World) -> None:
    """A-01: a substantive library is approved only by the sro refusal kept."""
    applied = world.approvals.apply("analyst", b.application(LibraryKind.SUBSTANTIVE))
    record = b.record(world.clock.now())
    with pytest.raises(PolicyRefusal) as caught:
        world.approvals.approve("supt", applied.id, record)
    assert "L-02" in caught.value.rule_ids
    stored = world.app.get(applied.id, LibraryApproval)
    assert stored.status.value == "applied"
    assert stored.refusals[-1].rule_ids == caught.value.rule_ids
    assert world.approvals.get("sro", applied.id).refusals == 1
    assert world.approvals.approve("sro", applied.id, record).status == "approved"


def test_L04_A01_an_incomplete_form_is_refused_into_a_stored_attempt(world: World) -> None:
    """A-01: an incomplete form is refused into a stored attempt."""
    with pytest.raises(PolicyRefusal) as caught:
        world.approvals.apply("analyst", b.application(legal_basis=" "))
    assert caught.value.rule_ids == ("L-04",)
    stored = world.app.get(caught.value.record.id)
    assert stored.refusals[0].rule_ids == ("L-04",)


def test_P12_nobody_approves_their_own_application(world: World) -> None:
    applied = world.approvals.apply("supt", b.application())
    with pytest.raises(PolicyRefusal) as caught:
        world.approvals.approve("supt", applied.id, b.record(world.clock.now()))
    assert "P-12" in caught.value.rule_ids


def test_P12_reject_records_the_rationale(world: World) -> None:
    """P-12: reject records the rationale."""
    applied = world.approvals.apply("analyst", b.application())
    view = world.approvals.reject("supt", applied.id, "not necessary")
    assert view.status == "rejected" and view.ended_at == world.clock.now()
    assert world.approvals.list("analyst", status="rejected").items == (view,)


def test_L09_verbal_approval_is_flagged_until_the_written_rationale(world: World) -> None:
    applied = world.approvals.apply("analyst", b.application())
    record = b.record(world.clock.now(), rationale="")
    view = world.approvals.approve("supt", applied.id, record, urgency=URGENCY)
    assert view.urgent and view.written_rationale_due == world.clock.now() + timedelta(days=3)
    assert [f.rule_id for f in view.flags] == ["L-09"]
    assert world.approvals.flagged("op-lead") == (view,)
    with pytest.raises(PolicyRefusal) as caught:
        world.approvals.record_written_rationale("sro", applied.id, "not mine to write")
    assert "L-09" in caught.value.rule_ids
    view = world.approvals.record_written_rationale("supt", applied.id, "written up")
    assert view.flags == () and view.rationale == "written up"
    assert world.approvals.flagged("op-lead") == ()


def test_L09_the_written_rationale_due_date_follows_the_policy_settings(world: World) -> None:
    """L-09: the written rationale due date follows the policy settings."""
    world.policy.change("sro", PolicyConfig(urgent_written_rationale_due_days=1), "tighter")
    applied = world.approvals.apply("analyst", b.application())
    view = world.approvals.approve("supt", applied.id, b.record(world.clock.now()), urgency=URGENCY)
    assert view.written_rationale_due == world.clock.now() + timedelta(days=1)


def test_L10_an_inspectors_urgent_approval_awaits_a_superintendent(world: World) -> None:
    applied = world.approvals.apply("analyst", b.application())
    view = world.approvals.approve_urgently("inspector", applied.id, b.record(world.clock.now()), URGENCY)
    assert view.awaiting_superintendent and view.in_force
    assert [f.rule_id for f in view.flags] == ["L-10"]
    with pytest.raises(PolicyRefusal) as caught:
        world.approvals.ratify("inspector-2", applied.id, "continue")
    assert "L-10" in caught.value.rule_ids
    view = world.approvals.ratify("supt", applied.id, "continue: necessary")
    assert not view.awaiting_superintendent and view.flags == ()


def test_L06_L07_review_continue_sets_the_next_date_and_an_overdue_review_is_flagged(world: World) -> None:
    """L-07: review continue sets the next date and an overdue review is flagged."""
    approval_id = world.approved()
    world.clock.advance(days=31)
    view = world.approvals.get("op-lead", approval_id)
    assert view.review_overdue and not view.blocks_search
    assert [f.rule_id for f in view.flags] == ["L-06"]
    world.clock.advance(days=15)
    assert world.approvals.get("op-lead", approval_id).blocks_search
    next_due = world.clock.now() + timedelta(days=90)
    view = world.approvals.review(
        "op-lead", approval_id, ReviewOutcome.CONTINUE, "still needed", next_review_due=next_due
    )
    assert view.review_due == next_due and not view.review_overdue and not view.blocks_search
    assert [(r.reviewer_id, r.outcome) for r in view.reviews] == [("op-lead", "continue")]


def test_L07_L12_review_vary_and_stop(world: World) -> None:
    """L-07, L-12: review vary and stop."""
    approval_id = world.approved()
    varied = b.record(world.clock.now(), purposes=frozenset({SearchPurpose.IDENTIFY}))
    view = world.approvals.review("supt", approval_id, ReviewOutcome.VARY, "narrowed", varied_record=varied)
    assert view.purposes == ("a_identify",)
    view = world.approvals.review("op-lead", approval_id, ReviewOutcome.STOP, "no longer needed")
    assert view.status == "stopped" and not view.in_force
    assert view.deletion_due == world.clock.now() + timedelta(days=31)


def test_L08_vary_adds_a_further_purpose(world: World) -> None:
    """L-08: vary adds a further purpose."""
    approval_id = world.approved(purposes=frozenset({SearchPurpose.IDENTIFY}))
    record = b.record(world.clock.now())
    view = world.approvals.vary("supt", approval_id, record, "conduct confirmation needed too")
    assert "d_confirm_conduct" in view.purposes


def test_L12_stop_makes_the_library_unsearchable_at_once(world: World) -> None:
    approval_id = world.approved()
    view = world.approvals.stop("supt", approval_id, "operation ended")
    assert (view.status, view.in_force, view.blocks_search) == ("stopped", False, True)
    with pytest.raises(PolicyRefusal) as caught:
        world.approvals.stop("supt", approval_id, "again")
    assert "L-12" in caught.value.rule_ids


def test_L12_expire_only_after_the_end_date(world: World) -> None:
    approval_id = world.approved(expires_at=world.clock.now() + timedelta(days=10))
    with pytest.raises(PolicyRefusal) as caught:
        world.approvals.expire("op-lead", approval_id)
    assert "L-12" in caught.value.rule_ids
    world.clock.advance(days=10)
    view = world.approvals.expire("op-lead", approval_id)
    assert view.status == "expired" and not view.in_force


def test_list_pages_and_filters_by_status(world: World) -> None:
    ids = [world.approved() for _ in range(3)]
    world.approvals.apply("analyst", b.application())
    page = world.approvals.list("analyst", limit=2)
    assert [v.id for v in page.items] == ids[:2]
    rest = world.approvals.list("analyst", after=page.next_after, status="approved")
    assert [v.id for v in rest.items] == ids[2:]
    assert rest.next_after is None
