"""The encrypted store lists what was written, by position, for the reconciliation (ADR 0015)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from rfr.adapters.biometric_store import EncryptedFileStore
from rfr.application.ports import RecordKind

# The key table as the first release created it, before positions.
OLD_TABLE = """
CREATE TABLE old_records (
    record_id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT NOT NULL, content_hash TEXT NOT NULL,
    size INTEGER NOT NULL, algorithm_id TEXT, dimension INTEGER, blob_name TEXT NOT NULL UNIQUE,
    master_key_id TEXT NOT NULL, wrapped_key BLOB NOT NULL
);
"""
OLD_COLUMNS = (
    "record_id, kind, owner, content_hash, size, algorithm_id, dimension, blob_name, "
    "master_key_id, wrapped_key"
)


@pytest.fixture
def store(tmp_path: Path) -> EncryptedFileStore:
    opened = EncryptedFileStore.in_data_dir(tmp_path)
    yield opened
    opened.close()


def _ids(store: EncryptedFileStore, after: int = 0, limit: int = 100) -> list[tuple[int, str]]:
    return [(w.position, w.info.record_id) for w in store.written_after(after, older_than=0, limit=limit)]


def test_positions_follow_the_writes_and_are_never_reused(store: EncryptedFileStore) -> None:
    for name in ("a", "b", "c"):
        store.put(name, RecordKind.IMAGE, name.encode(), owner="lib")
    assert _ids(store) == [(1, "a"), (2, "b"), (3, "c")]
    store.erase("c")  # the newest: a counter kept apart, not max(position) + 1
    store.put("d", RecordKind.IMAGE, b"d", owner="lib")
    assert _ids(store) == [(1, "a"), (2, "b"), (4, "d")]
    assert _ids(store, after=1, limit=1) == [(2, "b")]
    (listed,) = store.written_after(3, older_than=0, limit=5)
    assert listed.info == store.info("d")


def test_a_refused_write_takes_no_position(store: EncryptedFileStore) -> None:
    store.put("a", RecordKind.IMAGE, b"a", owner="lib")
    with pytest.raises(Exception, match="already exists"):
        store.put("a", RecordKind.IMAGE, b"again", owner="lib")
    store.put("b", RecordKind.IMAGE, b"b", owner="lib")
    assert _ids(store) == [(1, "a"), (2, "b")]


def test_the_listing_ends_before_the_first_record_written_too_recently(store: EncryptedFileStore) -> None:
    store.put("old", RecordKind.IMAGE, b"old", owner="lib")
    time.sleep(0.3)
    store.put("new", RecordKind.IMAGE, b"new", owner="lib")
    listed = store.written_after(0, older_than=0.2, limit=10)
    assert [w.info.record_id for w in listed] == ["old"]
    assert store.written_after(0, older_than=60, limit=10) == []
    with pytest.raises(ValueError, match="limit"):
        store.written_after(0, older_than=0, limit=0)


def test_the_reconciled_position_is_kept_and_never_goes_back(
    tmp_path: Path, store: EncryptedFileStore
) -> None:
    assert store.reconciled_position() == 0
    store.record_reconciled(5)
    store.record_reconciled(3)
    assert store.reconciled_position() == 5
    store.close()
    reopened = EncryptedFileStore.in_data_dir(tmp_path)
    assert reopened.reconciled_position() == 5
    reopened.close()


def test_a_store_written_before_positions_gets_them_in_row_order_when_opened(tmp_path: Path) -> None:
    store = EncryptedFileStore.in_data_dir(tmp_path)
    for name in ("a", "b", "c"):
        store.put(name, RecordKind.IMAGE, name.encode(), owner="lib")
    store.close()
    with sqlite3.connect(tmp_path / "biometrics" / "keys.sqlite3") as db:
        db.executescript(OLD_TABLE)
        db.execute(f"INSERT INTO old_records SELECT {OLD_COLUMNS} FROM biometric_records ORDER BY position")
        db.executescript(
            "DROP TABLE biometric_records; DROP TABLE biometric_positions; "
            "ALTER TABLE old_records RENAME TO biometric_records;"
        )
    db.close()

    upgraded = EncryptedFileStore.in_data_dir(tmp_path)
    # Written long ago as far as anyone can tell: listed whatever the grace period.
    assert [(w.position, w.info.record_id) for w in upgraded.written_after(0, older_than=3600, limit=10)] == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
    ]
    assert upgraded.get("b") == b"b"
    upgraded.put("d", RecordKind.IMAGE, b"d", owner="lib")
    assert _ids(upgraded)[-1] == (4, "d")
    upgraded.close()
    again = EncryptedFileStore.in_data_dir(tmp_path)  # numbered once: opening again changes nothing
    assert _ids(again) == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
    again.close()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_sweeping_looks_only_at_files_older_than_asked(store: EncryptedFileStore) -> None:
    store.put("kept", RecordKind.IMAGE, b"kept", owner="lib")
    blobs = store.root / "blobs" / "ff"
    blobs.mkdir(parents=True, exist_ok=True)
    old, fresh = blobs / ("ff" + "1" * 30), blobs / ("ff" + "2" * 30)
    old_tmp, fresh_tmp = blobs / ("ff" + "3" * 30 + ".tmp"), blobs / ("ff" + "4" * 30 + ".tmp")
    for path in (old, fresh, old_tmp, fresh_tmp):
        path.write_bytes(b"ciphertext whose key row was never written")
    for path in (old, old_tmp):
        _age(path, 120)
    for path in store.root.joinpath("blobs").rglob("*"):
        if path.is_file() and path.parent.name != "ff":
            _age(path, 120)  # the kept record's own file, as old: still named, still kept

    assert store.sweep_orphans(older_than=60) == 2
    assert not old.exists() and not old_tmp.exists()
    assert fresh.exists() and fresh_tmp.exists() and store.get("kept") == b"kept"
    assert store.sweep_orphans() == 1  # no age asked: every unnamed file but an unfinished write
    assert fresh_tmp.exists() and not fresh.exists()
