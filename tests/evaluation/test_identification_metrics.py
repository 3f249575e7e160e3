import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rfr.application.evaluation import evaluate_identification, pairwise_distances, tar_at_far


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
