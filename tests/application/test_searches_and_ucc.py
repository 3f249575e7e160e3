"""Search requests (S-01..S-07, P-08, P-12, L-13) and the Unresolved Crime Cache (U-01, U-03, U-04).

Every search runs through ``SearchExecution`` (the fake engine of ``fake_biometrics``): the
potential matches are what the production search found in the library's index.
"""

from __future__ import annotations

from datetime import timedelta

import attrs
import domain_builders as b
import pytest
from app_world import ALG, World
from fake_biometrics import fake_engine

from rfr.application.services.searches import LibrarySelection
from rfr.domain.calendar import add_months
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.forms import Dissemination, ReviewOutcome
from rfr.domain.images import ImageLevel
from rfr.domain.match_report import DISSEMINATION_CAVEAT, PERFORMANCE_DOCUMENT_URL
from rfr.domain.offences import CrimeTier
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage
from rfr.domain.search_request import SearchRequest
from rfr.domain.search_terms import SearchGround

SHARED = Dissemination("CPS", "DPA 2018 s.35", True)


def test_S04_S05_S06_S07_a_search_from_opening_to_dissemination_and_close(world: World) -> None:
    """S-04, S-05, S-06, S-07: a search from opening to dissemination and close."""
    request_id, probe_id, library_id = world.searched()
    view = world.searches.get("analyst", request_id)
    assert (view.status, view.probe_id, view.requester_id) == ("open", str(probe_id), "analyst")
    assert [c.candidate_id for c in view.candidates] == [f"{library_id}#1", f"{library_id}#2"]
    assert [c.image_id for c in view.candidates] == world.image_ids(library_id)[:2]  # nearest first
    assert view.unadjudicated == 2 and not view.has_viable_match
    assert view.libraries[0].algorithm_id == ALG and view.libraries[0].searched_at == world.clock.now()
    first, second = (c.candidate_id for c in view.candidates)
    world.searches.adjudicate("analyst", request_id, second, False, "different ear shape")
    view = world.searches.adjudicate("analyst", request_id, first, True, "good likeness", identity_known=True)
    assert view.unadjudicated == 0 and view.has_viable_match
    assert view.candidates[0].adjudication.by == "analyst"
    report = world.searches.issue_match_report("analyst", request_id, first)
    assert report.caveat == DISSEMINATION_CAVEAT
    assert PERFORMANCE_DOCUMENT_URL in report.performance_statement
    view = world.searches.record_dissemination("analyst", request_id, report.report_id, SHARED)
    assert [(d.recipient, d.items) for d in view.disseminations] == [("CPS", ("match_report",))]
    assert world.searches.close("analyst", request_id, "suspect identified").status == "closed"


def test_S04_candidates_read_by_score_or_rank(world: World) -> None:
    # Two libraries searched in turn; the second holds the closer faces, so the orders differ.
    """S-04: candidates read by score or rank."""
    _, far = world.enrolled_library("far", 2, steps=3)
    _, near = world.enrolled_library("near", 2, steps=1)
    request = world.searches.open(
        "analyst",
        world.probe(),
        [LibrarySelection(str(far), "reason"), LibrarySelection(str(near), "reason")],
    )
    world.search(request.id, far)
    world.search(request.id, near)
    by_rank = world.searches.get("analyst", request.id, order="rank").candidates
    by_score = world.searches.get("analyst", request.id, order="score").candidates
    assert [c.candidate_id for c in by_rank] == [f"{far}#1", f"{near}#1", f"{far}#2", f"{near}#2"]
    assert [c.candidate_id for c in by_score] == [f"{near}#1", f"{near}#2", f"{far}#1", f"{far}#2"]
    assert [c.rank for c in by_rank] == [1, 1, 2, 2]
    assert [c.rank for c in by_score] == [1, 2, 1, 2]
    scores = [c.score for c in by_score]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5 > scores[-1]


def test_S05_S06_only_an_adjudicated_viable_match_is_reported(world: World) -> None:
    """S-05: only an adjudicated viable match is reported."""
    request_id, _, library_id = world.searched()
    with pytest.raises(PolicyRefusal) as caught:
        world.searches.issue_match_report("analyst", request_id, f"{library_id}#1")
    assert "S-06" in caught.value.rule_ids
    assert world.app.get(request_id, SearchRequest).refusals[-1].command == "issue match report"


def test_S07_A01_templates_are_never_disseminated_and_the_refusal_is_kept(world: World) -> None:
    """A-01: templates are never disseminated and the refusal is kept."""
    request_id, _, library_id = world.searched()
    world.searches.adjudicate("analyst", request_id, f"{library_id}#1", True, "likeness", identity_known=True)
    report = world.searches.issue_match_report("analyst", request_id, f"{library_id}#1", report_id="R-1")
    assert report.report_id == "R-1"
    leak = Dissemination("partner force", "DPA 2018 s.35", True, ("match_report", "template"))
    with pytest.raises(PolicyRefusal) as caught:
        world.searches.record_dissemination("analyst", request_id, "R-1", leak)
    assert caught.value.rule_ids == ("S-07",)
    stored = world.app.get(request_id, SearchRequest)
    assert stored.disseminations == [] and stored.refusals[-1].rule_ids == ("S-07",)


