"""How the SQLite file store is opened and written (docs/adr/0012-audit-append-and-verify-speed.md).

Every connection, whichever thread or process opens it, runs in WAL with synchronous=NORMAL;
one save is one transaction holding the events, their chain links and the moved head, with a
single read (the head); and a writer killed at any moment leaves a store whose chain verifies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from rfr_audit_samples import Case, open_app

from rfr.application.app import RfrApplication
from rfr.infrastructure.audit import verify
from rfr.infrastructure.persistence import sqlite as chained_sqlite

HERE = Path(__file__).resolve().parent
NORMAL = 1  # PRAGMA synchronous answers a number: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def _pragmas(cursor: sqlite3.Cursor) -> tuple[str, int]:
    (journal_mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
    (synchronous,) = cursor.execute("PRAGMA synchronous").fetchone()
    return journal_mode, synchronous


def _child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }


def test_every_connection_of_the_store_is_in_wal_with_synchronous_normal(
    sqlite_app: RfrApplication, data_dir: Path
) -> None:
    datastore = sqlite_app.recorder.datastore
    holders = [True, False, False]  # one writer and two readers, each on its own thread
    together = threading.Barrier(len(holders))
    seen: list[tuple[int, tuple[str, int]]] = []
    errors: list[BaseException] = []

    def hold(commit: bool) -> None:
        try:
            with datastore.get_connection(commit=commit) as conn, conn.cursor() as cursor:
                together.wait(timeout=30)  # all held at once: the pool opened one connection each
                seen.append((id(conn), _pragmas(cursor)))
                together.wait(timeout=30)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=hold, args=(commit,)) for commit in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({conn for conn, _ in seen}) == len(holders)
    assert {pragmas for _, pragmas in seen} == {("wal", NORMAL)}
    # WAL belongs to the file: any other program opening it finds it in WAL too.
    with closing(sqlite3.connect(data_dir / "events.sqlite3")) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


CHILD = """
import sys
from pathlib import Path
from rfr_audit_samples import Case, open_app
app = open_app(Path(sys.argv[1]))
app.save(Case("P-1", "Smith", "DS"))
with app.recorder.datastore.get_connection(commit=True) as conn, conn.cursor() as cursor:
    print(*(cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "synchronous")))
app.close()
"""


def test_another_process_opens_the_store_the_same_way(data_dir: Path) -> None:
    open_app(data_dir).close()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data_dir)],
        check=False,
        env=_child_env(),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.split() == [b"wal", str(NORMAL).encode()]


def test_one_save_is_one_transaction_with_one_read(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events first (they take the write lock), one head read, links, head, all in one BEGIN..COMMIT."""
    statements: list[str] = []
    create = chained_sqlite.ChainedSQLiteConnectionPool._create_connection

    def traced(pool: chained_sqlite.ChainedSQLiteConnectionPool) -> object:
        conn = create(pool)
        conn._sqlite_conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(chained_sqlite.ChainedSQLiteConnectionPool, "_create_connection", traced)
    app = open_app(data_dir)
    try:
        app.save(Case("C-0", "Smith", "DS"))  # a head to extend
        case = Case("C-1", "Smith", "DS")
        case.add_note("first")
        case.tag("urgent")
        statements.clear()
        app.save(case)
        assert verify(app.recorder).ok
    finally:
        app.close()

    saved = statements[: statements.index("COMMIT") + 1]
    assert saved[0] == "BEGIN" and saved.count("BEGIN") == 1 and saved.count("COMMIT") == 1
    # Statements on the event and chain tables, in order (projections may add their own).
    tables = (chained_sqlite.HEAD_TABLE, chained_sqlite.CHAIN_TABLE, "stored_events")
    touched = []
    for statement in saved[1:-1]:
        verb = statement.split()[0]
        table = next((t for t in tables if f" {t} " in f" {statement} "), None)
        if table is not None:
            touched.append((verb, table))
    assert touched == [
        *[("INSERT", "stored_events")] * 3,
        ("SELECT", chained_sqlite.HEAD_TABLE),
        *[("INSERT", chained_sqlite.CHAIN_TABLE)] * 3,
        ("UPDATE", chained_sqlite.HEAD_TABLE),
    ]


