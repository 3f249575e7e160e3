"""`rfr audit ...` as a real subprocess on a real store (A-02)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rfr_audit_samples import Case, open_app

HERE = Path(__file__).resolve().parent
SQLITE3 = shutil.which("sqlite3")


def rfr(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RFR_DATA_DIR": str(data_dir),
        "RFR_PERSISTENCE": "sqlite",
        # The sample aggregate's module, so replay can resolve its event topics.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def store(data_dir: Path) -> Case:
    """Three cases, seven events; returns the one with a history."""
    app = open_app(data_dir)
    case = Case("C-1", "Smith", "DS")
    case.add_note("seen on CCTV")
    app.save(case, Case("C-2", "Jones", "DC"))
    # Distinct timestamps, so "until the tag" cannot also catch the closing.
    time.sleep(0.002)
    case.tag("burglary")
    time.sleep(0.002)
    case.close("charged")
    app.save(case)
    app.save(Case("C-3", "Khan", "DI"))
    app.close()
    return case


def test_A02_verify_passes_on_an_intact_store_and_head_anchors_it(data_dir: Path, store: Case) -> None:
    """A-02: verify passes on an intact store and head anchors it."""
    verified = rfr(data_dir, "verify")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.count("\n") == 1
    assert "intact: 6 events verified" in verified.stdout

    head = rfr(data_dir, "head")
    assert head.returncode == 0, head.stderr
    count, _, digest = head.stdout.strip().partition(":")
    assert count == "6" and len(digest) == 64
    assert rfr(data_dir, "verify", "--anchor", head.stdout.strip()).returncode == 0

    forged_anchor = f"6:{'f' * 64}"
    rejected = rfr(data_dir, "verify", "--anchor", forged_anchor)
    assert rejected.returncode == 1
    assert "position 6" in rejected.stderr and "published head" in rejected.stderr


@pytest.mark.skipif(
    SQLITE3 is None and os.environ.get("CI") != "true", reason="sqlite3 command-line tool absent"
)
def test_A02_verify_names_the_row_altered_with_the_sqlite3_tool(data_dir: Path, store: Case) -> None:
    """A-02: verify names the row altered with the sqlite3 tool."""
    assert SQLITE3 is not None, "CI must have the sqlite3 command-line tool (apt-get install sqlite3)"
    assert rfr(data_dir, "verify").returncode == 0
    # What an insider with file access would do: drop the guard, rewrite one decision.
    tamper = (
        "DROP TRIGGER stored_events_no_update; "
        "UPDATE stored_events SET state = CAST(REPLACE(CAST(state AS TEXT), 'charged', 'released') AS BLOB) "
        "WHERE rowid = 5;"
    )
    done = subprocess.run(
        [SQLITE3, str(data_dir / "events.sqlite3"), tamper], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr

    broken = rfr(data_dir, "verify")
    assert broken.returncode == 1
    assert "BROKEN at position 5" in broken.stderr
    assert "event altered" in broken.stderr
    assert broken.stdout == ""


def test_A02_verify_reports_events_removed_from_the_end(data_dir: Path, store: Case) -> None:
    """A-02: verify reports events removed from the end."""
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        db.executescript(
            "DROP TRIGGER stored_events_no_delete; DROP TRIGGER rfr_audit_chain_no_delete;"
            "DELETE FROM stored_events WHERE rowid = 6; DELETE FROM rfr_audit_chain WHERE position = 6;"
        )
    broken = rfr(data_dir, "verify")
    assert broken.returncode == 1
    assert "position 6" in broken.stderr and "removed from the end" in broken.stderr


def test_replay_until_prints_the_state_at_that_time(data_dir: Path, store: Case) -> None:
    app = open_app(data_dir)
    events = list(app.events.get(store.id))
    app.close()
    # Opened, NoteAdded, Tagged, Closed: ask for the moment the tag was added.
    tagged_at = events[2].timestamp
    assert events[1].timestamp < tagged_at < events[3].timestamp

    replayed = rfr(data_dir, "replay", "--aggregate", str(store.id), "--until", tagged_at.isoformat())
    assert replayed.returncode == 0, replayed.stderr
    state = json.loads(replayed.stdout)
    assert state["version"] == 3
    assert state["topic"] == "rfr_audit_samples:Case"
    assert state["state"]["status"] == "open"
    assert state["state"]["tags"] == ["burglary"]
    assert state["state"]["officer"] == {"name": "Smith", "rank": "DS"}

    now = json.loads(rfr(data_dir, "replay", "--aggregate", str(store.id)).stdout)
    assert now["version"] == 4 and now["state"]["status"] == "closed"

    before = rfr(data_dir, "replay", "--aggregate", str(store.id), "--until", "2001-01-01T00:00:00")
    assert before.returncode == 1 and "did not exist" in before.stderr


def test_cli_refuses_a_missing_store_and_bad_arguments(tmp_path: Path) -> None:
    missing = rfr(tmp_path / "nowhere", "verify")
    assert missing.returncode == 2 and "no event store" in missing.stderr
    assert not (tmp_path / "nowhere").exists()
    assert rfr(tmp_path, "verify", "--anchor", "nonsense").returncode == 2
    assert rfr(tmp_path, "replay", "--aggregate", "not-a-uuid").returncode == 2
    with sqlite3.connect(tmp_path / "events.sqlite3") as db:
        db.execute("CREATE TABLE unrelated (x)")
    foreign = rfr(tmp_path, "verify")
    assert foreign.returncode == 2 and "not a readable rfr event store" in foreign.stderr


def test_audit_commands_leave_the_store_file_untouched(data_dir: Path, store: Case) -> None:
    path = data_dir / "events.sqlite3"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert rfr(data_dir, "verify").returncode == 0
    assert rfr(data_dir, "head").returncode == 0
    assert rfr(data_dir, "replay", "--aggregate", str(store.id)).returncode == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
