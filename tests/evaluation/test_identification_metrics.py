import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rfr.application.evaluation import (
    StageClock,
    evaluate_identification,
    false_accepts_allowed,
    pairwise_distances,
    tar_at_far,
    verification_at_far,
)


def _clustered(n_ids: int, per_id: int, spread: float, rng: np.random.Generator):
    centres = rng.normal(size=(n_ids, 8)) * 10
    ids, rows = [], []
    for k in range(n_ids):
        for _ in range(per_id):
            ids.append(f"id{k}")
            rows.append(centres[k] + rng.normal(size=8) * spread)
    return ids, np.array(rows)


def test_perfectly_separated_identities_score_one():
    ids, x = _clustered(5, 3, 0.01, np.random.default_rng(1))
    result = evaluate_identification(ids, x, [True] * len(ids), "euclidean")
    assert result.rank1 == 1.0
    assert result.tar_at_far == 1.0
    assert result.at(1e-3).tar == 1.0 and result.at(1e-4).tar == 1.0
    assert result.fte == 0.0
    assert result.n_probes == 15
    assert result.n_genuine_pairs == 5 * 3
    assert result.n_impostor_pairs == 105 - 15


def test_failure_to_enrol_counts_as_a_rank1_miss_and_in_fte():
    ids, x = _clustered(4, 2, 0.01, np.random.default_rng(2))
    enrolled = [True] * 8
    enrolled[0] = False
    result = evaluate_identification(ids, x, enrolled, "euclidean")
    assert result.fte == pytest.approx(1 / 8)
    # probe 0 failed, and probe 1 lost its only mate: two misses of eight
    assert result.rank1 == pytest.approx(6 / 8)


def test_singletons_are_gallery_distractors_not_probes():
    ids = ["a", "a", "b"]
    x = np.array([[0.0, 0.0], [0.1, 0.0], [0.05, 0.0]])
    result = evaluate_identification(ids, x, [True] * 3, "euclidean")
    assert result.n_probes == 2
    assert result.rank1 == 0.0  # the distractor sits nearer than the mate


def test_tar_at_far_threshold_is_strict():
    genuine = np.array([0.1, 0.2, 0.251, 0.9])
    impostor = np.linspace(0.25, 2.0, 1000)
    # one false accept of 1000 is allowed: threshold is the second smallest impostor
    assert tar_at_far(genuine, impostor, 1e-3) == pytest.approx(0.75)
    assert tar_at_far(genuine, impostor, 0.0) == pytest.approx(0.5)


@given(st.integers(min_value=2, max_value=20), st.integers(min_value=1, max_value=8))
def test_cosine_and_euclidean_distances_are_symmetric_with_zero_diagonal(n, d):
    x = np.random.default_rng(n * 31 + d).normal(size=(n, d))
    for metric in ("euclidean", "cosine"):
        dist = pairwise_distances(x, metric)
        assert np.allclose(dist, dist.T, atol=1e-9)
        assert np.allclose(np.diag(dist), 0.0, atol=1e-6)


# -- TAR at FAR 1e-4, and how many impostor pairs a FAR rests on (issue 11) ---------------------


def test_far_1e4_over_10000_impostor_pairs_allows_exactly_one_false_accept():
    impostor = np.linspace(1.0, 2.0, 10_000)
    genuine = np.array([0.5, 0.99, 1.00005, 1.5])
    point = verification_at_far(genuine, impostor, 1e-4)
    assert point.false_accepts_allowed == 1 and point.false_accepts == 1
    assert point.threshold == impostor[1]  # strictly below the second smallest impostor
    assert point.tar == pytest.approx(3 / 4)
    assert point.measurable and not point.reliable
    assert "rests on 1 false accept of 10,000" in point.note and "rough" in point.note


def test_far_1e4_with_fewer_than_10000_impostor_pairs_is_tar_at_far_zero_and_says_so():
    impostor = np.linspace(1.0, 2.0, 9_999)
    genuine = np.array([0.5, 0.99, 1.00005])
    point = verification_at_far(genuine, impostor, 1e-4)
    assert point.false_accepts_allowed == 0 and point.false_accepts == 0
    assert point.threshold == impostor[0]
    assert point.tar == pytest.approx(2 / 3)
    assert not point.measurable and not point.reliable
    assert point.note.startswith("too few impostor pairs: 9,999")
    assert "at least 10,000 needed" in point.note


