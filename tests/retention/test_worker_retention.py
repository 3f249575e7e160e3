"""`rfr worker --once` runs the retention sweep on a SQLite store after the reports and flags
(L-06, L-12, R-03, R-03a, R-04)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import domain_builders
from retention_history import History
from service_builders import make_world

from rfr.application.app import RfrApplication
from rfr.application.face_engine import FaceEngine
from rfr.domain.forms import LegalHold
from rfr.domain.probe_image import ProbeImage
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RFR_DATA_DIR": str(data_dir), "RFR_PERSISTENCE": "sqlite", "RFR_ORT_THREADS": "2"}
    return subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_L06_L12_R03_R03a_R04_rfr_worker_once_deletes_what_is_due_and_reports_what_is_held(
    tmp_path: Path, engine: FaceEngine, photos: dict[str, list[Path]]
):
    data_dir = tmp_path / "data"
    # The history happens in March 2025 on a fake clock; the worker runs on the real one, long after.
    world = make_world(tmp_path, engine, persistence="sqlite")
    history = History(world, photos)
    stopped = history.library("stopped", ["adam_sandler", "bill_simon"])
    history.approvals.stop("supt", stopped.approval_id, "the operation has closed")
    custody = history.library("custody", ["carlos_moya", "anne_mclellan"])
    unmatched, _ = history.searched_probe("barbara_walters", custody)
    held, _ = history.searched_probe("benjamin_netanyahu", custody)
    history.hold_probe(held, LegalHold("disclosure to the defence pending", "disclosure"))
    never_searched = world.probes.submit(
        "analyst", domain_builders.form3(), photos["anne_mclellan"][2].read_bytes()
    ).probe_id
    world.app.close()

    first = _cli(data_dir, "worker", "--once")

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        # L-06: the custody library's review fell due in 2025; the flag is recorded once.
        f"flagged library approval {custody.approval_id}: the library approval's review is overdue (L-06)",
        "retention: deleted 2 images (L-12), 1 probe (R-03), 1 probe (R-03a) with 3 templates",
        f"retention: held probe {held}: deletion due under R-03 suspended by a legal hold "
        "(R-04, disclosure: disclosure to the defence pending)",
    ]
    with RfrApplication(application_env(Settings(data_dir=data_dir, persistence="sqlite"))) as app:
        gone = app.library_images.page(str(stopped.library_id), 0, 100)
        assert gone and all(r.purged_at is not None for r in gone)
        kept = app.library_images.page(str(custody.library_id), 0, 100)
        assert sorted(r.image_id for r in kept) == sorted(custody.image_ids)
        assert all(r.purged_at is None for r in kept)
        assert app.get(UUID(unmatched), ProbeImage).purged_at is not None
        assert app.get(UUID(never_searched), ProbeImage).purged_at is not None
        assert app.get(UUID(held), ProbeImage).purged_at is None
    assert not any(history.image_stored(i) for i in stopped.image_ids)
    assert all(history.image_stored(i) for i in custody.image_ids)
    assert not history.probe_stored(unmatched) and history.probe_stored(held)
    assert not history.probe_stored(never_searched)

    again = _cli(data_dir, "worker", "--once")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == first.stdout.splitlines()[2:]  # nothing new; still held


def test_rfr_worker_help_says_each_round_runs_the_retention_sweep():
    shown = _cli(Path("unused"), "worker", "--help")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    for rule in ("R-01", "L-12", "R-02", "R-03", "R-03a", "U-04", "R-04", "L-06", "L-09", "L-10", "U-03"):
        assert rule in text
    assert "run one round (reports and retention) and exit" in text
