"""Accuracy measures for a folder-per-identity evaluation (`rfr eval`).

Protocol: every image of an identity with at least two images is a probe, searched against a
gallery of all *other* images. An image where no face was found (failure to enrol) stays in
the counts: as a probe it is a rank-1 miss, so a detector that silently drops hard images
cannot look better than one that tries. Verification (TAR at a fixed FAR) uses every pair of
enrolled images, genuine when both carry the same identity; every FAR is read from the same
pairs.

How far a FAR can be trusted depends on how many impostor pairs it rests on. The threshold for
FAR f over n impostor pairs lets floor(f * n) of them through: with fewer than 1/f pairs that is
none, and the TAR reported is the one at FAR 0 on these pairs, not at f. Even with more, a FAR
read from a handful of false accepts is a rough figure: by Doddington's "rule of 30", about 30
errors are needed before the observed rate is within 30% of the true one with 90% confidence,
i.e. at least 30/f impostor pairs (300,000 for 1e-4). The pairs of one image set are not
independent either (every image takes part in many), so the rule is a lower bound on what is
needed. ``VerificationAtFar.note`` says which of these applies.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import numpy as np

# The FARs `rfr eval` reports (issue 11): both are read from the same pairs.
DEFAULT_FARS = (1e-3, 1e-4)
# Doddington's rule of 30: the false accepts a FAR's threshold should rest on to be trusted.
RULE_OF_30 = 30


@attrs.frozen
class VerificationAtFar:
    """TAR at one FAR, with what the threshold rests on.

    ``threshold`` is a distance in the algorithm's metric: a pair is accepted when strictly
    below it. ``false_accepts_allowed`` is floor(far * n_impostor_pairs), the impostor pairs the
    threshold may let through; ``false_accepts`` those it does (fewer on ties).
    """

    far: float
    tar: float
    threshold: float
    n_genuine_pairs: int
    n_impostor_pairs: int
    false_accepts_allowed: int
    false_accepts: int

    @property
    def measurable(self) -> bool:
        """At least one false accept is allowed: the TAR is at this FAR and not at FAR 0."""
        return self.false_accepts_allowed >= 1

    @property
    def reliable(self) -> bool:
        """The threshold rests on at least 30 false accepts (the rule of 30)."""
        return self.false_accepts_allowed >= RULE_OF_30

    @property
    def impostor_pairs_needed(self) -> int:
        """Impostor pairs for the rule of 30 at this FAR."""
        return math.ceil(RULE_OF_30 / self.far - 1e-9) if self.far > 0 else 0

    @property
    def note(self) -> str:
        """One sentence on how far this figure can be trusted."""
        if self.far <= 0:
            return "FAR 0: the strictest threshold, below every impostor pair"
        if self.n_impostor_pairs == 0:
            return "no impostor pairs: the TAR is not measured"
        if not self.measurable:
            return (
                f"too few impostor pairs: {self.n_impostor_pairs:,} allow no false accept at FAR "
                f"{self.far:g} (at least {math.ceil(1 / self.far - 1e-9):,} needed), so this is the "
                f"TAR at FAR 0 on these pairs, not at {self.far:g}"
            )
        if not self.reliable:
            accepts = "false accept" if self.false_accepts_allowed == 1 else "false accepts"
            return (
                f"rests on {self.false_accepts_allowed} {accepts} of {self.n_impostor_pairs:,} "
                f"impostor pairs, fewer than the 30 of the rule of 30 ({self.impostor_pairs_needed:,} "
                "pairs): a rough figure"
            )
        return (
            f"rests on {self.false_accepts_allowed} false accepts of {self.n_impostor_pairs:,} "
            "impostor pairs"
        )


@attrs.frozen
class IdentificationResult:
    rank1: float
    verification: tuple[VerificationAtFar, ...]
    fte: float
    n_probes: int
    n_gallery: int
    n_images: int
    n_failed_to_enrol: int
    n_genuine_pairs: int
    n_impostor_pairs: int
    # (probe row, row of its nearest gallery image, or None when the probe failed to enrol)
    rank1_misses: tuple[tuple[int, int | None], ...] = ()

    def at(self, far: float) -> VerificationAtFar:
        """The verification figures at ``far`` (one of those asked for)."""
        for point in self.verification:
            if math.isclose(point.far, far, rel_tol=1e-9, abs_tol=0.0):
                return point
        raise KeyError(f"FAR {far:g} was not evaluated")

    @property
    def tar_at_far(self) -> float:
        """TAR at the first FAR asked for (1e-3 by default)."""
        return self.verification[0].tar


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


def false_accepts_allowed(far: float, n_impostor: int) -> int:
    """floor(far * n_impostor), safe from the product's rounding (0.29 * 100 is 28.999...)."""
    if far < 0 or not math.isfinite(far):
        raise ValueError(f"a FAR must be a finite number >= 0, not {far!r}")
    return min(n_impostor, math.floor(far * n_impostor * (1 + 1e-12) + 1e-9))


