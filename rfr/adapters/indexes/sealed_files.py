"""An index's files at rest: an encrypted snapshot and the encrypted journal of its changes.

Nothing here writes a template in clear: both files are AES-256-GCM under the key of one
*generation*, 32 random bytes made for each snapshot and kept only wrapped by the master key
(``MasterKey.wrap_index_key``) inside the snapshot's own header, bound to the index's name and
the generation. The registry (``registry.py``) decides when to write what; this module only
knows the bytes.

Snapshot (``templates.index``)::

    b"RFRIXS1\\n" | generation (16 bytes) | header length (u32) | header (JSON)
    | chunk 0 | chunk 1 | ...

The header names the master key (its id), the wrapped generation key, the plaintext length
and the chunk size. Each chunk is ``nonce (12) | ciphertext + tag`` of at most ``CHUNK_BYTES``
of plaintext, authenticated with the header's hash, its number and whether it is the last,
so chunks cannot be dropped, reordered, or moved between snapshots. The generation sits at a
fixed offset so a reader can tell, from 24 bytes, whether the snapshot changed.

Journal (``templates.journal``)::

    b"RFRIXJ1\\n" | generation (16 bytes) | entry | entry | ...
    entry = length of the rest (u32) | nonce (12) | ciphertext + tag

An entry is authenticated with the generation and its sequence number, so a journal belongs
to exactly one snapshot, and entries cannot be reordered or replayed. The journal is
append-only: a crash can leave only its last entry torn, which readers ignore and the next
writer cuts off. A complete entry that fails authentication with more bytes after it is
damage, not a crash (``IndexCorrupted``).

Erasure. When a generation is replaced, ``shred_key`` overwrites the old snapshot's wrapped
key in place: whatever blocks of the old snapshot and journal the filesystem keeps, the key
that decrypts them is gone (as the biometric store destroys a record's key row).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rfr.adapters.biometric_store.master_key import NONCE_BYTES, MasterKey
from rfr.application.errors import IndexCorrupted

SNAPSHOT_MAGIC = b"RFRIXS1\n"
JOURNAL_MAGIC = b"RFRIXJ1\n"
SNAPSHOT_FORMAT = "rfr-index-snapshot/1"
GENERATION_BYTES = 16
KEY_BYTES = 32
TAG_BYTES = 16
# Both files start with magic and generation: the 24 bytes a reader looks at to see a change.
PREFIX_BYTES = len(SNAPSHOT_MAGIC) + GENERATION_BYTES
JOURNAL_HEADER_BYTES = PREFIX_BYTES
CHUNK_BYTES = 4 << 20
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_SNAPSHOT_AAD = b"rfr-index-snapshot/1:"
_JOURNAL_AAD = b"rfr-index-journal/1:"
# An entry longer than this is not one this code wrote: a damaged length field.
MAX_ENTRY_BYTES = 1 << 31
_MAX_HEADER_BYTES = 1 << 16
_SYNC = getattr(os, "fdatasync", os.fsync)


@attrs.frozen(repr=False)
class Generation:
    """One snapshot's identity and key; its journal extends it under the same key."""

    generation: bytes
    key: bytes

    def __repr__(self) -> str:
        return f"Generation({self.generation.hex()})"


@attrs.frozen
class JournalTail:
    """What reading a journal from an offset found.

    ``entries``: the plaintexts of the complete entries, in order; ``end``: the offset just
    after the last of them (where the next entry goes); ``size``: the file's size when read,
    beyond ``end`` when a torn entry follows.
    """

    entries: list[bytes]
    end: int
    size: int


def _index_name(name: str, generation: bytes) -> str:
    return f"{name}\n{generation.hex()}"


def new_generation() -> Generation:
    return Generation(os.urandom(GENERATION_BYTES), AESGCM.generate_key(bit_length=256))


