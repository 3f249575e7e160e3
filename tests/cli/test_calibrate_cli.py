"""`rfr calibrate` as an administrator runs it (issue 11 item 4, ADR 0020): real processes, real
photos (a small symlinked subset of the shared LFW photos), real engines, a real event store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rfr.application.app import RfrApplication
from rfr.application.calibration import Calibration
from rfr.application.services.bootstrap import bootstrap_administrator
from rfr.application.services.calibrations import ScoreCalibrations
from rfr.application.services.users import UserAdministration
from rfr.domain.people import Role
from rfr.domain.score_calibration import calibration_id
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

IDENTITIES = 14
PHOTOS_EACH = 4  # 56 photos: 84 genuine and 1,456 impostor pairs, above the 1,000 needed


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _store(data_dir: Path) -> RfrApplication:
    return RfrApplication(application_env(Settings(data_dir=data_dir, persistence="sqlite")))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with built models and a store where "admin" administers and "analyst" searches."""
    path = tmp_path_factory.mktemp("rfr-calibrate")
    _rfr(path, "models", "build")
    with _store(path) as app:
        bootstrap_administrator(app, Clock(), "admin")
        users = UserAdministration(app, Clock())
        users.register("admin", "analyst", [Role.RFR_USER])
        users.record_training("admin", "analyst", True, "completed RFR training")
    return path


@pytest.fixture(scope="module")
def subset(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first identities of the shared LFW photos with at least four photos, four each, linked."""
    root = tmp_path_factory.mktemp("lfw-subset")
    lfw = shared_faces / "lfw"
    chosen = [d for d in sorted(lfw.iterdir()) if d.is_dir() and len(list(d.iterdir())) >= PHOTOS_EACH]
    for folder in chosen[:IDENTITIES]:
        (root / folder.name).mkdir()
        for photo in sorted(folder.iterdir())[:PHOTOS_EACH]:
            (root / folder.name / photo.name).symlink_to(photo)
    return root


def _rfr(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RFR_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", *args],
        check=False, env=env, capture_output=True, text=True, timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"rfr {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.mark.parametrize("algorithm", ["dlib", "sface"])
def test_an_administrators_calibration_is_recorded_and_read_back(data_dir, subset, algorithm):
    """A-05, A-01: recorded as the algorithm's next version, naming who and why; the events hold
    the dataset's hash and counts, never a name of a person in it; the audit trail replays it."""
    out = _rfr(
        data_dir, "calibrate", str(subset), "--algorithm", algorithm, "--gallery-size", "1000",
        "--as", "admin", "--reason", "first calibration, LFW sample", "--json",
    )
    report = json.loads(out.stdout)
    assert report["recorded"]["version"] == 1 and report["recorded"]["by"] == "admin"
    data = report["calibration"]
    assert data["dataset"]["images"] == IDENTITIES * PHOTOS_EACH
    assert data["dataset"]["identities"] == IDENTITIES
    assert data["gallery_size"] == 1000 and data["target_fpir"] == 0.01
    printed = Calibration.from_data(data)
    assert report["operating_point"]["threshold"] == printed.threshold
    assert printed.non_mate_chance(printed.threshold, 1000) == pytest.approx(0.01, rel=1e-9)

    with _store(data_dir) as app:
        recorded = ScoreCalibrations(app, Clock()).in_force(printed.algorithm_id)
        assert recorded is not None and recorded.calibration == printed
        assert (recorded.by, recorded.reason) == ("admin", "first calibration, LFW sample")
        stored = b"".join(e.state for e in app.recorder.select_events(calibration_id(printed.algorithm_id)))
    for person in (p.name for p in subset.iterdir()):
        assert person.encode() not in stored and person.split("_")[-1].encode() not in stored

    replay = _rfr(data_dir, "audit", "replay", "--aggregate", str(calibration_id(printed.algorithm_id)))
    state = json.loads(replay.stdout)["state"]
    assert state["algorithm_id"] == printed.algorithm_id
    assert [v["version"] for v in state["versions"]] == [1]
    assert _rfr(data_dir, "audit", "verify").returncode == 0


def test_without_as_the_calibration_is_only_printed(data_dir, subset):
    out = _rfr(data_dir, "calibrate", str(subset), "--algorithm", "dlib", "--gallery-size", "50")
    assert "operating point: FPIR 0.01 in a gallery of 50" in out.stdout
    assert "not recorded" in out.stdout
    algorithm_id = next(line for line in out.stdout.splitlines() if line.startswith("algorithm id: "))[14:]
    assert "dlib" in algorithm_id
    with _store(data_dir) as app:
        current = ScoreCalibrations(app, Clock()).current(algorithm_id)
        assert current is None or current.gallery_size != 50


def test_A05_a_calibration_by_a_non_administrator_is_refused_and_the_refusal_recorded(data_dir, subset):
    """A-05: the analyst is refused (exit 3), and the refusal is in the audit trail (A-01): on the
    calibration if dlib's was recorded before, else as a refused attempt."""
    result = _rfr(
        data_dir, "calibrate", str(subset), "--algorithm", "dlib", "--as", "analyst", "--reason", "mine",
        check=False,
    )
    assert result.returncode == 3 and "A-05" in result.stderr, result.stderr
    with _store(data_dir) as app:
        refusals = [
            (event.acting.user_id, event.command, event.rule_ids)
            for n in app.recorder.select_notifications(start=1, limit=10_000)
            if n.topic.endswith(("RefusedAttempt.AttemptRefused", "ScoreCalibration.Refused"))
            for event in [app.mapper.to_domain_event(n)]
        ]
    assert ("analyst", "calibrate scores", ["A-05"]) in refusals


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algorithm", "nope"], "--algorithm must be one of dlib, sface"),
        (["--algorithm", "dlib", "--target-fpir", "1.5"], "--target-fpir"),
        (["--algorithm", "dlib", "--gallery-size", "0"], "--gallery-size"),
        (["--algorithm", "dlib", "--as", "admin"], "--reason is needed"),
    ],
)
def test_usage_errors_end_with_exit_code_2_before_any_photo_is_read(data_dir, subset, args, message):
    result = _rfr(data_dir, "calibrate", str(subset), *args, check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_too_few_photos_cannot_calibrate(data_dir, subset, tmp_path):
    for folder in sorted(subset.iterdir())[:3]:
        (tmp_path / folder.name).symlink_to(folder)
    result = _rfr(data_dir, "calibrate", str(tmp_path), "--algorithm", "dlib", check=False)
    assert result.returncode == 2 and "too few" in result.stderr

