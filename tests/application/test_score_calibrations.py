"""Recording calibrations and reading the one in force (issue 11 item 4, ADR 0020): only an
Administrator calibrates (A-05), refusals are kept (A-01), and a search's read costs the same
whatever the history."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import numpy as np
import pytest
from app_world import ALG, World

from rfr.application.calibration import Calibration, DatasetFingerprint, fit_calibration
from rfr.application.errors import AlgorithmMismatch, NotFound
from rfr.application.services.calibrations import ScoreCalibrations, calibrated_scale
from rfr.application.similarity import SimilarityScale
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.score_calibration import ScoreCalibration, calibration_id


def calibration(gallery_size: int = 1000, algorithm_id: str = ALG) -> Calibration:
    rng = np.random.default_rng(gallery_size)
    genuine, impostor = rng.normal(0.45, 0.08, 500), rng.normal(0.8, 0.09, 20_000)
    dataset = DatasetFingerprint("cd" * 32, 40, 540, 540, genuine.size, impostor.size)
    return fit_calibration(
        genuine,
        impostor,
        algorithm_id=algorithm_id,
        metric="euclidean",
        dataset=dataset,
        target_fpir=0.01,
        gallery_size=gallery_size,
    )


@pytest.fixture
def calibrations(world: World) -> ScoreCalibrations:
    return ScoreCalibrations(world.app, world.clock)


def test_an_uncalibrated_algorithm_scores_on_its_embedders_own_threshold(world, calibrations):
    assert calibrations.current(ALG) is None and calibrations.in_force(ALG) is None
    embedder = world.bio.engine.embedder
    assert calibrations.scale_for(ALG, embedder) == SimilarityScale.for_embedder(embedder)


def test_A05_an_administrator_calibrates_and_the_score_is_one_half_at_the_threshold(world, calibrations):
    """A-05: the administrator records the calibration; searches then read its scale."""
    fitted = calibration()
    recorded = calibrations.calibrate("admin", fitted, "LFW sample, 120 people")
    assert (recorded.version, recorded.by, recorded.reason) == (1, "admin", "LFW sample, 120 people")
    assert recorded.at == world.clock.now() and recorded.calibration == fitted
    assert calibrations.current(ALG) == fitted
    scale = calibrations.scale_for(ALG, world.bio.engine.embedder)
    assert scale == fitted.scale and scale.score(fitted.threshold) == 0.5
    assert scale.threshold != world.bio.engine.embedder.threshold

    world.clock.advance(days=30)
    refitted = calibration(gallery_size=100_000)
    recorded = calibrations.calibrate("admin2", refitted, "the force's largest library is 100,000")
    assert (recorded.version, recorded.by) == (2, "admin2")
    assert calibrations.current(ALG) == refitted
    stored = world.app.get(calibration_id(ALG), ScoreCalibration)
    assert [v.version for v in stored.versions] == [1, 2]


def test_A05_a_calibration_by_anyone_else_is_refused_and_the_refusal_kept(world, calibrations):
    """A-05: the SRO and an analyst are refused; the refusal is stored (A-01), first as an
    attempt (no calibration yet), then on the calibration itself."""
    with pytest.raises(PolicyRefusal) as caught:
        calibrations.calibrate("sro", calibration(), "I set the operating point")
    assert caught.value.rule_ids == ("A-05",) and caught.value.record is not None
    assert world.app.get(caught.value.record.id).command == "calibrate scores"
    calibrations.calibrate("admin", calibration(), "first")
    with pytest.raises(PolicyRefusal):
        calibrations.calibrate("analyst", calibration(gallery_size=10), "looser")
    stored = world.app.get(calibration_id(ALG), ScoreCalibration)
    assert [r.actor.user_id for r in stored.refusals] == ["analyst"]
    assert stored.latest_version == 1 and calibrations.current(ALG) == calibration()


def test_A01_a_calibration_without_a_reason_is_refused(calibrations):
    """A-01: the reason is part of the record."""
    with pytest.raises(PolicyRefusal) as caught:
        calibrations.calibrate("admin", calibration(), " ")
    assert caught.value.rule_ids == ("A-01",)


def test_a_withdrawn_calibration_gives_the_algorithms_own_scale_back(world, calibrations):
    with pytest.raises(NotFound):
        calibrations.withdraw("admin", ALG, "nothing to withdraw")
    calibrations.calibrate("admin", calibration(), "first")
    with pytest.raises(PolicyRefusal):
        calibrations.withdraw("analyst", ALG, "I prefer the old scores")
    calibrations.withdraw("admin", ALG, "the calibration set was mislabelled")
    assert calibrations.current(ALG) is None
    embedder = world.bio.engine.embedder
    assert calibrations.scale_for(ALG, embedder) == SimilarityScale.for_embedder(embedder)
    assert calibrations.calibrate("admin", calibration(), "again").version == 2


def test_T01_a_calibration_in_another_metric_than_the_embedders_is_refused(world, calibrations):
    """T-01: a calibration is of one algorithm's distances; in another metric it cannot be."""
    calibrations.calibrate("admin", attrs.evolve(calibration(), metric="cosine"), "cosine?")
    with pytest.raises(AlgorithmMismatch):
        calibrations.scale_for(ALG, world.bio.engine.embedder)


