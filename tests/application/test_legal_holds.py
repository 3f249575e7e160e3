"""Legal holds (R-04) on probes and libraries: placed and lifted by the Operational Lead or the
SRO with a reason, read by operational roles and Administrators; every refusal kept (A-01)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from app_world import World

from rfr.application.errors import NotFound
from rfr.application.services.base import list_ids
from rfr.application.services.legal_holds import HoldKind, HoldSubject, LegalHolds
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.refused_attempt import RefusedAttempt


@pytest.fixture
def holds(world: World) -> LegalHolds:
    return LegalHolds(world.app, world.clock)


def test_R04_the_operational_lead_holds_a_probe_and_the_sro_lifts_it(world: World, holds: LegalHolds) -> None:
    """R-04: the operational lead holds a probe and the sro lifts it."""
    probe_id = world.probe()
    assert not holds.get("analyst", HoldSubject.PROBE, probe_id).held

    placed = holds.place("op-lead", HoldSubject.PROBE, probe_id, HoldKind.DISCLOSURE, "R v Smith, CPIA")
    assert (placed.held, placed.kind, placed.reason) == (True, "disclosure", "R v Smith, CPIA")
    assert placed.placed_on == world.clock.now().date()
    assert holds.get("admin2", HoldSubject.PROBE, probe_id) == placed

    world.clock.advance(days=30)
    lifted = holds.lift("sro", HoldSubject.PROBE, probe_id, "trial concluded")
    assert not lifted.held and lifted.kind is None
    events = list(world.app.events.get(probe_id))
    assert [type(e).__name__ for e in events[-2:]] == ["LegalHoldPlaced", "LegalHoldLifted"]
    assert [e.actor["user_id"] for e in events[-2:]] == ["op-lead", "sro"]
    assert events[-1].reason == "trial concluded"


def test_R04_a_library_hold_is_read_by_its_managers(world: World, holds: LegalHolds) -> None:
    """R-04: a library hold is read by its managers."""
    _, library_id = world.library()
    placed = holds.place("sro", HoldSubject.LIBRARY, library_id, HoldKind.CONDUCT_INVESTIGATION, "PSD ref 42")
    assert placed.subject == "library" and placed.subject_id == library_id
    assert world.app.get(library_id, ReferenceLibrary).legal_hold.kind == "conduct_investigation"
    assert holds.get("op-lead", HoldSubject.LIBRARY, library_id).reason == "PSD ref 42"


@pytest.mark.parametrize("who", ["analyst", "inspector", "admin2"])
def test_R04_A05_A01_only_the_operational_lead_or_sro_place_a_hold_and_the_refusal_stays_on_the_probe(
    world: World, holds: LegalHolds, who: str
) -> None:
    """R-04, A-01: only the operational lead or sro place a hold and the refusal stays on the probe."""
    probe_id = world.probe()
    with pytest.raises(PolicyRefusal) as caught:
        holds.place(who, HoldSubject.PROBE, probe_id, HoldKind.COMPLAINT, "complaint received")
    assert caught.value.rule_ids == ("A-05",)
    probe = world.app.get(probe_id, ProbeImage)
    assert probe.legal_hold is None
    assert probe.refusals[-1].actor.user_id == who and probe.refusals[-1].command == "place legal hold"


def test_R04_A01_a_second_hold_and_a_lift_without_a_hold_are_refused_and_kept(
    world: World, holds: LegalHolds
) -> None:
    """A-01: a second hold and a lift without a hold are refused and kept."""
    probe_id = world.probe()
    with pytest.raises(PolicyRefusal) as caught:
        holds.lift("op-lead", HoldSubject.PROBE, probe_id, "nothing to lift")
    assert caught.value.rule_ids == ("R-04",)
    holds.place("op-lead", HoldSubject.PROBE, probe_id, HoldKind.DISCLOSURE, "first")
    with pytest.raises(PolicyRefusal) as caught:
        holds.place("sro", HoldSubject.PROBE, probe_id, HoldKind.COMPLAINT, "second")
    assert caught.value.rule_ids == ("R-04",)
    with pytest.raises(PolicyRefusal) as caught:
        holds.lift("sro", HoldSubject.PROBE, probe_id, "")
    assert caught.value.rule_ids == ("R-04",)
    probe = world.app.get(probe_id, ProbeImage)
    assert probe.legal_hold.reason == "first"
    assert [r.rule_ids for r in probe.refusals] == [("R-04",), ("R-04",), ("R-04",)]


def test_R04_R05_a_held_probe_is_not_purged_until_the_hold_is_lifted(world: World, holds: LegalHolds) -> None:
    """R-05: a held probe is not purged until the hold is lifted."""
    probe_id = world.probe()
    holds.place("op-lead", HoldSubject.PROBE, probe_id, HoldKind.DISCLOSURE, "R v Smith")
    probe = world.app.get(probe_id, ProbeImage)
    with pytest.raises(PolicyRefusal) as caught:
        probe.purge(world.actor("op-lead"), world.clock.now(), "retention reached")
    assert caught.value.rule_ids == ("R-04",)
    holds.lift("op-lead", HoldSubject.PROBE, probe_id, "disclosure complete")
    probe = world.app.get(probe_id, ProbeImage)
    probe.purge(world.actor("op-lead"), world.clock.now(), "retention reached")
    assert probe.purged_at == world.clock.now()


def test_A05_A03_auditors_do_not_read_holds_and_the_refusal_is_an_attempt(
    world: World, holds: LegalHolds
) -> None:
    """A-05, A-03: auditors do not read holds and the refusal is an attempt."""
    probe_id = world.probe()
    with pytest.raises(PolicyRefusal):
        holds.get("auditor", HoldSubject.PROBE, probe_id)
    ids, _ = list_ids(world.app, RefusedAttempt.AttemptRefused, limit=50)
    attempts = [world.app.get(i, RefusedAttempt) for i in ids]
    assert any(a.command == "read legal hold" and a.target == f"probe {probe_id}" for a in attempts)


def test_a_hold_on_something_that_does_not_exist_is_not_found(world: World, holds: LegalHolds) -> None:
    with pytest.raises(NotFound):
        holds.place("op-lead", HoldSubject.PROBE, uuid4(), HoldKind.DISCLOSURE, "x")
    _, library_id = world.library()
    with pytest.raises(NotFound):
        holds.get("op-lead", HoldSubject.PROBE, library_id)  # a library's id is no probe's
