"""`rfr detect`, `rfr embed` and `rfr eval` as a user runs them: real processes, real photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rfr-data")
    _rfr(path, "models", "build")
    return path


def _rfr(
    data_dir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RFR_DATA_DIR": str(data_dir), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", *args],
        check=False, env=env, capture_output=True, text=True, timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"rfr {' '.join(args)} failed: {result.stderr}")
    return result


def _reference_for(dlib_reference: list[dict], relative: str) -> dict:
    return next(r for r in dlib_reference if r["path"] == relative)


def test_detect_json_matches_the_original_on_a_group_photo(data_dir, shared_faces, dlib_reference):
    relative = "dlib/_multi/2008_001322.jpg"
    out = json.loads(_rfr(data_dir, "detect", str(shared_faces / relative), "--json").stdout)
    ref = _reference_for(dlib_reference, relative)
    assert [[f["box"][k] for k in ("left", "top", "right", "bottom")] for f in out["faces"]] == [
        f["box_ltrb"] for f in ref["faces"]
    ]
    assert [f["landmarks"] for f in out["faces"]] == [f["landmarks5"] for f in ref["faces"]]
    for face in out["faces"]:
        assert isinstance(face["quality"]["flags"], list)
        assert "inter_eye_px" in face["quality"]["measures"]  # P-10: measured before any search


def test_embed_one_face_prints_the_template_with_its_algorithm(data_dir, shared_faces, dlib_reference):
    relative = "dlib/_multi/2008_001322.jpg"
    out = json.loads(_rfr(data_dir, "embed", str(shared_faces / relative), "--face", "1", "--json").stdout)
    assert "dlib-resnet-v1" in out["algorithm"] and "dlib-mmod-v1" in out["algorithm"]  # T-01
    assert len(out["faces"]) == 1
    reference = np.array(_reference_for(dlib_reference, relative)["faces"][1]["descriptor"])
    assert np.max(np.abs(np.array(out["faces"][0]["template"]) - reference)) < 1e-4


def test_embed_refuses_a_face_number_that_does_not_exist(data_dir, shared_faces):
    result = _rfr(data_dir, "embed", str(shared_faces / "dlib/_multi/2008_001322.jpg"), "--face", "7",
                  check=False)
    assert result.returncode == 2
    assert "out of range" in result.stderr


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_detect_rejects_bad_files_with_a_clear_message(data_dir, tmp_path, content):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    result = _rfr(data_dir, "detect", str(bad), check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("rfr: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["detect", "embed"])
def test_upsampling_under_sface_is_refused_with_a_message_not_a_traceback(data_dir, shared_faces, command):
    """YuNet has no upsampling (ADR 0018): the option is refused as a usage error, exit 2."""
    photo = str(shared_faces / "dlib/_multi/2008_001322.jpg")
    result = _rfr(data_dir, command, photo, "--upsample", "1", check=False, env={"RFR_ALGORITHM": "sface"})
    assert result.returncode == 2
    assert result.stderr.startswith("rfr: upsampling is the dlib detector's")
    assert "Traceback" not in result.stderr


def test_detect_reports_a_missing_file(data_dir, tmp_path):
    result = _rfr(data_dir, "detect", str(tmp_path / "absent.jpg"), check=False)
    assert result.returncode == 2 and "cannot read" in result.stderr


@pytest.mark.slow
def test_eval_on_lfw_reaches_the_original_accuracy_and_misses_no_face(data_dir, shared_faces):
    """The original dlib reaches rank-1 0.987 and TAR 0.855 at FAR 1e-3 under this protocol."""
    out = json.loads(_rfr(data_dir, "eval", str(shared_faces / "lfw"), "--json").stdout)
    assert out["n_images"] == 552 and out["n_probes"] == 522
    assert out["fte"] == 0.0 and out["n_failed_to_enrol"] == 0
    assert out["rank1"] >= 0.98
    assert out["tar_at_far_1e-3"] >= 0.84
    for key in ("rank1", "tar_at_far_1e-3", "fte", "n_probes", "n_gallery", "seconds_per_image"):
        assert key in out


def test_eval_refuses_a_folder_without_identities(data_dir, tmp_path):
    (tmp_path / "_multi").mkdir()
    result = _rfr(data_dir, "eval", str(tmp_path), check=False)
    assert result.returncode == 2 and "no identity folders" in result.stderr
