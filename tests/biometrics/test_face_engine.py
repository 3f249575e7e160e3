"""The FaceEngine service over the real default adapters: detect -> select -> template (policy 1.10)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from rfr.adapters.alignment.dlib_chip import DlibChipAligner
from rfr.adapters.detection.dlib_mmod import MmodFaceDetector
from rfr.adapters.embedding.dlib_resnet import DlibResnetEmbedder
from rfr.adapters.landmarks.dlib_shape_predictor import ShapePredictorLocator
from rfr.adapters.quality.opencv_quality import OpenCvQualityAssessor
from rfr.application.face_engine import FaceEngine, face_nearest_centre
from rfr.application.ports import FaceBox
from rfr.infrastructure.dlib.shape_predictor import ShapePredictorModel
from rfr.infrastructure.models import MMOD, RESNET, SHAPE_PREDICTOR_5


@pytest.fixture(scope="module")
def engine(model_store) -> FaceEngine:
    landmarks = ShapePredictorLocator(ShapePredictorModel.load_npz(model_store.path(SHAPE_PREDICTOR_5)))
    return FaceEngine(
        detector=MmodFaceDetector(model_store.path(MMOD), landmarks),
        landmarks=landmarks,
        aligner=DlibChipAligner(),
        embedder=DlibResnetEmbedder(model_store.path(RESNET)),
        quality=OpenCvQualityAssessor(),
    )


class CountingEmbedder:
    """Wraps the real embedder to count the chips it is given."""

    def __init__(self, inner):
        self.inner = inner
        self.chips_seen = 0
        for name in ("algorithm_id", "dimension", "metric", "threshold", "chip_size"):
            setattr(self, name, getattr(inner, name))

    def embed(self, chips):
        self.chips_seen += len(chips)
        return self.inner.embed(chips)


def _group_photo(shared_faces) -> np.ndarray:
    return np.asarray(Image.open(shared_faces / "dlib/_multi/2008_001322.jpg").convert("RGB"))


def test_P11_detection_makes_no_template_and_only_selected_faces_are_templated(engine, shared_faces):
    """P-11: detection makes no template and only selected faces are templated."""
    counting = CountingEmbedder(engine.embedder)
    spy = FaceEngine(engine.detector, engine.landmarks, engine.aligner, counting, engine.quality)
    image = _group_photo(shared_faces)
    faces = spy.detect(image)
    assert len(faces) == 3
    assert counting.chips_seen == 0
    templates = spy.template(image, [faces[1].face])
    assert counting.chips_seen == 1
    assert templates.shape == (1, 128)
    # the same face templated alone or in a batch gives the same template
    both = spy.template(image, [faces[0].face, faces[1].face])
    assert np.allclose(both[1], templates[0], atol=1e-6)


def test_P11_a_drawn_box_gets_landmarks_and_quality_but_no_detector_score(engine, shared_faces):
    """P-11: a drawn box gets landmarks and quality but no detector score."""
    image = _group_photo(shared_faces)
    detected = engine.detect(image)[0].face
    drawn = engine.face_from_box(image, detected.box)
    assert drawn.face.landmarks == detected.landmarks
    assert math.isnan(drawn.face.score)
    assert "detector_score" not in drawn.quality.measures


@pytest.mark.parametrize(
    "box", [FaceBox(10, 10, 5, 20), FaceBox(600, 10, 700, 80), FaceBox(-90, -90, -10, -10)]
)
def test_a_drawn_box_outside_the_image_or_inverted_is_refused(engine, shared_faces, box):
    with pytest.raises(ValueError):
        engine.face_from_box(_group_photo(shared_faces), box)


def test_T01_the_algorithm_names_every_stage_with_its_version(engine):
    """T-01: the algorithm names every stage with its version."""
    parts = engine.algorithm_id.split("|")
    assert parts == [engine.detector.algorithm_id, engine.landmarks.algorithm_id,
                     engine.aligner.algorithm_id, engine.embedder.algorithm_id]


def test_an_aligner_and_embedder_of_different_chip_sizes_cannot_be_composed(engine):
    with pytest.raises(ValueError, match="chips"):
        FaceEngine(
            engine.detector, engine.landmarks, DlibChipAligner(size=112), engine.embedder, engine.quality
        )


def test_no_faces_gives_an_empty_template_matrix(engine):
    assert engine.template(np.zeros((50, 50, 3), np.uint8), []).shape == (0, 128)


def test_face_nearest_centre_picks_the_central_face(engine, shared_faces):
    image = _group_photo(shared_faces)
    faces = [f.face for f in engine.detect(image)]
    chosen = faces[face_nearest_centre(faces, image.shape[1], image.shape[0])]
    assert chosen.box.left == 220  # the middle one of three side by side
    with pytest.raises(ValueError):
        face_nearest_centre([], 10, 10)
