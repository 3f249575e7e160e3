"""The audit trail on PostgreSQL (issue 10, ADR 0016): one chain under concurrent writers in
several processes, append-only in the database, and every tampering detected at its position.

Each test gets its own schema in a private cluster on loopback (``postgres_store``); the writer
processes open it through the environment, as ``rfr serve`` and ``rfr worker`` would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rfr_audit_samples import Case, open_app

from rfr.application.app import ConcurrentModification, RfrApplication
from rfr.infrastructure.audit import verify
from rfr.infrastructure.persistence.chain import StoredRow, link_hash

HERE = Path(__file__).resolve().parent
# eventsourcing names an application's events table on PostgreSQL after the application.


@pytest.fixture
def pg_app(postgres_store: str, data_dir: Path) -> Iterator[RfrApplication]:
    app = open_app(data_dir, "postgres")
    yield app
    app.close()


def _insider(schema: str) -> psycopg.Connection:
    """A connection as the database owner, with the append-only triggers switched off: what an
    insider with the database's credentials could do, and what the chain is there to catch."""
    conn = psycopg.connect(os.environ["RFR_POSTGRES_DSN"], autocommit=True)
    conn.execute(f"SET search_path TO {schema}")
    for table in ("rfrapplication_events", "rfr_audit_chain", "rfr_audit_head"):
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    return conn


def _history(app: RfrApplication, cases: int = 4) -> int:
    for i in range(cases):
        case = Case(f"C-{i}", "Smith", "DS")
        case.add_note(f"note {i}")
        app.save(case)
    head = app.recorder.chain_head()
    assert verify(app.recorder).ok
    return head.count


def test_A02_the_chain_is_written_with_the_events_and_verifies_after_reopening(
    pg_app: RfrApplication, data_dir: Path
) -> None:
    """A-02: on PostgreSQL each save links its events in the same transaction; a second
    application on the same schema reads the same head and verifies every link."""
    n = _history(pg_app)
    assert n == 8
    again = open_app(data_dir, "postgres")
    try:
        assert again.recorder.chain_head() == pg_app.recorder.chain_head()
        result = verify(again.recorder)
        assert result.ok and result.checked == 8
        assert again.get(pg_app.recorder.select_notifications(start=1, limit=1)[0].originator_id, Case)
    finally:
        again.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE rfrapplication_events SET topic = topic || 'x'",
        "DELETE FROM rfrapplication_events",
        "TRUNCATE rfrapplication_events CASCADE",
        "UPDATE rfr_audit_chain SET hash = previous_hash",
        "DELETE FROM rfr_audit_chain",
        "DELETE FROM rfr_audit_head",
    ],
)
def test_A01_the_database_refuses_to_change_or_remove_history(
    pg_app: RfrApplication, postgres_store: str, statement: str
) -> None:
    """A-01: history is append-only in the database itself, whoever connects."""
    _history(pg_app, 1)
    with psycopg.connect(os.environ["RFR_POSTGRES_DSN"], autocommit=True) as conn:
        conn.execute(f"SET search_path TO {postgres_store}")
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute(statement)
    assert verify(pg_app.recorder).ok


def _shift(conn: psycopg.Connection, at: int, by: int) -> None:
    # Moves notification ids >= at by ``by``, in two steps so the unique index holds throughout.
    conn.execute(
        "UPDATE rfrapplication_events SET notification_id = -notification_id WHERE notification_id >= %s",
        (at,),
    )
    conn.execute(
        "UPDATE rfrapplication_events SET notification_id = -notification_id + %s WHERE notification_id < 0",
        (by,),
    )


def _tamper(conn: psycopg.Connection, kind: str, k: int, n: int) -> int:
    """One tampering at notification ``k`` of ``n``; returns the position verification must name."""
    if kind == "altered":
        conn.execute(
            "UPDATE rfrapplication_events SET state = state || '\\x20'::bytea WHERE notification_id = %s",
            (k,),
        )
        return k
    if kind == "altered_and_relinked":
        conn.execute(
            "UPDATE rfrapplication_events SET state = state || '\\x20'::bytea WHERE notification_id = %s",
            (k,),
        )
        row = conn.execute(
            "SELECT notification_id, replace(originator_id::text, '-', ''), originator_version, topic, state "
            "FROM rfrapplication_events WHERE notification_id = %s",
            (k,),
        ).fetchone()
        (previous,) = conn.execute(
            "SELECT previous_hash FROM rfr_audit_chain WHERE position = %s", (k,)
        ).fetchone()
        forged = link_hash(previous, k, StoredRow(*row))
        conn.execute("UPDATE rfr_audit_chain SET hash = %s WHERE position = %s", (forged, k))
        return k + 1 if k < n else n
    if kind == "removed":
        conn.execute("DELETE FROM rfrapplication_events WHERE notification_id = %s", (k,))
        return k
    if kind == "inserted":
        _shift(conn, k, 1)
        conn.execute(
            "INSERT INTO rfrapplication_events "
            "(originator_id, originator_version, topic, state, notification_id) "
            "VALUES (%s, 1, 'rfr_audit_samples:Case.Opened', '\\x7b7d'::bytea, %s)",
            (uuid.uuid4(), k),
        )
        return k
    if kind == "reordered":
        j = n
        conn.execute("UPDATE rfrapplication_events SET notification_id = -1 WHERE notification_id = %s", (k,))
        conn.execute(
            "UPDATE rfrapplication_events SET notification_id = %s WHERE notification_id = %s", (k, j)
        )
        conn.execute("UPDATE rfrapplication_events SET notification_id = %s WHERE notification_id = -1", (j,))
        return k
    if kind == "truncated":
        conn.execute("DELETE FROM rfrapplication_events WHERE notification_id >= %s", (k,))
        conn.execute("DELETE FROM rfr_audit_chain WHERE position >= %s", (k,))
        return k
    raise AssertionError(kind)


