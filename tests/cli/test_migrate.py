"""`rfr migrate --from sqlite:PATH --to postgres:DSN` (issue 10): an embedded installation's event
store copied into an empty PostgreSQL schema, as an operator runs it (a real subprocess).

The sources are real SQLite stores written by the production services (``app_world``): users,
libraries enrolled and searched through the fake face engine, adjudications, a refusal, a match
report. Each target is a schema of its own in a private cluster on loopback (``postgres_store``).
The DSN given to the command carries a password, which the cluster (trusting loopback) ignores
and which must never be printed.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "application"))

from app_world import FixedClock, World, postgres_app, sqlite_app

from rfr.application.app import RfrApplication
from rfr.application.services.searches import LibrarySelection
from rfr.application.services.users import UserAdministration
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.search_request import SearchRequest
from rfr.infrastructure.audit import verify
from rfr.infrastructure.persistence.chain import EMPTY_HEAD as GENESIS
from rfr.infrastructure.persistence.chain import StoredRow, extend_chain
from rfr.infrastructure.persistence.migration import MigrationFailed, migrate

PASSWORD = "pw-never-printed-7Qx"


@pytest.fixture
def target_dsn(postgres_server: str, postgres_store: str) -> str:
    """The test schema's database, as an operator would name it: with a password."""
    return postgres_server.replace("://rfr@", f"://rfr:{PASSWORD}@", 1)


def build_source(data_dir: Path, libraries: int = 0) -> int:
    """A SQLite store written through the services; returns its number of events."""
    clock = FixedClock()
    world = World(sqlite_app(data_dir), clock).populate()
    request_id, _, _ = world.searched(2)
    first, second = (c.candidate_id for c in world.app.get(request_id, SearchRequest).candidates())
    world.searches.adjudicate("analyst", request_id, first, True, "same scar", identity_known=True)
    world.searches.adjudicate("analyst-2", request_id, second, False, "not the same person")
    with pytest.raises(PolicyRefusal):  # recorded on the request (S-05)
        world.searches.adjudicate("analyst", request_id, first, True, "again")
    world.searches.issue_match_report("analyst", request_id, first)
    for i in range(libraries):
        clock.advance(hours=1)
        _, library_id = world.enrolled_library(f"lib-{i}", n=3)
        if i % 10 == 0:
            request = world.searches.open(
                "analyst", world.probe(), [LibrarySelection(str(library_id), "seen near the scene")]
            )
            world.search(request.id, library_id)
    count = world.app.recorder.max_notification_id()
    world.app.close()
    return count


def start_migrate(source: str, target_dsn: str, schema: str, *args: str) -> subprocess.Popen[str]:
    """`rfr migrate` started in its own process, as an operator runs it."""
    command = ["migrate", "--from", source, "--to", f"postgres:{target_dsn}", "--schema", schema, *args]
    return subprocess.Popen(
        [sys.executable, "-m", "rfr.entrypoints.cli", *command],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=300)
    assert PASSWORD not in stdout + stderr
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def rfr_migrate(source: str, target_dsn: str, schema: str, *args: str) -> subprocess.CompletedProcess[str]:
    return finished(start_migrate(source, target_dsn, schema, *args))


def rows(app: RfrApplication) -> list[tuple[Any, ...]]:
    """Every stored event as stored: notification id, originator id, version, topic, state."""
    return [
        (n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, n.state)
        for n in app.recorder.select_notifications(start=1, limit=1_000_000)
    ]


