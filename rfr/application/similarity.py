"""Similarity scores an investigator can read, and the guard that keeps algorithms apart.

A raw distance means nothing to a user: 0.45 is a close match for the dlib ResNet (Euclidean,
threshold 0.6) and a poor one for an ArcFace model (cosine distance, threshold ~0.7). So every
candidate is shown with a score in [0, 1], higher = more similar, that is 0.5 exactly at the
algorithm's own decision threshold:

    score(d) = 1 / (1 + (d / t) ** k)

with ``t`` the threshold and ``k`` the steepness. It is 1 at distance 0, 0.5 at ``d == t``,
tends to 0 as ``d`` grows, and is strictly decreasing, so ranking by score is ranking by
distance. ``k = 6`` by default: on the shared dataset's dlib reference descriptors the median
same-person distance (0.44) maps to 0.86 and the median different-person distance (0.83) to
0.12, so the scale uses most of [0, 1] without saturating; cosine distances of ArcFace-style
models sit at a similar ratio to their threshold, so the same default serves both metrics.

The score is the "similarity score" shown with each potential match (S-04). It is a display
aid, not a probability: it says nothing about how likely a match is to be right (that depends
on the library and the probe), which is why only a person's adjudication makes a viable
match (S-05).
"""

from __future__ import annotations

import math

import attrs

from rfr.application.errors import AlgorithmMismatch
from rfr.application.ports import FaceEmbedder

METRICS = ("euclidean", "cosine")
DEFAULT_STEEPNESS = 6.0

# Distances computed in float32 can come out a hair below zero for identical vectors.
_NEGATIVE_TOLERANCE = 1e-5


def _positive_finite(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive finite number, not {value!r}")


def _threshold_in_range(instance: SimilarityScale, attribute: attrs.Attribute, value: float) -> None:
    _positive_finite(instance, attribute, value)
    # A cosine distance never exceeds 2, so a threshold there would accept everything.
    if instance.metric == "cosine" and value >= 2.0:
        raise ValueError(f"a cosine distance threshold must be below 2, not {value!r}")


@attrs.frozen
class SimilarityScale:
    """Maps a distance of one algorithm to a score in [0, 1] and back."""

    metric: str = attrs.field(validator=attrs.validators.in_(METRICS))
    threshold: float = attrs.field(converter=float, validator=_threshold_in_range)
    steepness: float = attrs.field(default=DEFAULT_STEEPNESS, converter=float, validator=_positive_finite)

    @classmethod
    def for_embedder(cls, embedder: FaceEmbedder) -> SimilarityScale:
        return cls(metric=embedder.metric, threshold=embedder.threshold)

    def score(self, distance: float) -> float:
        """Score of ``distance``; 0.5 exactly at the threshold."""
        distance = float(distance)
        if math.isnan(distance) or distance < -_NEGATIVE_TOLERANCE:
            raise ValueError(f"a distance must be a non-negative number, not {distance!r}")
        if distance <= 0.0:
            return 1.0
        exponent = self.steepness * math.log(distance / self.threshold)
        # exp overflows past ~709; the score there is 0 to double precision anyway.
        if exponent > 700.0:
            return 0.0
        return 1.0 / (1.0 + math.exp(exponent))

    def distance(self, score: float) -> float:
        """The distance that has ``score``: the inverse of ``score`` (inf for a score of 0)."""
        score = float(score)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"a score must be within [0, 1], not {score!r}")
        if score == 0.0:
            return math.inf
        if score == 1.0:
            return 0.0
        return self.threshold * ((1.0 - score) / score) ** (1.0 / self.steepness)

    def is_match(self, distance: float) -> bool:
        """True when ``distance`` is within the algorithm's decision threshold."""
        return float(distance) <= self.threshold


def ensure_same_algorithm(expected: str, actual: str) -> None:
    """Refuse to compare templates of different algorithms (T-01).

    Algorithm ids carry model and version, so the comparison is exact: a retrained model
    with the same name but another version is a different algorithm.
    """
    if not expected or not actual or expected != actual:
        raise AlgorithmMismatch(expected, actual)