@pytest.mark.parametrize("k", [1, 4, 7])
@pytest.mark.parametrize(
    "kind", ["altered", "altered_and_relinked", "removed", "inserted", "reordered", "truncated"]
)
def test_A02_any_tampering_with_the_postgres_rows_is_detected_at_its_position(
    pg_app: RfrApplication, postgres_store: str, kind: str, k: int
) -> None:
    """A-02: altered, removed, inserted, reordered and truncated rows on PostgreSQL are each
    found, at the first position they affect, by the same verification as on SQLite."""
    n = _history(pg_app)
    with _insider(postgres_store) as conn:
        blamed = _tamper(conn, kind, k, n)
    result = verify(pg_app.recorder)
    assert not result.ok
    assert result.first_bad_position == blamed, result.reason


def test_A02_concurrent_edits_of_one_aggregate_on_postgres_raise_and_store_nothing(
    pg_app: RfrApplication, data_dir: Path
) -> None:
    """A-02: two applications (as two processes would) editing one aggregate: the second save,
    with a fresh aggregate beside it, is refused whole as a conflict."""
    other = open_app(data_dir, "postgres")
    try:
        case = Case("C-1", "Smith", "DS")
        pg_app.save(case)
        mine, theirs = pg_app.get(case.id, Case), other.get(case.id, Case)
        mine.add_note("from A")
        pg_app.save(mine)
        theirs.add_note("from B")
        head = other.recorder.chain_head()
        with pytest.raises(ConcurrentModification):
            other.save(theirs, Case("C-2", "Jones", "DC"))
        assert other.recorder.chain_head() == head
        assert pg_app.get(case.id, Case).notes == ("from A",)
        result = verify(pg_app.recorder)
        assert result.ok and result.checked == 2
    finally:
        other.close()


WRITER = """
import sys, time
from pathlib import Path
from rfr_audit_samples import Case, open_app
data_dir, tag, go, saves = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
app = open_app(data_dir, "postgres")
(go.parent / f"{tag}.ready").touch()
while not go.exists():
    time.sleep(0.002)
for i in range(saves):
    app.save(Case(f"{tag}-{i}", "Smith", "DS"))
    print(f"{tag}-{i}", flush=True)  # acknowledged: the save returned
app.close()
"""


def _writers(data_dir: Path, tmp_path: Path, tags: str, saves: int) -> list[subprocess.Popen[bytes]]:
    go = tmp_path / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(data_dir), tag, str(go), str(saves)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for tag in tags
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("*.ready"))) < len(tags):
        assert time.monotonic() < deadline, "writers did not open the store"
        dead = [p for p in processes if p.poll() is not None]
        assert not dead, [p.communicate()[1].decode() for p in dead]
        time.sleep(0.01)
    go.touch()
    return processes


def _references(app: RfrApplication) -> list[str]:
    return [
        json.loads(n.state)["reference"]
        for n in app.recorder.select_notifications(start=1, limit=100_000)
        if n.topic.endswith("Case.Opened")
    ]


@pytest.mark.parametrize("writers", [2, 4])
def test_A02_processes_appending_at_once_on_postgres_extend_one_chain(
    pg_app: RfrApplication, data_dir: Path, tmp_path: Path, writers: int
) -> None:
    """A-02, issue 10: 2 and 4 processes appending at once leave one chain with every event
    once, in notification order, with no gap and no fork."""
    processes = _writers(data_dir, tmp_path, "ABCD"[:writers], 50)
    for p in processes:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err.decode()
    result = verify(pg_app.recorder)
    assert result.ok, result.reason
    references = _references(pg_app)
    assert result.checked == len(references) == writers * 50 == len(set(references))
    ids = [n.id for n in pg_app.recorder.select_notifications(start=1, limit=100_000)]
    assert ids == list(range(1, len(ids) + 1))


