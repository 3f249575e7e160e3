"""The contract of the face stages' ports (FaceDetector, LandmarkLocator, FaceAligner, FaceEmbedder
and QualityAssessor), kept by every algorithm a deployment can choose (RFR_ALGORITHM, ADR 0018).

Each algorithm's stages are the ones the composition root builds (``build_dlib_engine``,
``build_sface_engine``, and ``build_custom_engine`` for a force's own model: here the store's
SFace file declared in RFR_ALGORITHMS_FILE, ADR 0021) from the session's model store. Where the
algorithms legitimately differ, the difference is a field of ``Algorithm`` below, checked
against what the adapters do (a force's own algorithm is built on YuNet and the ArcFace chip,
so it keeps SFace's):

- ``alignment_points``: SFace's ArcFace aligner works from the detector's own points
  (``DetectedFace.alignment_points``: eye centres, nose tip, mouth corners) and refuses a face
  without them; dlib's aligner works from the port's 5 landmarks and ignores them, and dlib's
  detector gives none.
- ``drawn_box_needs_a_face``: YuNet's drawn-box locator (an ``AlignmentPointLocator``) finds the
  face inside the box or raises ``NoFaceInBox``; dlib's shape predictor places 5 points in any box.
- ``metric`` and ``chip_size``: euclidean on 150 px chips for dlib, cosine on 112 px for SFace.

A new algorithm is proven by adding it to ALGORITHMS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import cv2
import numpy as np
import pytest

from rfr.application.errors import NoFaceInBox
from rfr.application.face_engine import FaceEngine
from rfr.application.ports import (
    AlignmentPointLocator,
    DetectedFace,
    FaceAligner,
    FaceBox,
    FaceDetector,
    FaceEmbedder,
    LandmarkLocator,
    QualityAssessor,
    QualityReport,
)
from rfr.entrypoints.composition import build_custom_engine, build_dlib_engine, build_sface_engine
from rfr.infrastructure.custom_algorithms import load_custom_algorithms
from rfr.infrastructure.models import SFACE, ModelStore
from rfr.infrastructure.settings import ALGORITHM_CHOICES, Settings
from tests.contract.force_model import FORCE_MODEL, write_algorithms_file


@attrs.frozen
class Algorithm:
    """What the contract expects of one algorithm's stages, where algorithms may differ."""

    build: Callable[[Settings], FaceEngine]
    metric: str
    chip_size: int
    alignment_points: bool  # the aligner works from DetectedFace.alignment_points, not landmarks
    drawn_box_needs_a_face: bool  # the locator refuses (NoFaceInBox) a box with no face inside


def build_force_model_engine(settings: Settings) -> FaceEngine:
    """A force's own algorithm (RFR_ALGORITHMS_FILE, ADR 0021): the store's SFace file declared as
    the force's model, with SFace's preprocessing (tests/contract/force_model.py), in a file
    written beside the models."""
    declared = write_algorithms_file(settings.data_dir, ModelStore(settings.models_dir).path(SFACE))
    custom = load_custom_algorithms(declared, reserved=ALGORITHM_CHOICES)
    chosen = attrs.evolve(settings, algorithm=FORCE_MODEL, custom_algorithms=custom)
    return build_custom_engine(chosen, custom[0])


ALGORITHMS: dict[str, Algorithm] = {
    "dlib": Algorithm(
        build_dlib_engine, "euclidean", 150, alignment_points=False, drawn_box_needs_a_face=False
    ),
    "sface": Algorithm(build_sface_engine, "cosine", 112, alignment_points=True, drawn_box_needs_a_face=True),
    FORCE_MODEL: Algorithm(
        build_force_model_engine, "cosine", 112, alignment_points=True, drawn_box_needs_a_face=True
    ),
}

# Two identities with two photos each: same-person pairs and different-person pairs.
IDENTITIES = ("andre_agassi", "gordon_brown")


class _Engines(dict):
    """Each algorithm's engine, built on first use."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def __missing__(self, name: str) -> FaceEngine:
        engine = self[name] = ALGORITHMS[name].build(self.settings)
        return engine


@pytest.fixture(scope="session")
def engines(model_store: Any) -> dict[str, FaceEngine]:
    """Each algorithm's engine, built once per session from the shared model store (tests/conftest.py)."""
    return _Engines(Settings(data_dir=Path(model_store.models_dir).parent, ort_threads=1))


@pytest.fixture(params=list(ALGORITHMS))
def algorithm(request) -> str:
    return request.param


@pytest.fixture
def expected(algorithm: str) -> Algorithm:
    return ALGORITHMS[algorithm]


@pytest.fixture
def engine(algorithm: str, engines: dict[str, FaceEngine]) -> FaceEngine:
    return engines[algorithm]