def test_L13_A01_opening_is_refused_outside_the_library_access_into_a_stored_attempt(world: World) -> None:
    """A-01: opening is refused outside the library access into a stored attempt."""
    _, library_id = world.library()
    probe_id = world.probe()
    at, outsider = world.clock.now(), world.actor("outsider")
    theirs = ProbeImage.submit(outsider, at, b.form3(), "sha256:o")
    world.app.save(theirs)
    with pytest.raises(PolicyRefusal) as caught:
        world.searches.open("outsider", theirs.id, [LibrarySelection(str(library_id), "may hold them")])
    assert caught.value.rule_ids == ("L-13",)
    assert world.app.get(caught.value.record.id).command == "open search request"
    assert world.searches.open("analyst", probe_id, [LibrarySelection(str(library_id), "may hold them")])


def test_L13_reading_a_request_needs_for_its_libraries_unless_governing(world: World) -> None:
    request_id, _, _ = world.searched()
    assert world.searches.get("analyst-2", request_id).id == request_id
    assert world.searches.get("sergeant", request_id).id == request_id
    with pytest.raises(PolicyRefusal) as caught:
        world.searches.get("outsider", request_id)
    assert caught.value.rule_ids == ("L-13",) and caught.value.record is not None
    assert world.searches.list("outsider").items == ()
    assert [v.id for v in world.searches.list("analyst-2").items] == [request_id]


def test_S02_higher_levels_wait_for_lower_levels(world: World) -> None:
    _, low = world.enrolled_library("low")
    _, high = world.enrolled_library("high", level=ImageLevel.PUBLIC_WOULD_EXPECT)
    probe_id = world.probe()
    request = world.searches.open(
        "analyst",
        probe_id,
        [LibrarySelection(str(high), "appeal images"), LibrarySelection(str(low), "local custody images")],
    )
    with pytest.raises(PolicyRefusal) as caught:
        world.search(request.id, high)
    assert caught.value.rule_ids == ("S-02",)
    assert world.app.get(request.id, SearchRequest).refusals[-1].rule_ids == ("S-02",)
    # The next library is the lowest level left, whatever the order chosen.
    assert world.execution.search_next("analyst", request.id).library_id == str(low)
    assert world.execution.search_next("analyst", request.id).library_id == str(high)
    assert world.execution.search_next("analyst", request.id) is None
    view = world.searches.get("analyst", request.id)
    assert len(view.candidates) == 4


def test_P08_P12_a_level_4_library_needs_an_inspectors_approval_by_another_person(world: World) -> None:
    """P-12: a level 4 library needs an inspectors approval by another person."""
    _, library_id = world.enrolled_library("sensitive", level=ImageLevel.ELEVATED_PRIVACY)
    probe_id = world.probe()
    request = world.searches.open("analyst", probe_id, [LibrarySelection(str(library_id), "reason")])
    assert request.required_approvals == ("P-08",) and request.awaiting_approval
    with pytest.raises(PolicyRefusal) as caught:
        world.search(request.id, library_id)
    assert "P-08" in caught.value.rule_ids
    with pytest.raises(PolicyRefusal) as caught:
        world.searches.approve("sergeant", request.id, "fine by me")
    assert "P-08" in caught.value.rule_ids
    view = world.searches.approve("inspector", request.id, "necessary: serious offence")
    assert view.approval.by == "inspector" and view.approval.rank == 2 and not view.awaiting_approval
    assert len(world.search(request.id, library_id).candidates) == 2


def test_P12_a_search_is_rejected_before_it_runs(world: World) -> None:
    """P-12: a search is rejected before it runs."""
    _, library_id = world.library()
    request = world.searches.open("analyst", world.probe(), [LibrarySelection(str(library_id), "reason")])
    assert world.searches.reject("inspector", request.id, "not proportionate").status == "rejected"


