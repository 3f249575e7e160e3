"""Search requests: S-01..S-07, with library rules checked at search time (L-01, L-06, L-08, L-11, L-13)."""

from __future__ import annotations

import attrs
from domain_builders import (
    ALG,
    ANALYST,
    ANALYST_2,
    CONFIG,
    INSPECTOR,
    OUTSIDER,
    SERGEANT,
    SUPERINTENDENT,
    T0,
    approvals_of,
    at,
    candidates_for,
    open_request,
    ready_probe,
    refused,
    search,
    searchable_library,
)

from rfr.domain.forms import Dissemination
from rfr.domain.images import ImageLevel
from rfr.domain.match_report import DISSEMINATION_CAVEAT, PERFORMANCE_DOCUMENT_URL, PERFORMANCE_STATEMENT
from rfr.domain.people import Role
from rfr.domain.probe_image import ProbeImage
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.rules_search import Candidate
from rfr.domain.search_request import LibraryChoice, RequestStatus, SearchRequest
from rfr.domain.search_terms import SearchPurpose, Urgency, UrgencyBasis

SHARE = Dissemination("CPS case unit", "DPA 2018 s.35; prosecution", True)


def matched_request():
    probe = ready_probe()
    pair = searchable_library()
    request = open_request(probe, pair)
    search(request, probe, pair)
    first = request.candidates()[0]
    request.adjudicate(
        ANALYST,
        at(1),
        first.candidate_id,
        True,
        "same scar, same ear shape",
        identity_known=True,
        approvals=approvals_of(request),
    )
    return request, first


def test_S01_search_needs_a_selected_face():
    pair = searchable_library()
    probe = ProbeImage.submit(ANALYST, T0, ready_probe().form, "sha256:x")
    request = open_request(probe, pair)
    refused("S-01", lambda: search(request, probe, pair), request)


def test_S01_request_needs_at_least_one_library():
    error = refused("S-01", lambda: SearchRequest.open(ANALYST, T0, ready_probe(), [], CONFIG))
    assert isinstance(error.record, RefusedAttempt)


def test_S01_ready_probe_and_approved_library_are_searched():
    """S-01: ready probe and approved library are searched."""
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair)
    assert request.searched is False
    search(request, probe, pair)
    assert request.searched_library_ids == (str(pair[1].id),)
    assert request.searched is True
    event = request.pending_events[-1]
    assert type(event).__name__ == "LibrarySearched" and event.probe_template_ids == ["probe-tpl-1"]


def test_L01_search_refused_once_the_approval_is_stopped():
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair)
    pair[0].stop(SUPERINTENDENT, at(1), "operation closed", CONFIG)
    refused("L-01", lambda: search(request, probe, pair, when=at(1)), request)


def test_L06_search_refused_after_overdue_review_grace_but_allowed_within():
    probe, pair = ready_probe(), searchable_library(review_days=30)
    request = open_request(probe, pair)
    refused("L-06", lambda: search(request, probe, pair, when=at(45)), request)
    search(request, probe, pair, when=at(40))


def test_L08_search_for_a_purpose_outside_scope_is_refused():
    narrow = searchable_library(purposes=frozenset({SearchPurpose.PLACE_AT_LOCATION}))
    refused("L-08", lambda: open_request(ready_probe(), narrow))
    wide = searchable_library(purposes=frozenset({SearchPurpose.IDENTIFY}))
    assert open_request(ready_probe(), wide).status is RequestStatus.OPEN


def test_L11_requested_level_can_raise_but_not_lower_the_library_level():
    approval, library = searchable_library(level=ImageLevel.PUBLIC_WOULD_EXPECT)
    low = LibraryChoice(library, approval, "relevant", raised_level=ImageLevel.COMPLIANT_POLICE)
    refused("L-11", lambda: SearchRequest.open(ANALYST, T0, ready_probe(), [low], CONFIG))
    high = LibraryChoice(library, approval, "relevant", raised_level=ImageLevel.ELEVATED_PRIVACY)
    request = SearchRequest.open(ANALYST, T0, ready_probe(), [high], CONFIG)
    assert request.libraries[str(library.id)].level is ImageLevel.ELEVATED_PRIVACY
    assert "P-08" in request.required_approvals


def test_L13_user_outside_access_restrictions_cannot_open_or_search():
    probe, pair = ready_probe(), searchable_library()
    refused(
        "L-13",
        lambda: SearchRequest.open(OUTSIDER, T0, probe, [LibraryChoice(pair[1], pair[0], "r")], CONFIG),
    )
    request = open_request(probe, pair)
    refused("L-13", lambda: search(request, probe, pair, actor=OUTSIDER), request)
    search(request, probe, pair, actor=ANALYST_2)