def peek_generation(path: Path, magic: bytes) -> bytes | None:
    """The generation a snapshot or journal file belongs to; ``None`` if there is no file."""
    try:
        with path.open("rb") as fh:
            prefix = fh.read(PREFIX_BYTES)
    except FileNotFoundError:
        return None
    if len(prefix) != PREFIX_BYTES or not prefix.startswith(magic):
        raise IndexCorrupted(f"{path}: not an encrypted index file; rebuild the index")
    return prefix[len(magic) :]


# -- snapshot --------------------------------------------------------------------------------


def write_snapshot(
    path: Path,
    parts: Iterable[bytes | bytearray | memoryview],
    master: MasterKey,
    name: str,
    generation: Generation,
) -> int:
    """Write (and fsync) the snapshot of ``generation`` holding ``parts`` joined; returns its size."""
    views = [_bytes_view(p) for p in parts]
    views = [v for v in views if v.nbytes]
    total = sum(v.nbytes for v in views)
    wrapped = master.wrap_index_key(generation.key, _index_name(name, generation.generation))
    header = json.dumps(
        {
            "format": SNAPSHOT_FORMAT,
            "master_key_id": master.key_id,
            "wrapped_key": base64.b64encode(wrapped).decode(),
            "plaintext_bytes": total,
            "chunk_bytes": CHUNK_BYTES,
        }
    ).encode()
    head = SNAPSHOT_MAGIC + generation.generation + _U32.pack(len(header)) + header
    digest = hashlib.sha256(head).digest()
    aead = AESGCM(generation.key)
    chunks = max(1, -(-total // CHUNK_BYTES))
    size = 0
    with path.open("wb") as fh:
        fh.write(head)
        size += len(head)
        for number, chunk in enumerate(_rechunk(views, CHUNK_BYTES, total)):
            nonce = os.urandom(NONCE_BYTES)
            aad = _SNAPSHOT_AAD + digest + _U64.pack(number) + (b"\x01" if number == chunks - 1 else b"\x00")
            sealed = aead.encrypt(nonce, chunk, aad)
            fh.write(nonce)
            fh.write(sealed)
            size += NONCE_BYTES + len(sealed)
        fh.flush()
        os.fsync(fh.fileno())
    return size


def _bytes_view(part: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(part)
    if view.nbytes == 0 or (view.ndim == 1 and view.format == "B"):
        return view
    return view.cast("B")


def _rechunk(views: list[memoryview], size: int, total: int) -> Iterable[bytes]:
    """The parts' bytes cut into pieces of ``size`` (one empty piece for no bytes at all)."""
    if total == 0:
        yield b""
        return
    pending = bytearray()
    for view in views:
        start = 0
        while start < view.nbytes:
            if not pending and view.nbytes - start >= size:
                yield bytes(view[start : start + size])
                start += size
                continue
            take = min(size - len(pending), view.nbytes - start)
            pending += view[start : start + take]
            start += take
            if len(pending) == size:
                yield bytes(pending)
                pending.clear()
    if pending:
        yield bytes(pending)


def read_snapshot(path: Path, master: MasterKey, name: str) -> tuple[Generation, bytearray, int]:
    """Decrypt a snapshot: its generation, its plaintext and its size on disk.

    ``FileNotFoundError`` if there is none; ``IndexCorrupted`` if it is damaged, was written
    for another index or under another master key.
    """
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        prefix = fh.read(PREFIX_BYTES + _U32.size)
        if len(prefix) != PREFIX_BYTES + _U32.size or not prefix.startswith(SNAPSHOT_MAGIC):
            raise IndexCorrupted(f"{path}: not an encrypted index snapshot; rebuild the index")
        generation = prefix[len(SNAPSHOT_MAGIC) : PREFIX_BYTES]
        (header_length,) = _U32.unpack(prefix[PREFIX_BYTES:])
        if header_length > _MAX_HEADER_BYTES:
            raise IndexCorrupted(f"{path}: damaged snapshot header; rebuild the index")
        header_bytes = fh.read(header_length)
        try:
            header = json.loads(header_bytes)
            master_key_id = header["master_key_id"]
            wrapped = base64.b64decode(header["wrapped_key"], validate=True)
            total = int(header["plaintext_bytes"])
            chunk_bytes = int(header["chunk_bytes"])
            known = header["format"] == SNAPSHOT_FORMAT
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupted(f"{path}: damaged snapshot header ({exc}); rebuild the index") from exc
        if not known or total < 0 or chunk_bytes < 1:
            raise IndexCorrupted(f"{path}: not a {SNAPSHOT_FORMAT} snapshot; rebuild the index")
        if master_key_id != master.key_id:
            raise IndexCorrupted(
                f"{path} was written under another master key ({master_key_id}, not {master.key_id}); "
                "rebuild the index"
            )
        try:
            key = master.unwrap_index_key(wrapped, _index_name(name, generation))
        except (InvalidTag, ValueError) as exc:
            raise IndexCorrupted(f"{path}: its key does not unwrap for this index; rebuild it") from exc
        digest = hashlib.sha256(prefix + header_bytes).digest()
        aead = AESGCM(key)
        chunks = max(1, -(-total // chunk_bytes))
        expected = len(prefix) + header_length + chunks * (NONCE_BYTES + TAG_BYTES) + total
        if size != expected:
            raise IndexCorrupted(f"{path}: {size} bytes where {expected} were written; rebuild the index")
        plaintext = bytearray(total)
        done = 0
        for number in range(chunks):
            length = min(chunk_bytes, total - done)
            sealed = fh.read(NONCE_BYTES + length + TAG_BYTES)
            aad = _SNAPSHOT_AAD + digest + _U64.pack(number) + (b"\x01" if number == chunks - 1 else b"\x00")
            try:
                piece = aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
            except (InvalidTag, ValueError) as exc:
                raise IndexCorrupted(f"{path}: chunk {number} does not decrypt; rebuild the index") from exc
            plaintext[done : done + length] = piece
            done += length
    return Generation(generation, key), plaintext, size


def shred_key(fd: int) -> None:
    """Overwrite, in place, the wrapped key of the snapshot open as ``fd``: its data is unreadable."""
    prefix = os.pread(fd, PREFIX_BYTES + _U32.size, 0)
    if len(prefix) != PREFIX_BYTES + _U32.size or not prefix.startswith(SNAPSHOT_MAGIC):
        return
    (header_length,) = _U32.unpack(prefix[PREFIX_BYTES:])
    header_length = min(header_length, _MAX_HEADER_BYTES)
    os.pwrite(fd, b"\x00" * header_length, len(prefix))
    os.fsync(fd)


def overwrite(path: Path) -> None:
    """Overwrite a whole file with zeros and delete it (journals, and plaintext files of old versions)."""
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            remaining = os.fstat(fd).st_size
            zeros = b"\x00" * min(remaining, CHUNK_BYTES)
            offset = 0
            while offset < remaining:
                offset += os.pwrite(fd, zeros[: remaining - offset], offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()


def forget(path: Path) -> None:
    """Delete an index file so that what it held cannot be read back.

    A snapshot only needs its wrapped key destroyed (its journal is under the same key);
    anything else, of whatever size, is overwritten whole.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        is_snapshot = os.pread(fd, len(SNAPSHOT_MAGIC), 0) == SNAPSHOT_MAGIC
        if is_snapshot:
            shred_key(fd)
    finally:
        os.close(fd)
    if is_snapshot:
        path.unlink(missing_ok=True)
    else:
        overwrite(path)


# -- journal ---------------------------------------------------------------------------------


def journal_header(generation: Generation) -> bytes:
    return JOURNAL_MAGIC + generation.generation


def write_new_journal(path: Path, generation: Generation) -> int:
    with path.open("wb") as fh:
        fh.write(journal_header(generation))
        fh.flush()
        os.fsync(fh.fileno())
    return JOURNAL_HEADER_BYTES


def _journal_aad(generation: Generation, seq: int) -> bytes:
    return _JOURNAL_AAD + generation.generation + _U64.pack(seq)


def read_journal(path: Path, generation: Generation, start: int, seq: int) -> JournalTail | None:
    """The complete entries from ``start`` (entry number ``seq``) on.

    ``None`` when there is no journal or it belongs to another generation.
    """
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return None
    with fh:
        prefix = fh.read(PREFIX_BYTES)
        if len(prefix) != PREFIX_BYTES or not prefix.startswith(JOURNAL_MAGIC):
            raise IndexCorrupted(f"{path}: not an encrypted index journal; rebuild the index")
        if prefix[len(JOURNAL_MAGIC) :] != generation.generation:
            return None
        start = max(start, PREFIX_BYTES)
        fh.seek(start)
        data = fh.read()
    size = start + len(data)
    aead = AESGCM(generation.key)
    entries: list[bytes] = []
    offset = 0
    while True:
        if len(data) - offset < _U32.size:
            break
        (length,) = _U32.unpack_from(data, offset)
        if length < NONCE_BYTES + TAG_BYTES or length > MAX_ENTRY_BYTES:
            break  # a torn length field: only the last entry can be torn
        body_start = offset + _U32.size
        if len(data) - body_start < length:
            break  # torn: the crash came before the whole entry was written
        body = data[body_start : body_start + length]
        try:
            aad = _journal_aad(generation, seq + len(entries))
            entries.append(aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad))
        except InvalidTag as exc:
            if body_start + length == len(data):
                break  # the last entry, written but not all flushed before the crash
            raise IndexCorrupted(
                f"{path}: entry at byte {start + offset} is damaged and others follow; rebuild the index"
            ) from exc
        offset = body_start + length
    return JournalTail(entries, start + offset, size)


def append_entry(path: Path, generation: Generation, seq: int, end: int, plaintext: bytes) -> int:
    """Append entry number ``seq`` at ``end`` (cutting off a torn entry there), fsynced; the new end.

    The caller holds the index's write lock, so nothing else appends meanwhile.
    """
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(generation.key).encrypt(nonce, plaintext, _journal_aad(generation, seq))
    record = _U32.pack(NONCE_BYTES + len(sealed)) + nonce + sealed
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_size != end:
            os.ftruncate(fd, end)
        written = 0
        while written < len(record):
            written += os.pwrite(fd, record[written:], end + written)
        _SYNC(fd)
    finally:
        os.close(fd)
    return end + len(record)


def decrypted_contents(folder: Path, master: MasterKey, name: str) -> dict[str, bytes]:
    """Every file of an index folder as plaintext where it is encrypted, as is otherwise.

    For audits and tests of erasure (R-05): the snapshot's plaintext, the journal's entries
    joined (those of its generation), every other file's bytes.
    """
    contents: dict[str, bytes] = {}
    snapshot_generation: Generation | None = None
    paths = sorted(p for p in Path(folder).iterdir() if p.is_file())
    for path in paths:
        if peek_generation_or_none(path, SNAPSHOT_MAGIC):
            snapshot_generation, plaintext, _ = read_snapshot(path, master, name)
            contents[path.name] = bytes(plaintext)
    for path in paths:
        if path.name in contents:
            continue
        if peek_generation_or_none(path, JOURNAL_MAGIC):
            tail = read_journal(path, snapshot_generation, 0, 0) if snapshot_generation else None
            if tail is None:
                raise IndexCorrupted(f"{path}: a journal of no snapshot here")
            contents[path.name] = b"".join(tail.entries)
        else:
            contents[path.name] = path.read_bytes()
    return contents


def peek_generation_or_none(path: Path, magic: bytes) -> bytes | None:
    with contextlib.suppress(IndexCorrupted):
        return peek_generation(path, magic)
    return None
