"""Commands on different parts of one search request do not conflict (ADR 0011).

A save is an optimistic lock on the whole ``SearchRequest``. The clock's ``before_next`` hook
lands another user's command between this command's load and its save, every time: without
a retry that is a ``ConcurrentModification`` (a 409 over HTTP); with it the command is run
again on a fresh load, and the domain decides it again on the state now stored.
"""

from __future__ import annotations

import pytest
from app_world import FixedClock, World

from rfr.application.app import ConcurrentModification
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.search_request import SearchRequest


def _candidates(world: World) -> tuple[SearchRequest, str, str]:
    request_id, _, _ = world.searched(2)
    request = world.app.get(request_id, SearchRequest)
    first, second = (c.candidate_id for c in request.candidates())
    return request, first, second


def _adjudicate_meanwhile(world: World, clock: FixedClock, user: str, request_id, candidate_id: str) -> None:
    """``user`` adjudicates ``candidate_id`` as the next command reads the clock: after its load."""
    clock.before_next = lambda: world.searches.adjudicate(
        user, request_id, candidate_id, False, "not the same person"
    )


def test_S05_adjudications_of_different_candidates_at_once_both_land(world: World, clock: FixedClock):
    request, first, second = _candidates(world)
    _adjudicate_meanwhile(world, clock, "analyst-2", request.id, second)

    view = world.searches.adjudicate("analyst", request.id, first, True, "same scar", identity_known=True)

    assert clock.before_next is None, "the other adjudication ran between load and save"
    stored = world.app.get(request.id, SearchRequest)
    assert {c: (a.by, a.viable) for c, a in stored.adjudications.items()} == {
        first: ("analyst", True),
        second: ("analyst-2", False),
    }
    assert stored.refusals == () and view.unadjudicated == 0 and view.refusals == 0


def test_S05_the_same_candidate_adjudicated_twice_at_once_lands_once_and_the_refusal_is_recorded(
    world: World, clock: FixedClock
):
    request, first, _ = _candidates(world)
    _adjudicate_meanwhile(world, clock, "analyst-2", request.id, first)

    with pytest.raises(PolicyRefusal) as refused:
        world.searches.adjudicate("analyst", request.id, first, True, "same scar", identity_known=True)

    assert refused.value.rule_ids == ("S-05",) and refused.value.reason == "already adjudicated"
    stored = world.app.get(request.id, SearchRequest)
    assert {c: (a.by, a.viable) for c, a in stored.adjudications.items()} == {first: ("analyst-2", False)}
    (refusal,) = stored.refusals
    assert (refusal.command, refusal.actor.user_id, refusal.rule_ids) == ("adjudicate", "analyst", ("S-05",))


def test_without_a_retry_the_same_interleaving_is_a_conflict_and_nothing_of_it_is_stored(
    world: World, clock: FixedClock
):
    """The control: the hook really makes the save collide; one attempt only surfaces it."""
    request, first, second = _candidates(world)
    world.searches.max_attempts = 1
    _adjudicate_meanwhile(world, clock, "analyst-2", request.id, second)

    with pytest.raises(ConcurrentModification):
        world.searches.adjudicate("analyst", request.id, first, True, "same scar", identity_known=True)

    stored = world.app.get(request.id, SearchRequest)
    assert list(stored.adjudications) == [second] and stored.refusals == ()


def test_S06_match_reports_of_different_candidates_at_once_both_land(world: World, clock: FixedClock):
    request, first, second = _candidates(world)
    for candidate in (first, second):
        world.searches.adjudicate("analyst", request.id, candidate, True, "same scar", identity_known=True)
    clock.before_next = lambda: world.searches.issue_match_report(
        "analyst-2", request.id, second, report_id="report-2"
    )

    report = world.searches.issue_match_report("analyst", request.id, first, report_id="report-1")

    assert clock.before_next is None and report.candidate_id == first
    stored = world.app.get(request.id, SearchRequest)
    assert {r.report_id: r.candidate_id for r in stored.reports.values()} == {
        "report-1": first,
        "report-2": second,
    }


def test_a_conflict_on_every_attempt_is_raised_after_the_bounded_retries(world: World, clock: FixedClock):
    """Each attempt runs on a fresh load; when another writer wins every time, the last conflict is raised."""
    request, first, second = _candidates(world)
    world.searches.max_attempts = 3
    attempts = 0

    def meanwhile() -> None:
        nonlocal attempts
        attempts += 1
        # Another writer saves the request again before each attempt's save (a refusal: it changes
        # nothing but the request's version, so the adjudication stays valid on every reload).
        with pytest.raises(PolicyRefusal):
            world.searches.adjudicate("analyst-2", request.id, second, False, "")
        if attempts < 3:
            clock.before_next = meanwhile

    clock.before_next = meanwhile
    with pytest.raises(ConcurrentModification):
        world.searches.adjudicate("analyst", request.id, first, True, "same scar", identity_known=True)

    assert attempts == 3
    stored = world.app.get(request.id, SearchRequest)
    assert stored.adjudications == {} and len(stored.refusals) == 3
