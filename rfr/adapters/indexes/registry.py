"""One vector index per (library, algorithm), opened through a factory, rebuilt from the store.

Indexes are projections of the biometric store (ADR 0004): a library's templates of one
algorithm live in the store under the library's id as owner, and the index only makes
them fast to search. So a missing or damaged index is rebuilt rather than repaired, and
an index never decides what exists.

Layout under ``root``: ``<library id>/<hash of algorithm id>/templates.index`` (plus the
adapter's own side files), ``index.json`` naming library, algorithm, dimension and metric,
so an operator can tell the folders apart and a reopened index is checked against what it
was built for, and ``write.lock``. Algorithm ids hold characters no file name should ("|",
"/"), hence the hash.

Writing (R-05). Several processes write the same index: the API enrols and erases, the
worker's retention sweep erases. An index is a whole-file snapshot, so a writer that
modified a copy opened before another process's save would write that save's removals
back. Every write therefore holds an exclusive ``flock`` on the folder's ``write.lock``
from reading the files through saving them:

- ``writing(library, algorithm, dimension, metric)`` locks, opens the index afresh from
  its files (rebuilding it from the store, still locked, if they are damaged), yields it,
  saves it if it was changed and the block ended without an exception, and unlocks. This
  is the way to make several changes with one save.
- The index ``open`` and ``rebuild`` hand out is for searching, but its ``add`` and
  ``remove`` are each such a locked write of their own, saved at once; its ``save`` has
  nothing left to do. There is no write path that skips the lock.
- ``rebuild`` and ``drop`` take the same lock.

The lock is advisory: it binds writers that go through this registry, which are all of
them. The OS releases it when its holder dies, so a killed writer never blocks the next;
what a killed writer left half written is caught on opening (``IndexCorrupted``) and
rebuilt from the store. ``drop`` deletes the lock file too; a writer that was waiting on
the deleted file sees that its lock no longer names the folder's file and locks again.
Within one process the lock also excludes other threads (every write opens its own
descriptor); a thread that asks to write an index it is already writing is refused rather
than left deadlocked. Waiting longer than ``lock_timeout`` raises ``IndexBusy``.

Reading. An opened index is cached per process and searched without the lock. Each locked
save first writes a new random token into ``write.lock``; the cache is keyed by that token
and the files' modification times, inodes and sizes, so the next ``open`` after another
process's write reads the new files (mtimes alone can repeat: coarse clocks, reused
inodes). A write installs its own fresh index in the cache, so readers in this process see
it without reopening, while a search already running keeps the object it started with.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import numpy as np

from rfr.adapters.indexes.vector_checks import SIDECAR_SUFFIX
from rfr.application.errors import IndexCorrupted, RecordNotFound
from rfr.application.ports import (
    BiometricStore,
    IndexHit,
    RecordKind,
    VectorIndex,
    VectorIndexFactory,
)
from rfr.infrastructure.atomic_files import temporary_sibling

INDEX_FILE = "templates.index"
META_FILE = "index.json"
LOCK_FILE = "write.lock"
META_FORMAT = "rfr-index-registry/1"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Templates read from the store and added per batch when rebuilding, to bound memory.
REBUILD_BATCH = 1024
# Long enough for a rebuild of a large library (4.6 s for 50,000 templates, ADR 0007) queued
# behind a few others; a writer stuck longer than this is reported rather than waited on.
DEFAULT_LOCK_TIMEOUT = 120.0
_TOKEN_BYTES = 32


class IndexBusy(TimeoutError):
    """Another writer held an index's lock for longer than the registry waits."""


@attrs.define
class _Slot:
    """What this process knows of one (library, algorithm) index."""

    library_id: str
    algorithm_id: str
    dimension: int
    metric: str
    # None once dropped or after a failed write: the next use reads the files again.
    inner: VectorIndex | None = None
    stamp: tuple | None = None
    handed_out: _Tracked | None = None


