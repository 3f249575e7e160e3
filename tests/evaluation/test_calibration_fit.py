"""Fitting a calibration (issue 11 item 4): the FMR table, its fitted tail and the operating point,
on synthetic distances whose true false match rate is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfr.application.calibration import (
    MAX_TABLE_POINTS,
    Calibration,
    CalibrationError,
    DatasetFingerprint,
    chance_of_any,
    fit_calibration,
    fit_tail,
    pair_distances,
    required_fmr,
)
from rfr.application.evaluation import pairwise_distances


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _dataset(genuine, impostor) -> DatasetFingerprint:
    return DatasetFingerprint(
        "0" * 64, 100, 700, 700, genuine_pairs=len(genuine), impostor_pairs=len(impostor)
    )


def _fit(genuine, impostor, **kwargs) -> Calibration:
    dataset = _dataset(genuine, impostor)
    return fit_calibration(
        genuine, impostor, algorithm_id="alg-v1", metric="euclidean", dataset=dataset, **kwargs
    )


@pytest.fixture(scope="module")
def normal_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Impostor distances N(0.8, 0.09) (about dlib's on LFW), genuine N(0.45, 0.08)."""
    rng = np.random.default_rng(20251207)
    return rng.normal(0.45, 0.08, 2_000), rng.normal(0.8, 0.09, 200_000)


# -- the FPIR arithmetic -------------------------------------------------------------------------


def test_required_fmr_inverts_the_chance_of_any_non_mate():
    assert required_fmr(0.01, 1) == pytest.approx(0.01)
    assert required_fmr(0.01, 1_000_000) == pytest.approx(1.00503e-8, rel=1e-5)
    for fpir, n in [(0.01, 10_000), (0.2, 3), (1e-6, 10**9)]:
        assert chance_of_any(required_fmr(fpir, n), n) == pytest.approx(fpir, rel=1e-9)


@pytest.mark.parametrize("fpir", [0.0, 1.0, -0.1, 2.0])
def test_a_target_fpir_outside_zero_to_one_is_refused(fpir):
    with pytest.raises(CalibrationError):
        required_fmr(fpir, 10)


@pytest.mark.parametrize("size", [0, -5, 2.5, True])
def test_a_gallery_size_must_be_a_whole_number_of_at_least_one(size):
    with pytest.raises(CalibrationError):
        required_fmr(0.01, size)


# -- the operating point -------------------------------------------------------------------------


def test_threshold_meets_the_target_fmr_where_the_pairs_measure_it(normal_pairs):
    """FPIR 1e-3 in a gallery of 1 is FMR 1e-3: 200 of the 200,000 pairs, so the true FMR at the
    threshold lies within 3 binomial standard errors (relative 0.07 each) of the target."""
    genuine, impostor = normal_pairs
    cal = _fit(genuine, impostor, target_fpir=1e-3, gallery_size=1)
    true_fmr = _normal_cdf((cal.threshold - 0.8) / 0.09)
    assert true_fmr == pytest.approx(1e-3, rel=3 * math.sqrt(1 / 200))
    assert cal.non_mate_chance(cal.threshold, 1) == pytest.approx(1e-3, rel=1e-9)
    assert not cal.extrapolated and cal.pairs_behind_threshold == pytest.approx(200, rel=1e-6)


def test_threshold_meets_the_target_fpir_of_a_gallery(normal_pairs):
    """FPIR 0.05 in a gallery of 100 needs FMR 5.1e-4, inside the fitted tail."""
    genuine, impostor = normal_pairs
    cal = _fit(genuine, impostor, target_fpir=0.05, gallery_size=100)
    assert cal.threshold < cal.tail.threshold  # set by the tail
    true_fpir = chance_of_any(_normal_cdf((cal.threshold - 0.8) / 0.09), 100)
    assert true_fpir == pytest.approx(0.05, rel=0.3)
    assert cal.non_mate_chance(cal.threshold, cal.gallery_size) == pytest.approx(0.05, rel=1e-9)


def test_the_calibrated_score_is_one_half_at_the_operating_point(normal_pairs):
    cal = _fit(*normal_pairs, target_fpir=0.01, gallery_size=1000)
    assert cal.scale.threshold == cal.threshold
    assert cal.scale.metric == "euclidean"
    assert cal.scale.score(cal.threshold) == 0.5
    assert cal.non_mate_chance_of_score(0.5, 1000) == pytest.approx(0.01, rel=1e-9)
    # A closer candidate scores higher and is less likely to be a non-mate's.
    closer = cal.threshold * 0.9
    assert cal.scale.score(closer) > 0.5
    assert cal.non_mate_chance(closer, 1000) < 0.01


