"""What every vector index adapter shares: the input checks, so they refuse the same things
alike, the header of a dump, and the clear-text id file (sidecar) beside a saved index."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rfr.application.errors import DuplicateTemplateId, IndexCorrupted, InvalidVector
from rfr.infrastructure.atomic_files import replace_together

METRICS = ("euclidean", "cosine")
SIDECAR_SUFFIX = ".ids.json"
_U32 = struct.Struct(">I")


def check_opening(dimension: int, metric: str) -> None:
    if isinstance(dimension, bool) or not isinstance(dimension, int | np.integer) or dimension < 1:
        raise ValueError(f"dimension must be a positive integer, not {dimension!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")


def check_same_space(
    where: object, dimension: object, metric: object, index_dimension: int, index_metric: str
) -> None:
    """Refuse (``ValueError``) a file or dump of other vectors than the index opening it holds."""
    if dimension != index_dimension or metric != index_metric:
        raise ValueError(
            f"{where} holds {dimension}-d {metric} vectors, not {index_dimension}-d {index_metric}"
        )


def check_template_ids(template_ids: Sequence[str]) -> list[str]:
    if isinstance(template_ids, str):
        # A bare string is a sequence of characters: almost certainly a caller's slip.
        raise TypeError("template_ids must be a sequence of strings, not one string")
    ids = list(template_ids)
    for template_id in ids:
        if not isinstance(template_id, str) or not template_id:
            raise TypeError(f"template ids must be non-empty strings, not {template_id!r}")
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise DuplicateTemplateId(f"template ids repeated within one batch: {repeated[:5]}")
    return ids


def check_not_present(template_ids: Sequence[str], present: Collection[str]) -> None:
    """Refuse to add a template id the index already holds."""
    already = [i for i in template_ids if i in present]
    if already:
        raise DuplicateTemplateId(f"already in the index: {already[:5]}")


def check_vectors(vectors: np.ndarray, count: int, dimension: int, metric: str) -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 (count, dimension) array, or refuse them.

    Only float32 is accepted: every embedder produces it, and silently casting float64 would
    hide a caller that is not passing templates at all.
    """
    if not isinstance(vectors, np.ndarray):
        raise InvalidVector(f"vectors must be a numpy array, not {type(vectors).__name__}")
    if vectors.dtype != np.float32:
        raise InvalidVector(f"vectors must be float32, not {vectors.dtype}")
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise InvalidVector(f"vectors must have shape (n, {dimension}), not {vectors.shape}")
    if vectors.shape[0] != count:
        raise InvalidVector(f"{count} template ids but {vectors.shape[0]} vectors")
    if not np.isfinite(vectors).all():
        raise InvalidVector("vectors must be finite (no NaN or infinity)")
    if metric == "cosine" and count and (np.linalg.norm(vectors, axis=1) == 0).any():
        raise InvalidVector("a zero vector has no direction, so no cosine distance")
    return np.ascontiguousarray(vectors)


def check_query(vector: np.ndarray, k: int, dimension: int, metric: str) -> np.ndarray:
    """Return the query as a float32 (dimension,) array, or refuse it."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")
    if isinstance(vector, np.ndarray) and vector.ndim == 2 and vector.shape[0] == 1:
        vector = vector[0]
    if isinstance(vector, np.ndarray) and vector.ndim != 1:
        raise InvalidVector(f"the query must have shape ({dimension},), not {vector.shape}")
    return check_vectors(
        vector.reshape(1, -1) if isinstance(vector, np.ndarray) else vector, 1, dimension, metric
    )[0]


def exact_distances(matrix: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    """Distances from ``query`` to every row, in float64 because this is the reference."""
    rows = matrix.astype(np.float64)
    q = query.astype(np.float64)
    if metric == "cosine":
        return 1.0 - (rows @ q) / (np.linalg.norm(rows, axis=1) * np.linalg.norm(q))
    return np.sqrt(np.square(rows - q).sum(axis=1))


def dump_head(magic: bytes, head: dict[str, Any]) -> list[bytes]:
    """The start of a dump: ``magic``, the length of the JSON header, the header."""
    header = json.dumps(head).encode()
    return [magic, _U32.pack(len(header)), header]


def read_dump_head(
    data: bytes | bytearray | memoryview, magic: bytes, dump_format: str, dimension: int, metric: str
) -> tuple[dict[str, Any], memoryview]:
    """The JSON header ``dump_head`` wrote at the start of ``data``, and the bytes after it.

    ``IndexCorrupted`` unless ``data`` starts with ``magic`` and a header of ``dump_format``
    whose ``ids`` is a list; ``ValueError`` if the dump is of other vectors than
    ``dimension`` and ``metric``. The caller checks the rest of the header and the body.
    """
    view = memoryview(data).cast("B")
    start = len(magic) + _U32.size
    if view.nbytes < start or bytes(view[: len(magic)]) != magic:
        raise IndexCorrupted(f"not a {dump_format} dump")
    (head_length,) = _U32.unpack(view[len(magic) : start])
    try:
        head = json.loads(bytes(view[start : start + head_length]))
        known = head["format"] == dump_format and isinstance(head["ids"], list)
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupted(f"damaged {dump_format} dump ({exc})") from exc
    if not known:
        raise IndexCorrupted(f"not a {dump_format} dump")
    check_same_space("the dump", head.get("dimension"), head.get("metric"), dimension, metric)
    return head, view[start + head_length :]


def read_sidecar(
    path: Path, sidecar: Path, sidecar_format: str, dimension: int, metric: str
) -> dict[str, Any]:
    """The id file saved beside the index file ``path``, of ``sidecar_format`` and these vectors.

    ``IndexCorrupted`` if either file is missing or the id file is not that format;
    ``ValueError`` if it is of other vectors. The caller checks that the two files agree.
    """
    if not (path.exists() and sidecar.exists()):
        raise IndexCorrupted(f"{path}: the index file or its id file is missing; rebuild the index")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupted(f"{sidecar}: unreadable ({exc}); rebuild the index") from exc
    if not isinstance(meta, dict) or meta.get("format") != sidecar_format:
        raise IndexCorrupted(f"{sidecar}: not an {sidecar_format} file; rebuild the index")
    check_same_space(path, meta.get("dimension"), meta.get("metric"), dimension, metric)
    return meta


def save_with_sidecar(path: Path, write_index: Callable[[Path], None], sidecar: Path, meta: dict) -> None:
    """Write the index file (``write_index`` gets a temporary path) and its id file, atomically each."""

    def write_ids(tmp: Path) -> None:
        tmp.write_text(json.dumps(meta), encoding="utf-8")

    replace_together({path: write_index, sidecar: write_ids})
