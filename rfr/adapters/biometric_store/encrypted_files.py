"""``BiometricStore`` on local files: one encrypted file per record, keys in a SQLite table.

Layout under ``root`` (``$RFR_DATA_DIR/biometrics``):

- ``blobs/<2 hex>/<32 hex>``: the record's bytes, AES-256-GCM under the record's own data
  key, authenticated together with the record id and kind (a file moved onto another
  record does not decrypt). File names are random, so they tell nothing about the record.
- ``keys.sqlite3``: one row per record with its data key wrapped by the master key
  (``MasterKey``), its kind, owner, content hash, size and, for templates, algorithm and
  dimension. The plain data key exists only in memory while a record is read or written.

Erasure (R-05) is crypto-shredding first: the key row is deleted in a transaction with
``secure_delete`` on, so SQLite overwrites the freed bytes with zeros, and the rollback
journal (which briefly holds the old page) is deleted at commit. Only then is the file
overwritten and unlinked; if that step fails, what remains is ciphertext whose key no
longer exists anywhere, and ``sweep_orphans`` removes it later. Flash storage and
copy-on-write file systems may keep old blocks of any file, which is why destroying the key
is the step the guarantee rests on.

Writes put the file first and the row second, so a crash can leave an orphan file (never
readable: no key) but never a row without its bytes.

Every row also carries its *position*, from a counter kept in ``biometric_positions`` and
advanced in the row's own transaction (so positions follow commit order and are never reused,
even after the newest row is erased), and the time it was written. ``written_after`` lists
rows by position, so a caller that remembers how far it has looked (``reconciled_position``,
``record_reconciled``) reads only what was written since: the reconciliation of records that
no event names (ADR 0015). A store written before positions existed gets them, in row order,
when it is next opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rfr.adapters.biometric_store.master_key import NONCE_BYTES, MasterKey
from rfr.application.errors import DuplicateRecord, RecordNotFound, RecordUnreadable
from rfr.application.ports import RecordKind, StoredRecordInfo, StoredTemplate, WrittenRecord

FILE_MAGIC = b"RFRB1"
_RECORD_CONTEXT = b"rfr-record/1:"
# Seconds to wait for another process's write lock (the API and the worker share the table).
SQLITE_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS biometric_records (
    record_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    algorithm_id TEXT,
    dimension INTEGER,
    blob_name TEXT NOT NULL UNIQUE,
    master_key_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    position INTEGER,
    written_at REAL
);
CREATE INDEX IF NOT EXISTS biometric_records_by_owner ON biometric_records (owner, kind);
CREATE TABLE IF NOT EXISTS biometric_positions (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO biometric_positions VALUES ('written', 0), ('reconciled', 0);
"""
# Columns added after the first release, each with its type: added to an older table on open.
_ADDED_COLUMNS = (("position", "INTEGER"), ("written_at", "REAL"))
_BY_POSITION = (
    "CREATE UNIQUE INDEX IF NOT EXISTS biometric_records_by_position ON biometric_records (position)"
)

_INFO_COLUMNS = "record_id, kind, owner, content_hash, size, algorithm_id, dimension"


