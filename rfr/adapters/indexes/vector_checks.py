"""Input checks shared by every vector index adapter, so they refuse the same things alike."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rfr.application.errors import DuplicateTemplateId, InvalidVector

METRICS = ("euclidean", "cosine")
SIDECAR_SUFFIX = ".ids.json"


def check_opening(dimension: int, metric: str) -> None:
    if isinstance(dimension, bool) or not isinstance(dimension, int | np.integer) or dimension < 1:
        raise ValueError(f"dimension must be a positive integer, not {dimension!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")


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