def test_a_larger_gallery_needs_a_stricter_threshold(normal_pairs):
    sizes = (1, 100, 10**4, 10**6)
    thresholds = [_fit(*normal_pairs, target_fpir=0.01, gallery_size=n).threshold for n in sizes]
    assert thresholds == sorted(thresholds, reverse=True)
    assert len(set(thresholds)) == 4


def test_the_false_non_match_rate_is_that_of_the_genuine_pairs_at_the_threshold(normal_pairs):
    genuine, impostor = normal_pairs
    cal = _fit(genuine, impostor, target_fpir=0.01, gallery_size=100)
    assert cal.fnmr == pytest.approx(float(np.mean(genuine > cal.threshold)))


# -- the table -----------------------------------------------------------------------------------


def test_the_table_is_bounded_monotone_and_measured(normal_pairs):
    _, impostor = normal_pairs
    cal = _fit(*normal_pairs)
    assert 2 <= len(cal.table) <= MAX_TABLE_POINTS
    distances, rates = zip(*cal.table, strict=True)
    assert list(distances) == sorted(set(distances)) and list(rates) == sorted(set(rates))
    assert rates[-1] == 1.0 and distances[-1] == impostor.max()
    # Each point is the measured fraction of impostor pairs at most that far.
    for d, f in cal.table[:: len(cal.table) // 10]:
        assert f == float(np.mean(impostor <= d))
    # The tail starts where 1 % of the pairs are closer.
    assert cal.table[0] == (cal.tail.threshold, cal.tail.rate)
    assert cal.tail.rate == pytest.approx(0.01, rel=1e-3)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1_000, 20_000),
    spread=st.floats(0.02, 0.5),
    skew=st.floats(0.0, 2.0),
)
def test_fmr_is_monotone_continuous_and_inverted_by_distance_at(seed, n, spread, skew):
    """Whatever the impostor distribution, FMR never decreases with distance, has no jump where
    the table meets the tail, and ``distance_at`` is its inverse from 1e-15 to 1."""
    rng = np.random.default_rng(seed)
    impostor = np.abs(1.0 + spread * rng.normal(size=n) + skew * spread * rng.exponential(size=n))
    cal = _fit(np.array([0.1, 0.2]), impostor, target_fpir=0.01, gallery_size=1)
    grid = np.linspace(0.0, impostor.max() * 1.1, 2_000)
    fmr = np.array([cal.fmr_at(d) for d in grid])
    assert np.all(np.diff(fmr) >= 0.0)
    assert np.all((fmr > 0.0) & (fmr <= 1.0))
    u = cal.tail.threshold
    assert cal.fmr_at(u * (1 - 1e-12)) == pytest.approx(cal.fmr_at(u), rel=1e-6)
    for p in np.geomspace(max(cal.fmr_at(0.0), 1e-15), 1.0, 40):
        assert cal.fmr_at(max(cal.distance_at(p), 0.0)) == pytest.approx(p, rel=1e-6)


def test_a_distance_below_zero_is_refused_but_rounding_below_zero_is_zero(normal_pairs):
    cal = _fit(*normal_pairs)
    assert cal.fmr_at(-1e-7) == cal.fmr_at(0.0)
    with pytest.raises(ValueError):
        cal.fmr_at(-0.1)
    with pytest.raises(ValueError):
        cal.fmr_at(float("nan"))


# -- the tail ------------------------------------------------------------------------------------


def test_the_tail_fit_recovers_an_exponential_and_a_pareto_tail():
    rng = np.random.default_rng(7)
    scale, shape = fit_tail(rng.exponential(0.03, 5_000))
    assert shape < 0.05 and scale == pytest.approx(0.03, rel=0.05)  # shape's standard error: 0.014
    # Generalised Pareto with shape 0.3, scale 1: (U ** -xi - 1) / xi.
    y = (rng.uniform(size=5_000) ** -0.3 - 1) / 0.3
    scale, shape = fit_tail(y)
    assert shape == pytest.approx(0.3, abs=0.06)
    assert scale == pytest.approx(1.0, rel=0.1)


def test_a_tail_lighter_than_exponential_is_fitted_as_exponential():
    """A bounded tail (shape < 0) is never assumed: beyond the data nobody can know an endpoint."""
    rng = np.random.default_rng(8)
    scale, shape = fit_tail(rng.uniform(0.0, 1.0, 5_000))
    assert shape == 0.0
    assert scale == pytest.approx(0.5, rel=0.05)


