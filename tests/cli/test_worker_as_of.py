"""`rfr worker --once --as-of ISO_TIME` (ADR 0025): a round as of a time, on a real demo's data.

The demo (a real `rfr demo` process over LFW photos) leaves a library of images kept ten years
(R-01: adults, MOPI group 2) and a probe searched with a viable match (R-02). A round as of
eleven years after the demo must erase all of them, from the biometric store (rows and files)
and the library's index, flag the review that is by then overdue (L-06), leave a chain that
verifies, and change nothing when run again.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from rfr.application.app import RfrApplication
from rfr.application.services.as_of import StillClock, latest_event_time
from rfr.application.services.bootstrap import bootstrap_administrator
from rfr.domain.calendar import add_years
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.probe_image import ProbeImage
from rfr.entrypoints.composition import Services
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _rfr(data_dir: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RFR_DATA_DIR": str(data_dir), "RFR_PERSISTENCE": "sqlite", "RFR_ORT_THREADS": "2"}
    return subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _explain(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )


def _app(data_dir: Path) -> RfrApplication:
    return RfrApplication(application_env(Settings(data_dir=data_dir, persistence="sqlite")))


@pytest.fixture(scope="module")
def demo_data(shared_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("as-of") / "data"
    ran = _rfr(
        data_dir,
        "demo",
        "--images",
        str(shared_faces / "lfw"),
        "--max-identities",
        "6",
        "--data-dir",
        str(data_dir),
    )
    assert ran.returncode == 0, _explain(ran)
    return data_dir


def _stored(data_dir: Path) -> tuple[list[tuple[str, str]], list[Path]]:
    """The biometric store's rows (record id, kind) and its encrypted files."""
    with sqlite3.connect(data_dir / "biometrics" / "keys.sqlite3") as db:
        rows = db.execute("SELECT record_id, kind FROM biometric_records ORDER BY record_id").fetchall()
    return rows, sorted(p for p in (data_dir / "biometrics" / "blobs").rglob("*") if p.is_file())


def _files(data_dir: Path) -> dict[str, bytes]:
    """Every file of the data folder but the demo's log, by path: what a second round must not change."""
    return {
        str(p.relative_to(data_dir)): p.read_bytes()
        for p in sorted(data_dir.rglob("*"))
        if p.is_file() and p.parent.name != "demo"
    }


def test_R01_R02_L06_a_round_as_of_11_years_after_the_demo_erases_what_is_due_and_the_chain_verifies(
    demo_data: Path,
) -> None:
    with _app(demo_data) as app:
        demo_time = latest_event_time(app)
        (approval_id,) = _approvals(app)
        probes = list(app.probe_searches.live())
        libraries = [label.library_id for label in app.usage_counts.libraries(demo_time, end_inclusive=True)]
        images = {lib: app.library_images.page(lib, 0, 500) for lib in libraries}
    rows, files = _stored(demo_data)
    assert probes and libraries and all(images.values()) and rows and files
    templates = [record_id for record_id, kind in rows if kind == "template"]
    as_of = add_years(demo_time, 11).replace(microsecond=0) + timedelta(seconds=1)

    first = _rfr(demo_data, "worker", "--once", "--as-of", as_of.isoformat(), "--allow-future")

    assert first.returncode == 0, _explain(first)
    n_images = sum(len(rows) for rows in images.values())
    assert first.stdout.splitlines() == [
        f"round as of {as_of.isoformat()}",
        f"flagged library approval {approval_id}: the library approval's review is overdue (L-06)",
        f"retention: took {n_images} images out of searching (R-01); deleted {n_images} images (R-01), "
        f"{len(probes)} probe (R-02) with {n_images + len(probes)} templates",
    ], _explain(first)
    with _app(demo_data) as app:
        for library_id, before in images.items():
            after = app.library_images.page(library_id, 0, 500)
            assert [r.image_id for r in after] == [r.image_id for r in before]
            assert all(r.purged_at == as_of for r in after)
        for probe_id in probes:
            assert app.get(UUID(probe_id), ProbeImage).purged_at == as_of
        assert list(app.probe_searches.live()) == []
        flags = app.get(approval_id, LibraryApproval).flags_raised
        assert [rule for rule, _ in flags] == ["L-06"]
        assert latest_event_time(app) == as_of
    # nothing of them is left in the store, rows or files, nor in the indexes.
    assert _stored(demo_data) == ([], [])
    with Services(Settings(data_dir=demo_data, persistence="sqlite")) as services:
        for library_id in images:
            index = services.open_biometrics().index(library_id)
            assert len(index) == 0
            assert not any(template_id in index for template_id in templates)
    verified = _rfr(demo_data, "audit", "verify")
    assert verified.returncode == 0 and "audit trail intact" in verified.stdout, _explain(verified)
    head = _rfr(demo_data, "audit", "head").stdout

    files = _files(demo_data)
    again = _rfr(demo_data, "worker", "--once", "--as-of", as_of.isoformat(), "--allow-future")

    assert again.returncode == 0, _explain(again)
    assert again.stdout.splitlines() == [f"round as of {as_of.isoformat()}"]
    assert _rfr(demo_data, "audit", "head").stdout == head
    assert _files(demo_data).keys() == files.keys()
    assert _stored(demo_data) == ([], [])


def _approvals(app: RfrApplication) -> set[UUID]:
    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    return {UUID(str(n.originator_id)) for n in notifications if n.topic.endswith("LibraryApproval.Applied")}


# -- when a round may run as of a time (ADR 0025) ---------------------------------------------

STORED_AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    """A store whose only events (a first administrator) were recorded at ``STORED_AT``."""
    data_dir = tmp_path / "data"
    with _app(data_dir) as app:
        bootstrap_administrator(app, StillClock(STORED_AT), "admin")
    return data_dir


@pytest.mark.parametrize(
    ("args", "says"),
    [
        # The trail would go back in time.
        (["--once", "--as-of", "2026-01-05T09:29:59+00:00"], "earlier than the latest recorded event"),
        # Events dated ahead of the real clock, without saying so.
        (["--once", "--as-of", "2999-01-01T00:00:00+00:00"], "pass --allow-future only on a copy"),
        (["--as-of", "2026-02-01T00:00:00+00:00"], "--as-of runs one round: give --once too"),
        (["--once", "--allow-future"], "--allow-future goes with --as-of"),
        (["--once", "--as-of", "2026-02-01T00:00:00"], "not an ISO 8601 time with its offset from UTC"),
        (["--once", "--as-of", "next tuesday"], "not an ISO 8601 time with its offset from UTC"),
    ],
)
def test_a_round_as_of_a_time_the_trail_cannot_hold_is_refused_and_records_nothing(
    small_store: Path, args: list[str], says: str
) -> None:
    refused = _rfr(small_store, "worker", *args)
    assert refused.returncode == 2, _explain(refused)
    assert says in refused.stderr and refused.stdout == "", _explain(refused)
    with _app(small_store) as app:
        assert latest_event_time(app) == STORED_AT


@pytest.mark.parametrize("as_of", [STORED_AT, STORED_AT + timedelta(days=3)])
def test_a_round_as_of_a_past_time_not_before_the_latest_event_runs(
    small_store: Path, as_of: datetime
) -> None:
    """Catching up after downtime: the latest event's own time, or any time since, up to now."""
    ran = _rfr(small_store, "worker", "--once", "--as-of", as_of.isoformat())
    assert ran.returncode == 0, _explain(ran)
    assert ran.stdout.splitlines() == [f"round as of {as_of.isoformat()}"]
