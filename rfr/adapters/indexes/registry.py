"""One vector index per (library, algorithm): encrypted files, changed by appending, rebuilt from the store.

Indexes are projections of the biometric store (ADR 0004): a library's templates of one
algorithm live in the store under the library's id as owner, and the index only makes
them fast to search. So a missing or damaged index is rebuilt rather than repaired, and
an index never decides what exists. ADR 0014 records this design.

Files, under ``root``/``<library id>``/``<hash of algorithm id>``/ (algorithm ids hold
characters no file name should, "|" and "/", hence the hash):

- ``templates.index``: the *snapshot*, the whole index as the adapter dumps it
  (``dump``/``load``), encrypted (``sealed_files``) under the key of its *generation*,
  which only its header holds, wrapped by the master key. It may carry a *position*, an
  integer its writer chose (the last event applied), saved with it.
- ``templates.journal``: the changes since that snapshot, one encrypted entry per committed
  write (``changes``), under the same generation's key. Opening replays it onto the snapshot.
- ``index.json``: library, algorithm, dimension and metric in clear, so an operator can tell
  folders apart and a reopened index is checked against what it was built for.
- ``write.lock``: what writers ``flock``.

The adapter is never asked to save: the registry gives its factory the path
``memory-only.index``, which it never lets exist, and only memory holds templates in clear.

Cost. A write appends one entry: bytes in proportion to the change, not to the index. When
the journal outgrows ``journal_fraction`` of the snapshot (at least ``journal_min_bytes``,
at most ``journal_max_bytes``), the write that crossed the line *compacts*: a new snapshot
of the index in memory, a new generation and key, an empty journal. Compaction costs the
index's size and caps what a cold open replays.

Erasure (R-05). A write that removes templates appends its entry (the intent, durable) and
then compacts before it returns: the adapter overwrites the removed vectors' bytes in
memory (``purge_removed``), the new snapshot holds none of them, the journal that held their
additions is replaced, and the old snapshot's wrapped key is overwritten in place, so what
the filesystem keeps of the old files cannot be decrypted even with the master key. When
``remove`` returns, no file of the index holds the removed vector in any form. Should the
process die in between, the entry says a removal is not yet compacted, and the next process
to open the index (a writer, or a reader that finds the lock free) compacts first.

Writing across processes. Several processes write the same index: the API enrols and
erases, the worker's retention sweep erases. Every write holds an exclusive ``flock`` on
``write.lock`` from bringing its copy up to date with the files through its entry (or
compaction): no writer ever appends to, or compacts, a state older than the files.

- ``writing(library, algorithm, dimension, metric)`` locks, catches this process's copy up
  with the files (the journal's new entries; the whole snapshot only if another process
  compacted; a rebuild from the store, still locked, if they are damaged), yields it,
  commits what the block changed as one entry if it ended without an exception, and
  unlocks. An exception inside the block commits nothing and makes this process read the
  files again. This is the way to make several changes with one entry.
- The index ``open`` and ``rebuild`` hand out is for searching, but its ``add`` and
  ``remove`` are each such a locked write of their own; its ``save`` has nothing to do.
- ``rebuild`` and ``drop`` take the same lock.

The lock is advisory: it binds writers that go through this registry, which are all of
them. The OS releases it when its holder dies, so a killed writer never blocks the next.
Entries are fsynced before a write returns; a killed writer leaves at most a torn last
entry, which readers ignore and the next writer cuts off, so nothing acknowledged is lost.
``drop`` deletes the lock file too; a writer that was waiting on the deleted file sees
that its lock no longer names the folder's file and locks again. Within one process the
lock also excludes other threads (every write opens its own descriptor); a thread that asks
to write an index it is already writing is refused rather than left deadlocked. Waiting
longer than ``lock_timeout`` raises ``IndexBusy``.

Reading. An opened index is kept per process and searched without the file lock. ``open``
looks at the files' first 24 bytes and the journal's inode and size: unchanged, it returns
at once; a longer journal, it applies the new entries; another generation (a compaction
elsewhere), it loads the new snapshot. Generations are random, so a reader is never fooled
by reused inodes or coarse clocks. Within a process a read-write lock keeps searches off an
index while a change is applied to it, and the object ``open`` returns stays the same.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import attrs
import numpy as np

from rfr.adapters.biometric_store.master_key import MasterKey
from rfr.adapters.indexes import changes as journal_changes
from rfr.adapters.indexes import sealed_files
from rfr.adapters.indexes.changes import ADD, REMOVE, Change
from rfr.adapters.indexes.sealed_files import JOURNAL_HEADER_BYTES, JOURNAL_MAGIC, SNAPSHOT_MAGIC, Generation
from rfr.adapters.indexes.vector_checks import SIDECAR_SUFFIX, check_template_ids
from rfr.application.errors import DuplicateTemplateId, IndexCorrupted, RecordNotFound
from rfr.application.ports import (
    BiometricStore,
    IndexHit,
    RecordKind,
    VectorIndex,
    VectorIndexFactory,
)
from rfr.infrastructure.atomic_files import fsync_dir, temporary_sibling

INDEX_FILE = "templates.index"
JOURNAL_FILE = "templates.journal"
META_FILE = "index.json"
LOCK_FILE = "write.lock"
MEMORY_ONLY = "memory-only.index"
META_FORMAT = "rfr-index-registry/2"
SNAPSHOT_CONTENT = "rfr-index-snapshot-content/1"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Templates read from the store and added per batch when rebuilding, to bound memory.
REBUILD_BATCH = 1024
# Long enough for a rebuild of a large library (4.6 s for 50,000 templates, ADR 0007) queued
# behind a few others; a writer stuck longer than this is reported rather than waited on.
DEFAULT_LOCK_TIMEOUT = 120.0
# The journal is compacted into a new snapshot once it is longer than this share of the
# snapshot, but not before it holds JOURNAL_MIN_BYTES (small indexes would compact at every
# write) and always by JOURNAL_MAX_BYTES (what a cold open replays: about 15,000 128-d adds).
JOURNAL_FRACTION = 0.25
JOURNAL_MIN_BYTES = 256 << 10
JOURNAL_MAX_BYTES = 8 << 20
_U32 = struct.Struct(">I")
_UNSET = object()

log = logging.getLogger(__name__)


class IndexBusy(TimeoutError):
    """Another writer held an index's lock for longer than the registry waits."""


