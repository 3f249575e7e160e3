"""One vector index per (library, algorithm), opened through a factory, rebuilt from the store.

Indexes are projections of the biometric store (ADR 0004): a library's templates of one
algorithm live in the store under the library's id as owner, and the index only makes
them fast to search. So a missing or damaged index is rebuilt rather than repaired, and
an index never decides what exists.

Layout under ``root``: ``<library id>/<hash of algorithm id>/templates.index`` (plus the
adapter's own side files) and ``index.json`` naming library, algorithm, dimension and
metric, so an operator can tell the folders apart and a reopened index is checked against
what it was built for. Algorithm ids hold characters no file name should ("|", "/"), hence
the hash.

An opened index is cached per process. Another process (the worker enrolling while the API
searches) may replace the files; the cache is keyed by the files' modification times, so
the next ``open`` after such a change reads the new files. Indexes are handed out wrapped,
so that this process's own ``save`` refreshes the key instead of forcing a reopen.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import numpy as np

from rfr.adapters.indexes.vector_checks import SIDECAR_SUFFIX
from rfr.application.errors import IndexCorrupted
from rfr.application.ports import (
    BiometricStore,
    IndexHit,
    RecordKind,
    VectorIndex,
    VectorIndexFactory,
)

INDEX_FILE = "templates.index"
META_FILE = "index.json"
META_FORMAT = "rfr-index-registry/1"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Templates read from the store and added per batch when rebuilding, to bound memory.
REBUILD_BATCH = 1024


@attrs.define
class _Opened:
    index: VectorIndex
    dimension: int
    metric: str
    stamp: tuple[int, ...]


class _Tracked:
    """The index as handed out: a ``VectorIndex`` whose ``save`` tells the registry."""

    def __init__(self, inner: VectorIndex, on_save: Callable[[], None]) -> None:
        self._inner = inner
        self._on_save = on_save
        self.dimension = inner.dimension
        self.metric = inner.metric

    def add(self, template_ids: Sequence[str], vectors: np.ndarray) -> None:
        self._inner.add(template_ids, vectors)

    def remove(self, template_ids: Sequence[str]) -> None:
        self._inner.remove(template_ids)

    def search(self, vector: np.ndarray, k: int) -> list[IndexHit]:
        return self._inner.search(vector, k)

    def __len__(self) -> int:
        return len(self._inner)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._inner

    def save(self) -> None:
        self._inner.save()
        self._on_save()


class IndexRegistry:
    """``VectorIndexRegistry`` over index files under ``root``.

    ``store`` is what ``rebuild`` reads; without it a damaged index can only be reported.
    """

    def __init__(
        self, root: Path, factory: VectorIndexFactory, *, store: BiometricStore | None = None
    ) -> None:
        self.root = Path(root)
        self._factory = factory
        self._store = store
        self._opened: dict[tuple[str, str], _Opened] = {}
        self._lock = threading.RLock()

    def folder(self, library_id: str, algorithm_id: str) -> Path:
        if not library_id or not algorithm_id:
            raise ValueError("an index belongs to one library and one algorithm")
        library = library_id if _SAFE_NAME.fullmatch(library_id) else _digest(library_id)
        return self.root / library / _digest(algorithm_id)

    def _files(self, library_id: str, algorithm_id: str) -> tuple[Path, Path, Path]:
        folder = self.folder(library_id, algorithm_id)
        index = folder / INDEX_FILE
        return index, index.with_name(index.name + SIDECAR_SUFFIX), folder / META_FILE

    def _stamp(self, library_id: str, algorithm_id: str) -> tuple[int, ...]:
        stamp: list[int] = []
        for path in self._files(library_id, algorithm_id)[:2]:
            try:
                stat = path.stat()
                stamp += [stat.st_mtime_ns, stat.st_ino, stat.st_size]
            except FileNotFoundError:
                stamp += [0, 0, 0]
        return tuple(stamp)

    def open(self, library_id: str, algorithm_id: str, dimension: int, metric: str) -> VectorIndex:
        """The library's index of this algorithm, created empty if there is none yet.

        A damaged index is rebuilt from the store when the registry has one, else
        ``IndexCorrupted`` is raised.
        """
        key = (library_id, algorithm_id)
        with self._lock:
            cached = self._opened.get(key)
            if cached is not None:
                _check_shape(cached.dimension, cached.metric, dimension, metric, library_id)
                if cached.stamp == self._stamp(library_id, algorithm_id):
                    return cached.index
            path, _, meta_path = self._files(library_id, algorithm_id)
            meta = _read_meta(meta_path)
            if meta is not None:
                _check_shape(meta["dimension"], meta["metric"], dimension, metric, library_id)
                if meta.get("algorithm_id") != algorithm_id:
                    raise IndexCorrupted(f"{meta_path} names another algorithm; rebuild the index")
            try:
                index = self._factory(path, dimension, metric)
            except IndexCorrupted:
                if self._store is None:
                    raise
                return self.rebuild(library_id, algorithm_id, dimension, metric)
            if meta is None:
                _write_meta(meta_path, library_id, algorithm_id, dimension, metric)
            return self._remember(library_id, algorithm_id, index, dimension, metric)

    def rebuild(self, library_id: str, algorithm_id: str, dimension: int, metric: str) -> VectorIndex:
        """A fresh index holding exactly the library's templates of this algorithm in the store."""
        if self._store is None:
            raise IndexCorrupted("this registry has no biometric store to rebuild indexes from")
        with self._lock:
            self.drop(library_id, algorithm_id)
            path, _, meta_path = self._files(library_id, algorithm_id)
            infos = [
                i
                for i in self._store.records(library_id, RecordKind.TEMPLATE)
                if i.algorithm_id == algorithm_id
            ]
            index = self._factory(path, dimension, metric)
            for start in range(0, len(infos), REBUILD_BATCH):
                batch = [self._store.get_template(i.record_id) for i in infos[start : start + REBUILD_BATCH]]
                index.add([t.record_id for t in batch], _stack([t.vector for t in batch], dimension))
            index.save()
            _write_meta(meta_path, library_id, algorithm_id, dimension, metric)
            return self._remember(library_id, algorithm_id, index, dimension, metric)

    def _remember(
        self, library_id: str, algorithm_id: str, index: VectorIndex, dimension: int, metric: str
    ) -> VectorIndex:
        opened = _Opened(index, dimension, metric, self._stamp(library_id, algorithm_id))

        def saved() -> None:
            with self._lock:
                opened.stamp = self._stamp(library_id, algorithm_id)

        opened.index = _Tracked(index, saved)
        self._opened[(library_id, algorithm_id)] = opened
        return opened.index

    def drop(self, library_id: str, algorithm_id: str) -> None:
        """Forget the index and delete its files (the store keeps the templates)."""
        with self._lock:
            self._opened.pop((library_id, algorithm_id), None)
            shutil.rmtree(self.folder(library_id, algorithm_id), ignore_errors=True)


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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp.replace(path)
