"""The event store on a real SQLite file (and in memory) keeps the audit hash chain (A-01, A-02)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eventsourcing.application import AggregateNotFoundError
from rfr_audit_samples import Case, Status, open_app

from rfr.application.app import RfrApplication
from rfr.infrastructure.audit import verify
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.persistence.chain import EMPTY_HEAD, AuditChainError, ChainHead
from rfr.infrastructure.settings import Settings


def _links(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM rfr_audit_chain ORDER BY position").fetchall()


def test_A02_events_survive_reopen_and_the_chain_continues(data_dir: Path) -> None:
    """A-02: events survive reopen and the chain continues."""
    app = open_app(data_dir)
    case = Case("C-1", "Smith", "DS")
    case.add_note("first")
    app.save(case)
    other = Case("C-2", "Jones", "DC")
    app.save(other)
    head_before = app.recorder.chain_head()
    app.close()

    store = data_dir / "events.sqlite3"
    assert store.is_file()
    links_before = _links(store)
    assert [link[0] for link in links_before] == [1, 2, 3]

    app = open_app(data_dir)
    reread = app.get(case.id, Case)
    assert (reread.reference, reread.notes, reread.status) == ("C-1", ("first",), Status.OPEN)
    assert verify(app.recorder).ok
    reread.add_note("second")
    reread.close("charged")
    app.save(reread)
    head_after = app.recorder.chain_head()
    result = verify(app.recorder)
    app.close()

    assert head_before == ChainHead(3, links_before[-1][3])
    assert head_after.count == 5
    assert result.ok and result.checked == 5 and result.head == head_after
    links_after = _links(store)
    # Appending never rewrites a link: the old chain is a prefix of the new one.
    assert links_after[:3] == links_before
    assert links_after[3][2] == head_before.hash


def test_A02_empty_store_verifies_with_the_genesis_head(sqlite_app: RfrApplication) -> None:
    """A-02: empty store verifies with the genesis head."""
    result = verify(sqlite_app.recorder)
    assert result.ok and result.checked == 0 and result.head == EMPTY_HEAD


def test_A02_memory_store_keeps_the_same_chain(tmp_path: Path) -> None:
    """A-02: memory store keeps the same chain."""
    app = open_app(tmp_path, persistence="memory")
    case = Case("C-9", "Patel", "DI")
    case.tag("urgent")
    app.save(case, Case("C-10", "Khan", "DS"))
    result = verify(app.recorder)
    assert result.ok and result.checked == 3
    assert app.recorder.chain_head() == result.head
    assert not list(tmp_path.iterdir()), "memory persistence must not touch the data dir"


def test_A02_memory_store_detects_an_altered_event(tmp_path: Path) -> None:
    """A-02: memory store detects an altered event."""
    app = open_app(tmp_path, persistence="memory")
    case = Case("C-9", "Patel", "DI")
    case.add_note("kept")
    app.save(case)
    stored = app.recorder._stored_events
    stored[1] = type(stored[1])(
        stored[1].originator_id, stored[1].originator_version, stored[1].topic, b'{"note":"forged"}'
    )
    result = verify(app.recorder)
    assert not result.ok and result.first_bad_position == 2 and result.checked == 1


def test_A01_database_refuses_updates_and_deletes_of_history(
    sqlite_app: RfrApplication, data_dir: Path
) -> None:
    """A-01: database refuses updates and deletes of history."""
    sqlite_app.save(Case("C-1", "Smith", "DS"))
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        for statement in (
            "UPDATE stored_events SET topic = 'x'",
            "DELETE FROM stored_events",
            "UPDATE rfr_audit_chain SET hash = 'x'",
            "DELETE FROM rfr_audit_chain",
            "DELETE FROM rfr_audit_head",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="A-0"):
                db.execute(statement)
    assert verify(sqlite_app.recorder).ok


def test_env_selects_persistence_and_the_app_refuses_an_unchained_store(tmp_path: Path) -> None:
    sqlite_env = application_env(Settings(data_dir=tmp_path, persistence="sqlite"))
    assert sqlite_env["SQLITE_DBNAME"] == str(tmp_path / "events.sqlite3")
    assert sqlite_env["PERSISTENCE_MODULE"] == "rfr.infrastructure.persistence.sqlite"
    settings = Settings.from_env({"RFR_DATA_DIR": str(tmp_path), "RFR_PERSISTENCE": "memory"})
    assert application_env(settings) == {"PERSISTENCE_MODULE": "rfr.infrastructure.persistence.memory"}
    with pytest.raises(ValueError, match="PERSISTENCE_MODULE"):
        RfrApplication(env={})
    with pytest.raises(TypeError, match="A-02"):
        RfrApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def test_get_checks_the_aggregate_type(sqlite_app: RfrApplication) -> None:
    case = Case("C-1", "Smith", "DS")
    sqlite_app.save(case)
    assert sqlite_app.get(case.id).id == case.id
    with pytest.raises(TypeError, match="not a RfrApplication"):
        sqlite_app.get(case.id, RfrApplication)
    with pytest.raises(AggregateNotFoundError):
        sqlite_app.get(Case("C-2", "x", "y").id)


def test_A02_a_store_whose_head_was_deleted_refuses_to_extend_the_chain(
    sqlite_app: RfrApplication, data_dir: Path
) -> None:
    """A-02: a store whose head was deleted refuses to extend the chain."""
    sqlite_app.save(Case("C-1", "Smith", "DS"))
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        db.execute("DROP TRIGGER rfr_audit_head_no_delete")
        db.execute("DELETE FROM rfr_audit_head")
    # Not a ConcurrentModification: retrying could never succeed, and an unchained event
    # must not be written.
    with pytest.raises(AuditChainError, match="tampered"):
        sqlite_app.save(Case("C-2", "Jones", "DC"))
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM stored_events").fetchone() == (1,)
    result = verify(sqlite_app.recorder)
    assert (result.ok, result.first_bad_position) == (False, 2)