class PersistedIndex(VectorIndex, Protocol):
    """What the registry needs of an adapter beyond ``VectorIndex``: its content as bytes."""

    def dump(self) -> list[bytes | bytearray | memoryview]: ...

    def load(self, data: bytes | bytearray | memoryview) -> None: ...

    def purge_removed(self) -> None: ...


class _ReadWrite:
    """Many searches at once, or one change; a thread that holds the change may also search."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._writers_waiting = 0

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                mine = True
            else:
                mine = False
                while self._writer is not None or self._writers_waiting:
                    self._cond.wait()
                self._readers += 1
        try:
            yield
        finally:
            if not mine:
                with self._cond:
                    self._readers -= 1
                    if not self._readers:
                        self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            self._writers_waiting += 1
            while self._writer is not None or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()


@attrs.define(eq=False)
class _State:
    """One index in memory and where it stands in its files."""

    index: PersistedIndex
    # None: no files yet (an index nobody wrote to).
    generation: Generation | None = None
    # Offset just after the last journal entry applied, and the number of the next entry.
    journal_end: int = JOURNAL_HEADER_BYTES
    seq: int = 0
    # The journal's (inode, size) when last read, None if there was none: how a reader sees a change.
    journal_seen: tuple[int, int] | None = None
    snapshot_bytes: int = 0
    position: int | None = None
    # The journal holds a removal not yet compacted: a removed vector may still be in the files.
    holds_removed: bool = False
    # The journal is missing or belongs to an older snapshot (a crash between the renames).
    journal_stale: bool = False


@attrs.define(eq=False)
class _Slot:
    """What this process knows of one (library, algorithm) index."""

    library_id: str
    algorithm_id: str
    dimension: int
    metric: str
    # None once dropped or after a failed write: the next use reads the files again.
    state: _State | None = None
    handed_out: _Tracked | None = None
    # Held while this process's copy is brought up to date or written (after the file lock).
    update: threading.Lock = attrs.field(factory=threading.Lock)
    searching: _ReadWrite = attrs.field(factory=_ReadWrite)


class _Tracked:
    """The index ``open`` hands out: searches this process's copy, writes under the lock."""

    def __init__(self, registry: IndexRegistry, slot: _Slot) -> None:
        self._registry = registry
        self._slot = slot

    @property
    def dimension(self) -> int:
        return self._slot.dimension

    @property
    def metric(self) -> str:
        return self._slot.metric

    @property
    def position(self) -> int | None:
        """The position saved with the index's last change that set one (None: never set)."""
        return self._current().position

    def _current(self) -> _State:
        state = self._slot.state
        while state is None:
            s = self._slot
            self._registry.open(s.library_id, s.algorithm_id, s.dimension, s.metric)
            state = self._slot.state
        return state

    def add(self, template_ids: Sequence[str], vectors: np.ndarray) -> None:
        s = self._slot
        with self._registry.writing(s.library_id, s.algorithm_id, s.dimension, s.metric) as index:
            index.add(template_ids, vectors)

    def remove(self, template_ids: Sequence[str]) -> None:
        s = self._slot
        with self._registry.writing(s.library_id, s.algorithm_id, s.dimension, s.metric) as index:
            index.remove(template_ids)

    def search(self, vector: np.ndarray, k: int) -> list[IndexHit]:
        state = self._current()
        with self._slot.searching.reading():
            return state.index.search(vector, k)

    def __len__(self) -> int:
        state = self._current()
        with self._slot.searching.reading():
            return len(state.index)

    def __contains__(self, template_id: object) -> bool:
        state = self._current()
        with self._slot.searching.reading():
            return template_id in state.index

    def save(self) -> None:
        """Nothing to do: ``add`` and ``remove`` were committed under the lock when they ran."""