@pytest.fixture(scope="module")
def photos(shared_faces: Path) -> dict[str, list[np.ndarray]]:
    """Two LFW photos (RGB) of each of IDENTITIES."""
    chosen = {}
    for identity in IDENTITIES:
        paths = sorted((shared_faces / "lfw" / identity).glob("*.jpg"))[:2]
        assert len(paths) == 2, identity
        chosen[identity] = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
    return chosen


@pytest.fixture(scope="module")
def detections() -> dict[tuple[str, str, int], list[DetectedFace]]:
    """Detections by (algorithm, identity, photo), made once per module."""
    return {}


def _detect(engine: FaceEngine, algorithm: str, photos, detections, identity: str, index: int):
    key = (algorithm, identity, index)
    if key not in detections:
        detections[key] = engine.detector.detect(photos[identity][index])
    return detections[key]


@pytest.fixture
def face(engine, algorithm, photos, detections) -> tuple[np.ndarray, DetectedFace]:
    """The largest face the algorithm's detector finds in the first photo, with its image."""
    found = _detect(engine, algorithm, photos, detections, IDENTITIES[0], 0)
    assert found, f"{algorithm} found no face in an LFW photo"
    return photos[IDENTITIES[0]][0], max(found, key=lambda f: f.box.width * f.box.height)


def _distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if metric == "cosine":
        return float(1 - a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))
    return float(np.linalg.norm(a64 - b64))


# -- every stage: the ports, and the differences the algorithms declare ------------------------------


def test_every_stage_satisfies_its_port(engine, expected):
    assert isinstance(engine.detector, FaceDetector)
    assert isinstance(engine.landmarks, LandmarkLocator)
    assert isinstance(engine.aligner, FaceAligner)
    assert isinstance(engine.embedder, FaceEmbedder)
    assert isinstance(engine.quality, QualityAssessor)
    for stage in (engine.detector, engine.landmarks, engine.aligner, engine.embedder):
        assert isinstance(stage.algorithm_id, str) and stage.algorithm_id.strip()


def test_the_aligners_chip_is_the_embedders_and_the_declared_size(engine, expected):
    assert engine.aligner.size == engine.embedder.chip_size == expected.chip_size


def test_the_embedder_declares_the_algorithms_metric(engine, expected):
    assert engine.embedder.metric == expected.metric


def test_a_locator_offers_alignment_points_exactly_when_the_aligner_needs_them(engine, expected):
    """FaceEngine asks ``locate_face`` for a drawn box only of an AlignmentPointLocator (ADR 0018)."""
    assert isinstance(engine.landmarks, AlignmentPointLocator) == expected.alignment_points


def test_T01_the_algorithms_never_share_an_id(engines):
    ids = {name: engines[name].algorithm_id for name in ALGORITHMS}
    assert len(set(ids.values())) == len(ids)
    embedder_ids = {engines[name].embedder.algorithm_id for name in ALGORITHMS}
    assert len(embedder_ids) == len(ALGORITHMS)


# -- FaceDetector ------------------------------------------------------------------------------------


@pytest.mark.dataset
def test_detector_gives_a_box_a_score_and_five_landmarks_in_dlibs_order(face, expected):
    image, found = face
    height, width = image.shape[:2]
    box = found.box
    assert box.width > 20 and box.height > 20
    assert 0 <= (box.left + box.right) / 2 < width and 0 <= (box.top + box.bottom) / 2 < height
    assert math.isfinite(found.score)
    assert len(found.landmarks) == 5
    assert all(isinstance(v, int) for point in found.landmarks for v in point)
    margin = box.width // 2
    for x, y in found.landmarks:
        assert box.left - margin <= x <= box.right + margin and box.top - margin <= y <= box.bottom + margin
    # dlib's order, which quality and thumbnails read: the eye on the image's right (points 0-1),
    # the eye on the image's left (2-3), then below the nose, under both eyes.
    right_eye = np.mean(found.landmarks[0:2], axis=0)
    left_eye = np.mean(found.landmarks[2:4], axis=0)
    assert right_eye[0] > left_eye[0]
    assert found.landmarks[4][1] > max(right_eye[1], left_eye[1])


@pytest.mark.dataset
def test_detector_gives_alignment_points_exactly_when_its_aligner_needs_them(face, expected):
    _, found = face
    if not expected.alignment_points:
        assert found.alignment_points == ()
        return
    points = np.asarray(found.alignment_points)
    assert points.shape == (5, 2) and np.isfinite(points).all()
    # The ArcFace template's order: eye on the image's left, eye on its right, nose tip, mouth
    # corner on the image's left, mouth corner on its right.
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = points
    assert lex < nx < rex and lmx < rmx
    assert max(ley, rey) < ny < min(lmy, rmy)


@pytest.mark.dataset
def test_detector_is_deterministic(engine, face):
    image, found = face
    assert found in engine.detector.detect(image)


@pytest.mark.parametrize("fill", [0, 128], ids=["black", "grey"])
def test_detector_finds_no_face_in_a_blank_image(engine, fill):
    assert engine.detector.detect(np.full((240, 320, 3), fill, dtype=np.uint8)) == []


