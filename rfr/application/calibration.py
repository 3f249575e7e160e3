"""Calibrated scores (issue 11 item 4): what a distance means, measured on labelled photos.

An algorithm's own threshold (dlib's 0.6, SFace's 1 - 0.363) is its authors' operating point
on their data, not a false match rate in ours. A calibration measures, on a labelled
folder-per-identity set, how often two photos of *different* people (impostor pairs) come
within each distance of each other, the false match rate FMR(d), and from it:

- the distance ``threshold`` at which a search of a gallery of ``gallery_size`` templates by a
  probe of somebody not in it returns a candidate within the threshold with probability
  ``target_fpir`` (the false positive identification rate)::

      FPIR(N) = 1 - (1 - FMR(t)) ** N,  so  FMR(t) = 1 - (1 - target) ** (1 / N)

  The displayed score is then ``SimilarityScale(metric, threshold)``: 0.5 at this operating
  point instead of at the algorithm's published one (``Calibration.scale``).
- ``non_mate_chance(d, N)``: the expected chance that at least one of N non-mates comes
  within distance ``d`` of a probe, the figure shown beside each candidate of a library of N.

Both treat the N comparisons of a search as independent draws from the impostor distribution
measured here. They are not quite (one probe's distances to a gallery are correlated, and a
gallery of one population is not the calibration set), so the figures are estimates for a
probe and gallery like the calibration set, not guarantees.

**The table and the tail.** Below ``1 / impostor_pairs`` nothing can be counted: a gallery of
a million at FPIR 0.01 needs FMR near 1e-8, and 552 photos give 150,000 impostor pairs. So
FMR is stored in two parts:

- ``table``: the measured (empirical) FMR at up to ``MAX_TABLE_POINTS`` distances, from the
  distance ``tail.threshold`` where ``tail_fraction`` (1 %) of impostor pairs are closer up to
  the farthest impostor pair (FMR 1). Between points, log FMR is interpolated linearly.
- ``tail``: below ``tail.threshold``, a generalised Pareto distribution fitted by maximum
  likelihood to how far the closest impostor pairs fall below it (peaks over threshold, the
  standard extreme-value model of a distribution's tail):
  ``FMR(d) = rate * (1 + shape * (u - d) / scale) ** (-1 / shape)`` (``rate * exp(-(u - d) /
  scale)`` at shape 0). The shape is constrained to be at least 0: a negative shape would say
  that no impostor ever comes closer than some fixed distance, which several decades beyond
  the data nobody can know; at shape 0 (an exponential tail, heavier than a normal one) the
  extrapolated FMR errs on the side of more false matches, so the calibrated threshold errs
  strict and the non-mate chance errs high. ADR 0020 says what this costs and where it fails.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from rfr.application.similarity import DEFAULT_STEEPNESS, METRICS, SimilarityScale

# Names the fitting below; a calibration fitted otherwise would name another method.
CALIBRATION_METHOD = "empirical-fmr+gpd-lower-tail/1"
# Points of the measured FMR table kept in a calibration (and so in its event).
MAX_TABLE_POINTS = 200
# The closest fraction of impostor pairs the tail is fitted to, and at least this many of them.
DEFAULT_TAIL_FRACTION = 0.01
MIN_TAIL_PAIRS = 50
# Fewer impostor pairs than this measure no tail worth fitting.
MIN_IMPOSTOR_PAIRS = 1000
# Defaults of `rfr calibrate`: at most one search in a hundred of someone not in a library of
# ten thousand reaches the calibrated 0.5.
DEFAULT_TARGET_FPIR = 0.01
DEFAULT_GALLERY_SIZE = 10_000

# Distances computed in float32 can come out a hair below zero for identical vectors.
_NEGATIVE_TOLERANCE = 1e-5
# The shape's upper bound in the fit: beyond it the tail is heavier than any face data shows.
_MAX_SHAPE = 1.0


class CalibrationError(ValueError):
    """The data or the target cannot give a calibration; the message says why."""


def required_fmr(target_fpir: float, gallery_size: int) -> float:
    """The FMR at which a gallery of ``gallery_size`` non-mates gives FPIR ``target_fpir``:
    ``1 - (1 - target) ** (1 / N)``, computed without losing the small values."""
    _check_fpir(target_fpir)
    _check_gallery(gallery_size)
    return -math.expm1(math.log1p(-target_fpir) / gallery_size)


def chance_of_any(fmr: float, gallery_size: int) -> float:
    """``1 - (1 - fmr) ** N``: the chance that at least one of N independent non-mates matches."""
    _check_gallery(gallery_size)
    if fmr >= 1.0:
        return 1.0
    if fmr <= 0.0:
        return 0.0
    return -math.expm1(gallery_size * math.log1p(-fmr))


def _check_fpir(value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 < value < 1.0):
        raise CalibrationError(f"a target FPIR must lie strictly between 0 and 1, not {value!r}")


def _check_gallery(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CalibrationError(f"a gallery size must be a whole number of at least 1, not {value!r}")


def _distance(value: float) -> float:
    value = float(value)
    if math.isnan(value) or value < -_NEGATIVE_TOLERANCE:
        raise ValueError(f"a distance must be a non-negative number, not {value!r}")
    return max(value, 0.0)


# -- the dataset ---------------------------------------------------------------------------------


@attrs.frozen
class DatasetFingerprint:
    """Which photos a calibration was fitted on, without saying whose they are.

    ``sha256`` is the hash of the sorted list of (file path, file content hash): the same files
    give the same hash, any change of a file or of the list another. The paths (whose folders
    are people's names) go into the hash only, never into a calibration or its events.

    Attributes:
        sha256: Hash of the sorted (relative path, content sha256) list.
        identities: Identity folders read.
        images: Image files read.
        templated: Images a face was found and templated in (one face each).
        genuine_pairs: Pairs of templates of the same identity.
        impostor_pairs: Pairs of templates of different identities.
    """

    sha256: str
    identities: int
    images: int
    templated: int
    genuine_pairs: int
    impostor_pairs: int

    @staticmethod
    def digest(files: Iterable[tuple[str, str]]) -> str:
        """The hash of (relative path, content sha256 hex) pairs, in any order."""
        h = hashlib.sha256(b"rfr-calibration-dataset/1\n")
        for path, content in sorted(files):
            h.update(path.encode("utf-8") + b"\0" + content.encode("ascii") + b"\n")
        return h.hexdigest()


# -- the tail ------------------------------------------------------------------------------------


@attrs.frozen
class ImpostorTail:
    """The fitted lower tail of the impostor distances (a generalised Pareto distribution).

    Attributes:
        threshold: ``u``, the distance below which the tail model gives the FMR.
        rate: The measured FMR at ``u``.
        scale: The fitted scale (sigma), in distance units.
        shape: The fitted shape (xi), at least 0.
        pairs: The impostor pairs closer than ``u`` it was fitted to.
    """

    threshold: float
    rate: float
    scale: float
    shape: float
    pairs: int

    def fmr(self, distance: float) -> float:
        """FMR at ``distance`` (at most ``threshold``) by the fitted tail."""
        y = max(self.threshold - distance, 0.0)
        if self.shape < 1e-9:
            return self.rate * math.exp(-y / self.scale)
        return self.rate * math.exp(-math.log1p(self.shape * y / self.scale) / self.shape)

    def distance(self, fmr: float) -> float:
        """The distance at which the fitted tail gives ``fmr`` (at most ``rate``); may be negative."""
        ratio = fmr / self.rate
        if self.shape < 1e-9:
            return self.threshold + self.scale * math.log(ratio)
        return self.threshold - self.scale / self.shape * math.expm1(-self.shape * math.log(ratio))


def fit_tail(exceedances: np.ndarray) -> tuple[float, float]:
    """(scale, shape) of the generalised Pareto distribution that best fits ``exceedances``
    (all > 0), by maximum likelihood with the shape held in [0, 1].

    Grimshaw's reduction: with ``theta = shape / scale``, the likelihood's best shape for a given
    theta is ``mean(log1p(theta * y))``, so the fit is a search over theta alone, whose profile
    log-likelihood is ``-k * (log(shape / theta) + shape + 1)``. The shape grows with theta and
    is 0 at theta = 0 (the exponential, scale = mean(y)), so shape >= 0 is theta >= 0.
    """
    y = np.asarray(exceedances, dtype=np.float64)
    if y.size < 2 or not np.all(y > 0) or not np.all(np.isfinite(y)):
        raise CalibrationError("the tail needs at least two impostor distances below its threshold")
    mean = float(y.mean())

    def profile(theta: float) -> tuple[float, float]:
        if theta <= 0.0:
            return -y.size * (math.log(mean) + 1.0), 0.0
        shape = float(np.mean(np.log1p(theta * y)))
        return -y.size * (math.log(shape / theta) + shape + 1.0), shape

    # theta * mean(y) spans a few decades; search it on a log grid, then refine by golden section.
    grid = [0.0, *(float(v) / mean for v in np.geomspace(1e-4, 1e3, 141))]
    scored = [(profile(t), t) for t in grid]
    scored = [(ll, s, t) for (ll, s), t in scored if s <= _MAX_SHAPE]
    best = max(range(len(scored)), key=lambda i: scored[i][0])
    lo = scored[best - 1][2] if best > 0 else 0.0
    hi = scored[best + 1][2] if best + 1 < len(scored) else scored[best][2]
    if hi > lo:
        ratio = (math.sqrt(5) - 1) / 2
        a, b = lo, hi
        for _ in range(80):
            c, d = b - ratio * (b - a), a + ratio * (b - a)
            if profile(c)[0] >= profile(d)[0]:
                b = d
            else:
                a = c
        theta = (a + b) / 2
        if profile(theta)[0] < scored[best][0]:
            theta = scored[best][2]
    else:
        theta = scored[best][2]
    _, shape = profile(theta)
    shape = min(shape, _MAX_SHAPE)
    scale = mean if theta <= 0.0 or shape < 1e-9 else shape / theta
    return scale, (shape if shape >= 1e-9 else 0.0)


# -- the calibration -----------------------------------------------------------------------------


def _table_validator(instance: Calibration, attribute: attrs.Attribute, value: Any) -> None:
    if not 2 <= len(value) <= MAX_TABLE_POINTS:
        raise ValueError(f"an FMR table holds 2 to {MAX_TABLE_POINTS} points, not {len(value)}")
    for (d0, f0), (d1, f1) in itertools.pairwise(value):
        if not (d0 < d1 and 0.0 < f0 < f1 <= 1.0):
            raise ValueError("an FMR table's distances and rates must both increase, rates in (0, 1]")
    if value[-1][1] != 1.0:
        raise ValueError("an FMR table ends at the farthest impostor pair, FMR 1")


def _as_table(value: Iterable[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    return tuple((float(d), float(f)) for d, f in value)


@attrs.frozen
class Calibration:
    """One algorithm's fitted FMR and the operating point chosen from it (module docstring).

    Attributes:
        algorithm_id: The algorithm whose templates' distances were measured (T-01).
        metric: Their metric ("euclidean" or "cosine").
        dataset: Which photos, and how many pairs (no names, no images, no templates).
        target_fpir: The false positive identification rate asked for ...
        gallery_size: ... in a gallery of this many templates.
        threshold: The distance meeting it: the displayed score is 0.5 there.
        table: (distance, measured FMR) points, both increasing, the last at FMR 1.
        tail: The fitted tail, below ``table[0]``.
        fnmr: The fraction of genuine pairs farther apart than ``threshold`` (false non-matches).
        steepness: The score's steepness (ADR 0007).
        method: How it was fitted (``CALIBRATION_METHOD``).
    """

    algorithm_id: str = attrs.field(validator=attrs.validators.min_len(1))
    metric: str = attrs.field(validator=attrs.validators.in_(METRICS))
    dataset: DatasetFingerprint
    target_fpir: float
    gallery_size: int
    threshold: float
    table: tuple[tuple[float, float], ...] = attrs.field(converter=_as_table, validator=_table_validator)
    tail: ImpostorTail
    fnmr: float
    steepness: float = DEFAULT_STEEPNESS
    method: str = CALIBRATION_METHOD

    def __attrs_post_init__(self) -> None:
        _check_fpir(self.target_fpir)
        _check_gallery(self.gallery_size)
        if not 0.0 <= self.fnmr <= 1.0:
            raise ValueError(f"a false non-match rate lies in [0, 1], not {self.fnmr!r}")
        self.scale  # noqa: B018 - the threshold and steepness must make a scale

    @property
    def scale(self) -> SimilarityScale:
        """The displayed score: 0.5 at the calibrated threshold."""
        return SimilarityScale(self.metric, self.threshold, self.steepness)

    @property
    def target_fmr(self) -> float:
        """The FMR the threshold was chosen to give."""
        return required_fmr(self.target_fpir, self.gallery_size)

    def fmr_at(self, distance: float) -> float:
        """The false match rate at ``distance``: the chance that a non-mate is at most this far."""
        return _fmr_at(self.table, self.tail, _distance(distance))

    def distance_at(self, fmr: float) -> float:
        """The distance whose FMR is ``fmr`` (the inverse of ``fmr_at``); below 0 where even
        identical templates would be too many false matches, which no threshold can meet."""
        return _distance_at(self.table, self.tail, fmr)

    def non_mate_chance(self, distance: float, gallery_size: int) -> float:
        """The expected chance that at least one of ``gallery_size`` non-mates comes within
        ``distance`` of a probe: what a candidate at that distance means in that library."""
        return chance_of_any(self.fmr_at(distance), gallery_size)

    def non_mate_chance_of_score(self, score: float, gallery_size: int) -> float:
        """``non_mate_chance`` of the distance that has this displayed score."""
        return self.non_mate_chance(self.scale.distance(score), gallery_size)

    @property
    def pairs_behind_threshold(self) -> float:
        """How many of the measured impostor pairs the target FMR amounts to: below 1 the
        threshold rests on the fitted tail's extrapolation alone; below 30 (Doddington's rule of
        30) on too few false matches for the rate to be read directly."""
        return self.target_fmr * self.dataset.impostor_pairs

    @property
    def extrapolated(self) -> bool:
        """Whether the target FMR is below one in all the impostor pairs measured."""
        return self.pairs_behind_threshold < 1.0

    def to_data(self) -> dict[str, Any]:
        """Plain data for an event: numbers and the dataset's hash, nothing else."""
        return {
            "method": self.method,
            "algorithm_id": self.algorithm_id,
            "metric": self.metric,
            "dataset": attrs.asdict(self.dataset),
            "target_fpir": self.target_fpir,
            "gallery_size": self.gallery_size,
            "threshold": self.threshold,
            "steepness": self.steepness,
            "fnmr": self.fnmr,
            "tail": attrs.asdict(self.tail),
            "table": [[d, f] for d, f in self.table],
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(
            algorithm_id=str(data["algorithm_id"]),
            metric=str(data["metric"]),
            dataset=DatasetFingerprint(**data["dataset"]),
            target_fpir=float(data["target_fpir"]),
            gallery_size=int(data["gallery_size"]),
            threshold=float(data["threshold"]),
            table=data["table"],
            tail=ImpostorTail(**data["tail"]),
            fnmr=float(data["fnmr"]),
            steepness=float(data["steepness"]),
            method=str(data["method"]),
        )


def _fmr_at(table: Sequence[tuple[float, float]], tail: ImpostorTail, d: float) -> float:
    if d < table[0][0]:
        return tail.fmr(d)
    if d >= table[-1][0]:
        return 1.0
    j = bisect.bisect_right([p[0] for p in table], d) - 1
    (d0, f0), (d1, f1) = table[j], table[j + 1]
    w = (d - d0) / (d1 - d0)
    return math.exp(math.log(f0) + w * (math.log(f1) - math.log(f0)))


def _distance_at(table: Sequence[tuple[float, float]], tail: ImpostorTail, fmr: float) -> float:
    if not 0.0 < fmr <= 1.0:
        raise ValueError(f"an FMR must lie in (0, 1], not {fmr!r}")
    if fmr < table[0][1]:
        return tail.distance(fmr)
    j = min(bisect.bisect_right([p[1] for p in table], fmr) - 1, len(table) - 2)
    (d0, f0), (d1, f1) = table[j], table[j + 1]
    w = (math.log(fmr) - math.log(f0)) / (math.log(f1) - math.log(f0))
    return d0 + w * (d1 - d0)


def _empirical_table(ordered: np.ndarray, tail_pairs: int) -> list[tuple[float, float]]:
    """Measured (distance, FMR) at up to MAX_TABLE_POINTS ranks, log-spaced from the tail's
    threshold (rank ``tail_pairs``) to the farthest pair; FMR counts the pairs at most that far."""
    n = ordered.size
    ranks = np.unique(np.round(np.geomspace(tail_pairs, n, MAX_TABLE_POINTS)).astype(np.int64))
    table: list[tuple[float, float]] = []
    for rank in ranks:
        d = float(ordered[rank - 1])
        f = float(np.searchsorted(ordered, d, side="right")) / n
        if table and d <= table[-1][0]:
            continue
        table.append((d, f))
    if len(table) < 2:
        raise CalibrationError("the impostor distances are all equal: nothing to calibrate")
    return table


def fit_calibration(
    genuine: np.ndarray,
    impostor: np.ndarray,
    *,
    algorithm_id: str,
    metric: str,
    dataset: DatasetFingerprint,
    target_fpir: float = DEFAULT_TARGET_FPIR,
    gallery_size: int = DEFAULT_GALLERY_SIZE,
    tail_fraction: float = DEFAULT_TAIL_FRACTION,
    steepness: float = DEFAULT_STEEPNESS,
) -> Calibration:
    """The calibration of one algorithm from its genuine and impostor pair distances.

    ``CalibrationError`` when there are fewer than ``MIN_IMPOSTOR_PAIRS`` impostor pairs or no
    genuine pair, or when the target cannot be met (the fitted tail gives more than the
    target's FMR even at distance 0).
    """
    _check_fpir(target_fpir)
    _check_gallery(gallery_size)
    if not 0.0 < tail_fraction < 0.5:
        raise CalibrationError(f"the tail fraction must lie in (0, 0.5), not {tail_fraction!r}")
    imp = np.sort(np.asarray(impostor, dtype=np.float64).reshape(-1))
    gen = np.asarray(genuine, dtype=np.float64).reshape(-1)
    if not (np.all(np.isfinite(imp)) and np.all(np.isfinite(gen))):
        raise CalibrationError("distances must be finite numbers")
    if imp.size < MIN_IMPOSTOR_PAIRS:
        raise CalibrationError(
            f"{imp.size} impostor pairs are too few to calibrate on: at least {MIN_IMPOSTOR_PAIRS} "
            "(pairs of photos of different people) are needed"
        )
    if gen.size == 0:
        raise CalibrationError("no genuine pairs: at least one identity needs two templated photos")
    if (dataset.genuine_pairs, dataset.impostor_pairs) != (gen.size, imp.size):
        raise ValueError("the dataset's pair counts are not those of the distances given")
    imp = np.maximum(imp, 0.0)
    gen = np.maximum(gen, 0.0)

    k = max(MIN_TAIL_PAIRS, round(tail_fraction * imp.size))
    table = _empirical_table(imp, k)
    u, rate = table[0]
    below = imp[imp < u]
    scale, shape = fit_tail(u - below)
    tail = ImpostorTail(threshold=u, rate=rate, scale=scale, shape=shape, pairs=int(below.size))

    def build(threshold: float) -> Calibration:
        return Calibration(
            algorithm_id=algorithm_id,
            metric=metric,
            dataset=dataset,
            target_fpir=target_fpir,
            gallery_size=gallery_size,
            threshold=threshold,
            table=table,
            tail=tail,
            fnmr=float(np.mean(gen > threshold)),
            steepness=steepness,
        )

    wanted = required_fmr(target_fpir, gallery_size)
    threshold = _distance_at(table, tail, wanted)
    if threshold <= 0.0:
        raise CalibrationError(
            f"FPIR {target_fpir:g} in a gallery of {gallery_size:,} needs FMR {wanted:.3g}, below what "
            f"the fitted tail gives even at distance 0 ({tail.fmr(0.0):.3g}): choose a larger "
            "target or a smaller gallery"
        )
    return build(threshold)


# -- pairs from templates ------------------------------------------------------------------------


def pair_distances(
    templates: np.ndarray, labels: Sequence[Any], metric: str, *, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) distances of every pair of rows of ``templates``, genuine when both
    rows carry the same label; computed a block of rows at a time, in the templates' metric."""
    x = np.asarray(templates, dtype=np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms == 0.0, 1.0, norms)
    elif metric != "euclidean":
        raise ValueError(f"unknown metric {metric!r}")
    codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
    n = x.shape[0]
    if codes.size != n:
        raise ValueError("one label per template")
    squares = np.sum(x * x, axis=1)
    genuine: list[np.ndarray] = [np.zeros(0)]
    impostor: list[np.ndarray] = [np.zeros(0)]
    for start in range(0, n, block):
        stop = min(start + block, n)
        products = x[start:stop] @ x[start:].T
        if metric == "cosine":
            d = 1.0 - products
        else:
            d = np.sqrt(np.maximum(squares[start:stop, None] + squares[None, start:] - 2.0 * products, 0.0))
        # Row i of the block (template start + i) against templates start + j, j > i.
        rows, cols = np.triu_indices(stop - start, k=1, m=n - start)
        same = codes[start + rows] == codes[start + cols]
        dist = d[rows, cols]
        genuine.append(dist[same])
        impostor.append(dist[~same])
    return np.concatenate(genuine), np.concatenate(impostor)
