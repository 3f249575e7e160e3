"""`rfr audit ...` as a real subprocess on a PostgreSQL store (A-02, issue 10).

The store is named by RFR_PERSISTENCE=postgres, RFR_POSTGRES_DSN and RFR_POSTGRES_SCHEMA (the
``postgres_store`` fixture sets the last two); the commands must never name a SQLite file there,
nor print the DSN, and a schema without a store is refused, not reported as an intact empty one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rfr_audit_samples import Case, open_app

HERE = Path(__file__).resolve().parent


def rfr(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "audit", *args],
        env={
            **os.environ,
            "RFR_DATA_DIR": str(data_dir),
            "RFR_PERSISTENCE": "postgres",
            # The sample aggregate's module, so replay can resolve its event topics.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def store(postgres_store: str, data_dir: Path) -> Case:
    """Two cases, four events; returns the one with a history."""
    app = open_app(data_dir, "postgres")
    case = Case("C-1", "Smith", "DS")
    case.add_note("seen on CCTV")
    app.save(case, Case("C-2", "Jones", "DC"))
    case.close("charged")
    app.save(case)
    app.close()
    return case


def test_A02_verify_head_and_replay_read_the_schema_the_environment_names(
    data_dir: Path, store: Case
) -> None:
    verified = rfr(data_dir, "verify")
    assert verified.returncode == 0, verified.stderr
    assert "intact: 4 events verified" in verified.stdout

    head = rfr(data_dir, "head")
    assert head.returncode == 0, head.stderr
    count, _, digest = head.stdout.strip().partition(":")
    assert count == "4" and len(digest) == 64
    assert rfr(data_dir, "verify", "--anchor", head.stdout.strip()).returncode == 0
    forged = rfr(data_dir, "verify", "--anchor", f"4:{'f' * 64}")
    assert forged.returncode == 1 and "position 4" in forged.stderr

    replayed = rfr(data_dir, "replay", "--aggregate", str(store.id))
    assert replayed.returncode == 0, replayed.stderr
    state = json.loads(replayed.stdout)
    assert state["version"] == 3 and state["state"]["status"] == "closed"
    # Nothing was read from, or left in, the data folder.
    assert not data_dir.exists()


def test_a_schema_without_a_store_and_a_missing_dsn_are_refused_by_name(
    postgres_store: str, data_dir: Path
) -> None:
    empty = rfr(data_dir, "verify")
    assert empty.returncode == 2
    assert f"PostgreSQL schema '{postgres_store}' is not a readable rfr event store" in empty.stderr
    assert "sqlite3" not in empty.stderr and os.environ["RFR_POSTGRES_DSN"] not in empty.stderr
    assert "Traceback" not in empty.stderr
    assert rfr(data_dir, "head").returncode == 2

    no_dsn = rfr(data_dir, "verify", RFR_POSTGRES_DSN="")
    assert no_dsn.returncode == 2 and "RFR_POSTGRES_DSN" in no_dsn.stderr
    assert "Traceback" not in no_dsn.stderr