def content_hash(data: bytes) -> str:
    """The hash events carry for an image or template: SHA-256 of the plaintext bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _info(row: tuple) -> StoredRecordInfo:
    record_id, kind, owner, digest, size, algorithm_id, dimension = row
    return StoredRecordInfo(record_id, RecordKind(kind), owner, digest, size, algorithm_id, dimension)


def _aad(record_id: str, kind: RecordKind) -> bytes:
    return _RECORD_CONTEXT + kind.value.encode() + b":" + record_id.encode()


class EncryptedFileStore:
    """The embedded default ``BiometricStore``; safe to share between threads."""

    def __init__(self, root: Path, master_key: MasterKey) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._blobs.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.root.chmod(0o700)
        self._master = master_key
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.root / "keys.sqlite3",
            timeout=SQLITE_TIMEOUT_S,
            check_same_thread=False,
            isolation_level=None,
        )
        # A rollback journal (not WAL): after an erasure no file of the store keeps the key,
        # whereas WAL frames would hold it until the next full checkpoint.
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._number_rows()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> EncryptedFileStore:
        """The store of one deployment: ``biometrics/`` with the key in ``keys/master.key``."""
        data_dir = Path(data_dir)
        return cls(data_dir / "biometrics", MasterKey.load_or_create(data_dir / "keys" / "master.key"))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    def _path(self, blob_name: str) -> Path:
        return self._blobs / blob_name[:2] / blob_name

    def _number_rows(self) -> None:
        """Adds the position columns to a table written before them, and numbers its rows."""
        with self._transaction() as cursor:
            columns = {row[1] for row in cursor.execute("PRAGMA table_info(biometric_records)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in columns:
                    cursor.execute(f"ALTER TABLE biometric_records ADD COLUMN {name} {kind}")
            cursor.execute(_BY_POSITION)
            unnumbered = cursor.execute(
                "SELECT rowid FROM biometric_records WHERE position IS NULL ORDER BY rowid"
            ).fetchall()
            if not unnumbered:
                return
            (last,) = cursor.execute(
                "SELECT value FROM biometric_positions WHERE name = 'written'"
            ).fetchone()
            cursor.executemany(
                "UPDATE biometric_records SET position = ? WHERE rowid = ?",
                [(last + n, rowid) for n, (rowid,) in enumerate(unnumbered, start=1)],
            )
            cursor.execute(
                "UPDATE biometric_positions SET value = ? WHERE name = 'written'", (last + len(unnumbered),)
            )

    # -- writing ----------------------------------------------------------------------------

    def put(
        self,
        record_id: str,
        kind: RecordKind,
        data: bytes,
        *,
        owner: str,
        algorithm_id: str | None = None,
        dimension: int | None = None,
    ) -> str:
        if not record_id or not owner:
            raise ValueError("a record needs an id and an owner")
        kind = RecordKind(kind)
        data = bytes(data)
        if self.exists(record_id):
            raise DuplicateRecord(f"biometric record {record_id!r} already exists")
        digest = content_hash(data)
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(data_key).encrypt(nonce, data, _aad(record_id, kind))
        wrapped = self._master.wrap(data_key, record_id)
        del data_key
        blob_name = os.urandom(16).hex()
        path = self._path(blob_name)
        _write_new_file(path, FILE_MAGIC + nonce + sealed)
        try:
            with self._transaction() as cursor:
                (position,) = cursor.execute(
                    "UPDATE biometric_positions SET value = value + 1 WHERE name = 'written' RETURNING value"
                ).fetchone()
                cursor.execute(
                    "INSERT INTO biometric_records (record_id, kind, owner, content_hash, size, "
                    "algorithm_id, dimension, blob_name, master_key_id, wrapped_key, position, written_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record_id,
                        kind.value,
                        owner,
                        digest,
                        len(data),
                        algorithm_id,
                        dimension,
                        blob_name,
                        self._master.key_id,
                        wrapped,
                        position,
                        time.time(),
                    ),
                )
        except sqlite3.IntegrityError:
            path.unlink(missing_ok=True)
            raise DuplicateRecord(f"biometric record {record_id!r} already exists") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return digest

    def put_template(self, record_id: str, vector: np.ndarray, *, owner: str, algorithm_id: str) -> str:
        if not algorithm_id:
            raise ValueError("a template records the algorithm that made it (T-01)")
        vector = np.asarray(vector)
        if vector.ndim != 1 or vector.size == 0 or not np.all(np.isfinite(vector)):
            raise ValueError("a template is one non-empty vector of finite numbers")
        data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        return self.put(
            record_id,
            RecordKind.TEMPLATE,
            data,
            owner=owner,
            algorithm_id=algorithm_id,
            dimension=int(vector.size),
        )

    # -- reading ----------------------------------------------------------------------------

    def _row(self, record_id: str) -> tuple | None:
        with self._lock:
            return self._db.execute(
                f"SELECT {_INFO_COLUMNS}, blob_name, master_key_id, wrapped_key "
                "FROM biometric_records WHERE record_id = ?",
                (record_id,),
            ).fetchone()

    def info(self, record_id: str) -> StoredRecordInfo | None:
        row = self._row(record_id)
        return _info(row[:7]) if row else None

    def exists(self, record_id: str) -> bool:
        with self._lock:
            found = self._db.execute(
                "SELECT 1 FROM biometric_records WHERE record_id = ?", (record_id,)
            ).fetchone()
        return found is not None

    def records(self, owner: str, kind: RecordKind | None = None) -> list[StoredRecordInfo]:
        query = f"SELECT {_INFO_COLUMNS} FROM biometric_records WHERE owner = ?"
        params: tuple = (owner,)
        if kind is not None:
            query += " AND kind = ?"
            params += (RecordKind(kind).value,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY record_id", params).fetchall()
        return [_info(r) for r in rows]

    def written_after(self, position: int, *, older_than: float, limit: int) -> list[WrittenRecord]:
        """The records written after ``position``, in the order written, at most ``limit``, up to
        (not including) the first written less than ``older_than`` seconds ago by this host's clock.

        A record numbered when positions were added to an older store counts as long written.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._lock:
            rows = self._db.execute(
                f"SELECT position, written_at, {_INFO_COLUMNS} FROM biometric_records "
                "WHERE position > ? ORDER BY position LIMIT ?",
                (position, limit),
            ).fetchall()
        settled_before = time.time() - older_than
        found: list[WrittenRecord] = []
        for row in rows:
            written_at = row[1]
            if written_at is not None and written_at > settled_before:
                break
            found.append(WrittenRecord(row[0], _info(row[2:])))
        return found

    def reconciled_position(self) -> int:
        """How far ``record_reconciled`` says the records were reconciled (0: not at all)."""
        with self._lock:
            (value,) = self._db.execute(
                "SELECT value FROM biometric_positions WHERE name = 'reconciled'"
            ).fetchone()
        return int(value)

    def record_reconciled(self, position: int) -> None:
        """Every record up to ``position`` was reconciled; a lower position than known changes nothing."""
        with self._transaction() as cursor:
            cursor.execute(
                "UPDATE biometric_positions SET value = max(value, ?) WHERE name = 'reconciled'", (position,)
            )

    def get(self, record_id: str) -> bytes:
        return self._read(record_id)[1]

    def get_template(self, record_id: str) -> StoredTemplate:
        info, data = self._read(record_id)
        if info.kind is not RecordKind.TEMPLATE or not info.algorithm_id or not info.dimension:
            raise RecordUnreadable(f"record {record_id!r} is not a template")
        vector = np.frombuffer(data, dtype="<f4").astype(np.float32)
        if vector.size != info.dimension:
            raise RecordUnreadable(f"template {record_id!r} has {vector.size} values, not {info.dimension}")
        return StoredTemplate(record_id, info.owner, info.algorithm_id, vector)

    def _read(self, record_id: str) -> tuple[StoredRecordInfo, bytes]:
        row = self._row(record_id)
        if row is None:
            raise RecordNotFound(record_id)
        info = _info(row[:7])
        blob_name, master_key_id, wrapped = row[7:]
        if master_key_id != self._master.key_id:
            raise RecordUnreadable(f"record {record_id!r} was written under another master key")
        try:
            blob = self._path(blob_name).read_bytes()
        except FileNotFoundError:
            raise RecordUnreadable(f"the bytes of record {record_id!r} are missing") from None
        header = len(FILE_MAGIC)
        if not blob.startswith(FILE_MAGIC) or len(blob) < header + NONCE_BYTES:
            raise RecordUnreadable(f"the file of record {record_id!r} is not a store file")
        nonce, sealed = blob[header : header + NONCE_BYTES], blob[header + NONCE_BYTES :]
        try:
            data_key = self._master.unwrap(bytes(wrapped), record_id)
            data = AESGCM(data_key).decrypt(nonce, sealed, _aad(record_id, info.kind))
        except InvalidTag:
            raise RecordUnreadable(f"record {record_id!r} does not decrypt: damaged or altered") from None
        if content_hash(data) != info.content_hash:
            raise RecordUnreadable(f"record {record_id!r} does not match its content hash")
        return info, data

    # -- erasing ----------------------------------------------------------------------------

    def erase(self, record_id: str) -> bool:
        with self._transaction() as cursor:
            row = cursor.execute(
                "SELECT blob_name FROM biometric_records WHERE record_id = ?", (record_id,)
            ).fetchone()
            if row is None:
                return False
            cursor.execute("DELETE FROM biometric_records WHERE record_id = ?", (record_id,))
        _shred(self._path(row[0]))
        return True

    def sweep_orphans(self, *, older_than: float = 0.0) -> int:
        """Remove files that no key row names (left by a crash); returns how many.

        Only files last written at least ``older_than`` seconds ago are looked at: a ``put``
        writes its file before its row, so with writers running, ``older_than`` must exceed the
        longest ``put`` (``SQLITE_TIMEOUT_S`` waiting for the lock, and more). A ``.tmp`` file is
        a write that never finished and is removed only when ``older_than`` is given. The rows
        are read after the files are listed, so a row committed meanwhile keeps its file.
        """
        settled_before = time.time() - older_than
        candidates: list[Path] = []
        for path in self._blobs.glob("*/*"):
            if path.name.endswith(".tmp") and older_than <= 0:
                continue
            try:
                if not path.is_file() or path.stat().st_mtime > settled_before:
                    continue
            except FileNotFoundError:
                continue
            candidates.append(path)
        if not candidates:
            return 0
        with self._lock:
            known = {name for (name,) in self._db.execute("SELECT blob_name FROM biometric_records")}
        removed = 0
        for path in candidates:
            if path.name not in known:
                _shred(path)
                removed += 1
        return removed


def _write_new_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _shred(path: Path) -> None:
    """Overwrite, then unlink: belt and braces, since the key is already gone."""
    with contextlib.suppress(FileNotFoundError):
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
