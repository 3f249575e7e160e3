"""The score a searcher sees is calibrated per algorithm once a calibration is in force (S-04,
ADR 0020): 0.5 at the calibrated operating point, and each candidate carries the expected chance
that a non-mate in a library of that size scores as high. Before any calibration, the embedder's
own threshold is 0.5 and no chance is given."""

from __future__ import annotations

import numpy as np
import pytest
from app_world import World
from fake_biometrics import STEP

from rfr.application.calibration import DatasetFingerprint, fit_calibration
from rfr.application.services.calibrations import ScoreCalibrations
from rfr.application.services.searches import LibrarySelection
from rfr.application.similarity import SimilarityScale


def _search(world: World, library_id) -> tuple:
    probe_id = world.probe()
    request = world.searches.open(
        "analyst", probe_id, [LibrarySelection(str(library_id), "may be held here")]
    )
    return world.search(request.id, library_id).candidates


def test_S04_a_calibrated_algorithms_scores_and_non_mate_chances_are_shown_with_each_candidate(world: World):
    _, library_id = world.enrolled_library("calibrated", n=3, steps=1)
    embedder = world.bio.engine.embedder
    before = _search(world, library_id)
    own = SimilarityScale.for_embedder(embedder)
    # (Index distances are float32: equal to a few parts in a million.)
    assert [c.score for c in before] == pytest.approx([own.score(STEP * k) for k in (1, 2)], abs=1e-5)
    assert all(c.non_mate_chance is None for c in before)

    rng = np.random.default_rng(7)
    genuine = rng.normal(0.3, 0.08, 400).clip(0.01)
    impostor = rng.normal(1.4, 0.2, 4000).clip(0.01)
    dataset = DatasetFingerprint("0" * 64, 40, 400, 400, genuine.size, impostor.size)
    calibration = fit_calibration(
        genuine,
        impostor,
        algorithm_id=world.bio.algorithm_id,
        metric=embedder.metric,
        dataset=dataset,
        target_fpir=0.01,
        gallery_size=1000,
    )
    ScoreCalibrations(world.app, world.clock).calibrate(
        "admin", calibration, "fitted on the force's test set"
    )

    after = _search(world, library_id)
    expected = [calibration.scale.score(STEP * k) for k in (1, 2)]
    assert [c.score for c in after] == pytest.approx(expected, abs=1e-5)
    chances = [calibration.non_mate_chance(STEP * k, 3) for k in (1, 2)]
    assert [c.non_mate_chance for c in after] == pytest.approx(chances, rel=1e-3, abs=1e-6)
    # Nearer is likelier to be a non-mate only by chance: the nearer candidate's chance is lower.
    assert after[0].non_mate_chance <= after[1].non_mate_chance
    # The score is 0.5 exactly at the calibrated threshold, not at the embedder's.
    assert calibration.scale.score(calibration.threshold) == 0.5
    assert calibration.threshold != embedder.threshold
