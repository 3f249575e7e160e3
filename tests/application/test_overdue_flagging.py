"""The worker's oversight round records each flag once it falls due (L-06, L-09, L-10, U-03).

Run over memory, SQLite and PostgreSQL stores: the round finds what can carry a flag through
the usage counts projection, and records each flag once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import domain_builders as b
import pytest
from app_world import FixedClock, World, memory_app, postgres_app, sqlite_app

from rfr.application.app import RfrApplication
from rfr.application.services.overdue_flags import FlagSummary, OverdueFlagging
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.search_terms import SearchGround, Urgency, UrgencyBasis

URGENT = Urgency(UrgencyBasis.RISK_TO_LIFE_OR_HARM, "child missing, sighting in the last hour")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RfrApplication]:
    if request.param == "memory":
        return memory_app
    if request.param == "sqlite":
        return lambda: sqlite_app(tmp_path)
    request.getfixturevalue("postgres_store")
    return lambda: postgres_app(tmp_path)


def _round(world: World) -> FlagSummary:
    return OverdueFlagging(world.app, world.clock).run()


def test_L06_L09_L10_U03_each_flag_is_recorded_once_when_it_falls_due(
    make_app: Callable[[], RfrApplication],
) -> None:
    world = World(make_app(), FixedClock()).populate()
    start = world.clock.now()
    reviewed = world.approved()  # review due in 30 days (L-06)
    verbal = world.approvals.apply("analyst", b.application()).id
    world.approvals.approve("supt", verbal, b.record(start, rationale=""), urgency=URGENT)  # L-09
    urgent = world.approvals.apply("analyst", b.application()).id
    world.approvals.approve_urgently("inspector", urgent, b.record(start), URGENT)  # L-10
    request_id, cached, library_id = world.searched()
    for rank in (1, 2):
        world.searches.adjudicate("analyst", request_id, f"{library_id}#{rank}", False, "not them")
    world.ucc.add("inspector", cached, [SearchGround.OFFENCE], "offender still at large")

    first = _round(world)  # L-10 is flagged from the urgent approval itself
    assert (first.items, first.failed) == ((("library_approval", str(urgent), "L-10"),), ())
    assert _round(world).items == ()

    world.clock.advance(days=4)  # past the written rationale's 3 days
    assert _round(world).items == (("library_approval", str(verbal), "L-09"),)
    world.clock.advance(days=200)  # past every review date, the cache entry's (U-03) too
    late = _round(world)

    assert sorted(late.items) == sorted(
        [
            ("library_approval", str(reviewed), "L-06"),
            ("library_approval", str(verbal), "L-06"),
            ("library_approval", str(urgent), "L-06"),
            ("library_approval", str(world.app.get(library_id, ReferenceLibrary).approval_id), "L-06"),
            ("ucc", str(cached), "U-03"),
        ]
    )
    assert late.raised == {"L-06": 4, "U-03": 1} and late.failed == ()
    again = _round(world)
    assert (again.items, again.failed) == ((), ())
    flagged = [
        e
        for e in world.app.repository.event_store.get(cached)
        if isinstance(e, ProbeImage.UccReviewFlaggedOverdue)
    ]
    assert [e.acting.user_id for e in flagged] == ["rfr:oversight-worker"]
    assert flagged[0].timestamp == world.clock.now()
    assert world.app.get(verbal, LibraryApproval).flags_raised == (
        ("L-09", start + timedelta(days=3)),
        ("L-06", start + timedelta(days=30)),
    )
