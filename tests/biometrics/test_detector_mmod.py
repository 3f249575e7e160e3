"""MmodFaceDetector as a FaceDetector: inputs it accepts and refuses, upsampling choice, landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from rfr.adapters.detection.dlib_mmod import MmodFaceDetector
from rfr.application.ports import FaceBox, FaceDetector
from rfr.infrastructure.models import MMOD, ModelStore


class _CornerLandmarks:
    """A fake locator (the real one is tested in the parity test): the box's corners."""

    algorithm_id = "fake-corners"

    def locate(self, image: np.ndarray, box: FaceBox) -> tuple[tuple[int, int], ...]:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        return ((box.left, box.top), (box.right, box.bottom))


@pytest.fixture(scope="module")
def detector(model_store: ModelStore) -> MmodFaceDetector:
    return MmodFaceDetector(model_store.path(MMOD), _CornerLandmarks())


@pytest.fixture(scope="module")
def lfw_face(shared_faces: Path) -> np.ndarray:
    path = next(iter(sorted((shared_faces / "lfw").rglob("*.jpg"))))
    return np.asarray(Image.open(path).convert("RGB"))


def test_is_a_face_detector_named_for_its_model(detector):
    assert isinstance(detector, FaceDetector)
    assert detector.algorithm_id == "dlib-mmod-v1"


def test_finds_the_face_and_attaches_the_locators_landmarks(detector, lfw_face):
    faces = detector.detect(lfw_face)
    boxes = detector.detect_boxes(lfw_face, upsample=1)
    assert len(faces) == len(boxes) >= 1
    for face, (box, score) in zip(faces, boxes, strict=True):
        assert face.box == box and face.score == score > 0
        assert face.landmarks == ((box.left, box.top), (box.right, box.bottom))
        assert 40 <= box.width <= 150 and 0 <= box.left < 150


def test_grey_images_are_detected_as_three_equal_channels(detector, lfw_face):
    grey = np.asarray(Image.fromarray(lfw_face).convert("L"))
    assert grey.ndim == 2
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert detector.detect_boxes(grey, 1) == detector.detect_boxes(rgb, 1)
    assert detector.detect(grey) == detector.detect(rgb)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((20, 20, 3), dtype=np.float32),
        np.zeros((20, 20, 4), dtype=np.uint8),
        np.zeros((20, 20, 1), dtype=np.uint8),
        np.zeros((20,), dtype=np.uint8),
        np.zeros((2, 20, 20, 3), dtype=np.uint8),
        [[0, 0], [0, 0]],
    ],
)
def test_anything_but_uint8_rgb_or_grey_is_a_clear_error(detector, bad):
    with pytest.raises(ValueError, match="image must be"):
        detector.detect(bad)


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3), (3, 40, 3), (6, 6, 3), (40, 3, 3)])
def test_images_too_small_for_the_network_have_no_faces(detector, shape):
    assert detector.detect(np.full(shape, 128, dtype=np.uint8)) == []


def test_upsampling_is_automatic_up_to_400px_unless_configured(model_store):
    auto = MmodFaceDetector(model_store.path(MMOD), _CornerLandmarks())
    assert auto.upsample_for(np.zeros((400, 300, 3), np.uint8)) == 1
    assert auto.upsample_for(np.zeros((300, 401, 3), np.uint8)) == 0
    fixed = MmodFaceDetector(model_store.path(MMOD), _CornerLandmarks(), upsample=2, threads=1)
    assert fixed.upsample_for(np.zeros((1000, 1000, 3), np.uint8)) == 2
    with pytest.raises(ValueError, match="upsample"):
        MmodFaceDetector(model_store.path(MMOD), _CornerLandmarks(), upsample=-1)


def test_without_upsampling_a_small_face_is_missed(detector, lfw_face):
    # LFW faces are about 70 px, under the 80 px window: one pyramid_up step is what finds them.
    assert detector.detect_boxes(lfw_face, 0) == []
    assert detector.detect_boxes(lfw_face, 1)


def test_a_model_without_the_detector_metadata_is_refused(model_store, tmp_path):
    model = onnx.load(str(model_store.path(MMOD)))
    del model.metadata_props[:]
    stripped = tmp_path / "stripped.onnx"
    onnx.save(model, str(stripped))
    with pytest.raises(ValueError, match="not a converted dlib MMOD detector"):
        MmodFaceDetector(stripped, _CornerLandmarks())
