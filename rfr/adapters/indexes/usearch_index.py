"""HNSW approximate search with usearch, persisted and memory-mapped.

Files: ``path`` is usearch's own index file; ``path`` + ``.ids.json`` (the sidecar) maps
usearch's integer keys to template ids and keeps the next key to hand out, so keys are
never reused, even after removals (a stale key can then never name another template).

Opening maps the file read-only (``Index.restore(view=True)``): a search server starts
at once and shares pages with every process searching the same library. usearch crashes
the process if a viewed index is written to, so the first ``add`` or ``remove`` after
opening loads the whole index into memory and drops the view; the next ``save`` writes a
new file and moves it over the old one, which readers still mapping the old file keep
seeing intact until they reopen.

Erasure (R-05): usearch only marks a removed vector deleted, and its saved bytes still
hold the vector, even with ``compact=True`` or after ``Index.compact``. But usearch reuses
a deleted slot, first freed first reused, for the next vector added, overwriting the old
bytes. So before saving or dumping after a removal, ``purge_removed`` adds as many
*fillers* (copies of live vectors under fresh keys) as there are deleted slots, checks that
they took exactly those slots (the slot count did not grow), and removes the fillers again:
every deleted slot then holds a copy of a live vector, nothing of a removed one. That costs
one insertion per deleted slot instead of rebuilding the graph; when deleted slots pile up
(more than ``PURGE_REBUILD_FRACTION`` of the live ones) or the check fails, the index is
rebuilt from the live vectors alone instead, which frees every slot.

``dump`` and ``load`` are how ``IndexRegistry`` persists the index: as bytes it encrypts,
never through ``path`` (which it never lets exist). ``save`` and the memory-mapped opening
from ``path`` write and read the files in clear, for use outside the registry (the
contract tests, benchmarks).

Both files are replaced atomically, one after the other. Opening checks that they agree
(same metric, dimension and set of keys) and raises ``IndexCorrupted`` otherwise: the
index is a projection of the biometric store and is then rebuilt from it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Loading usearch's extension before onnxruntime's makes the later onnxruntime import crash the
# interpreter (segfault; usearch 2.26.6 with onnxruntime 1.32.0). The other order is safe, so
# the only module that imports usearch loads onnxruntime first (tests/contract/
# test_import_order.py).
import onnxruntime  # noqa: F401
from usearch.index import Index, MetricKind

from rfr.adapters.indexes.vector_checks import (
    SIDECAR_SUFFIX,
    check_not_present,
    check_opening,
    check_query,
    check_template_ids,
    check_vectors,
    dump_head,
    read_dump_head,
    read_sidecar,
    save_with_sidecar,
)
from rfr.application.errors import IndexCorrupted
from rfr.application.ports import IndexHit

SIDECAR_FORMAT = "rfr-usearch-ids/1"
DUMP_MAGIC = b"RFRUSX1\n"
DUMP_FORMAT = "rfr-usearch-dump/1"
# Deleted slots are overwritten by fillers up to this share of the live vectors (and at
# least PURGE_REBUILD_MIN of them); beyond it a rebuild frees them all for less work.
PURGE_REBUILD_FRACTION = 0.05
PURGE_REBUILD_MIN = 1024

_USEARCH_METRIC = {"euclidean": MetricKind.L2sq, "cosine": MetricKind.Cos}


class UsearchIndex:
    """``VectorIndex`` on a usearch HNSW graph of float32 vectors.

    Euclidean indexes are built on squared L2 (cheaper, same order) and report the square
    root, so distances are comparable with the exact index and the embedder's threshold.
    Cosine distances are ``1 - cos``, in [0, 2].

    ``expansion_search`` defaults to 256, not usearch's 64: a missed true match costs an
    investigation more than a millisecond does. Measured on 50,000 dlib-like descriptors
    (reference faces plus noise): recall@10 0.90 at 64, 0.97 at 256, under 1 ms a query.

    An index of at most ``exact_search_limit`` templates is searched exhaustively instead of
    through the graph. A graph built by several threads at once can leave a group of tightly
    clustered vectors unreachable, and no ``expansion_search`` finds what the walk cannot
    reach: on 20,000 random sets of 2-24 separated clusters (up to 288 vectors), the graph
    missed a whole cluster's top-1 in 12-15 sets a run (also at expansion_search 100,000),
    exhaustive search in none; built by one thread, the graph missed none either. Below
    about 4,096 128-d vectors the exhaustive scan is also no slower than the graph walk
    (0.49 vs 0.50 ms at 4,096; 0.05 vs 0.24 ms at 1,000), so small libraries lose nothing.
    """

    def __init__(
        self,
        path: Path,
        dimension: int,
        metric: str,
        *,
        threads: int = 2,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 256,
        exact_search_limit: int = 4096,
    ) -> None:
        check_opening(dimension, metric)
        if threads < 1:
            raise ValueError("threads must be at least 1")
        if exact_search_limit < 0:
            raise ValueError("exact_search_limit must not be negative")
        self.path = Path(path)
        self.dimension = int(dimension)
        self.metric = metric
        self._threads = threads
        self._exact_search_limit = exact_search_limit
        self._options = {
            "connectivity": connectivity,
            "expansion_add": expansion_add,
            "expansion_search": expansion_search,
        }
        self._sidecar = self.path.with_name(self.path.name + SIDECAR_SUFFIX)
        self._keys: dict[str, int] = {}
        self._ids_by_key: dict[int, str] = {}
        self._next_key = 0
        self._viewed = False
        # Vectors removed since the last purge: their bytes are still in a deleted slot.
        self._holes = False
        if self.path.exists() or self._sidecar.exists():
            self._index = self._open_existing()
            self._viewed = True
        else:
            self._index = self._new_index()

    def _new_index(self) -> Index:
        return Index(ndim=self.dimension, metric=_USEARCH_METRIC[self.metric], dtype="f32", **self._options)

    def _open_existing(self) -> Index:
        meta = read_sidecar(self.path, self._sidecar, SIDECAR_FORMAT, self.dimension, self.metric)
        try:
            index = Index.restore(self.path, view=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexCorrupted(f"{self.path}: unreadable ({exc}); rebuild the index") from exc
        if index is None:
            raise IndexCorrupted(f"{self.path}: not an index written by {type(self).__name__}")
        if index.ndim != self.dimension or index.metric != _USEARCH_METRIC[self.metric]:
            raise IndexCorrupted(f"{self.path}: the index file disagrees with its id file; rebuild it")
        keys = {str(template_id): int(key) for template_id, key in meta.get("keys", {}).items()}
        next_key = meta.get("next_key")
        if (
            not isinstance(next_key, int)
            or len(index) != len(keys)
            or len(set(keys.values())) != len(keys)
            or any(key >= next_key for key in keys.values())
            or (keys and not np.all(index.contains(np.fromiter(keys.values(), dtype=np.uint64))))
        ):
            raise IndexCorrupted(f"{self.path}: the index file and its id file disagree; rebuild the index")
        self._keys = keys
        self._ids_by_key = {key: template_id for template_id, key in keys.items()}
        self._next_key = next_key
        return index

    def _writable(self) -> Index:
        if self._viewed:
            self._index = Index.restore(self.path, view=False)
            self._viewed = False
        return self._index

    def add(self, template_ids: Sequence[str], vectors: np.ndarray) -> None:
        ids = check_template_ids(template_ids)
        batch = check_vectors(vectors, len(ids), self.dimension, self.metric)
        check_not_present(ids, self._keys)
        if not ids:
            return
        keys = np.arange(self._next_key, self._next_key + len(ids), dtype=np.uint64)
        self._writable().add(keys, batch, threads=self._threads)
        self._next_key += len(ids)
        for template_id, key in zip(ids, keys.tolist(), strict=True):
            self._keys[template_id] = key
            self._ids_by_key[key] = template_id

    def remove(self, template_ids: Sequence[str]) -> None:
        """Remove templates; ids not in the index are ignored so an erasure can be retried."""
        doomed = [i for i in check_template_ids(template_ids) if i in self._keys]
        if not doomed:
            return
        keys = np.array([self._keys[i] for i in doomed], dtype=np.uint64)
        self._writable().remove(keys)
        for template_id in doomed:
            del self._ids_by_key[self._keys.pop(template_id)]
        self._holes = True

    def search(self, vector: np.ndarray, k: int) -> list[IndexHit]:
        query = check_query(vector, k, self.dimension, self.metric)
        if not self._keys:
            return []
        exact = len(self._keys) <= self._exact_search_limit
        matches = self._index.search(query, min(int(k), len(self._keys)), threads=1, exact=exact)
        hits = []
        for key, distance in zip(matches.keys.tolist(), matches.distances.tolist(), strict=True):
            template_id = self._ids_by_key.get(int(key))
            if template_id is None:
                continue
            d = max(float(distance), 0.0)
            hits.append(IndexHit(template_id, math.sqrt(d) if self.metric == "euclidean" else d))
        return hits

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, template_id: object) -> bool:
        return isinstance(template_id, str) and template_id in self._keys

    def _without_removed(self) -> Index:
        """A fresh index of the live vectors only, so removed vectors leave no bytes behind."""
        fresh = self._new_index()
        if self._keys:
            keys = np.fromiter(self._keys.values(), dtype=np.uint64, count=len(self._keys))
            vectors = np.vstack(self._index.get(keys, dtype="f32")).astype(np.float32, copy=False)
            fresh.add(keys, vectors, threads=self._threads)
        return fresh

    def purge_removed(self) -> None:
        """Overwrite the bytes of every vector removed since the last purge (see the module docstring)."""
        if not self._holes:
            return
        index = self._writable()
        live = len(self._keys)
        slots = int(index.stats.nodes)
        free = slots - live
        if 0 < free <= max(PURGE_REBUILD_MIN, PURGE_REBUILD_FRACTION * live) and live:
            live_keys = itertools.cycle(self._keys.values())
            donors = np.fromiter(itertools.islice(live_keys, free), np.uint64, free)
            fillers = np.arange(self._next_key, self._next_key + free, dtype=np.uint64)
            self._next_key += free
            index.add(fillers, np.vstack(index.get(donors, dtype="f32")), threads=self._threads)
            # Every filler took a deleted slot (none a new one), so no removed vector is left.
            filled = int(index.stats.nodes) == slots and len(index) == slots
            index.remove(fillers)
            if not filled:
                self._index = self._without_removed()
        elif free:
            self._index = self._without_removed()
        self._holes = False

    def dump(self) -> list[bytes | bytearray | memoryview]:
        """The index as bytes ``load`` takes back, holding no removed vector; parts to be joined."""
        self.purge_removed()
        ids = list(self._keys)
        keys = np.fromiter((self._keys[i] for i in ids), dtype="<u8", count=len(ids))
        head = {
            "format": DUMP_FORMAT,
            "dimension": self.dimension,
            "metric": self.metric,
            "next_key": self._next_key,
            "ids": ids,
        }
        return [*dump_head(DUMP_MAGIC, head), keys.tobytes(), self._index.save()]

    def load(self, data: bytes | bytearray | memoryview) -> None:
        """Replace this index's content with what ``dump`` wrote; ``IndexCorrupted`` if it is not that."""
        head, body = read_dump_head(data, DUMP_MAGIC, DUMP_FORMAT, self.dimension, self.metric)
        ids, next_key = head["ids"], head.get("next_key")
        if not isinstance(next_key, int):
            raise IndexCorrupted(f"not a {DUMP_FORMAT} dump")
        keys_end = 8 * len(ids)
        if body.nbytes < keys_end:
            raise IndexCorrupted(f"truncated {DUMP_FORMAT} dump")
        keys = np.frombuffer(body[:keys_end], dtype="<u8").astype(np.uint64)
        try:
            index = Index.restore(body[keys_end:], view=False)
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexCorrupted(f"the usearch part of the dump is unreadable ({exc})") from exc
        if index is None or index.ndim != self.dimension or index.metric != _USEARCH_METRIC[self.metric]:
            raise IndexCorrupted("the usearch part of the dump is not this index")
        if (
            len(index) != len(ids)
            or len(set(ids)) != len(ids)
            or len(set(keys.tolist())) != len(ids)
            or (len(ids) and (int(keys.max()) >= next_key or not np.all(index.contains(keys))))
        ):
            raise IndexCorrupted("the ids and the usearch part of the dump disagree")
        self._index = index
        self._viewed = False
        self._holes = False
        self._keys = {str(template_id): int(key) for template_id, key in zip(ids, keys.tolist(), strict=True)}
        self._ids_by_key = {key: template_id for template_id, key in self._keys.items()}
        self._next_key = next_key

    def save(self) -> None:
        if self._viewed:
            # Unchanged since it was opened: the files on disk are already this index.
            return
        self.purge_removed()
        index = self._index
        meta = {
            "format": SIDECAR_FORMAT,
            "dimension": self.dimension,
            "metric": self.metric,
            "next_key": self._next_key,
            "keys": dict(self._keys),
        }

        def write_index(tmp: Path) -> None:
            index.save(tmp)

        save_with_sidecar(self.path, write_index, self._sidecar, meta)