def test_S02_higher_level_only_after_lower_levels_without_viable_match():
    probe = ready_probe()
    low = searchable_library(name="custody", level=ImageLevel.COMPLIANT_POLICE)
    high = searchable_library(name="appeal", level=ImageLevel.PUBLIC_WOULD_EXPECT)
    request = open_request(probe, high, low)
    refused("S-02", lambda: search(request, probe, high), request)
    search(request, probe, low)
    search(request, probe, high)


def test_S02_viable_match_at_lower_level_stops_progression():
    probe = ready_probe()
    low = searchable_library(name="custody", level=ImageLevel.COMPLIANT_POLICE)
    high = searchable_library(name="appeal", level=ImageLevel.PUBLIC_WOULD_EXPECT)
    request = open_request(probe, low, high)
    search(request, probe, low)
    request.adjudicate(
        ANALYST, T0, request.candidates()[0].candidate_id, True, "match", approvals=approvals_of(request)
    )
    refused("S-02", lambda: search(request, probe, high), request)


def test_S02_urgent_search_all_with_rationale_skips_the_order():
    probe = ready_probe()
    low = searchable_library(name="custody", level=ImageLevel.COMPLIANT_POLICE)
    high = searchable_library(name="appeal", level=ImageLevel.PUBLIC_WOULD_EXPECT)
    urgent = Urgency(UrgencyBasis.RISK_TO_LIFE_OR_HARM, "armed suspect at large", search_all=True)
    request = open_request(probe, low, high, urgency=urgent)
    search(request, probe, high)
    refused(
        "S-02",
        lambda: open_request(probe, low, high, urgency=attrs.evolve(urgent, rationale="")),
    )


def test_S02_urgent_search_all_on_form_3_applies_without_being_repeated_on_the_request():
    """S-02: Urgency is recorded on Form 3; a request of that probe inherits its "search all"."""
    urgent = Urgency(UrgencyBasis.RISK_TO_LIFE_OR_HARM, "armed suspect at large", search_all=True)
    probe = ready_probe(urgency=urgent, pre_rfr_checks=None)
    low = searchable_library(name="custody", level=ImageLevel.COMPLIANT_POLICE)
    high = searchable_library(name="appeal", level=ImageLevel.PUBLIC_WOULD_EXPECT)
    request = open_request(probe, low, high)
    assert request.urgency == urgent
    search(request, probe, high)
    # The request's own urgency, where given, is the one recorded.
    calm = Urgency(UrgencyBasis.OPPORTUNITY_LOST, "CCTV overwritten tonight")
    later = open_request(probe, low, high, urgency=calm)
    assert later.urgency == calm
    refused("S-02", lambda: search(later, probe, high), later)


def test_S03_each_library_needs_a_reason_and_only_requested_libraries_are_searched():
    probe, pair, other = ready_probe(), searchable_library(), searchable_library(name="other")
    refused(
        "S-03", lambda: SearchRequest.open(ANALYST, T0, probe, [LibraryChoice(pair[1], pair[0], " ")], CONFIG)
    )
    request = open_request(probe, pair)
    assert request.libraries[str(pair[1].id)].relevance
    refused("S-03", lambda: search(request, probe, other), request)


def test_S04_candidates_listed_by_rank_or_score_with_library_and_algorithm():
    """S-04: candidates listed by rank or score with library and algorithm."""
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair)
    lib = str(pair[1].id)
    found = [
        Candidate(1, 0.80, lib, ALG, "lib-0", "tpl-lib-0"),
        Candidate(2, 0.95, lib, ALG, "lib-1", "tpl-lib-1"),
    ]
    search(request, probe, pair, candidates=found)
    assert [c.rank for c in request.candidates()] == [1, 2]
    assert [c.rank for c in request.candidates("score")] == [2, 1]
    assert all(c.algorithm_id == ALG and c.library_id == lib for c in request.candidates())


def test_S04_T01_malformed_ranks_and_foreign_algorithm_are_refused():
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair)
    lib = str(pair[1].id)
    refused(
        "S-04",
        lambda: search(request, probe, pair, candidates=[Candidate(2, 0.9, lib, ALG, "lib-0", "tpl-lib-0")]),
    )
    refused(
        "T-01", lambda: search(request, probe, pair, candidates=candidates_for(pair[1], algorithm_id="other"))
    )


def test_S05_adjudication_needs_a_rationale_and_makes_the_viable_match():
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair)
    search(request, probe, pair)
    first = request.candidates()[0]
    assert not request.has_viable_match
    refused(
        "S-05",
        lambda: request.adjudicate(
            ANALYST, T0, first.candidate_id, True, "", approvals=approvals_of(request)
        ),
        request,
    )
    refused(
        "S-05",
        lambda: request.adjudicate(ANALYST, T0, "nope#1", True, "x", approvals=approvals_of(request)),
        request,
    )
    request.adjudicate(
        ANALYST, T0, first.candidate_id, True, "ear and scar match", approvals=approvals_of(request)
    )
    assert request.has_viable_match and request.viable_matches[0].by == ANALYST.user_id


