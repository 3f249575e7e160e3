"""Exact brute-force search in numpy: the reference the approximate index is judged against.

Persisted as two files: ``path`` holds the float32 matrix in ``.npy`` format (written to the
exact path given, whatever its suffix) and ``path`` + ``.ids.json`` the template id of each
row, in row order. Removing a template deletes its row, so its vector is gone from the file
at the next ``save`` (R-05).

``dump`` and ``load`` are how ``IndexRegistry`` persists the index: as bytes it encrypts,
never through ``path``; ``save`` writes the files in clear, for use outside the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rfr.adapters.indexes.vector_checks import (
    SIDECAR_SUFFIX,
    check_not_present,
    check_opening,
    check_query,
    check_template_ids,
    check_vectors,
    dump_head,
    exact_distances,
    read_dump_head,
    read_sidecar,
    save_with_sidecar,
)
from rfr.application.errors import IndexCorrupted
from rfr.application.ports import IndexHit

SIDECAR_FORMAT = "rfr-exact-numpy-ids/1"
DUMP_MAGIC = b"RFRNPX1\n"
DUMP_FORMAT = "rfr-exact-numpy-dump/1"


class ExactNumpyIndex:
    """``VectorIndex`` by exhaustive search; memory and time grow linearly with the library."""

    def __init__(self, path: Path, dimension: int, metric: str) -> None:
        check_opening(dimension, metric)
        self.path = Path(path)
        self.dimension = int(dimension)
        self.metric = metric
        self._sidecar = self.path.with_name(self.path.name + SIDECAR_SUFFIX)
        self._vectors = np.empty((0, self.dimension), dtype=np.float32)
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        if self.path.exists() or self._sidecar.exists():
            self._load()

    def _load(self) -> None:
        meta = read_sidecar(self.path, self._sidecar, SIDECAR_FORMAT, self.dimension, self.metric)
        try:
            vectors = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexCorrupted(f"{self.path}: unreadable ({exc}); rebuild the index") from exc
        ids = meta.get("ids")
        if (
            not isinstance(ids, list)
            or vectors.dtype != np.float32
            or vectors.shape != (len(ids), self.dimension)
            or len(set(ids)) != len(ids)
        ):
            raise IndexCorrupted(f"{self.path}: the vectors and the id file disagree; rebuild the index")
        self._vectors = vectors
        self._ids = ids
        self._rows = {template_id: row for row, template_id in enumerate(ids)}

    def add(self, template_ids: Sequence[str], vectors: np.ndarray) -> None:
        ids = check_template_ids(template_ids)
        batch = check_vectors(vectors, len(ids), self.dimension, self.metric)
        check_not_present(ids, self._rows)
        start = len(self._ids)
        self._vectors = np.concatenate([self._vectors, batch])
        self._ids.extend(ids)
        self._rows.update({template_id: start + n for n, template_id in enumerate(ids)})

    def remove(self, template_ids: Sequence[str]) -> None:
        """Remove templates; ids not in the index are ignored so an erasure can be retried."""
        doomed = {self._rows[i] for i in check_template_ids(template_ids) if i in self._rows}
        if not doomed:
            return
        keep = np.array([row not in doomed for row in range(len(self._ids))], dtype=bool)
        self._vectors = self._vectors[keep]
        self._ids = [template_id for template_id, kept in zip(self._ids, keep, strict=True) if kept]
        self._rows = {template_id: row for row, template_id in enumerate(self._ids)}

    def search(self, vector: np.ndarray, k: int) -> list[IndexHit]:
        query = check_query(vector, k, self.dimension, self.metric)
        if not self._ids:
            return []
        distances = exact_distances(self._vectors, query, self.metric)
        # Stable sort so equal distances come back in insertion order, run after run.
        order = np.argsort(distances, kind="stable")[:k]
        return [IndexHit(self._ids[row], max(float(distances[row]), 0.0)) for row in order]

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, template_id: object) -> bool:
        return isinstance(template_id, str) and template_id in self._rows

    def purge_removed(self) -> None:
        """Nothing to do: removing a template already deleted its row."""

    def dump(self) -> list[bytes | bytearray | memoryview]:
        """The index as bytes ``load`` takes back; parts to be joined."""
        head = {"format": DUMP_FORMAT, "dimension": self.dimension, "metric": self.metric, "ids": self._ids}
        vectors = np.ascontiguousarray(self._vectors, dtype="<f4")
        return [*dump_head(DUMP_MAGIC, head), memoryview(vectors.reshape(-1).view(np.uint8))]

    def load(self, data: bytes | bytearray | memoryview) -> None:
        """Replace this index's content with what ``dump`` wrote; ``IndexCorrupted`` if it is not that."""
        head, matrix = read_dump_head(data, DUMP_MAGIC, DUMP_FORMAT, self.dimension, self.metric)
        ids = head["ids"]
        if len(set(ids)) != len(ids):
            raise IndexCorrupted(f"not a {DUMP_FORMAT} dump")
        if matrix.nbytes != 4 * self.dimension * len(ids):
            raise IndexCorrupted("the ids and the vectors of the dump disagree")
        rows = np.frombuffer(matrix, dtype="<f4").astype(np.float32)
        self._vectors = rows.reshape(len(ids), self.dimension)
        self._ids = [str(i) for i in ids]
        self._rows = {template_id: row for row, template_id in enumerate(self._ids)}

    def save(self) -> None:
        vectors, ids = self._vectors, list(self._ids)
        meta = {"format": SIDECAR_FORMAT, "dimension": self.dimension, "metric": self.metric, "ids": ids}

        def write_vectors(tmp: Path) -> None:
            with tmp.open("wb") as fh:
                np.save(fh, vectors, allow_pickle=False)

        save_with_sidecar(self.path, write_vectors, self._sidecar, meta)