def test_T01_T02_templates_of_another_algorithm_are_never_compared(world: World) -> None:
    # The same world with an engine of another algorithm, over the same events, store and indexes.
    """T-01: templates of another algorithm are never compared."""
    elsewhere = attrs.evolve(world, bio=attrs.evolve(world.bio, engine=fake_engine(version="2")))
    assert elsewhere.bio.algorithm_id != ALG
    _, theirs = elsewhere.enrolled_library("their library")
    request = world.searches.open("analyst", world.probe(), [LibrarySelection(str(theirs), "reason")])
    with pytest.raises(PolicyRefusal) as caught:
        world.search(request.id, theirs)
    assert caught.value.rule_ids == ("T-02",)
    # A probe templated with the other algorithm is templated with this library's for the search
    # (ADR 0019), which then compares this algorithm's templates only.
    _, ours = world.enrolled_library("our library")
    probe_id = elsewhere.probe()
    request = world.searches.open("analyst", probe_id, [LibrarySelection(str(ours), "reason")])
    found = world.search(request.id, ours)
    assert {c.algorithm_id for c in found.candidates} == {ALG}
    probe = world.app.get(probe_id, ProbeImage)
    assert {t.algorithm_id for t in probe.templates} == {ALG, elsewhere.bio.algorithm_id}
    stored = world.app.get(request.id, SearchRequest)
    assert stored.searches[str(ours)][0] == ALG


# -- Unresolved Crime Cache ------------------------------------------------------------------


def _no_viable_match(world: World) -> tuple:
    request_id, probe_id, library_id = world.searched()
    for rank in (1, 2):
        world.searches.adjudicate("analyst", request_id, f"{library_id}#{rank}", False, "not them")
    return request_id, probe_id, library_id


def test_U01_U03_a_probe_without_a_viable_match_enters_the_cache_with_an_inspectors_approval(
    world: World,
) -> None:
    """U-01, U-03: a probe without a viable match enters the cache with an inspectors approval."""
    _, probe_id, _ = _no_viable_match(world)
    entry = world.ucc.add("inspector", probe_id, [SearchGround.OFFENCE], "offender still at large")
    assert entry.crime_tier == int(CrimeTier.TIER_2) and entry.approved_by == "inspector"
    months = PolicyConfig().ucc_review_months[CrimeTier.TIER_2]
    assert entry.review_due == add_months(world.clock.now(), months)
    assert world.ucc.get("analyst", probe_id) == entry
    assert world.ucc.entries("analyst").items == (entry,)
    assert world.endorsements.get("analyst", probe_id).in_ucc


def test_U01_a_viable_match_of_a_known_person_in_any_search_keeps_the_probe_out(world: World) -> None:
    request_id, probe_id, library_id = world.searched()
    world.searches.adjudicate("analyst", request_id, f"{library_id}#1", True, "likeness", identity_known=True)
    world.searches.close("analyst", request_id, "identified")
    # A second, unmatched request on the same probe: the service must still see the first.
    other = world.searches.open("analyst", probe_id, [LibrarySelection(str(library_id), "again")])
    assert other.id != request_id
    with pytest.raises(PolicyRefusal) as caught:
        world.ucc.add("inspector", probe_id, [SearchGround.OFFENCE], "still unresolved")
    assert caught.value.rule_ids == ("U-01",)
    assert world.app.get(probe_id, ProbeImage).refusals[-1].rule_ids == ("U-01",)


def test_U01_a_viable_match_of_an_unknown_person_still_allows_the_cache(world: World) -> None:
    """U-01: a viable match of an unknown person still allows the cache."""
    request_id, probe_id, library_id = world.searched()
    world.searches.adjudicate(
        "analyst", request_id, f"{library_id}#1", True, "likeness", identity_known=False
    )
    assert world.ucc.add("inspector", probe_id, [SearchGround.OFFENCE], "identity unknown").removed_at is None


def test_U03_U04_cache_review_continue_stop_and_removal(world: World) -> None:
    """U-03, U-04: cache review continue stop and removal."""
    _, probe_id, _ = _no_viable_match(world)
    world.ucc.add("inspector", probe_id, [SearchGround.OFFENCE], "at large")
    world.clock.advance(days=200)
    assert [e.probe_id for e in world.ucc.overdue("op-lead")] == [probe_id]
    entry = world.ucc.review("op-lead", probe_id, ReviewOutcome.CONTINUE, "still relevant")
    assert not entry.review_overdue and world.ucc.overdue("op-lead") == ()
    entry = world.ucc.review("analyst", probe_id, ReviewOutcome.STOP, "purpose met elsewhere")
    assert entry.removed_at == world.clock.now()
    assert entry.deletion_due == world.clock.now() + timedelta(days=31)
    assert world.ucc.entries("analyst").items == ()
    assert world.ucc.entries("analyst", include_removed=True).items == (entry,)


def test_U04_removal_when_resolved_by_other_means(world: World) -> None:
    """U-04: removal when resolved by other means."""
    _, probe_id, _ = _no_viable_match(world)
    world.ucc.add("inspector", probe_id, [SearchGround.OFFENCE], "at large")
    assert world.ucc.remove("analyst", probe_id, "charged after a confession").removed_at is not None
    with pytest.raises(PolicyRefusal) as caught:
        world.ucc.remove("analyst", probe_id, "again")
    assert caught.value.rule_ids == ("U-03",)
