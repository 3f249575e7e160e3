"""Accuracy measures for a folder-per-identity evaluation (`rfr eval`).

Protocol: every image of an identity with at least two images is a probe, searched against a
gallery of all *other* images. An image where no face was found (failure to enrol) stays in
the counts: as a probe it is a rank-1 miss, so a detector that silently drops hard images
cannot look better than one that tries. Verification (TAR at a fixed FAR) uses every pair of
enrolled images, genuine when both carry the same identity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import attrs
import numpy as np


@attrs.frozen
class IdentificationResult:
    rank1: float
    tar_at_far: float
    far: float
    fte: float
    n_probes: int
    n_gallery: int
    n_images: int
    n_failed_to_enrol: int
    n_genuine_pairs: int
    n_impostor_pairs: int


def pairwise_distances(templates: np.ndarray, metric: str) -> np.ndarray:
    """Distances between every pair of rows, in the metric the templates' algorithm uses."""
    x = np.asarray(templates, dtype=np.float64)
    if metric == "euclidean":
        sq = np.sum(x * x, axis=1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
        return np.sqrt(np.maximum(d2, 0.0))
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        unit = x / np.where(norms == 0.0, 1.0, norms)
        return 1.0 - unit @ unit.T
    raise ValueError(f"unknown metric {metric!r}")


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float:
    """True-accept rate at the strictest distance threshold whose false-accept rate is <= far.

    A pair is accepted when its distance is strictly below the threshold, so ties with an
    impostor distance never sneak extra false accepts in.
    """
    if genuine.size == 0:
        return 0.0
    if impostor.size == 0:
        return 1.0
    imp = np.sort(impostor)
    allowed = int(np.floor(far * imp.size))
    threshold = imp[allowed] if allowed < imp.size else np.inf
    return float(np.mean(genuine < threshold))


def evaluate_identification(
    identities: Sequence[str],
    templates: np.ndarray,
    enrolled: Sequence[bool],
    metric: str,
    far: float = 1e-3,
) -> IdentificationResult:
    """Rank-1, TAR at FAR and failure-to-enrol over one labelled image set.

    ``templates`` has one row per image; rows of images that failed to enrol are ignored.
    """
    labels = np.asarray(identities)
    ok = np.asarray(enrolled, dtype=bool)
    n = labels.size
    if len(templates) != n or ok.size != n:
        raise ValueError("identities, templates and enrolled must have one entry per image")
    counts = Counter(identities)
    is_probe = np.array([counts[label] >= 2 for label in identities], dtype=bool)

    idx = np.flatnonzero(ok)
    dist = pairwise_distances(np.asarray(templates)[idx], metric) if idx.size else np.zeros((0, 0))
    np.fill_diagonal(dist, np.inf)

    hits = 0
    position = {int(i): k for k, i in enumerate(idx)}
    for i in np.flatnonzero(is_probe):
        k = position.get(int(i))
        if k is None or idx.size < 2:
            continue  # failed to enrol: a miss
        nearest = int(idx[int(np.argmin(dist[k]))])
        hits += bool(labels[nearest] == labels[i])

    upper = np.triu_indices(idx.size, k=1)
    pair_d = dist[upper]
    same = labels[idx][upper[0]] == labels[idx][upper[1]]
    n_probes = int(is_probe.sum())
    return IdentificationResult(
        rank1=hits / n_probes if n_probes else 0.0,
        tar_at_far=tar_at_far(pair_d[same], pair_d[~same], far),
        far=far,
        fte=float((~ok).sum() / n) if n else 0.0,
        n_probes=n_probes,
        n_gallery=max(n - 1, 0),
        n_images=n,
        n_failed_to_enrol=int((~ok).sum()),
        n_genuine_pairs=int(same.sum()),
        n_impostor_pairs=int((~same).sum()),
    )
