"""Score calibrations (issue 11 item 4, ADR 0020): one aggregate per algorithm, each calibration
a versioned event, recorded by an Administrator only (A-05) with a reason (A-01), and never of
another algorithm's distances (T-01)."""

from __future__ import annotations

import json
from typing import Any

import attrs
from domain_builders import ADMIN, ALG, ANALYST, SRO, T0, at, refused
from eventsourcing.application import Application

from rfr.domain.people import Actor, Role
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.score_calibration import ScoreCalibration, calibration_id

OTHER_ALG = "yunet-2023mar|yunet-box|arcface-112|sface-2021dec"


def numbers(algorithm_id: str = ALG, threshold: float = 0.42) -> dict[str, Any]:
    """A calibration as the application hands it over: plain numbers (the domain reads only
    the algorithm id)."""
    return {
        "method": "empirical-fmr+gpd-lower-tail/1",
        "algorithm_id": algorithm_id,
        "metric": "euclidean",
        "dataset": {"sha256": "ab" * 32, "identities": 120, "images": 552, "templated": 552,
                    "genuine_pairs": 1749, "impostor_pairs": 150327},
        "target_fpir": 0.01,
        "gallery_size": 10000,
        "threshold": threshold,
        "steepness": 6.0,
        "fnmr": 0.2,
        "tail": {"threshold": 0.6, "rate": 0.01, "scale": 0.03, "shape": 0.0, "pairs": 1502},
        "table": [[0.6, 0.01], [1.2, 1.0]],
    }


def first() -> ScoreCalibration:
    return ScoreCalibration.calibrate_first(ADMIN, T0, numbers(), "first calibration on the LFW sample")


def test_A05_an_administrator_calibrates_and_each_calibration_is_a_numbered_event():
    """A-05: the administrator calibrates; versions count up from 1, each event names who, when, why."""
    calibration = first()
    assert calibration.id == calibration_id(ALG)
    assert calibration.algorithm_id == ALG
    calibration.calibrate(ADMIN, at(30), numbers(threshold=0.40), "recalibrated on the force's own images")
    assert [v.version for v in calibration.versions] == [1, 2]
    assert calibration.in_force is not None and calibration.in_force.calibration["threshold"] == 0.40
    assert calibration.in_force.by == "admin" and calibration.in_force.at == at(30)
    events = calibration.pending_events
    assert [type(e).__name__ for e in events] == ["Opened", "Calibrated", "Calibrated"]
    assert [e.version for e in events[1:]] == [1, 2]
    assert events[2].reason == "recalibrated on the force's own images"
    assert events[2].acting == ADMIN and events[2].timestamp == at(30)


def test_the_id_of_an_algorithms_calibration_is_the_same_everywhere_and_its_own():
    assert calibration_id(ALG) == calibration_id(ALG)
    assert calibration_id(ALG) != calibration_id(OTHER_ALG)


def test_A05_nobody_but_an_administrator_calibrates_and_the_refusal_is_recorded():
    """A-05: an analyst or the SRO is refused; the first refusal has no aggregate yet, so it is a
    RefusedAttempt; a later one is a Refused event on the calibration, which stays as it was."""
    for actor in (ANALYST, SRO):
        error = refused("A-05", lambda a=actor: ScoreCalibration.calibrate_first(a, T0, numbers(), "mine"))
        assert isinstance(error.record, RefusedAttempt)
        assert error.record.command == "calibrate scores"
    calibration = first()
    refused("A-05", lambda: calibration.calibrate(ANALYST, at(1), numbers(), "mine"), calibration)
    assert calibration.latest_version == 1


def test_A05_a_disabled_or_untrained_administrator_is_refused():
    """A-05: only active, trained users act."""
    calibration = first()
    for actor in (attrs.evolve(ADMIN, active=False), attrs.evolve(ADMIN, trained=False)):
        refused("A-05", lambda a=actor: calibration.calibrate(a, at(1), numbers(), "why"), calibration)


def test_A01_a_calibration_without_a_reason_is_refused():
    """A-01: every action is recorded with its reason."""
    refused("A-01", lambda: ScoreCalibration.calibrate_first(ADMIN, T0, numbers(), "  "))
    calibration = first()
    refused("A-01", lambda: calibration.calibrate(ADMIN, at(1), numbers(), ""), calibration)


def test_T01_a_calibration_of_another_algorithm_is_refused():
    """T-01: distances of one algorithm never calibrate another's scores."""
    calibration = first()
    wrong = numbers(OTHER_ALG)
    error = refused("T-01", lambda: calibration.calibrate(ADMIN, at(1), wrong, "wrong"), calibration)
    assert OTHER_ALG in error.reason
    refused("T-01", lambda: ScoreCalibration.calibrate_first(ADMIN, T0, numbers(""), "no algorithm"))


def test_a_withdrawal_puts_the_algorithms_own_threshold_back_and_numbers_go_on():
    calibration = first()
    refused("A-05", lambda: calibration.withdraw(ANALYST, at(1), "not mine"), calibration)
    calibration.withdraw(ADMIN, at(1), "the calibration set was mislabelled")
    assert calibration.in_force is None
    assert type(calibration.pending_events[-1]).__name__ == "Withdrawn"
    assert calibration.pending_events[-1].version == 1
    pending = len(calibration.pending_events)
    calibration.withdraw(ADMIN, at(2), "again")  # nothing in force: nothing recorded
    assert len(calibration.pending_events) == pending
    calibration.calibrate(ADMIN, at(3), numbers(), "relabelled and calibrated again")
    assert calibration.in_force is not None and calibration.in_force.version == 2


def test_A01_a_saved_calibration_reconstructs_and_its_events_hold_only_numbers():
    """A-01: stored as plain JSON; the events name no person of the dataset, hold no image or
    template (ADR 0004): the dataset is a hash and counts."""
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    calibration = first()
    calibration.calibrate(Actor("admin2", {Role.ADMINISTRATOR}), at(5), numbers(threshold=0.39), "second")
    app.save(calibration)
    copy = app.repository.get(calibration.id)
    assert copy.state() == calibration.state()
    for stored in app.recorder.select_events(calibration.id):
        state = json.loads(stored.state)
        if "calibration" in state:
            assert set(state["calibration"]["dataset"]) == {
                "sha256", "identities", "images", "templated", "genuine_pairs", "impostor_pairs"
            }