class _Tracked:
    """The index ``open`` hands out: searches the cached copy, writes under the lock."""

    def __init__(self, registry: IndexRegistry, slot: _Slot) -> None:
        self._registry = registry
        self._slot = slot

    @property
    def dimension(self) -> int:
        return self._slot.dimension

    @property
    def metric(self) -> str:
        return self._slot.metric

    def _current(self) -> VectorIndex:
        inner = self._slot.inner
        while inner is None:
            s = self._slot
            self._registry.open(s.library_id, s.algorithm_id, s.dimension, s.metric)
            inner = self._slot.inner
        return inner

    def add(self, template_ids: Sequence[str], vectors: np.ndarray) -> None:
        s = self._slot
        with self._registry.writing(s.library_id, s.algorithm_id, s.dimension, s.metric) as index:
            index.add(template_ids, vectors)

    def remove(self, template_ids: Sequence[str]) -> None:
        s = self._slot
        with self._registry.writing(s.library_id, s.algorithm_id, s.dimension, s.metric) as index:
            index.remove(template_ids)

    def search(self, vector: np.ndarray, k: int) -> list[IndexHit]:
        return self._current().search(vector, k)

    def __len__(self) -> int:
        return len(self._current())

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._current()

    def save(self) -> None:
        """Nothing to do: ``add`` and ``remove`` saved under the lock when they ran."""


class _Writing:
    """The index ``writing`` yields: the files' current content, usable only inside the block."""

    def __init__(self, index: VectorIndex, lock_fd: int) -> None:
        self._index = index
        self._lock_fd = lock_fd
        self.dimension = index.dimension
        self.metric = index.metric
        self.changed = False
        self.open = True

    def _usable(self) -> VectorIndex:
        if not self.open:
            raise RuntimeError("this write is over (and its lock released); open a new one with writing()")
        return self._index

    def add(self, template_ids: Sequence[str], vectors: np.ndarray) -> None:
        self._usable().add(template_ids, vectors)
        self.changed = True

    def remove(self, template_ids: Sequence[str]) -> None:
        index = self._usable()
        before = len(index)
        index.remove(template_ids)
        self.changed = self.changed or len(index) != before

    def search(self, vector: np.ndarray, k: int) -> list[IndexHit]:
        return self._usable().search(vector, k)

    def __len__(self) -> int:
        return len(self._usable())

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._usable()

    def save(self) -> None:
        index = self._usable()
        # The token changes before the files do: a reader comparing tokens may reopen
        # needlessly but never keeps a copy older than the files.
        _new_token(self._lock_fd)
        index.save()
        self.changed = False