def test_reading_the_calibration_in_force_costs_the_same_whatever_its_history(
    world, calibrations, monkeypatch
):
    """Forty calibrations and some refusals later, a search still reads one page of the one
    calibration's newest events, and nothing of any other stream."""
    for n in range(40):
        calibrations.calibrate("admin", calibration(gallery_size=100 + n), f"calibration {n}")
    for _ in range(3):
        with pytest.raises(PolicyRefusal):
            calibrations.calibrate("analyst", calibration(), "mine")
    read: list[object] = []
    original = world.app.events.get

    def counting(originator_id, **kwargs) -> Iterator[object]:
        read.append(originator_id)
        for event in original(originator_id, **kwargs):
            read.append(event)
            yield event

    monkeypatch.setattr(world.app.events, "get", counting)
    current = calibrations.current(ALG)
    assert current is not None and current.gallery_size == 139
    assert read[0] == calibration_id(ALG) and read.count(calibration_id(ALG)) == 1
    assert len(read) - 1 <= 16


def test_the_calibration_in_force_is_found_behind_many_refusals(calibrations):
    """Refusals land on the calibration's stream too: the reader pages back past them."""
    calibrations.calibrate("admin", calibration(), "first")
    for _ in range(20):
        with pytest.raises(PolicyRefusal):
            calibrations.calibrate("analyst", calibration(gallery_size=10), "mine")
    assert calibrations.current(ALG) == calibration()


def test_A05_a_caller_learns_at_once_that_it_may_not_calibrate_and_the_refusal_is_kept(world, calibrations):
    """A-05, A-01: checked before any photo is templated; a refusal is recorded as an attempt."""
    calibrations.ensure_may_calibrate("admin", "quarterly calibration")
    for user, reason, rule in [("analyst", "mine", "A-05"), ("admin", "", "A-01")]:
        with pytest.raises(PolicyRefusal) as caught:
            calibrations.ensure_may_calibrate(user, reason)
        assert caught.value.rule_ids == (rule,)
        attempt = world.app.get(caught.value.record.id)
        assert attempt.command == "calibrate scores" and attempt.refusals[0].actor.user_id == user


def test_the_scale_of_a_calibration_already_read_is_that_of_scale_for(world, calibrations):
    embedder = world.bio.engine.embedder
    assert calibrated_scale(None, embedder) == SimilarityScale.for_embedder(embedder)
    calibrations.calibrate("admin", calibration(), "first")
    current = calibrations.current(ALG)
    assert calibrated_scale(current, embedder) == calibrations.scale_for(ALG, embedder) == current.scale