def test_S06_match_report_carries_the_verbatim_caveat_and_performance_link(policy_text):
    """S-06: match report carries the verbatim caveat and performance link."""
    request, first = matched_request()
    request.issue_match_report(ANALYST, at(1), first.candidate_id, "MR-1", approvals=approvals_of(request))
    report = request.reports["MR-1"]
    assert report.caveat == DISSEMINATION_CAVEAT and report.caveat in policy_text
    assert report.performance_statement == PERFORMANCE_STATEMENT and PERFORMANCE_STATEMENT in policy_text
    assert report.performance_document_url == PERFORMANCE_DOCUMENT_URL


def test_S06_no_match_report_for_an_unadjudicated_or_not_viable_candidate():
    request, _ = matched_request()
    second = request.candidates()[1]
    refused(
        "S-06",
        lambda: request.issue_match_report(
            ANALYST, at(1), second.candidate_id, "MR-2", approvals=approvals_of(request)
        ),
        request,
    )
    request.adjudicate(
        ANALYST, at(1), second.candidate_id, False, "different nose", approvals=approvals_of(request)
    )
    refused(
        "S-06",
        lambda: request.issue_match_report(
            ANALYST, at(1), second.candidate_id, "MR-2", approvals=approvals_of(request)
        ),
        request,
    )


def test_S07_dissemination_recorded_with_recipient_legal_basis_and_safeguards():
    """S-07: dissemination recorded with recipient legal basis and safeguards."""
    request, first = matched_request()
    request.issue_match_report(ANALYST, at(1), first.candidate_id, "MR-1", approvals=approvals_of(request))
    request.record_dissemination(ANALYST, at(2), "MR-1", SHARE, approvals=approvals_of(request))
    assert request.disseminations[0].dissemination.recipient == "CPS case unit"


def test_S07_templates_are_never_disseminated_and_safeguards_must_be_acknowledged():
    request, first = matched_request()
    request.issue_match_report(ANALYST, at(1), first.candidate_id, "MR-1", approvals=approvals_of(request))
    with_template = attrs.evolve(SHARE, items=("match_report", "template"))
    refused(
        "S-07",
        lambda: request.record_dissemination(
            ANALYST, at(2), "MR-1", with_template, approvals=approvals_of(request)
        ),
        request,
    )
    careless = attrs.evolve(SHARE, safeguards_acknowledged=False)
    refused(
        "S-07",
        lambda: request.record_dissemination(
            ANALYST, at(2), "MR-1", careless, approvals=approvals_of(request)
        ),
        request,
    )
    refused(
        "S-07",
        lambda: request.record_dissemination(ANALYST, at(2), "MR-9", SHARE, approvals=approvals_of(request)),
        request,
    )


def test_P08_level_4_library_needs_inspector_approval_before_search():
    probe = ready_probe()
    pair = searchable_library(level=ImageLevel.ELEVATED_PRIVACY)
    request = open_request(probe, pair)
    refused("P-08", lambda: search(request, probe, pair), request)
    refused("P-08", lambda: request.approve(SERGEANT, T0, "ok", approvals=approvals_of(request)), request)
    request.approve(
        INSPECTOR, T0, "serious offence; hospital imagery justified", approvals=approvals_of(request)
    )
    assert request.pending_events[-1].approver_rank == 2
    search(request, probe, pair)


def test_P09_probe_images_collection_needs_inspector_approval_per_request():
    probe = ready_probe(collection_id="COLL-7")
    pair = searchable_library()
    request = open_request(probe, pair)
    assert request.required_approvals == {"P-09"}
    refused("P-09", lambda: search(request, probe, pair), request)
    request.approve(
        INSPECTOR, T0, "collection linked to one series of burglaries", approvals=approvals_of(request)
    )
    search(request, probe, pair)


def test_P12_search_approval_by_someone_other_than_the_requester():
    probe = ready_probe(collection_id="COLL-7")
    pair = searchable_library()
    requester = attrs.evolve(INSPECTOR, roles=INSPECTOR.roles | {Role.RFR_USER})
    request = SearchRequest.open(requester, T0, probe, [LibraryChoice(pair[1], pair[0], "r")], CONFIG)
    refused("P-12", lambda: request.approve(requester, T0, "self", approvals=approvals_of(request)), request)
    request.reject(
        attrs.evolve(INSPECTOR, user_id="inspector-2"),
        T0,
        "not proportionate",
        approvals=approvals_of(request),
    )
    assert request.status is RequestStatus.REJECTED
    refused("S-01", lambda: search(request, probe, pair), request)


def test_T02_library_not_fully_templated_with_the_algorithm_is_not_searched():
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair)
    from domain_builders import enrolled_into, library_images

    enrolled_into(pair[1], pair[0], library_images(1, prefix="new"), templated=False)
    refused("T-02", lambda: search(request, probe, pair), request)
