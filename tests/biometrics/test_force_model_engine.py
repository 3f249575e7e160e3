"""A force's own ONNX model as an engine (RFR_ALGORITHM naming one of RFR_ALGORITHMS_FILE, ADR 0021).

The model store's SFace file is declared as a force's own model with SFace's preprocessing: its
templates must be SFace's on the shared LFW photos (skipped without ../shared, failing when
CI=true), under an algorithm id of its own (T-01).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from rfr.application.face_engine import FaceEngine
from rfr.entrypoints.composition import build_custom_engine, build_face_engine
from rfr.infrastructure.models import SFACE, ModelStore
from rfr.infrastructure.settings import Settings
from tests.contract.force_model import FORCE_MODEL, write_algorithms_file


@pytest.fixture(scope="module")
def data_dir(model_store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder whose models are the session's store, and whose algorithms file declares the
    store's SFace file as the force's own model."""
    root = tmp_path_factory.mktemp("force-models")
    (root / "models").symlink_to(model_store.models_dir, target_is_directory=True)
    write_algorithms_file(root, model_store.path(SFACE))
    return root


def _env(data_dir: Path, algorithm: str) -> dict[str, str]:
    return {
        "RFR_DATA_DIR": str(data_dir),
        "RFR_ALGORITHMS_FILE": str(data_dir / "algorithms.toml"),
        "RFR_ALGORITHM": algorithm,
        "RFR_ORT_THREADS": "1",
    }


@pytest.fixture(scope="module")
def force_engine(data_dir: Path) -> FaceEngine:
    return build_face_engine(Settings.from_env(_env(data_dir, FORCE_MODEL)))


@pytest.fixture(scope="module")
def sface_engine(data_dir: Path) -> FaceEngine:
    return build_face_engine(Settings.from_env(_env(data_dir, "sface")))


def test_T01_RFR_ALGORITHM_naming_the_forces_model_builds_its_engine_under_its_own_id(
    force_engine, sface_engine, model_store
):
    sha = hashlib.sha256(model_store.path(SFACE).read_bytes()).hexdigest()
    embedder = force_engine.embedder
    assert embedder.algorithm_id.startswith(f"{FORCE_MODEL}-2021dec-int8bq/onnx-sha256-{sha[:16]}/prep-")
    assert embedder.algorithm_id != sface_engine.embedder.algorithm_id
    assert force_engine.algorithm_id != sface_engine.algorithm_id
    # The other stages are SFace's: YuNet, its drawn-box locator and the 112 px ArcFace chip.
    assert force_engine.algorithm_id.split("|")[:3] == sface_engine.algorithm_id.split("|")[:3]
    assert (embedder.metric, embedder.dimension, embedder.chip_size) == ("cosine", 128, 112)
    assert embedder.threshold == pytest.approx(sface_engine.embedder.threshold)


def test_upsampling_is_refused_for_a_forces_yunet_algorithm(data_dir):
    with pytest.raises(ValueError, match="upsampling"):
        build_face_engine(Settings.from_env(_env(data_dir, FORCE_MODEL)), upsample=1)


def test_T01_a_model_file_changed_after_start_is_refused_when_the_engine_is_built(tmp_path, model_store):
    """The engine is built when biometrics are first needed, possibly hours after the settings were
    read: the adapter checks the file again as it opens it."""
    (tmp_path / "models").symlink_to(model_store.models_dir, target_is_directory=True)
    copy = tmp_path / "force.onnx"
    shutil.copyfile(model_store.path(SFACE), copy)
    write_algorithms_file(tmp_path, copy)
    settings = Settings.from_env({**_env(tmp_path, FORCE_MODEL)})
    with copy.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ValueError, match=r"force\.onnx has sha256 [0-9a-f]{64}, not the configured"):
        build_custom_engine(settings, settings.custom_algorithms[0])


def test_T01_the_same_file_fed_otherwise_is_another_algorithm(tmp_path, model_store, force_engine):
    (tmp_path / "models").symlink_to(model_store.models_dir, target_is_directory=True)
    write_algorithms_file(tmp_path, model_store.path(SFACE), embedder={"channel_order": "bgr"})
    bgr = build_face_engine(Settings.from_env(_env(tmp_path, FORCE_MODEL)))
    assert bgr.embedder.algorithm_id != force_engine.embedder.algorithm_id
    assert (
        bgr.embedder.algorithm_id.split("/prep-")[0] == force_engine.embedder.algorithm_id.split("/prep-")[0]
    )


@pytest.mark.dataset
def test_the_forces_model_with_sfaces_preprocessing_makes_sfaces_templates(
    force_engine, sface_engine, shared_faces
):
    """On LFW photos of four people: the same chips give the same templates through the
    ArcFace-style adapter as through SFace's own (cosine >= 0.9999), and the whole engine,
    detection included, gives the same templates as SFace's."""
    photos = []
    for identity in ("andre_agassi", "gordon_brown", "colin_powell", "tony_blair"):
        for path in sorted((shared_faces / "lfw" / identity).glob("*.jpg"))[:2]:
            photos.append(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    assert len(photos) == 8
    chips, faces = [], []
    for image in photos:
        analysed = sface_engine.detect(image)
        assert analysed
        face = max((a.face for a in analysed), key=lambda f: f.box.width * f.box.height)
        faces.append(face)
        chips.append(sface_engine.aligner.align(image, face))
    ours, sface = force_engine.embedder.embed(chips), sface_engine.embedder.embed(chips)
    assert ours.dtype == np.float32 and ours.shape == sface.shape == (8, 128)
    ours, sface = ours.astype(np.float64), sface.astype(np.float64)
    cosines = np.sum(ours * sface, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(sface, axis=1))
    assert cosines.min() >= 0.9999, cosines
    np.testing.assert_allclose(ours, sface, atol=1e-5)
    for image, face in zip(photos[:2], faces[:2], strict=True):
        (found,) = [a.face for a in force_engine.detect(image) if a.face == face]
        np.testing.assert_allclose(
            force_engine.template(image, [found]), sface_engine.template(image, [face]), atol=1e-5
        )