CRASH_WRITER = """
import sys
from pathlib import Path
from rfr_audit_samples import Case, open_app
app = open_app(Path(sys.argv[1]))
i = 0
while True:
    case = Case(f"{sys.argv[2]}-{i}", "Smith", "DS")
    for n in range(i % 3):
        case.add_note(str(n))
    app.save(case)
    i += 1
"""


def _head_count(store: Path) -> int:
    with closing(sqlite3.connect(store)) as db:
        found = db.execute("SELECT count FROM rfr_audit_head").fetchone()
    return found[0] if found else 0


def test_a_writer_killed_at_any_moment_leaves_a_chain_that_verifies(data_dir: Path) -> None:
    """NORMAL gives up only the last commits to a power cut; a killed process loses nothing whole."""
    open_app(data_dir).close()
    store = data_dir / "events.sqlite3"
    for round_ in range(3):
        target = _head_count(store) + 150
        writer = subprocess.Popen(
            [sys.executable, "-c", CRASH_WRITER, str(data_dir), f"K{round_}"],
            env=_child_env(),
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while _head_count(store) < target and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writer.poll() is None, writer.stderr.read().decode() if writer.stderr else ""
        writer.kill()  # SIGKILL: no clean-up, most likely inside a transaction
        writer.communicate(timeout=30)

        app = open_app(data_dir)
        result = verify(app.recorder)
        app.close()
        assert result.ok, result.reason
        with closing(sqlite3.connect(store)) as db:
            (events,) = db.execute("SELECT COUNT(*) FROM stored_events").fetchone()
            (links,) = db.execute("SELECT COUNT(*) FROM rfr_audit_chain").fetchone()
        assert result.checked == events == links >= target


def _rows_in_the_database_file_alone(data_dir: Path, tmp: Path) -> int:
    """Events a reader finds in the main database file without its WAL: what a checkpoint, which
    syncs that file, has made durable (with synchronous=NORMAL a commit only reaches the WAL)."""
    copy = tmp / "main-file-only.sqlite3"
    shutil.copyfile(data_dir / "events.sqlite3", copy)
    with contextlib.closing(sqlite3.connect(copy)) as db:
        if db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'stored_events'").fetchone()[0] == 0:
            return 0  # even the tables are still only in the WAL
        return db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]


def test_the_head_read_for_publishing_is_on_disk(
    sqlite_app: RfrApplication, data_dir: Path, tmp_path: Path
) -> None:
    """NORMAL leaves the newest commits in the WAL; a head published as an anchor must not: every
    commit it counts is checkpointed into the database file, which SQLite syncs (ADR 0012)."""
    sqlite_app.save(Case("C-1", "Smith", "DS"))
    assert _rows_in_the_database_file_alone(data_dir, tmp_path) == 0
    head = sqlite_app.recorder.chain_head()
    assert head is not None and head.count == 1
    assert _rows_in_the_database_file_alone(data_dir, tmp_path) == 1


def test_the_health_check_reads_the_head_without_flushing_to_disk(
    data_dir: Path, sqlite_app: RfrApplication, tmp_path: Path
) -> None:
    # Anyone may call /health: it must not let them make the server checkpoint and sync at will.
    from litestar.testing import TestClient

    from rfr.entrypoints.http.app import create_app
    from rfr.infrastructure.settings import Settings

    sqlite_app.save(Case("C-1", "Smith", "DS"))
    with TestClient(create_app(Settings(data_dir, persistence="sqlite"))) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
        assert _rows_in_the_database_file_alone(data_dir, tmp_path) == 0