def verification_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> VerificationAtFar:
    """TAR at the strictest distance threshold whose false-accept rate is <= far.

    A pair is accepted when its distance is strictly below the threshold, so ties with an
    impostor distance never sneak extra false accepts in. With no genuine pair the TAR is 0;
    with no impostor pair every genuine pair is accepted.
    """
    genuine = np.asarray(genuine, dtype=np.float64).reshape(-1)
    impostor = np.asarray(impostor, dtype=np.float64).reshape(-1)
    allowed = false_accepts_allowed(far, impostor.size)
    imp = np.sort(impostor)
    threshold = float(imp[allowed]) if allowed < imp.size else math.inf
    if genuine.size == 0:
        tar = 0.0
    elif impostor.size == 0:
        tar = 1.0
    else:
        tar = float(np.mean(genuine < threshold))
    return VerificationAtFar(
        far=far,
        tar=tar,
        threshold=threshold,
        n_genuine_pairs=int(genuine.size),
        n_impostor_pairs=int(impostor.size),
        false_accepts_allowed=allowed,
        false_accepts=int(np.count_nonzero(imp < threshold)),
    )


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float:
    """TAR alone of ``verification_at_far``."""
    return verification_at_far(genuine, impostor, far).tar


def evaluate_identification(
    identities: Sequence[str],
    templates: np.ndarray,
    enrolled: Sequence[bool],
    metric: str,
    fars: Sequence[float] = DEFAULT_FARS,
) -> IdentificationResult:
    """Rank-1, TAR at each of ``fars`` and failure-to-enrol over one labelled image set.

    ``templates`` has one row per image; rows of images that failed to enrol are ignored.
    """
    if not fars:
        raise ValueError("at least one FAR")
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
    misses: list[tuple[int, int | None]] = []
    position = {int(i): k for k, i in enumerate(idx)}
    for i in np.flatnonzero(is_probe):
        k = position.get(int(i))
        if k is None or idx.size < 2:
            misses.append((int(i), None))  # failed to enrol (or nothing to search): a miss
            continue
        nearest = int(idx[int(np.argmin(dist[k]))])
        if labels[nearest] == labels[i]:
            hits += 1
        else:
            misses.append((int(i), nearest))

    upper = np.triu_indices(idx.size, k=1)
    pair_d = dist[upper]
    same = labels[idx][upper[0]] == labels[idx][upper[1]]
    genuine, impostor = pair_d[same], pair_d[~same]
    n_probes = int(is_probe.sum())
    return IdentificationResult(
        rank1=hits / n_probes if n_probes else 0.0,
        verification=tuple(verification_at_far(genuine, impostor, far) for far in fars),
        fte=float((~ok).sum() / n) if n else 0.0,
        n_probes=n_probes,
        n_gallery=max(n - 1, 0),
        n_images=n,
        n_failed_to_enrol=int((~ok).sum()),
        n_genuine_pairs=int(same.sum()),
        n_impostor_pairs=int((~same).sum()),
        rank1_misses=tuple(misses),
    )


class StageClock:
    """Seconds spent in each named stage, summed over calls (``rfr eval``'s time per stage).

    ``timed(stage, method, name)`` wraps one of an engine's stages so that each call of its
    ``method`` adds to ``seconds[name]``; every other attribute is the stage's own. An engine
    built from wrapped stages runs its own code unchanged, so the time of detection, alignment
    and embedding are measured separately without repeating what ``FaceEngine`` does.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.seconds: MutableMapping[str, float] = {}

    @contextmanager
    def measuring(self, name: str) -> Iterator[None]:
        start = self._clock()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + self._clock() - start

    def timed(self, stage: Any, method: str, name: str) -> Any:
        self.seconds.setdefault(name, 0.0)
        return _TimedStage(stage, method, name, self)


class _TimedStage:
    def __init__(self, stage: Any, method: str, name: str, clock: StageClock) -> None:
        self._stage, self._method, self._name, self._stage_clock = stage, method, name, clock

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._stage, attribute)
        if attribute != self._method:
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self._stage_clock.measuring(self._name):
                return value(*args, **kwargs)

        return timed