def tables(app: RfrApplication) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection table, in a stable order."""
    return {
        table: sorted(app.recorder.query(f"SELECT * FROM {table}"), key=repr)
        for projection in app.projections
        for table in projection.tables
    }


def schema_tables(dsn: str, schema: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", (schema,)
        )
        return [name for (name,) in found]


def sqlite_dump(data_dir: Path) -> str:
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        return hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()


def test_A02_an_installation_migrated_to_postgres_verifies_and_replays_every_aggregate_the_same(
    tmp_path: Path, target_dsn: str, postgres_store: str
) -> None:
    """A-02: after `rfr migrate`, the PostgreSQL store holds the same events under the same
    notification ids, its chain verifies and its head is the source's (a head published before
    still anchors it), every aggregate replays to the same state on both sides, the projections
    equal a rebuild, and the service carries on writing there."""
    data_dir = tmp_path / "var"
    count = build_source(data_dir, libraries=65)
    assert count > 500, "the history should need more than one transaction of 500 events"
    source = sqlite_app(data_dir)
    source_head = source.recorder.chain_head()

    done = rfr_migrate(f"sqlite:{data_dir}", target_dsn, postgres_store)

    assert done.returncode == 0, done.stderr
    assert f"copied {count} events from {data_dir / 'events.sqlite3'} in " in done.stdout
    assert f"source head: {source_head}" in done.stdout
    assert f"target head: {source_head} (verified)" in done.stdout
    assert "biometric store" in done.stdout and "keys/master.key" in done.stdout
    target = postgres_app(tmp_path)
    try:
        result = verify(target.recorder)
        assert result.ok and result.checked == count and result.head == source_head
        assert rows(target) == rows(source)
        originators = sorted({row[1] for row in rows(source)})
        replayed = {oid: source.repository.get(oid).__dict__ for oid in originators}
        assert {oid: target.repository.get(oid).__dict__ for oid in originators} == replayed
        live = tables(target)
        assert live == tables(source)
        assert live["rfr_library_images"] and live["rfr_usage_facts"] and live["rfr_probe_searches"]
        assert target.rebuild_projections() == count
        assert tables(target) == live
        assert target.recorder.projection_positions() == {
            p.name: (p.version, count) for p in target.projections
        }
        # The service on the new store: the next event follows on, and the chain still verifies.
        UserAdministration(target, FixedClock()).record_training("admin", "analyst", True, "refresher")
        assert target.recorder.max_notification_id() == count + 1
        assert verify(target.recorder).ok
    finally:
        target.close()
        source.close()
    anchored = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "audit", "verify", "--anchor", str(source_head)],
        env={**os.environ, "RFR_DATA_DIR": str(tmp_path), "RFR_PERSISTENCE": "postgres"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert anchored.returncode == 0, anchored.stderr
    assert f"{count + 1} events verified" in anchored.stdout


def test_A02_a_tampered_source_is_refused_and_nothing_is_written_anywhere(
    tmp_path: Path, target_dsn: str, postgres_store: str
) -> None:
    """A-02: a source whose chain does not verify is refused with the position verification
    names, exit code 1; the target gets no table at all and the source is left as it was."""
    data_dir = tmp_path / "var"
    build_source(data_dir)
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        db.execute("DROP TRIGGER stored_events_no_update")
        db.execute("UPDATE stored_events SET state = state || x'20' WHERE rowid = 7")
    before = sqlite_dump(data_dir)

    done = rfr_migrate(f"sqlite:{data_dir / 'events.sqlite3'}", target_dsn, postgres_store)

    assert done.returncode == 1
    assert "BROKEN at position 7" in done.stderr and "nothing was copied" in done.stderr
    assert schema_tables(target_dsn, postgres_store) == []
    assert sqlite_dump(data_dir) == before


def test_a_target_holding_events_is_refused_and_left_as_it_was(
    tmp_path: Path, target_dsn: str, postgres_store: str
) -> None:
    """A schema already holding a store (here one in use) is refused before anything is written,
    exit code 3: its events, chain, head and projections are exactly as before."""
    data_dir = tmp_path / "var"
    build_source(data_dir)
    in_use = World(postgres_app(tmp_path / "other"), FixedClock()).populate()
    in_use.enrolled_library("theirs", n=2)
    target = in_use.app
    try:
        before = (rows(target), tables(target), target.recorder.chain_head())
        existing = schema_tables(target_dsn, postgres_store)

        done = rfr_migrate(f"sqlite:{data_dir}", target_dsn, postgres_store)

        assert done.returncode == 3, done.stderr
        assert f"already holds {len(before[0])} stored events" in done.stderr
        assert "nothing was written" in done.stderr
        assert (rows(target), tables(target), target.recorder.chain_head()) == before
        assert schema_tables(target_dsn, postgres_store) == existing
        assert verify(target.recorder).ok
    finally:
        target.close()


def test_a_source_that_is_no_rfr_store_is_refused_without_creating_or_changing_a_file(
    tmp_path: Path, target_dsn: str, postgres_store: str
) -> None:
    """A folder without events.sqlite3, a missing file, another program's SQLite file, or a
    --from that is not sqlite: exit code 2, no empty store created in its place, the foreign
    file unchanged (not even switched to write-ahead logging), nothing written to the target."""
    empty = tmp_path / "empty"
    empty.mkdir()
    foreign = tmp_path / "foreign.sqlite3"
    with closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.commit()
    before = foreign.read_bytes()
    refusals = {
        f"sqlite:{empty}": "no SQLite event store at",
        f"sqlite:{tmp_path / 'missing.sqlite3'}": "no SQLite event store at",
        f"sqlite:{foreign}": "is not an rfr event store: it has no rfr_audit_chain, rfr_audit_head",
        f"postgres:{empty}": "--from must be sqlite:PATH",
    }
    started = {source: start_migrate(source, target_dsn, postgres_store) for source in refusals}
    for source, reason in refusals.items():
        done = finished(started[source])
        assert done.returncode == 2, done.stderr
        assert reason in done.stderr
    assert list(empty.iterdir()) == [] and not (tmp_path / "missing.sqlite3").exists()
    assert foreign.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "empty",
        "foreign.sqlite3",
    ]
    assert schema_tables(target_dsn, postgres_store) == []


def test_A02_a_source_whose_notification_ids_skip_numbers_keeps_them_and_its_head(
    tmp_path: Path, target_dsn: str, postgres_store: str
) -> None:
    """A-02: the chain hashes each event's notification id, and an index's saved position is one,
    so the target keeps the source's ids, gaps included, and with them the very same chain.

    rfr's SQLite store has no gaps (rows are never deleted); this source is one a tool rewrote
    with ids 8 onwards moved up by 1000 and the chain recomputed over them, so it verifies."""
    data_dir = tmp_path / "var"
    count = build_source(data_dir)
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        for trigger in ("stored_events_no_update", "rfr_audit_chain_no_delete"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute("UPDATE stored_events SET rowid = -rowid WHERE rowid >= 8")
        db.execute("UPDATE stored_events SET rowid = 1000 - rowid WHERE rowid < 0")
        stored = db.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
        ).fetchall()
        links, head = extend_chain(GENESIS, [StoredRow(*row) for row in stored])
        db.execute("DELETE FROM rfr_audit_chain")
        db.executemany("INSERT INTO rfr_audit_chain VALUES (?,?,?,?)", links)
        db.execute("UPDATE rfr_audit_head SET count = ?, hash = ? WHERE id = 1", (head.count, head.hash))
    source = sqlite_app(data_dir)
    try:
        assert verify(source.recorder).ok
        ids = [row[0] for row in rows(source)]
        assert ids[6:8] == [7, 1008] and len(ids) == count

        done = rfr_migrate(f"sqlite:{data_dir}", target_dsn, postgres_store, "--batch", "5")

        assert done.returncode == 0, done.stderr
        assert f"target head: {head} (verified)" in done.stdout
        target = postgres_app(tmp_path)
        try:
            assert rows(target) == rows(source)
            assert verify(target.recorder).head == head
            last = ids[-1]
            assert target.recorder.projection_positions() == {
                p.name: (p.version, last) for p in target.projections
            }
            UserAdministration(target, FixedClock()).record_training("admin", "analyst", True, "refresher")
            assert target.recorder.max_notification_id() == last + 1
            assert verify(target.recorder).ok
        finally:
            target.close()
    finally:
        source.close()


@pytest.mark.parametrize("written", ["source", "target"])
def test_A02_a_write_to_either_store_during_the_migration_fails_it(
    tmp_path: Path, target_dsn: str, postgres_store: str, written: str
) -> None:
    """A-02: a process still writing to the source would lose its events, one writing to the
    target would interleave its own: either is found after the copy and fails the migration."""
    data_dir = tmp_path / "var"
    build_source(data_dir)
    wrote = []

    def write_meanwhile(copied: int, total: int) -> None:
        if wrote or copied < total // 2:
            return
        app = sqlite_app(data_dir) if written == "source" else postgres_app(tmp_path)
        try:
            UserAdministration(app, FixedClock()).record_training("admin", "analyst", True, "refresher")
        finally:
            app.close()
        wrote.append(copied)

    with pytest.raises(MigrationFailed) as failed:
        migrate(data_dir, target_dsn, postgres_store, batch_events=10, progress=write_meanwhile)

    assert wrote
    expected = "the source changed during the migration" if written == "source" else "another process wrote"
    assert expected in str(failed.value)
    assert PASSWORD not in str(failed.value)
