"""The verification rules themselves, on rows built in memory and on a real SQLite file (A-02)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from rfr_audit_samples import Case

from rfr.application.app import RfrApplication
from rfr.infrastructure.audit import verify, verify_rows
from rfr.infrastructure.persistence.chain import EMPTY_HEAD, ChainHead, StoredRow, extend_chain, link_hash


def _history(n: int) -> tuple[list[StoredRow], list, ChainHead]:
    rows = [StoredRow(i, f"{i:032x}", 1, "t:E", f'{{"n":{i}}}'.encode()) for i in range(1, n + 1)]
    links, head = extend_chain(EMPTY_HEAD, rows)
    return rows, links, head


def test_A02_intact_rows_verify_and_the_hash_is_pinned() -> None:
    """A-02: intact rows verify and the hash is pinned."""
    rows, links, head = _history(3)
    result = verify_rows(rows, links, head)
    assert result.ok and result.checked == 3 and result.head == head
    # The encoding written out independently, as an outside verifier would implement it
    # from docs/adr/0005: a change to it must be a deliberate new chain format.
    fields = [bytes(32), b"1", b"1", b"ab", b"1", b"t", b"x"]
    message = b"rfr-audit-chain/v1" + b"".join(len(f).to_bytes(8, "big") + f for f in fields)
    assert (
        link_hash(EMPTY_HEAD.hash, 1, StoredRow(1, "ab", 1, "t", b"x")) == hashlib.sha256(message).hexdigest()
    )


def test_A02_field_boundaries_are_unambiguous() -> None:
    """A-02: field boundaries are unambiguous."""
    a = link_hash(EMPTY_HEAD.hash, 1, StoredRow(1, "ab", 1, "c", b""))
    b = link_hash(EMPTY_HEAD.hash, 1, StoredRow(1, "a", 1, "bc", b""))
    assert a != b


def test_A02_head_tampering_is_named() -> None:
    """A-02: head tampering is named."""
    rows, links, _ = _history(3)
    missing = verify_rows(rows, links, None)
    assert (missing.ok, missing.first_bad_position, missing.reason) == (
        False,
        4,
        "chain head is missing (head deleted)",
    )
    behind = verify_rows(rows, links, ChainHead(2, links[1].hash))
    assert (behind.first_bad_position, "head altered or rolled back" in behind.reason) == (3, True)
    wrong_hash = verify_rows(rows, links, ChainHead(3, "0" * 64))
    assert (wrong_hash.first_bad_position, "does not match the last link" in wrong_hash.reason) == (3, True)


def test_A02_link_tampering_is_named() -> None:
    """A-02: link tampering is named."""
    rows, links, head = _history(4)
    renumbered = [*links[:2], *links[3:]]
    assert verify_rows(rows, renumbered, head).first_bad_position == 3
    relinked = list(links)
    relinked[1] = type(links[1])(2, 2, "1" * 64, links[1].hash)
    result = verify_rows(rows, relinked, head)
    assert result.first_bad_position == 2 and "chain link altered" in result.reason


def test_A02_anchor_catches_a_rewritten_chain() -> None:
    """A-02: anchor catches a rewritten chain."""
    rows, links, head = _history(4)
    published = ChainHead(2, links[1].hash)
    assert verify_rows(rows, links, head, anchor=published).ok
    # A forger who rebuilds every link and the head after changing event 1 passes the
    # local checks; only the head published earlier exposes it.
    forged_rows = [StoredRow(1, rows[0].originator_id, 1, "t:E", b'{"n":99}'), *rows[1:]]
    forged_links, forged_head = extend_chain(EMPTY_HEAD, forged_rows)
    assert verify_rows(forged_rows, forged_links, forged_head).ok
    caught = verify_rows(forged_rows, forged_links, forged_head, anchor=published)
    assert (caught.ok, caught.first_bad_position) == (False, 2)
    beyond = verify_rows(rows[:2], links[:2], ChainHead(2, links[1].hash), anchor=head)
    assert (beyond.ok, beyond.first_bad_position) == (False, 3)


def test_anchor_text_round_trips() -> None:
    head = ChainHead(12, "ab" * 32)
    assert ChainHead.parse(str(head)) == head
    for bad in ("12", "x:" + "ab" * 32, "12:abc", "12:" + "zz" * 32):
        with pytest.raises(ValueError):
            ChainHead.parse(bad)


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        # Same bytes, other storage class: the library could no longer decode it.
        ("UPDATE stored_events SET state = CAST(state AS TEXT) WHERE rowid = 2", "column types"),
        # Same UUID, other spelling: what is verified is the text on disk.
        ("UPDATE stored_events SET originator_id = upper(originator_id) WHERE rowid = 2", "event altered"),
    ],
)
def test_A02_representation_changes_are_detected(
    sqlite_app: RfrApplication, data_dir: Path, statement: str, why: str
) -> None:
    """A-02: representation changes are detected."""
    case = Case("C-1", "Smith", "DS")
    case.add_note("n")
    sqlite_app.save(case)
    while not any(c in "abcdef" for c in case.id.hex):  # upper() must change something
        case = Case("C-1", "Smith", "DS")
    sqlite_app.save(case)
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        db.execute("DROP TRIGGER stored_events_no_update")
        db.execute(statement)
    result = verify(sqlite_app.recorder)
    assert (result.ok, result.first_bad_position) == (False, 2)
    assert why in result.reason