class _Writing:
    """The index ``writing`` yields: the files' current content, usable only inside the block.

    Its changes reach this process's searches as they are made and the files when the block
    ends (or at ``save``), as one journal entry. ``position`` may be set to save a position
    with them.
    """

    def __init__(self, registry: IndexRegistry, slot: _Slot) -> None:
        self._registry = registry
        self._slot = slot
        self.dimension = slot.dimension
        self.metric = slot.metric
        self._changes: list[Change] = []
        self._position: object = _UNSET
        self.open = True

    def _usable(self) -> _State:
        if not self.open:
            raise RuntimeError("this write is over (and its lock released); open a new one with writing()")
        state = self._slot.state
        assert state is not None
        return state

    @property
    def position(self) -> int | None:
        state = self._usable()
        return state.position if self._position is _UNSET else self._position  # type: ignore[return-value]

    @position.setter
    def position(self, value: int) -> None:
        self._usable()
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"a position is an integer, not {value!r}")
        self._position = value

    def add(self, template_ids: Sequence[str], vectors: np.ndarray) -> None:
        state = self._usable()
        with self._slot.searching.writing():
            state.index.add(template_ids, vectors)
        ids = tuple(template_ids)
        if ids:
            self._changes.append(Change(ADD, ids, np.array(vectors, dtype=np.float32, copy=True)))

    def remove(self, template_ids: Sequence[str]) -> None:
        state = self._usable()
        present = tuple(i for i in check_template_ids(template_ids) if i in state.index)
        if not present:
            return
        with self._slot.searching.writing():
            state.index.remove(present)
        self._changes.append(Change(REMOVE, present))

    def search(self, vector: np.ndarray, k: int) -> list[IndexHit]:
        return self._usable().index.search(vector, k)

    def __len__(self) -> int:
        return len(self._usable().index)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._usable().index

    def save(self) -> None:
        """Commit the changes made so far now, rather than when the block ends."""
        self._usable()
        changes, self._changes = self._changes, []
        position, self._position = self._position, _UNSET
        self._registry._commit(self._slot, changes, position)


@attrs.frozen
class OpenedIndex:
    """One index this process holds in memory: ``position`` is the one saved with it (None: never
    set), as this process last read or wrote its files."""

    library_id: str
    algorithm_id: str
    position: int | None