def test_A02_a_writer_killed_mid_write_on_postgres_loses_nothing_acknowledged(
    pg_app: RfrApplication, data_dir: Path, tmp_path: Path
) -> None:
    """A-02, issue 10: a process killed with SIGKILL while two others write loses no save it had
    acknowledged, leaves no half-written save, and the chain verifies."""
    processes = _writers(data_dir, tmp_path, "KAB", 400)
    victim = processes[0]
    assert victim.stdout is not None
    acknowledged = [victim.stdout.readline().decode().strip() for _ in range(20)]
    victim.send_signal(signal.SIGKILL)
    rest, _ = victim.communicate(timeout=60)
    acknowledged += rest.decode().split()
    for p in processes[1:]:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    result = verify(pg_app.recorder)
    assert result.ok, result.reason
    stored = _references(pg_app)
    killed = [r for r in stored if r.startswith("K-")]
    assert set(acknowledged) <= set(killed)
    assert len(killed) < 400  # it really died mid-way
    assert result.checked == len(stored) == 800 + len(killed)


def _waiting_for_lock(schema: str) -> int:
    with psycopg.connect(os.environ["RFR_POSTGRES_DSN"], autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT l.granted AND c.relname = 'rfrapplication_events' AND n.nspname = %s",
            (schema,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_A02_saves_from_threads_of_one_process_share_a_transaction_and_a_conflict_is_refused_alone(
    pg_app: RfrApplication, postgres_store: str
) -> None:
    """A-02 with group commit (ADR 0016): while another writer holds the events table's lock,
    the saves of this process's threads queue and are then written in one transaction; one of
    them that conflicts is refused alone, the others are stored, and the chain verifies."""
    case = Case("C-0", "Smith", "DS")
    pg_app.save(case)
    mine, theirs = pg_app.get(case.id, Case), pg_app.get(case.id, Case)
    mine.add_note("mine")
    theirs.add_note("theirs")
    commits = pg_app.recorder.group_commit
    outcomes: dict[str, object] = {}

    def save(name: str, *objs: Case) -> None:
        try:
            pg_app.save(*objs)
            outcomes[name] = "stored"
        except Exception as e:
            outcomes[name] = e

    def queued_behind_another_writer(saves: dict[str, tuple[Case, ...]]) -> None:
        with psycopg.connect(os.environ["RFR_POSTGRES_DSN"]) as holder:
            holder.execute(f"SET search_path TO {postgres_store}")
            holder.execute("LOCK TABLE rfrapplication_events IN EXCLUSIVE MODE")
            threads = [threading.Thread(target=save, args=(n, *objs)) for n, objs in saves.items()]
            threads[0].start()
            deadline = time.monotonic() + 30
            while _waiting_for_lock(postgres_store) < 1:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            for t in threads[1:]:
                t.start()
            while commits.waiting < len(saves) - 1:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            holder.rollback()
        for t in threads:
            t.join(60)
            assert not t.is_alive()

    before = (commits.batches, commits.saves)
    queued_behind_another_writer({f"new-{i}": (Case(f"C-new-{i}", "Jones", "DC"),) for i in range(7)})
    assert outcomes == {f"new-{i}": "stored" for i in range(7)}
    # The first waited for the lock alone; the six behind it went in one transaction.
    assert (commits.batches - before[0], commits.saves - before[1]) == (2, 7)

    outcomes.clear()
    queued_behind_another_writer(
        {"lead": (Case("C-lead", "Jones", "DC"),), "mine": (mine,), "theirs": (theirs,)}
        | {f"more-{i}": (Case(f"C-more-{i}", "Jones", "DC"),) for i in range(3)}
    )
    refused = [name for name, outcome in outcomes.items() if isinstance(outcome, ConcurrentModification)]
    assert len(refused) == 1 and refused[0] in ("mine", "theirs")
    assert all(outcome == "stored" for name, outcome in outcomes.items() if name not in refused)
    winner = "theirs" if refused == ["mine"] else "mine"
    assert pg_app.get(case.id, Case).notes == (winner,)
    result = verify(pg_app.recorder)
    # 1 + 7 + (1 + 1 + 3) events: every stored save linked once, the refused one not at all.
    assert result.ok and result.checked == 13


def test_A02_a_server_restart_costs_no_save_and_no_read(private_postgres: Any, data_dir: Path) -> None:
    """A-02 on a server that restarts (an upgrade, a fail-over): the pool's connections are all
    cut; with no check of each connection as it is taken (``POSTGRES_PRE_PING`` off: a round trip
    saved on every read), the first statement on a dead connection fails, the connection leaves
    the pool and the statement runs again on a new one. Reads and saves go on; the chain
    verifies."""
    app = open_app(data_dir, "postgres")
    try:
        first = Case("C-1", "Smith", "DS")
        app.save(first)
        head = app.recorder.chain_head()
        private_postgres.restart()
        assert app.recorder.chain_head() == head
        assert app.get(first.id, Case).reference == "C-1"
        private_postgres.restart()
        app.save(Case("C-2", "Jones", "DC"))
        private_postgres.restart()
        assert app.recorder.projection_positions()
        result = verify(app.recorder)
        assert result.ok and result.checked == 2
    finally:
        app.close()