def test_the_rule_of_30_needs_300000_impostor_pairs_at_far_1e4():
    genuine = np.array([0.1])
    just_short = verification_at_far(genuine, np.linspace(1.0, 2.0, 299_999), 1e-4)
    enough = verification_at_far(genuine, np.linspace(1.0, 2.0, 300_000), 1e-4)
    assert just_short.false_accepts_allowed == 29 and not just_short.reliable
    assert enough.false_accepts_allowed == 30 and enough.reliable
    assert enough.impostor_pairs_needed == 300_000
    assert enough.note == "rests on 30 false accepts of 300,000 impostor pairs"


def test_ties_with_the_threshold_are_not_false_accepts():
    impostor = np.array([1.0] * 3 + [2.0] * 9_997)  # three impostors tie at the smallest distance
    genuine = np.array([0.9, 1.0, 1.5])
    point = verification_at_far(genuine, impostor, 2e-4)  # two false accepts allowed
    assert point.threshold == 1.0
    assert point.false_accepts == 0  # none lies strictly below: the tie admits nothing
    assert point.tar == pytest.approx(1 / 3)


def test_both_fars_come_from_the_same_pairs_of_one_evaluation():
    rng = np.random.default_rng(7)
    ids, x = _clustered(40, 4, 4.0, rng)  # 160 images: 240 genuine, 12,480 impostor pairs
    result = evaluate_identification(ids, x, [True] * len(ids), "euclidean")
    strict, loose = result.at(1e-4), result.at(1e-3)
    assert strict.n_impostor_pairs == loose.n_impostor_pairs == result.n_impostor_pairs == 12_480
    assert strict.n_genuine_pairs == loose.n_genuine_pairs == result.n_genuine_pairs == 240
    assert (strict.false_accepts_allowed, loose.false_accepts_allowed) == (1, 12)
    assert strict.threshold <= loose.threshold and strict.tar <= loose.tar
    with pytest.raises(KeyError):
        result.at(1e-2)


def test_failed_to_enrol_probes_are_listed_among_the_rank1_misses():
    ids = ["a", "a", "b", "b"]
    x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [5.1, 0.0]])
    result = evaluate_identification(ids, x, [True, True, False, True], "euclidean")
    assert set(result.rank1_misses) == {(2, None), (3, 1)}  # b's only mate failed: nearest is a's


def test_false_accepts_allowed_is_safe_from_the_products_rounding():
    assert 0.29 * 100 < 29  # what a bare floor would get wrong
    assert false_accepts_allowed(0.29, 100) == 29
    assert false_accepts_allowed(1e-4, 30_000) == 3
    assert false_accepts_allowed(1e-3, 999) == 0
    assert false_accepts_allowed(2.0, 10) == 10
    with pytest.raises(ValueError):
        false_accepts_allowed(math.nan, 10)


@given(
    st.lists(st.floats(0.0, 2.0), min_size=1, max_size=60),
    st.lists(st.floats(0.0, 2.0), min_size=1, max_size=400),
    st.sampled_from([1e-4, 1e-3, 1e-2, 0.1]),
)
def test_the_measured_far_never_exceeds_the_far_asked_for(genuine, impostor, far):
    point = verification_at_far(np.array(genuine), np.array(impostor), far)
    assert point.false_accepts <= point.false_accepts_allowed <= far * len(impostor) + 1e-9
    looser = verification_at_far(np.array(genuine), np.array(impostor), far * 10)
    assert looser.tar >= point.tar


def test_the_stage_clock_times_a_wrapped_stage_and_forwards_everything_else():
    ticks = iter(range(100))
    clock = StageClock(clock=lambda: float(next(ticks)))

    class Embedder:
        dimension = 128

        def embed(self, chips):
            return len(chips)

    timed = clock.timed(Embedder(), "embed", "embed")
    assert timed.dimension == 128
    assert timed.embed([1, 2]) == 2 and timed.embed([3]) == 1
    assert clock.seconds["embed"] == 2.0  # one tick a call on the fake clock
    with clock.measuring("decode"):
        pass
    assert clock.seconds["decode"] == 1.0