def test_extrapolation_follows_an_exponential_tail_far_below_the_pairs():
    """Logistic impostor distances have an exponential lower tail: fitted on 200,000 pairs (down to
    FMR 5e-6), the FMR extrapolated to the true 1e-8 and 1e-10 points is within a factor 3 (the
    fitted scale's standard error is about 2 %, which compounds over the decades extrapolated)."""
    rng = np.random.default_rng(11)
    mu, s = 0.8, 0.03
    impostor = rng.logistic(mu, s, 200_000)
    cal = _fit(np.array([0.3]), impostor)
    for p in (1e-8, 1e-10):
        d = mu + s * math.log(p / (1 - p))
        assert 1 / 3 < cal.fmr_at(d) / p < 3
        assert cal.distance_at(p) == pytest.approx(d, abs=s)


def test_extrapolation_overstates_the_false_matches_of_a_normal_tail(normal_pairs):
    """A normal tail falls faster than any exponential: the fitted tail then overstates the FMR
    far below the pairs (so the threshold errs strict and the non-mate chance errs high), but by
    orders of magnitude that stay bounded: at the true 1e-8 point the fitted FMR lies between
    1e-8 and 1e-5."""
    cal = _fit(*normal_pairs)
    z = -5.612  # the standard normal's 1e-8 quantile
    fitted = cal.fmr_at(0.8 + 0.09 * z)
    assert 1e-8 < fitted < 1e-5
    assert cal.distance_at(1e-8) < 0.8 + 0.09 * z


# -- refusals ------------------------------------------------------------------------------------


def test_too_few_impostor_pairs_are_refused():
    with pytest.raises(CalibrationError, match="too few"):
        _fit(np.array([0.3]), np.linspace(0.5, 1.0, 999))


def test_pair_counts_that_are_not_the_distances_given_are_refused():
    with pytest.raises(ValueError, match="pair counts"):
        fit_calibration(
            np.array([0.3]),
            np.linspace(0.5, 1.0, 5_000),
            algorithm_id="alg-v1",
            metric="euclidean",
            dataset=_dataset([0.3], range(4_000)),
        )


def test_no_genuine_pair_is_refused():
    with pytest.raises(CalibrationError, match="genuine"):
        _fit(np.array([]), np.linspace(0.5, 1.0, 5_000))


def test_a_target_the_tail_cannot_reach_is_refused(normal_pairs):
    with pytest.raises(CalibrationError, match="distance 0"):
        _fit(*normal_pairs, target_fpir=1e-6, gallery_size=10**300)


def test_non_finite_distances_are_refused():
    with pytest.raises(CalibrationError, match="finite"):
        _fit(np.array([0.3]), np.append(np.linspace(0.5, 1.0, 5_000), np.nan))


# -- what is stored ------------------------------------------------------------------------------


def test_a_calibration_travels_as_plain_numbers_and_comes_back_equal(normal_pairs):
    cal = _fit(*normal_pairs, target_fpir=0.02, gallery_size=5000)
    data = json.loads(json.dumps(cal.to_data()))
    assert Calibration.from_data(data) == cal
    texts = {k for k, v in data.items() if isinstance(v, str)}
    assert texts == {"method", "algorithm_id", "metric"}
    counts = {"identities", "images", "templated", "genuine_pairs", "impostor_pairs"}
    assert set(data["dataset"]) == {"sha256", *counts}


def test_a_stored_table_that_is_not_monotone_is_refused(normal_pairs):
    data = _fit(*normal_pairs).to_data()
    data["table"][3], data["table"][4] = data["table"][4], data["table"][3]
    with pytest.raises(ValueError, match="increase"):
        Calibration.from_data(data)


def test_the_dataset_fingerprint_names_the_files_only_through_a_hash():
    files = [("alice/1.jpg", "a" * 64), ("bob/1.jpg", "b" * 64)]
    digest = DatasetFingerprint.digest(files)
    assert digest == DatasetFingerprint.digest(list(reversed(files)))
    assert digest != DatasetFingerprint.digest([("alice/1.jpg", "a" * 64), ("bob/1.jpg", "c" * 64)])
    assert digest != DatasetFingerprint.digest(files[:1])
    assert len(digest) == 64 and "alice" not in digest


# -- pairs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_pair_distances_split_every_pair_once_by_label(metric):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(23, 5))
    labels = [f"id{i % 6}" for i in range(23)]
    genuine, impostor = pair_distances(x, labels, metric, block=4)
    full = pairwise_distances(x, metric)
    iu = np.triu_indices(23, 1)
    same = np.array(labels)[iu[0]] == np.array(labels)[iu[1]]
    assert genuine.size + impostor.size == 23 * 22 // 2
    np.testing.assert_allclose(np.sort(genuine), np.sort(full[iu][same]), atol=1e-12)
    np.testing.assert_allclose(np.sort(impostor), np.sort(full[iu][~same]), atol=1e-12)