@pytest.mark.parametrize(
    "bad",
    [np.zeros((60, 60, 3), dtype=np.float32), np.zeros((60, 60, 4), dtype=np.uint8)],
    ids=["float", "four-channels"],
)
def test_detector_refuses_what_is_not_an_rgb_uint8_image(engine, bad):
    with pytest.raises(ValueError):
        engine.detector.detect(bad)


# -- LandmarkLocator (a box drawn by the user, P-11) -------------------------------------------------


@pytest.mark.dataset
def test_locator_places_five_landmarks_near_the_detectors_in_its_box(engine, expected, face):
    image, found = face
    points = engine.landmarks.locate(image, found.box)
    assert len(points) == 5 and all(isinstance(v, int) for point in points for v in point)
    tolerance = 0.1 * found.box.width
    assert np.abs(np.asarray(points) - np.asarray(found.landmarks)).max() <= tolerance
    if expected.alignment_points:
        landmarks, alignment = engine.landmarks.locate_face(image, found.box)
        assert landmarks == points
        assert np.abs(np.asarray(alignment) - np.asarray(found.alignment_points)).max() <= tolerance


def test_locator_in_a_box_without_a_face_refuses_or_places_points_as_declared(engine, expected):
    image = np.full((200, 200, 3), 128, dtype=np.uint8)
    box = FaceBox(50, 50, 149, 149)
    if expected.drawn_box_needs_a_face:
        with pytest.raises(NoFaceInBox):
            engine.landmarks.locate(image, box)
        with pytest.raises(NoFaceInBox):
            engine.landmarks.locate_face(image, box)
    else:
        assert len(engine.landmarks.locate(image, box)) == 5


# -- FaceAligner -------------------------------------------------------------------------------------


@pytest.mark.dataset
def test_aligner_cuts_a_deterministic_rgb_uint8_chip_of_its_size(engine, face):
    image, found = face
    chip = engine.aligner.align(image, found)
    size = engine.aligner.size
    assert isinstance(chip, np.ndarray) and chip.dtype == np.uint8 and chip.shape == (size, size, 3)
    assert chip.std() > 5  # a face, not an empty border
    np.testing.assert_array_equal(chip, engine.aligner.align(image, found))


@pytest.mark.dataset
def test_aligner_reads_the_points_it_declares(engine, expected, face):
    """The ArcFace aligner refuses a face without alignment points instead of guessing; dlib's
    works from the landmarks alone, so alignment points change nothing there."""
    image, found = face
    if expected.alignment_points:
        with pytest.raises(ValueError):
            engine.aligner.align(image, attrs.evolve(found, alignment_points=()))
        moved = attrs.evolve(found, alignment_points=[(x + 7, y) for x, y in found.alignment_points])
        assert not np.array_equal(engine.aligner.align(image, moved), engine.aligner.align(image, found))
    else:
        decoy = attrs.evolve(found, alignment_points=[(1.0, 1.0)] * 5)
        np.testing.assert_array_equal(engine.aligner.align(image, decoy), engine.aligner.align(image, found))


@pytest.mark.dataset
def test_aligner_refuses_a_float_image(engine, face):
    image, found = face
    with pytest.raises(ValueError):
        engine.aligner.align(image.astype(np.float32), found)


# -- FaceEmbedder, on the algorithm's own chips ------------------------------------------------------


@pytest.mark.dataset
def test_the_same_person_is_within_the_threshold_and_closer_than_another(
    engine, algorithm, photos, detections
):
    """The declared metric and threshold hold on real chips: each mate pair is within the
    threshold and closer than every pair of different people."""
    chips = {}
    for identity in IDENTITIES:
        for index in range(2):
            found = _detect(engine, algorithm, photos, detections, identity, index)
            assert found, (algorithm, identity, index)
            largest = max(found, key=lambda f: f.box.width * f.box.height)
            chips[identity, index] = engine.aligner.align(photos[identity][index], largest)
    keys = list(chips)
    templates = dict(zip(keys, engine.embedder.embed([chips[k] for k in keys]), strict=True))
    metric, threshold = engine.embedder.metric, engine.embedder.threshold
    mates = [_distance(templates[i, 0], templates[i, 1], metric) for i in IDENTITIES]
    others = [_distance(templates[a], templates[b], metric) for a in keys for b in keys if a[0] < b[0]]
    assert max(mates) < threshold
    assert max(mates) < min(others)


# -- QualityAssessor ---------------------------------------------------------------------------------


@pytest.mark.dataset
def test_quality_measures_every_detected_face(engine, face):
    image, found = face
    report = engine.quality.assess(image, found)
    assert isinstance(report, QualityReport)
    assert report.measures and all(math.isfinite(v) for v in report.measures.values())
    assert isinstance(report.flags, tuple) and all(isinstance(f, str) and f for f in report.flags)
    assert report == engine.quality.assess(image, found)
