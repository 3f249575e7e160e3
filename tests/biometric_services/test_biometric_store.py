"""The encrypted biometric store: round trips, encryption at rest, erasure (R-05), key handling."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from rfr.adapters.biometric_store import EncryptedFileStore, MasterKey, MasterKeyError
from rfr.application.errors import DuplicateRecord, RecordNotFound, RecordUnreadable
from rfr.application.ports import BiometricStore, RecordKind


@pytest.fixture
def store(tmp_path: Path) -> EncryptedFileStore:
    opened = EncryptedFileStore.in_data_dir(tmp_path)
    yield opened
    opened.close()


def _all_bytes_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _blob_files(store: EncryptedFileStore) -> list[Path]:
    return [p for p in (store.root / "blobs").rglob("*") if p.is_file()]


def test_is_a_biometric_store(store):
    assert isinstance(store, BiometricStore)


def test_image_round_trip_returns_the_content_hash(store):
    data = os.urandom(5000)
    digest = store.put("img-1", RecordKind.IMAGE, data, owner="lib-1")
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert store.get("img-1") == data
    info = store.info("img-1")
    assert (info.kind, info.owner, info.content_hash, info.size) == (RecordKind.IMAGE, "lib-1", digest, 5000)
    assert store.exists("img-1") and not store.exists("img-2")


def test_template_round_trip_keeps_the_algorithm(store):
    vector = np.random.default_rng(1).normal(size=128).astype(np.float32)
    store.put_template("tpl-1", vector, owner="lib-1", algorithm_id="alg-a")
    back = store.get_template("tpl-1")
    assert back.algorithm_id == "alg-a" and back.owner == "lib-1"
    assert back.vector.dtype == np.float32 and np.array_equal(back.vector, vector)
    assert store.info("tpl-1").dimension == 128


def test_records_lists_by_owner_and_kind(store):
    store.put("a", RecordKind.IMAGE, b"1", owner="lib-1")
    store.put("b", RecordKind.ANALYSIS, b"2", owner="lib-1")
    store.put("c", RecordKind.IMAGE, b"3", owner="lib-2")
    assert [i.record_id for i in store.records("lib-1")] == ["a", "b"]
    assert [i.record_id for i in store.records("lib-1", RecordKind.IMAGE)] == ["a"]


def test_plaintext_never_reaches_the_disk(store, tmp_path):
    marker = os.urandom(64)
    store.put("img-1", RecordKind.IMAGE, marker * 10, owner="lib-1")
    on_disk = _all_bytes_under(tmp_path)
    assert marker not in on_disk
    assert len(_blob_files(store)) == 1


def test_each_record_has_its_own_data_key(store):
    store.put("a", RecordKind.IMAGE, b"same bytes", owner="o")
    store.put("b", RecordKind.IMAGE, b"same bytes", owner="o")
    with sqlite3.connect(store.root / "keys.sqlite3") as db:
        wrapped = [row[0] for row in db.execute("SELECT wrapped_key FROM biometric_records")]
    assert len(set(wrapped)) == 2
    files = [p.read_bytes() for p in _blob_files(store)]
    assert files[0] != files[1]


def test_a_record_is_never_overwritten(store):
    store.put("img-1", RecordKind.IMAGE, b"first", owner="lib-1")
    with pytest.raises(DuplicateRecord):
        store.put("img-1", RecordKind.IMAGE, b"second", owner="lib-1")
    assert store.get("img-1") == b"first"
    assert len(_blob_files(store)) == 1


def test_R05_erasure_destroys_key_and_bytes_irrecoverably(store, tmp_path):
    """R-05: after erasure no file of the store holds the record's key or ciphertext."""
    store.put("keep", RecordKind.IMAGE, b"other person", owner="lib-1")
    store.put("img-1", RecordKind.IMAGE, os.urandom(2048), owner="lib-1")
    with sqlite3.connect(store.root / "keys.sqlite3") as db:
        query = "SELECT wrapped_key FROM biometric_records WHERE record_id = 'img-1'"
        (wrapped,) = db.execute(query).fetchone()
    ciphertexts = {p.read_bytes() for p in _blob_files(store)}
    assert wrapped in _all_bytes_under(tmp_path)

    assert store.erase("img-1") is True

    assert not store.exists("img-1") and store.info("img-1") is None
    with pytest.raises(RecordNotFound):
        store.get("img-1")
    leftover = _all_bytes_under(tmp_path)
    assert wrapped not in leftover
    assert len(_blob_files(store)) == 1
    gone = [c for c in ciphertexts if c not in {p.read_bytes() for p in _blob_files(store)}]
    assert len(gone) == 1 and gone[0][-64:] not in leftover
    assert store.get("keep") == b"other person"
    assert store.erase("img-1") is False


def test_master_key_is_created_private_and_reused(tmp_path):
    first = EncryptedFileStore.in_data_dir(tmp_path)
    first.put("img-1", RecordKind.IMAGE, b"evidence", owner="p")
    first.close()
    key_file = tmp_path / "keys" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert len(key_file.read_bytes()) == 32
    again = EncryptedFileStore.in_data_dir(tmp_path)
    assert again.get("img-1") == b"evidence"
    again.close()


def test_a_master_key_readable_by_others_is_refused(tmp_path):
    EncryptedFileStore.in_data_dir(tmp_path).close()
    key_file = tmp_path / "keys" / "master.key"
    key_file.chmod(0o644)
    with pytest.raises(MasterKeyError, match="readable by others"):
        EncryptedFileStore.in_data_dir(tmp_path)


def test_another_master_key_cannot_read(tmp_path):
    store = EncryptedFileStore(tmp_path / "bio", MasterKey(os.urandom(32)))
    store.put("img-1", RecordKind.IMAGE, b"evidence", owner="p")
    store.close()
    other = EncryptedFileStore(tmp_path / "bio", MasterKey(os.urandom(32)))
    with pytest.raises(RecordUnreadable, match="another master key"):
        other.get("img-1")
    other.close()


def test_altered_or_swapped_files_do_not_decrypt(store):
    store.put("a", RecordKind.IMAGE, b"person a", owner="o")
    store.put("b", RecordKind.IMAGE, b"person b", owner="o")
    with sqlite3.connect(store.root / "keys.sqlite3") as db:
        names = dict(db.execute("SELECT record_id, blob_name FROM biometric_records"))
    path_a = store.root / "blobs" / names["a"][:2] / names["a"]
    path_b = store.root / "blobs" / names["b"][:2] / names["b"]
    path_b.write_bytes(path_a.read_bytes())
    with pytest.raises(RecordUnreadable):
        store.get("b")
    damaged = bytearray(path_a.read_bytes())
    damaged[-1] ^= 1
    path_a.write_bytes(bytes(damaged))
    with pytest.raises(RecordUnreadable):
        store.get("a")


def test_orphan_files_left_by_a_crash_are_swept(store):
    store.put("a", RecordKind.IMAGE, b"kept", owner="o")
    orphan = store.root / "blobs" / "ff" / ("ff" + "0" * 30)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"ciphertext whose key row was never written")
    assert store.sweep_orphans() == 1
    assert not orphan.exists() and store.get("a") == b"kept"


def test_templates_must_be_finite_vectors_with_an_algorithm(store):
    with pytest.raises(ValueError, match="T-01"):
        store.put_template("t", np.ones(4, np.float32), owner="o", algorithm_id="")
    with pytest.raises(ValueError):
        store.put_template("t", np.array([1.0, np.nan], np.float32), owner="o", algorithm_id="a")
    assert not store.exists("t")
