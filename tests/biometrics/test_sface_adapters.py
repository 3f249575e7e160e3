"""The YuNet detector, the 112 px ArcFace aligner and the SFace embedder behind the ports.

Run for real: the store's rebuilt graphs on onnxruntime, on shared photos, checked against
OpenCV's ``FaceDetectorYN`` and ``FaceRecognizerSF.alignCrop`` on the shipped files and against
the rebuilt SFace fed by hand. Images cross the ports as RGB; OpenCV is given BGR.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rfr.adapters.alignment.arcface_112 import ArcFace112Aligner
from rfr.adapters.detection.yunet import YunetFaceDetector
from rfr.adapters.detection.yunet_decoding import CANVAS, canvas_for
from rfr.adapters.embedding.sface import SFaceEmbedder
from rfr.application.face_engine import FaceEngine
from rfr.application.ports import DetectedFace, FaceAligner, FaceBox, FaceDetector, FaceEmbedder
from rfr.infrastructure.models import ARTEFACTS, OPENCV_ZOO_MODELS, SFACE, YUNET, ModelStore

IDENTITIES = ("andre_agassi", "gordon_brown", "hans_blix", "nancy_pelosi")
PER_IDENTITY = 3


def _shipped(name: str) -> Path:
    return OPENCV_ZOO_MODELS.directory() / ARTEFACTS[name].source


@pytest.fixture(scope="module")
def detector(model_store: ModelStore) -> YunetFaceDetector:
    return YunetFaceDetector(model_store.path(YUNET), threads=1, score_threshold=0.5)


@pytest.fixture(scope="module")
def embedder(model_store: ModelStore) -> SFaceEmbedder:
    return SFaceEmbedder(model_store.path(SFACE), threads=1)


@pytest.fixture(scope="module")
def photos(shared_faces: Path) -> dict[str, list[np.ndarray]]:
    """A few LFW photos per identity, RGB, plus one large group photo under ``_group``."""
    chosen: dict[str, list[np.ndarray]] = {}
    for identity in IDENTITIES:
        paths = sorted((shared_faces / "lfw" / identity).glob("*.jpg"))[:PER_IDENTITY]
        assert len(paths) == PER_IDENTITY, identity
        chosen[identity] = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
    large = max(
        (p for p in shared_faces.rglob("*.jpg") if "_multi" in p.parts),
        key=lambda p: p.stat().st_size,
    )
    chosen["_group"] = [cv2.cvtColor(cv2.imread(str(large)), cv2.COLOR_BGR2RGB)]
    return chosen


def _reference(image_rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """FaceDetectorYN on the shipped file, on the same canvas, in image coordinates."""
    canvas = canvas_for(np.ascontiguousarray(image_rgb[:, :, ::-1]))
    padded = np.ascontiguousarray(canvas.blob[0].transpose(1, 2, 0).astype(np.uint8))
    detector = cv2.FaceDetectorYN.create(str(_shipped(YUNET)), "", (CANVAS, CANVAS), 0.5, 0.3, 5000)
    _, rows = detector.detect(padded)
    rows = np.zeros((0, 15), np.float32) if rows is None else rows.copy()
    rows[:, :14] /= canvas.scale
    return rows, canvas.scale


def test_the_adapters_satisfy_the_ports_and_compose(detector, embedder):
    aligner = ArcFace112Aligner()
    assert isinstance(detector, FaceDetector)
    assert isinstance(aligner, FaceAligner)
    assert isinstance(embedder, FaceEmbedder)
    assert aligner.size == embedder.chip_size == 112
    assert embedder.metric == "cosine" and 0 < embedder.threshold < 2


@pytest.mark.dataset
def test_detector_boxes_and_landmarks_are_opencvs_in_image_pixels(detector, photos):
    compared = 0
    for images in photos.values():
        for image in images:
            faces = detector.detect(image)
            reference, scale = _reference(image)
            assert len(faces) == len(reference)
            for face, row in zip(faces, reference, strict=True):
                assert len(face.alignment_points) == 5
                x, y, w, h = row[:4]
                box = face.box
                assert abs(box.left - x) <= 0.5 + 1e-3 and abs(box.top - y) <= 0.5 + 1e-3
                assert abs(box.right + 1 - (x + w)) <= 0.5 + 1e-3
                assert abs(box.bottom + 1 - (y + h)) <= 0.5 + 1e-3
                points = np.asarray(face.alignment_points)
                assert np.abs(points - row[4:14].reshape(5, 2)).max() < 0.05 / scale
                assert abs(face.score - row[14]) < 1e-4
                compared += 1
    assert compared >= len(IDENTITIES) * PER_IDENTITY + 3
    assert canvas_for(photos["_group"][0]).scale < 1.0  # a shrunk photo was among them


@pytest.mark.dataset
def test_port_landmarks_put_yunets_eye_centres_in_dlibs_eye_slots(detector, photos):
    face = detector.detect(photos["andre_agassi"][0])[0]
    assert len(face.alignment_points) == 5
    image_left_eye, image_right_eye = face.alignment_points[:2]
    assert image_left_eye[0] < image_right_eye[0]  # YuNet's first eye is the one on the image's left
    rounded = [(int(np.floor(x + 0.5)), int(np.floor(y + 0.5))) for x, y in face.alignment_points]
    assert face.landmarks == (rounded[1], rounded[1], rounded[0], rounded[0], rounded[2])


def test_the_canvas_shrinks_large_images_and_never_enlarges_small_ones():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (150, 120, 3), dtype=np.uint8)
    canvas = canvas_for(small)
    assert canvas.scale == 1.0 and canvas.blob.shape == (1, 3, 640, 640)
    assert np.array_equal(canvas.blob[0, :, :150, :120], small.transpose(2, 0, 1))
    assert not canvas.blob[0, :, 150:, :].any() and not canvas.blob[0, :, :, 120:].any()
    large = rng.integers(0, 256, (960, 1280, 3), dtype=np.uint8)
    canvas = canvas_for(large)
    assert canvas.scale == 0.5
    assert canvas.blob[0, :, :480, :].any() and not canvas.blob[0, :, 480:, :].any()


@pytest.mark.dataset
def test_aligner_cuts_opencvs_alignCrop_chip_in_rgb(detector, photos):
    aligner = ArcFace112Aligner()
    for image in (photos["gordon_brown"][0], photos["_group"][0]):
        recognizer = cv2.FaceRecognizerSF.create(str(_shipped(SFACE)), "")
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        for face, row in zip(detector.detect(image), _reference(image)[0], strict=True):
            chip = aligner.align(image, face)
            assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8
            theirs = recognizer.alignCrop(bgr, row[np.newaxis])[:, :, ::-1]
            assert np.abs(chip.astype(np.int16) - theirs.astype(np.int16)).max() <= 2


def test_aligner_refuses_a_face_without_mouth_corners():
    image = np.zeros((100, 100, 3), np.uint8)
    face = DetectedFace(FaceBox(10, 10, 60, 60), 1.0, ((50, 30), (40, 30), (20, 30), (30, 30), (35, 45)))
    with pytest.raises(ValueError, match="mouth"):
        ArcFace112Aligner().align(image, face)


@pytest.mark.dataset
def test_embedder_batches_normalises_and_matches_the_graph(detector, embedder, photos):
    aligner = ArcFace112Aligner()
    chips = [
        aligner.align(image, detector.detect(image)[0]) for images in photos.values() for image in images
    ]
    templates = embedder.embed(chips)
    assert templates.shape == (len(chips), 128) and templates.dtype == np.float32
    assert np.allclose(np.linalg.norm(templates, axis=1), 1.0, atol=1e-5)
    singles = np.concatenate([embedder.embed([chip]) for chip in chips[:3]])
    assert np.abs(singles - templates[:3]).max() < 1e-5
    # the reference: OpenCV's DNN on the shipped file, fed as FaceRecognizerSF::feature feeds it
    net = cv2.dnn.readNet(str(_shipped(SFACE)))
    for chip, template in zip(chips, templates, strict=True):
        blob = cv2.dnn.blobFromImage(np.ascontiguousarray(chip[:, :, ::-1]), 1.0, (112, 112), 0, True, False)
        net.setInput(blob, "data")
        feature = net.forward().reshape(-1)
        assert float(template @ feature) / np.linalg.norm(feature) >= 0.9999
    assert embedder.embed([]).shape == (0, 128)
    with pytest.raises(ValueError, match="112"):
        embedder.embed([np.zeros((150, 150, 3), np.uint8)])


@pytest.mark.dataset
def test_the_engine_ranks_the_same_person_above_others(detector, embedder, photos):
    engine = FaceEngine(detector, _NoLocator(), ArcFace112Aligner(), embedder, _NoQuality())
    labels, rows = [], []
    for identity in IDENTITIES:
        for image in photos[identity]:
            face = detector.detect(image)[0]
            rows.append(engine.template(image, [face])[0])
            labels.append(identity)
    templates = np.stack(rows)
    similarity = templates @ templates.T
    same = np.equal.outer(labels, labels) & ~np.eye(len(labels), dtype=bool)
    different = ~np.equal.outer(labels, labels)
    # every photo's nearest other photo is of the same person (rank 1 on this small gallery)
    nearest = np.where(np.eye(len(labels), dtype=bool), -np.inf, similarity).argmax(axis=1)
    assert [labels[i] for i in nearest] == labels
    assert similarity[same].min() > 1 - embedder.threshold > similarity[different].max()


class _NoLocator:
    algorithm_id = "none"

    def locate(self, image, box):
        raise AssertionError("the detector gives landmarks; the locator is not used")


class _NoQuality:
    def assess(self, image, face):
        raise AssertionError("not used by template()")
