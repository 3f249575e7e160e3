"""A force's own model end to end from the command line (RFR_ALGORITHMS_FILE, ADR 0021): real
processes, the model store's SFace file declared as the force's model, a shared LFW photo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rfr.infrastructure.models import SFACE, YUNET, ModelStore
from tests.contract.force_model import FORCE_MODEL, write_algorithms_file

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(model_store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("force-model-cli")
    model_store.path(YUNET)  # built here, once, rather than by the first process
    (root / "models").symlink_to(model_store.models_dir, target_is_directory=True)
    write_algorithms_file(root, model_store.path(SFACE))
    return root


def _rfr(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "RFR_DATA_DIR": str(data_dir),
        "RFR_ALGORITHMS_FILE": str(data_dir / "algorithms.toml"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", *args],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.dataset
def test_rfr_embed_under_a_forces_own_algorithm_prints_its_id_and_its_templates(data_dir, shared_faces):
    photo = str(sorted((shared_faces / "lfw" / "gordon_brown").glob("*.jpg"))[0])
    runs = {}
    for algorithm in (FORCE_MODEL, "sface"):
        done = _rfr(data_dir, "embed", photo, "--json", RFR_ALGORITHM=algorithm)
        assert done.returncode == 0, done.stderr
        runs[algorithm] = json.loads(done.stdout)
    ours, sface = runs[FORCE_MODEL], runs["sface"]
    embedder_id = ours["algorithm"].split("|")[-1]
    assert embedder_id.startswith(f"{FORCE_MODEL}-2021dec-int8bq/onnx-sha256-")  # T-01
    assert ours["algorithm"] != sface["algorithm"]
    assert len(ours["faces"]) == len(sface["faces"]) >= 1
    for mine, theirs in zip(ours["faces"], sface["faces"], strict=True):
        a, b = np.asarray(mine["template"]), np.asarray(theirs["template"])
        assert a.shape == (128,) and float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) >= 0.9999


def test_rfr_serve_refuses_to_start_when_the_forces_model_is_not_the_declared_file(data_dir, tmp_path):
    model = tmp_path / "force.onnx"
    model.write_bytes(b"not the model the force declared")
    declared = write_algorithms_file(tmp_path, model, sha256="ab" * 32)
    done = _rfr(
        data_dir, "serve", "--port", "1", RFR_ALGORITHMS_FILE=str(declared), RFR_ALGORITHM=FORCE_MODEL
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"RFR_ALGORITHMS_FILE {declared}, algorithm '{FORCE_MODEL}', field embedder.sha256" in done.stderr
    assert "Traceback" not in done.stderr


def test_rfr_embed_refuses_a_bad_declaration_with_a_message_not_a_traceback(data_dir, tmp_path):
    declared = tmp_path / "algorithms.toml"
    declared.write_text((data_dir / "algorithms.toml").read_text().replace('"cosine"', '"euclidean"'))
    image = tmp_path / "grey.png"
    image.write_bytes(cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes())
    done = _rfr(data_dir, "embed", str(image), RFR_ALGORITHMS_FILE=str(declared))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"rfr: RFR_ALGORITHMS_FILE {declared}, algorithm '{FORCE_MODEL}', ")
    assert "field embedder.metric: must be 'cosine'" in done.stderr and "Traceback" not in done.stderr