class IndexRegistry:
    """``VectorIndexRegistry`` over index files under ``root``; see the module docstring.

    ``store`` is what ``rebuild`` reads; without it a damaged index can only be reported.
    ``lock_timeout``: seconds a writer waits for another's lock before ``IndexBusy``.
    """

    def __init__(
        self,
        root: Path,
        factory: VectorIndexFactory,
        *,
        store: BiometricStore | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.root = Path(root)
        self._factory = factory
        self._store = store
        self._lock_timeout = lock_timeout
        self._slots: dict[tuple[str, str], _Slot] = {}
        # Guards the slots only; never held while waiting for a file lock, so a thread
        # waiting for another process cannot stall this process's readers.
        self._lock = threading.Lock()
        self._writing_here = threading.local()

    def folder(self, library_id: str, algorithm_id: str) -> Path:
        if not library_id or not algorithm_id:
            raise ValueError("an index belongs to one library and one algorithm")
        library = library_id if _SAFE_NAME.fullmatch(library_id) else _digest(library_id)
        return self.root / library / _digest(algorithm_id)

    def lock_path(self, library_id: str, algorithm_id: str) -> Path:
        return self.folder(library_id, algorithm_id) / LOCK_FILE

    def _files(self, library_id: str, algorithm_id: str) -> tuple[Path, Path, Path]:
        folder = self.folder(library_id, algorithm_id)
        index = folder / INDEX_FILE
        return index, index.with_name(index.name + SIDECAR_SUFFIX), folder / META_FILE

    def _stamp(self, library_id: str, algorithm_id: str) -> tuple:
        try:
            token = self.lock_path(library_id, algorithm_id).read_bytes()
        except FileNotFoundError:
            token = b""
        stamp: list = [token]
        for path in self._files(library_id, algorithm_id)[:2]:
            try:
                stat = path.stat()
                stamp += [stat.st_mtime_ns, stat.st_ino, stat.st_size]
            except FileNotFoundError:
                stamp += [0, 0, 0]
        return tuple(stamp)

    # -- reading -----------------------------------------------------------------------

    def open(self, library_id: str, algorithm_id: str, dimension: int, metric: str) -> VectorIndex:
        """The library's index of this algorithm, created empty if there is none yet.

        A damaged index is rebuilt from the store when the registry has one, else
        ``IndexCorrupted`` is raised. Its ``add`` and ``remove`` each lock, write and save.
        """
        key = (library_id, algorithm_id)
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None and slot.inner is not None:
                _check_shape(slot.dimension, slot.metric, dimension, metric, library_id)
                if slot.stamp == self._stamp(library_id, algorithm_id):
                    return self._handed_out(slot)
        try:
            # Stamped before reading: a write in between makes the next open read again.
            stamp = self._stamp(library_id, algorithm_id)
            index = self._read(library_id, algorithm_id, dimension, metric)
        except IndexCorrupted:
            # Perhaps a writer was between its two renames: look again once it is done.
            with self._locked(library_id, algorithm_id) as fd:
                index = self._read_or_rebuild(library_id, algorithm_id, dimension, metric, fd)
                return self._install(library_id, algorithm_id, index, self._stamp(library_id, algorithm_id))
        return self._install(library_id, algorithm_id, index, stamp)

    def _read(self, library_id: str, algorithm_id: str, dimension: int, metric: str) -> VectorIndex:
        path, _, meta_path = self._files(library_id, algorithm_id)
        meta = _read_meta(meta_path)
        if meta is not None:
            _check_shape(meta["dimension"], meta["metric"], dimension, metric, library_id)
            if meta.get("algorithm_id") != algorithm_id:
                raise IndexCorrupted(f"{meta_path} names another algorithm; rebuild the index")
        index = self._factory(path, dimension, metric)
        if meta is None:
            _write_meta(meta_path, library_id, algorithm_id, dimension, metric)
        return index

    def _read_or_rebuild(
        self, library_id: str, algorithm_id: str, dimension: int, metric: str, lock_fd: int
    ) -> VectorIndex:
        """Under the lock: the index as its files hold it, or rebuilt from the store."""
        try:
            index = self._read(library_id, algorithm_id, dimension, metric)
        except IndexCorrupted:
            if self._store is None:
                raise
            index = self._rebuild_locked(library_id, algorithm_id, dimension, metric, lock_fd)
        return index

    def _install(self, library_id: str, algorithm_id: str, index: VectorIndex, stamp: tuple) -> VectorIndex:
        with self._lock:
            slot = self._slots.get((library_id, algorithm_id))
            if slot is None:
                slot = _Slot(library_id, algorithm_id, index.dimension, index.metric)
                self._slots[(library_id, algorithm_id)] = slot
            slot.dimension, slot.metric = index.dimension, index.metric
            slot.inner, slot.stamp = index, stamp
            return self._handed_out(slot)

    def _handed_out(self, slot: _Slot) -> VectorIndex:
        if slot.handed_out is None:
            slot.handed_out = _Tracked(self, slot)
        return slot.handed_out

    def _forget(self, library_id: str, algorithm_id: str) -> None:
        with self._lock:
            slot = self._slots.get((library_id, algorithm_id))
            if slot is not None:
                slot.inner = slot.stamp = None

    # -- writing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(
        self, library_id: str, algorithm_id: str, dimension: int, metric: str
    ) -> Iterator[VectorIndex]:
        """Lock the index, yield it as its files hold it now, save it if changed, unlock.

        An exception inside the block saves nothing (what an earlier explicit ``save`` in
        the block wrote stays) and makes this process read the files again next time.
        """
        with self._locked(library_id, algorithm_id) as fd:
            index = self._read_or_rebuild(library_id, algorithm_id, dimension, metric, fd)
            handle = _Writing(index, fd)
            try:
                yield handle
                if handle.changed:
                    handle.save()
            except BaseException:
                self._forget(library_id, algorithm_id)
                raise
            finally:
                handle.open = False
            self._install(library_id, algorithm_id, index, self._stamp(library_id, algorithm_id))

    def rebuild(self, library_id: str, algorithm_id: str, dimension: int, metric: str) -> VectorIndex:
        """A fresh index holding exactly the library's templates of this algorithm in the store."""
        if self._store is None:
            raise IndexCorrupted("this registry has no biometric store to rebuild indexes from")
        with self._locked(library_id, algorithm_id) as fd:
            index = self._rebuild_locked(library_id, algorithm_id, dimension, metric, fd)
            return self._install(library_id, algorithm_id, index, self._stamp(library_id, algorithm_id))

    def _rebuild_locked(
        self, library_id: str, algorithm_id: str, dimension: int, metric: str, lock_fd: int
    ) -> VectorIndex:
        assert self._store is not None
        self._forget(library_id, algorithm_id)
        folder = self.folder(library_id, algorithm_id)
        _clear(folder)
        path, _, meta_path = self._files(library_id, algorithm_id)
        # Read under the lock and after the erasing process erased the store's record (it
        # erases before it locks): a template erased meanwhile is skipped, not resurrected.
        infos = [
            i for i in self._store.records(library_id, RecordKind.TEMPLATE) if i.algorithm_id == algorithm_id
        ]
        index = self._factory(path, dimension, metric)
        for start in range(0, len(infos), REBUILD_BATCH):
            batch = []
            for info in infos[start : start + REBUILD_BATCH]:
                with contextlib.suppress(RecordNotFound):
                    batch.append(self._store.get_template(info.record_id))
            if batch:
                index.add([t.record_id for t in batch], _stack([t.vector for t in batch], dimension))
        _new_token(lock_fd)
        index.save()
        _write_meta(meta_path, library_id, algorithm_id, dimension, metric)
        return index

    def drop(self, library_id: str, algorithm_id: str) -> None:
        """Forget the index and delete its folder (the store keeps the templates)."""
        folder = self.folder(library_id, algorithm_id)
        with self._locked(library_id, algorithm_id):
            self._forget(library_id, algorithm_id)
            _clear(folder)
            # Unlinked while still held: whoever waits on this file relocks a new one.
            (folder / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            # Fails, rightly, when another writer has meanwhile made a new lock file here.
            folder.rmdir()

    @contextlib.contextmanager
    def _locked(self, library_id: str, algorithm_id: str) -> Iterator[int]:
        """Hold the index's exclusive file lock; yields the lock file's descriptor."""
        key = (library_id, algorithm_id)
        held = self._writing_here.__dict__.setdefault("keys", set())
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


def _lock(path: Path, deadline: float) -> int:
    """An open descriptor of ``path`` holding its exclusive ``flock``, once ``path`` is still it."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            # The folder was dropped between mkdir and open.
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
            held = os.fstat(fd)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            return fd
        # A drop deleted the file while we waited on it: the lock guards nothing now.
        os.close(fd)


def _wait_or_give_up(path: Path, deadline: float, delay: float) -> float:
    if time.monotonic() >= deadline:
        raise IndexBusy(f"{path} stayed locked by another writer; try again later")
    time.sleep(delay)
    return min(delay * 2, 0.1)


def _new_token(lock_fd: int) -> None:
    token = uuid.uuid4().hex.encode()
    assert len(token) == _TOKEN_BYTES
    os.pwrite(lock_fd, token, 0)
    os.ftruncate(lock_fd, _TOKEN_BYTES)


def _clear(folder: Path) -> None:
    """Delete everything in an index's folder except its lock file, which the caller holds."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
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
    if meta.get("format") != META_FORMAT:
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
