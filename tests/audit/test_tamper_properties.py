"""A-02 as a property: any single tampering with stored rows is detected, at the right position.

Each example writes a generated history to a real SQLite file through the application,
then edits the stored rows directly (as an insider with the database file would, triggers
dropped first) and checks that verification names the first position the edit affects.
"""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rfr_audit_samples import Case, open_app

from rfr.infrastructure.audit import verify
from rfr.infrastructure.persistence.chain import StoredRow, link_hash

TAMPERINGS = (
    "alter_state",
    "alter_topic",
    "alter_version",
    "alter_originator",
    "alter_and_relink",
    "remove",
    "insert",
    "swap",
    "truncate",
)

# Each inner list is one save (one transaction), so links are written in batches of 1-3.
histories = st.lists(
    st.lists(st.tuples(st.integers(0, 3), st.text(max_size=6)), min_size=1, max_size=3),
    min_size=1,
    max_size=5,
)


def _write_history(data_dir: Path, history: list[list[tuple[int, str]]]) -> int:
    app = open_app(data_dir)
    cases: dict[int, Case] = {}
    for batch in history:
        touched = []
        for index, note in batch:
            case = cases.get(index)
            if case is None:
                case = cases[index] = Case(f"C-{index}", "Smith", "DS")
            case.add_note(note)
            touched.append(case)
        app.save(*touched)
    count = app.recorder.chain_head().count
    assert verify(app.recorder).ok
    app.close()
    return count


def _rows(db: sqlite3.Connection) -> list[tuple]:
    return db.execute(
        "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
    ).fetchall()


def _tamper(db: sqlite3.Connection, kind: str, n: int, data: st.DataObject) -> int:
    """Applies one tampering to a store of ``n`` chained events; returns the position to blame."""
    for trigger in ("no_update", "no_delete"):
        db.execute(f"DROP TRIGGER stored_events_{trigger}")
        db.execute(f"DROP TRIGGER rfr_audit_chain_{trigger}")
    k = data.draw(st.integers(1, n), label="position")
    if kind == "alter_state":
        (state,) = db.execute("SELECT state FROM stored_events WHERE rowid = ?", (k,)).fetchone()
        forged = data.draw(st.binary(max_size=40).filter(lambda b: b != state), label="forged state")
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (forged, k))
        return k
    if kind == "alter_topic":
        db.execute("UPDATE stored_events SET topic = topic || 'x' WHERE rowid = ?", (k,))
        return k
    if kind == "alter_version":
        db.execute(
            "UPDATE stored_events SET originator_version = originator_version + 1000 WHERE rowid = ?", (k,)
        )
        return k
    if kind == "alter_originator":
        db.execute("UPDATE stored_events SET originator_id = ? WHERE rowid = ?", (uuid.uuid4().hex, k))
        return k
    if kind == "alter_and_relink":
        # The careful forger also recomputes that event's own link; the next link (or the
        # head, for the last event) still remembers the old hash.
        row = StoredRow(*_rows(db)[k - 1])
        row = StoredRow(
            row.notification_id, row.originator_id, row.originator_version, row.topic, row.state + b" "
        )
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (row.state, k))
        (previous,) = db.execute(
            "SELECT previous_hash FROM rfr_audit_chain WHERE position = ?", (k,)
        ).fetchone()
        db.execute("UPDATE rfr_audit_chain SET hash = ? WHERE position = ?", (link_hash(previous, k, row), k))
        return k + 1 if k < n else n
    if kind == "remove":
        db.execute("DELETE FROM stored_events WHERE rowid = ?", (k,))
        return k
    if kind == "insert":
        at = data.draw(st.integers(1, n + 1), label="insert at")
        db.execute("UPDATE stored_events SET rowid = rowid + ? WHERE rowid >= ?", (n + 10, at))
        db.execute("UPDATE stored_events SET rowid = rowid - ? WHERE rowid > ?", (n + 9, n + 9))
        db.execute(
            "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, 1, 'rfr_audit_samples:Case.Opened', x'7b7d')",
            (at, uuid.uuid4().hex),
        )
        return at
    if kind == "swap":
        assume(n >= 2)
        i, j = sorted(
            data.draw(st.lists(st.integers(1, n), min_size=2, max_size=2, unique=True), label="swap")
        )
        rows = {r[0]: r[1:] for r in _rows(db)}
        db.execute("DELETE FROM stored_events WHERE rowid IN (?, ?)", (i, j))
        db.executemany(
            "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
            "VALUES (?,?,?,?,?)",
            [(i, *rows[j]), (j, *rows[i])],
        )
        return i
    if kind == "truncate":
        # Removes the newest events and their links together; only the head remembers them.
        db.execute("DELETE FROM stored_events WHERE rowid >= ?", (k,))
        db.execute("DELETE FROM rfr_audit_chain WHERE position >= ?", (k,))
        return k
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", TAMPERINGS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories, data=st.data())
def test_A02_any_single_tampering_is_detected_at_its_position(
    kind: str, history: list[list[tuple[int, str]]], data: st.DataObject
) -> None:
    """A-02: any single tampering is detected at its position."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        n = _write_history(data_dir, history)
        with sqlite3.connect(data_dir / "events.sqlite3") as db:
            expected = _tamper(db, kind, n, data)

        app = open_app(data_dir)
        result = verify(app.recorder)
        app.close()

    assert not result.ok, kind
    assert result.first_bad_position == expected, (kind, result.reason)
    assert result.checked == expected - 1
