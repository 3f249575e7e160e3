"""R-03a: a probe submitted and never searched is deleted its period after submission (default
31 days, ``PolicyConfig.never_searched_probe_days``), not a moment before, unless a legal hold
keeps it (R-04). The sweep finds such probes through the ``rfr_probe_unsearched`` table of the
probe searches projection; these tests run it over memory, SQLite and PostgreSQL stores.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import domain_builders as b
import pytest
from app_world import FixedClock, World, memory_app, postgres_app, sqlite_app
from fake_biometrics import face_image

from rfr.application.app import RfrApplication
from rfr.application.services.legal_holds import HoldKind, HoldSubject, LegalHolds
from rfr.application.services.retention import HeldItem, RetentionSummary, RetentionSweep
from rfr.application.services.searches import LibrarySelection
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage

SECOND = timedelta(seconds=1)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RfrApplication]:
    if request.param == "memory":
        return memory_app
    if request.param == "sqlite":
        return lambda: sqlite_app(tmp_path)
    request.getfixturevalue("postgres_store")
    return lambda: postgres_app(tmp_path)


def _sweep(world: World) -> RetentionSummary:
    return RetentionSweep(world.app, world.clock, lambda: world.bio).run()


def _step(clock: FixedClock, delta: timedelta) -> None:
    clock.advance(days=delta / timedelta(days=1))


def _purged(world: World, probe_id: UUID) -> ProbeImage.Purged | None:
    events = world.app.repository.event_store.get(probe_id)
    return next((e for e in events if isinstance(e, ProbeImage.Purged)), None)


def test_R03a_R04_a_never_searched_probe_goes_31_days_after_submission_unless_held(
    make_app: Callable[[], RfrApplication],
) -> None:
    world = World(make_app(), FixedClock()).populate()
    submitted = world.clock.now()
    never = world.probe()
    opened = world.probe()  # a request opened on it, never run: still never searched
    _, library_id = world.enrolled_library()
    world.searches.open("analyst", opened, [LibrarySelection(str(library_id), "the suspect may be here")])
    held = world.probe()
    LegalHolds(world.app, world.clock).place(
        "sro", HoldSubject.PROBE, held, HoldKind.COMPLAINT, "complaint about the arrest"
    )
    _step(world.clock, timedelta(days=10))
    later = world.probe()  # its own 31 days run from its own submission

    _step(world.clock, submitted + timedelta(days=31) - SECOND - world.clock.now())
    early = _sweep(world)
    assert (dict(early.deleted), early.held, early.failed) == ({}, (), ())

    _step(world.clock, SECOND)
    summary = _sweep(world)

    assert dict(summary.deleted) == {"R-03a": 2}
    assert summary.held == (
        HeldItem("probe", str(held), "R-03a", 1, "complaint", "complaint about the arrest"),
    )
    assert summary.failed == ()
    for probe_id in (never, opened):
        probe = world.app.get(probe_id, ProbeImage)
        assert probe.purged_at == world.clock.now() and probe.templates == []
        assert not world.bio.store.records(str(probe_id))
        event = _purged(world, probe_id)
        assert event.acting.user_id == "rfr:retention-worker" and event.reason.startswith("R-03a: ")
    for probe_id in (held, later):
        assert world.app.get(probe_id, ProbeImage).purged_at is None
        assert world.bio.store.records(str(probe_id))

    again = _sweep(world)
    assert (dict(again.deleted), again.held, again.failed) == ({}, summary.held, ())
    _step(world.clock, timedelta(days=10))
    assert dict(_sweep(world).deleted) == {"R-03a": 1}
    assert _purged(world, later) is not None


def test_R03a_the_period_is_the_policy_config_in_force(world: World, clock: FixedClock) -> None:
    world.policy.change("sro", PolicyConfig(never_searched_probe_days=60), "probes wait two months")
    probe_id = UUID(world.probes.submit("analyst", b.form3(), face_image(0)).probe_id)

    _step(clock, timedelta(days=60) - SECOND)
    assert dict(_sweep(world).deleted) == {}
    _step(clock, SECOND)
    assert dict(_sweep(world).deleted) == {"R-03a": 1}
    assert world.app.get(probe_id, ProbeImage).purged_at == clock.now()


def test_R03_R03a_a_searched_probe_is_left_to_R03(world: World, clock: FixedClock) -> None:
    """Its search ends the wait of R-03a; R-03 then counts 31 days from the search."""
    clock.advance(days=20)
    _, probe_id, _ = world.searched()
    clock.advance(days=20)  # 40 days after the library's enrolment, 20 after the search
    assert dict(_sweep(world).deleted) == {}
    clock.advance(days=10)  # 30 days after the search: R-03's lead time of a day
    assert dict(_sweep(world).deleted) == {"R-03": 1}
    assert world.app.get(probe_id, ProbeImage).purged_at is not None