class IndexRegistry:
    """``VectorIndexRegistry`` over encrypted index files under ``root``; see the module docstring.

    ``store`` is what ``rebuild`` reads; without it a damaged index can only be reported.
    ``master_key`` wraps each generation's key; by default the deployment's, in
    ``keys/master.key`` of the data folder ``root`` is in (``$RFR_DATA_DIR/indexes``), as the
    biometric store finds it. ``lock_timeout``: seconds a writer waits for another's lock
    before ``IndexBusy``. ``journal_fraction``, ``journal_min_bytes``, ``journal_max_bytes``:
    when the journal is compacted (see the module docstring).
    """

    def __init__(
        self,
        root: Path,
        factory: VectorIndexFactory,
        *,
        store: BiometricStore | None = None,
        master_key: MasterKey | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        journal_fraction: float = JOURNAL_FRACTION,
        journal_min_bytes: int = JOURNAL_MIN_BYTES,
        journal_max_bytes: int = JOURNAL_MAX_BYTES,
    ) -> None:
        self.root = Path(root)
        self._factory = factory
        self._store = store
        self._master = master_key if master_key is not None else MasterKey.in_data_dir(self.root.parent)
        self._lock_timeout = lock_timeout
        self._journal_fraction = journal_fraction
        self._journal_min_bytes = journal_min_bytes
        self._journal_max_bytes = journal_max_bytes
        self._slots: dict[tuple[str, str], _Slot] = {}
        # Guards the slots only; never held while waiting for a file lock or reading files.
        self._lock = threading.Lock()
        self._writing_here = threading.local()

    def folder(self, library_id: str, algorithm_id: str) -> Path:
        if not library_id or not algorithm_id:
            raise ValueError("an index belongs to one library and one algorithm")
        library = library_id if _SAFE_NAME.fullmatch(library_id) else _digest(library_id)
        return self.root / library / _digest(algorithm_id)

    def lock_path(self, library_id: str, algorithm_id: str) -> Path:
        return self.folder(library_id, algorithm_id) / LOCK_FILE

    def key_name(self, library_id: str, algorithm_id: str) -> str:
        """What an index's keys are bound to: a snapshot moved to another index does not open."""
        return f"{library_id}\n{algorithm_id}"

    def decrypted_contents(self, library_id: str, algorithm_id: str) -> dict[str, bytes]:
        """Every file of the index's folder, decrypted where encrypted: for audits of erasure (R-05)."""
        folder = self.folder(library_id, algorithm_id)
        return sealed_files.decrypted_contents(folder, self._master, self.key_name(library_id, algorithm_id))

    def decrypted_files(self) -> dict[Path, bytes]:
        """Every file under ``root``, decrypted where encrypted (each index named by its ``index.json``)."""
        found: dict[Path, bytes] = {}
        for meta_path in sorted(self.root.rglob(META_FILE)):
            meta = _read_meta(meta_path)
            assert meta is not None
            name = self.key_name(meta["library_id"], meta["algorithm_id"])
            folder = meta_path.parent
            for file_name, content in sealed_files.decrypted_contents(folder, self._master, name).items():
                found[folder / file_name] = content
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and path not in found:
                found[path] = path.read_bytes()
        return found

    def opened(self) -> list[OpenedIndex]:
        """The indexes this process holds in memory (opened, written or rebuilt here, not dropped
        since, and not awaiting a re-read after a failed write), by library and algorithm.

        Costs the number of indexes held: reads no file and takes no lock but the slots'. For
        reports (the operators' health details); another process may have saved a later position.
        """
        with self._lock:
            slots = list(self._slots.values())
        held = [
            OpenedIndex(slot.library_id, slot.algorithm_id, state.position)
            for slot in slots
            if (state := slot.state) is not None
        ]
        return sorted(held, key=lambda i: (i.library_id, i.algorithm_id))

    # -- reading -----------------------------------------------------------------------

    def open(self, library_id: str, algorithm_id: str, dimension: int, metric: str) -> VectorIndex:
        """The library's index of this algorithm, created empty if there is none yet.

        A damaged index is rebuilt from the store when the registry has one, else
        ``IndexCorrupted`` is raised. Its ``add`` and ``remove`` each lock, write and commit.
        """
        slot = self._slot(library_id, algorithm_id, dimension, metric, check=True)
        if (library_id, algorithm_id) in self._held():
            # This thread is inside writing(): its copy is the files' plus its own changes.
            return self._handed_out(slot)
        state = slot.state
        if state is None or not self._unchanged(slot, state):
            try:
                with slot.update:
                    self._refresh(slot)
            except IndexCorrupted:
                # Perhaps a writer was compacting: look again, holding the lock, once it is done.
                with self._locked(library_id, algorithm_id), slot.update:
                    self._refresh_or_rebuild(slot)
        state = slot.state
        if state is not None and (state.holds_removed or state.journal_stale):
            try:
                self._settle_if_free(slot)
            except Exception:
                # Searching goes on (the removal is applied in memory); the next writer compacts.
                log.exception("could not compact the index of library %s after a removal", library_id)
        return self._handed_out(slot)

    def _slot(self, library_id: str, algorithm_id: str, dimension: int, metric: str, *, check: bool) -> _Slot:
        key = (library_id, algorithm_id)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = _Slot(library_id, algorithm_id, dimension, metric)
                self._slots[key] = slot
            elif check and slot.state is not None:
                _check_shape(slot.dimension, slot.metric, dimension, metric, library_id)
            else:
                slot.dimension, slot.metric = dimension, metric
            return slot

    def _handed_out(self, slot: _Slot) -> VectorIndex:
        with self._lock:
            if slot.handed_out is None:
                slot.handed_out = _Tracked(self, slot)
            return slot.handed_out

    def _paths(self, slot: _Slot) -> tuple[Path, Path, Path]:
        folder = self.folder(slot.library_id, slot.algorithm_id)
        return folder / INDEX_FILE, folder / JOURNAL_FILE, folder / META_FILE

    def _unchanged(self, slot: _Slot, state: _State) -> bool:
        """Whether the files are still what this process's copy was made from (24 bytes read)."""
        snapshot, journal, _ = self._paths(slot)
        try:
            generation = sealed_files.peek_generation(snapshot, SNAPSHOT_MAGIC)
        except IndexCorrupted:
            return False
        if generation != (state.generation.generation if state.generation else None):
            return False
        return _identity(journal) == state.journal_seen

    def _refresh(self, slot: _Slot) -> None:
        """Bring this process's copy up to date with the files (the caller holds ``slot.update``).

        Without the file lock the files may change meanwhile: a snapshot replaced while it was
        read is read again, a few times, then ``IndexCorrupted`` sends the caller to the lock.
        """
        snapshot, journal, _ = self._paths(slot)
        for _ in range(3):
            generation = sealed_files.peek_generation(snapshot, SNAPSHOT_MAGIC)
            state = slot.state
            if state is None or (state.generation.generation if state.generation else None) != generation:
                fresh = self._load(slot)
                if fresh is None:
                    continue
                slot.state = fresh
                return
            if state.generation is None:
                if journal.exists():
                    raise IndexCorrupted(f"{journal}: a journal without its snapshot; rebuild the index")
                state.journal_seen = None
                return
            seen = _identity(journal)
            tail = sealed_files.read_journal(journal, state.generation, state.journal_end, state.seq)
            if tail is None:
                if sealed_files.peek_generation(snapshot, SNAPSHOT_MAGIC) != generation:
                    continue  # compacted while we looked: load the new snapshot
                state.journal_stale, state.journal_seen = True, seen
                return
            with slot.searching.writing():
                self._apply(state, tail.entries, slot.dimension)
            state.journal_end, state.seq = tail.end, state.seq + len(tail.entries)
            state.journal_seen = _seen(seen, tail)
            return
        raise IndexCorrupted("the index files kept changing while being read")

    def _load(self, slot: _Slot) -> _State | None:
        """This index read whole from its files; None if the snapshot was replaced meanwhile."""
        snapshot, journal, _ = self._paths(slot)
        self._check_meta(slot)
        name = self.key_name(slot.library_id, slot.algorithm_id)
        engine = self._new_engine(slot)
        try:
            generation, plaintext, size = sealed_files.read_snapshot(snapshot, self._master, name)
        except FileNotFoundError:
            if journal.exists():
                raise IndexCorrupted(f"{journal}: a journal without a snapshot; rebuild the index") from None
            return _State(engine)
        content, position = _split_content(plaintext)
        try:
            engine.load(content)
        except ValueError as exc:
            raise IndexCorrupted(f"{snapshot}: not this index's content ({exc}); rebuild the index") from exc
        del plaintext, content
        state = _State(engine, generation, snapshot_bytes=size, position=position)
        seen = _identity(journal)
        tail = sealed_files.read_journal(journal, generation, JOURNAL_HEADER_BYTES, 0)
        if sealed_files.peek_generation(snapshot, SNAPSHOT_MAGIC) != generation.generation:
            return None
        if tail is None:
            state.journal_stale, state.journal_seen = True, seen
            return state
        self._apply(state, tail.entries, slot.dimension)
        state.journal_end, state.seq = tail.end, len(tail.entries)
        state.journal_seen = _seen(seen, tail)
        return state

    @staticmethod
    def _apply(state: _State, entries: list[bytes], dimension: int) -> None:
        """Replay journal entries in order, adds gathered into batches (usearch adds them faster)."""
        ids: dict[str, None] = {}
        rows: list[np.ndarray] = []

        def flush() -> None:
            if ids:
                try:
                    state.index.add(list(ids), np.concatenate(rows))
                except DuplicateTemplateId as exc:
                    raise IndexCorrupted(f"the journal adds a template twice ({exc}); rebuild it") from exc
                ids.clear()
                rows.clear()

        for entry in entries:
            entry_changes, position = journal_changes.decode(entry, dimension)
            for change in entry_changes:
                if change.op == ADD:
                    if any(i in ids for i in change.ids):
                        flush()
                    ids.update(dict.fromkeys(change.ids))
                    rows.append(change.vectors)
                else:
                    flush()
                    state.index.remove(list(change.ids))
                    state.holds_removed = True
            if position is not None:
                state.position = position
        flush()

    def _settle_if_free(self, slot: _Slot) -> None:
        """A removal the files still hold (a writer died before compacting): compact it if no one writes."""
        key = (slot.library_id, slot.algorithm_id)
        fd = _try_lock(self.lock_path(*key))
        if fd is None:
            return  # a writer is at work: it compacts what it finds unsettled
        held = self._held()
        held.add(key)
        try:
            with slot.update:
                self._refresh_or_rebuild(slot)
                state = slot.state
                if state is not None and (state.holds_removed or state.journal_stale):
                    self._compact(slot, state)
        finally:
            held.discard(key)
            os.close(fd)

    # -- writing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(
        self, library_id: str, algorithm_id: str, dimension: int, metric: str
    ) -> Iterator[VectorIndex]:
        """Lock the index, yield it as its files hold it now, commit its changes, unlock.

        An exception inside the block commits nothing (what an earlier explicit ``save`` in
        the block committed stays) and makes this process read the files again next time.
        """
        with self._locked(library_id, algorithm_id):
            slot = self._slot(library_id, algorithm_id, dimension, metric, check=True)
            with slot.update:
                self._refresh_or_rebuild(slot)
                _check_shape(slot.dimension, slot.metric, dimension, metric, library_id)
                handle = _Writing(self, slot)
                try:
                    yield handle  # type: ignore[misc]
                    handle.save()
                except BaseException:
                    slot.state = None
                    raise
                finally:
                    handle.open = False

    def _refresh_or_rebuild(self, slot: _Slot) -> None:
        """Under the lock: the index as its files hold it, or rebuilt from the store."""
        try:
            self._refresh(slot)
        except IndexCorrupted:
            if self._store is None:
                slot.state = None
                raise
            self._rebuild_locked(slot)

    def _commit(self, slot: _Slot, changed: list[Change], position: object) -> None:
        """Make a write's changes durable: one journal entry, then a compaction if one is due."""
        state = slot.state
        assert state is not None
        if position is not _UNSET:
            state.position = position  # type: ignore[assignment]
        if not changed and position is _UNSET and not (state.holds_removed or state.journal_stale):
            return
        _, journal, _ = self._paths(slot)
        if state.generation is not None and not state.journal_stale:
            entry = journal_changes.encode(changed, None if position is _UNSET else position)  # type: ignore[arg-type]
            state.journal_end = sealed_files.append_entry(
                journal, state.generation, state.seq, state.journal_end, entry
            )
            state.seq += 1
            state.journal_seen = _identity(journal)
            state.holds_removed = state.holds_removed or any(c.op == REMOVE for c in changed)
        unsettled = state.holds_removed or state.journal_stale
        if state.generation is None or unsettled or self._journal_full(state):
            self._compact(slot, state)

    def _journal_full(self, state: _State) -> bool:
        length = state.journal_end - JOURNAL_HEADER_BYTES
        allowed = max(self._journal_min_bytes, self._journal_fraction * state.snapshot_bytes)
        return length > min(allowed, self._journal_max_bytes)

    def _compact(self, slot: _Slot, state: _State) -> None:
        """Under the lock: the index in memory as a new snapshot and generation, its journal empty.

        The removed vectors' bytes are overwritten first, so the snapshot holds none; then the
        snapshot and an empty journal are written beside the old ones and moved into place,
        in that order (a crash between the two leaves a journal of the old generation, which
        is then ignored and replaced); last, the old snapshot's wrapped key is overwritten.
        """
        snapshot, journal, _ = self._paths(slot)
        folder = snapshot.parent
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in [*folder.glob(f".{INDEX_FILE}.*.tmp"), *folder.glob(f".{JOURNAL_FILE}.*.tmp")]:
            sealed_files.forget(leftover)  # a killed compaction's: it may hold a removed vector
        with slot.searching.writing():
            state.index.purge_removed()
        head = json.dumps({"format": SNAPSHOT_CONTENT, "position": state.position}).encode()
        parts = [_U32.pack(len(head)), head, *state.index.dump()]
        generation = sealed_files.new_generation()
        name = self.key_name(slot.library_id, slot.algorithm_id)
        snapshot_tmp, journal_tmp = temporary_sibling(snapshot), temporary_sibling(journal)
        old = None
        try:
            size = sealed_files.write_snapshot(snapshot_tmp, parts, self._master, name, generation)
            del parts
            sealed_files.write_new_journal(journal_tmp, generation)
            with contextlib.suppress(FileNotFoundError):
                old = os.open(snapshot, os.O_RDWR | os.O_CLOEXEC)
            os.replace(snapshot_tmp, snapshot)
            os.replace(journal_tmp, journal)
            fsync_dir(folder)
            if old is not None:
                sealed_files.shred_key(old)
        finally:
            if old is not None:
                os.close(old)
            for tmp in (snapshot_tmp, journal_tmp):
                if tmp.exists():
                    sealed_files.forget(tmp)
        state.generation = generation
        state.journal_end, state.seq = JOURNAL_HEADER_BYTES, 0
        state.journal_seen = _identity(journal)
        state.snapshot_bytes = size
        state.holds_removed = state.journal_stale = False

    def rebuild(self, library_id: str, algorithm_id: str, dimension: int, metric: str) -> VectorIndex:
        """A fresh index holding exactly the library's templates of this algorithm in the store."""
        if self._store is None:
            raise IndexCorrupted("this registry has no biometric store to rebuild indexes from")
        with self._locked(library_id, algorithm_id):
            slot = self._slot(library_id, algorithm_id, dimension, metric, check=False)
            with slot.update:
                self._rebuild_locked(slot)
            return self._handed_out(slot)

    def _rebuild_locked(self, slot: _Slot) -> None:
        """Under the lock: refill the index from the store and write it anew.

        Built aside: searches in other threads keep the copy they have until it is swapped in.
        """
        assert self._store is not None
        try:
            # The snapshot and journal are replaced (and the old key destroyed) only once the
            # new ones are written: other processes meanwhile read the old ones, or wait.
            _clear(self.folder(slot.library_id, slot.algorithm_id), keep=_replaced_by_compaction)
            # Read under the lock and after the erasing process erased the store's record (it
            # erases before it locks): a template erased meanwhile is skipped, not resurrected.
            infos = [
                i
                for i in self._store.records(slot.library_id, RecordKind.TEMPLATE)
                if i.algorithm_id == slot.algorithm_id
            ]
            index = self._new_engine(slot)
            for start in range(0, len(infos), REBUILD_BATCH):
                batch = []
                for info in infos[start : start + REBUILD_BATCH]:
                    with contextlib.suppress(RecordNotFound):
                        batch.append(self._store.get_template(info.record_id))
                if batch:
                    index.add([t.record_id for t in batch], _stack([t.vector for t in batch], slot.dimension))
            state = _State(index)
            self._compact(slot, state)
            self._check_meta(slot)
        except BaseException:
            slot.state = None
            raise
        slot.state = state

    def drop(self, library_id: str, algorithm_id: str) -> None:
        """Forget the index and delete its folder (the store keeps the templates)."""
        folder = self.folder(library_id, algorithm_id)
        with self._locked(library_id, algorithm_id):
            with self._lock:
                slot = self._slots.get((library_id, algorithm_id))
            if slot is not None:
                with slot.update:
                    slot.state = None
            _clear(folder)
            # Unlinked while still held: whoever waits on this file relocks a new one.
            (folder / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            # Fails, rightly, when another writer has meanwhile made a new lock file here.
            folder.rmdir()

    # -- files -------------------------------------------------------------------------

    def _new_engine(self, slot: _Slot) -> PersistedIndex:
        """An empty adapter from the factory, on a path that must never hold anything."""
        path = self.folder(slot.library_id, slot.algorithm_id) / MEMORY_ONLY
        for leftover in (path, path.with_name(path.name + SIDECAR_SUFFIX)):
            if leftover.exists():
                sealed_files.overwrite(leftover)
        engine = self._factory(path, slot.dimension, slot.metric)
        if not all(callable(getattr(engine, m, None)) for m in ("dump", "load", "purge_removed")):
            raise TypeError(f"{type(engine).__name__} cannot be persisted encrypted: it has no dump/load")
        return engine  # type: ignore[return-value]

    def _check_meta(self, slot: _Slot) -> None:
        """Check ``index.json`` against what is asked, writing it for a new index."""
        _, _, meta_path = self._paths(slot)
        meta = _read_meta(meta_path)
        if meta is None:
            _write_meta(meta_path, slot.library_id, slot.algorithm_id, slot.dimension, slot.metric)
            return
        _check_shape(meta["dimension"], meta["metric"], slot.dimension, slot.metric, slot.library_id)
        if meta.get("algorithm_id") != slot.algorithm_id:
            raise IndexCorrupted(f"{meta_path} names another algorithm; rebuild the index")

    def _held(self) -> set[tuple[str, str]]:
        return self._writing_here.__dict__.setdefault("keys", set())

    @contextlib.contextmanager
    def _locked(self, library_id: str, algorithm_id: str) -> Iterator[int]:
        """Hold the index's exclusive file lock; yields the lock file's descriptor."""
        key = (library_id, algorithm_id)
        held = self._held()
        if key in held:
            raise RuntimeError(
                f"this thread is already writing the index of library {library_id}; "
                "make the change through the index that writing() gave"
            )
        fd = _lock(self.lock_path(library_id, algorithm_id), time.monotonic() + self._lock_timeout)
        held.add(key)
        try:
            yield fd
        finally:
            held.discard(key)
            # Closing the only descriptor of this open file releases the lock.
            os.close(fd)


def _seen(identity: tuple[int, int] | None, tail: sealed_files.JournalTail) -> tuple[int, int] | None:
    """What a reader remembers of the journal it read: its inode and the size it read up to
    (not the size now: entries appended since are read next time). After a torn entry, a
    size that never matches: the writer that cuts it off may append an entry just as long."""
    if identity is None:
        return None
    return identity[0], tail.size if tail.size == tail.end else -1


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size


def _split_content(plaintext: bytearray) -> tuple[memoryview, int | None]:
    """A snapshot's plaintext: the adapter's dump and the position saved with it."""
    view = memoryview(plaintext)
    try:
        (length,) = _U32.unpack_from(view, 0)
        head = json.loads(bytes(view[_U32.size : _U32.size + length]))
        position = head.get("position")
        known = head.get("format") == SNAPSHOT_CONTENT
    except (ValueError, struct.error, AttributeError) as exc:
        raise IndexCorrupted(f"a snapshot's content does not parse ({exc}); rebuild the index") from exc
    if not known or not (position is None or isinstance(position, int)):
        raise IndexCorrupted("a snapshot's content does not parse; rebuild the index")
    return view[_U32.size + length :], position


def _open_lock_file(path: Path) -> int | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return None  # the folder was dropped between mkdir and open


def _still_names(fd: int, path: Path) -> bool:
    """Whether ``path`` is still the file ``fd`` locked (a drop deletes it while holding it)."""
    held = os.fstat(fd)
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    return (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino)


def _lock(path: Path, deadline: float) -> int:
    """An open descriptor of ``path`` holding its exclusive ``flock``, once ``path`` is still it."""
    while True:
        fd = _open_lock_file(path)
        if fd is None:
            _wait_or_give_up(path, deadline, 0.005)
            continue
        try:
            delay = 0.002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                delay = _wait_or_give_up(path, deadline, delay)
            still = _still_names(fd, path)
        except BaseException:
            os.close(fd)
            raise
        if still:
            return fd
        # A drop deleted the file while we waited on it: the lock guards nothing now.
        os.close(fd)


def _try_lock(path: Path) -> int | None:
    """The lock if it is free right now, else None."""
    fd = _open_lock_file(path)
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    if _still_names(fd, path):
        return fd
    os.close(fd)
    return None


def _wait_or_give_up(path: Path, deadline: float, delay: float) -> float:
    if time.monotonic() >= deadline:
        raise IndexBusy(f"{path} stayed locked by another writer; try again later")
    time.sleep(delay)
    return min(delay * 2, 0.1)


def _replaced_by_compaction(path: Path) -> bool:
    """An encrypted snapshot or journal in its place: a compaction replaces it and destroys its key."""
    if path.name == INDEX_FILE:
        return sealed_files.peek_generation_or_none(path, SNAPSHOT_MAGIC) is not None
    return path.name == JOURNAL_FILE and sealed_files.peek_generation_or_none(path, JOURNAL_MAGIC) is not None


def _clear(folder: Path, keep: Callable[[Path], bool] = lambda path: False) -> None:
    """Delete everything in an index's folder but its lock file (the caller holds it) and ``keep``.

    Nothing is just unlinked: a snapshot loses its wrapped key first, anything else (a
    journal, a clear-text index of an earlier version) is overwritten whole.
    """
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name == LOCK_FILE or keep(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file() and not entry.is_symlink():
            sealed_files.forget(entry)
        else:
            entry.unlink(missing_ok=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _stack(vectors: list[np.ndarray], dimension: int) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != dimension:
        raise IndexCorrupted(f"stored templates have shape {matrix.shape}, the index takes {dimension}-d")
    return matrix


def _check_shape(had_dimension: int, had_metric: str, dimension: int, metric: str, library_id: str) -> None:
    if (had_dimension, had_metric) != (dimension, metric):
        raise ValueError(
            f"the index of library {library_id} holds {had_dimension}-d {had_metric} vectors, "
            f"not {dimension}-d {metric}"
        )


def _read_meta(path: Path) -> dict | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IndexCorrupted(f"{path}: unreadable ({exc}); rebuild the index") from exc
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        # Among others, rfr-index-registry/1: an index of an earlier version, in clear.
        raise IndexCorrupted(f"{path}: not a {META_FORMAT} file; rebuild the index")
    return meta


def _write_meta(path: Path, library_id: str, algorithm_id: str, dimension: int, metric: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": META_FORMAT,
        "library_id": library_id,
        "algorithm_id": algorithm_id,
        "dimension": dimension,
        "metric": metric,
    }
    # A unique temporary name: readers opening a new index concurrently all write this file.
    tmp = temporary_sibling(path)
    try:
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
