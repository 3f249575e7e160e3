"""`rfr eval --algorithm A --shrink F` (issue 11 items 5 and 6) as a user runs it: real processes.

The photos are a small subset of the shared LFW, linked (never copied) into a temporary folder
per identity; tests needing them skip where ../shared is absent and fail when CI=true
(``shared_faces``). Nothing here times anything: the stage times are checked to be reported,
not how long they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# A few identities of the shared LFW: three photos each, and one person with a single photo (a
# gallery distractor, never a probe).
SUBSET = {"andre_agassi": 3, "colin_powell": 3, "hans_blix": 3, "halle_berry": 3, "ann_landers": 1}


def _rfr(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RFR_DATA_DIR": str(data_dir)}
    environment.pop("RFR_ALGORITHM", None)  # the configured default is dlib unless a test says
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", *args],
        check=False, env=environment, capture_output=True, text=True, timeout=600,
    )


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def data_dir(model_store: Any) -> Path:
    """The session's model store's data folder: the models are converted once for all tests."""
    return Path(model_store.models_dir).parent


@pytest.fixture(scope="module")
def lfw_subset(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lfw-subset")
    for identity, count in SUBSET.items():
        folder = root / identity
        folder.mkdir()
        for photo in sorted((shared_faces / "lfw" / identity).iterdir())[:count]:
            (folder / photo.name).symlink_to(photo)
    return root


@pytest.fixture(scope="module")
def sface_plain(data_dir: Path, lfw_subset: Path) -> dict[str, Any]:
    return _json(_rfr(data_dir, "eval", str(lfw_subset), "--algorithm", "sface", "--json"))


@pytest.fixture(scope="module")
def sface_half(data_dir: Path, lfw_subset: Path) -> dict[str, Any]:
    return _json(_rfr(data_dir, "eval", str(lfw_subset), "--algorithm", "sface", "--json", "--shrink", "0.5"))


def test_the_report_names_the_algorithm_evaluated_and_the_shrink_factor(sface_plain, sface_half):
    for report in (sface_plain, sface_half):
        assert report["algorithm_name"] == "sface"
        assert "sface" in report["algorithm"] and "yunet" in report["algorithm"]  # T-01: the full id
    assert sface_plain["shrink"] == 1.0
    assert sface_half["shrink"] == 0.5


def test_the_algorithm_option_overrides_the_configured_one(data_dir, lfw_subset):
    """RFR_ALGORITHM=sface configured, --algorithm dlib evaluated; without the option, the
    configured one is."""
    chosen = _json(_rfr(data_dir, "eval", str(lfw_subset), "--algorithm", "dlib", "--json",
                        env={"RFR_ALGORITHM": "sface"}))
    assert chosen["algorithm_name"] == "dlib" and "dlib-resnet" in chosen["algorithm"]
    configured = _json(_rfr(data_dir, "eval", str(lfw_subset), "--json", env={"RFR_ALGORITHM": "sface"}))
    assert configured["algorithm_name"] == "sface" and "sface" in configured["algorithm"]


def test_tar_is_reported_at_both_fars_from_the_same_pairs_with_what_they_rest_on(sface_plain):
    report = sface_plain
    n_images = sum(SUBSET.values())
    assert report["n_images"] == n_images and report["n_failed_to_enrol"] == 0
    assert report["n_genuine_pairs"] + report["n_impostor_pairs"] == n_images * (n_images - 1) // 2
    assert 0.0 <= report["tar_at_far_1e-3"] <= 1.0 and 0.0 <= report["tar_at_far_1e-4"] <= 1.0
    points = {point["far"]: point for point in report["verification"]}
    assert set(points) == {1e-3, 1e-4}
    assert points[1e-3]["tar"] == report["tar_at_far_1e-3"]
    assert points[1e-4]["tar"] == report["tar_at_far_1e-4"]
    for point in points.values():
        assert point["n_impostor_pairs"] == report["n_impostor_pairs"]
        # 70 impostor pairs allow no false accept at either FAR: said so, not hidden
        assert point["false_accepts_allowed"] == 0 and point["measurable"] is False
        assert point["reliable"] is False
        assert point["note"].startswith("too few impostor pairs")


def test_every_stage_of_the_pipeline_is_timed_apart(sface_plain, sface_half):
    for report in (sface_plain, sface_half):
        stages = report["seconds_per_image_by_stage"]
        for stage in ("decode", "detect", "template", "align", "embed"):
            assert stages[stage] >= 0.0
        assert stages["align"] + stages["embed"] <= stages["template"] + 1e-4
    assert "shrink" not in sface_plain["seconds_per_image_by_stage"]
    assert "shrink" in sface_half["seconds_per_image_by_stage"]


def test_shrinking_makes_the_images_and_faces_the_detector_sees_smaller(sface_plain, sface_half):
    assert sface_plain["median_image_size_px"] == {"width": 150.0, "height": 150.0}
    assert sface_half["median_image_size_px"] == {"width": 75.0, "height": 75.0}
    plain, half = sface_plain["median_face_size_px"], sface_half["median_face_size_px"]
    assert half["width"] < 0.7 * plain["width"] and half["height"] < 0.7 * plain["height"]


def test_dlib_can_be_evaluated_shrunk_with_its_upsampling(data_dir, lfw_subset):
    report = _json(_rfr(data_dir, "eval", str(lfw_subset), "--algorithm", "dlib", "--shrink", "0.5",
                        "--upsample", "2", "--json"))
    assert report["algorithm_name"] == "dlib" and report["shrink"] == 0.5 and report["upsample"] == 2
    assert report["median_image_size_px"] == {"width": 75.0, "height": 75.0}


@pytest.mark.parametrize("factor", ["0", "-0.4", "1.5", "abc", "nan", "inf", ""])
def test_a_shrink_factor_outside_zero_to_one_is_a_usage_error(tmp_path, factor):
    result = _rfr(tmp_path, "eval", str(tmp_path), "--shrink", factor)
    assert result.returncode == 2
    assert result.stderr.startswith("rfr: --shrink must")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_an_algorithm_the_deployment_cannot_build_is_a_usage_error(tmp_path):
    (tmp_path / "someone").mkdir()
    (tmp_path / "someone" / "photo.jpg").write_bytes(b"never read")
    result = _rfr(tmp_path, "eval", str(tmp_path), "--algorithm", "arcface")
    assert result.returncode == 2
    assert result.stderr == "rfr: --algorithm must be one of dlib, sface, not 'arcface'\n"


def test_upsampling_is_refused_when_sface_is_chosen_by_option(tmp_path):
    (tmp_path / "someone").mkdir()
    (tmp_path / "someone" / "photo.jpg").write_bytes(b"never read")
    result = _rfr(tmp_path, "eval", str(tmp_path), "--algorithm", "sface", "--upsample", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("rfr: upsampling is the dlib detector's")
    assert result.stderr.count("\n") == 1


@pytest.mark.slow
def test_sface_on_the_whole_shared_lfw_enrols_every_photo_and_ranks_nearly_every_mate_first(
    data_dir, shared_faces
):
    """The calibrated YuNet threshold (ADR 0022) finds the subject in every LFW photo; OpenCV's 0.9
    missed 2. Measured: rank-1 0.9943 (3 misses: Courtney Love's two photos, one of Victoria
    Beckham's), TAR 0.9943 at FAR 1e-3."""
    report = _json(_rfr(data_dir, "eval", str(shared_faces / "lfw"), "--algorithm", "sface", "--json"))
    assert report["n_images"] == 552 and report["n_failed_to_enrol"] == 0 and report["fte"] == 0.0
    assert report["rank1"] >= 0.99
    assert report["tar_at_far_1e-3"] >= 0.99
    assert report["tar_at_far_1e-4"] >= 0.97
    points = {point["far"]: point for point in report["verification"]}
    assert points[1e-3]["reliable"] is True
    # ~149,000 impostor pairs: 1e-4 rests on 14 false accepts, fewer than the rule of 30 asks
    assert points[1e-4]["measurable"] is True and points[1e-4]["reliable"] is False
