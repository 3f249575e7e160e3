"""Similarity scores (S-04) and the rule that templates of different algorithms never meet (T-01)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rfr.application.errors import AlgorithmMismatch, RfrError
from rfr.application.similarity import SimilarityScale, ensure_same_algorithm

SCALES = [
    SimilarityScale("euclidean", 0.6),
    SimilarityScale("cosine", 0.7),
    SimilarityScale("cosine", 0.3, 2),
]


@pytest.mark.parametrize("scale", SCALES, ids=repr)
def test_S04_the_threshold_scores_one_half_and_the_ends_are_one_and_zero(scale):
    """S-04: the threshold scores one half and the ends are one and zero."""
    assert scale.score(scale.threshold) == 0.5
    assert scale.score(0.0) == 1.0
    assert scale.score(math.inf) == 0.0
    assert scale.score(1e300) == 0.0


def test_S04_the_default_scale_reads_well_on_dlib_distances():
    """S-04: k = 6: dlib's median genuine (0.44) and impostor (0.83) distances land far apart."""
    scale = SimilarityScale("euclidean", 0.6)
    assert scale.steepness == 6.0
    assert scale.score(0.44) == pytest.approx(1 / (1 + (0.44 / 0.6) ** 6))
    assert 0.85 < scale.score(0.44) < 0.87
    assert 0.11 < scale.score(0.83) < 0.13


@pytest.mark.parametrize("scale", SCALES, ids=repr)
def test_is_match_is_the_threshold_decision(scale):
    assert scale.is_match(scale.threshold)
    assert scale.is_match(scale.threshold * 0.99)
    assert not scale.is_match(scale.threshold * 1.01)


@given(
    a=st.floats(0, 50, allow_nan=False),
    b=st.floats(0, 50, allow_nan=False),
    scale=st.sampled_from(SCALES),
)
def test_S04_score_is_bounded_and_decreasing_in_distance(a, b, scale):
    """S-04: score is bounded and decreasing in distance."""
    sa, sb = scale.score(a), scale.score(b)
    assert 0.0 <= sa <= 1.0
    if a < b:
        assert sa >= sb
    if a < b and sa not in (0.0, 1.0):
        assert sa > sb or math.isclose(a, b, rel_tol=1e-12)


@given(score=st.floats(1e-6, 1 - 1e-6), scale=st.sampled_from(SCALES))
def test_distance_inverts_score(score, scale):
    assert scale.score(scale.distance(score)) == pytest.approx(score, rel=1e-9, abs=1e-12)


def test_distance_of_the_extremes():
    scale = SimilarityScale("euclidean", 0.6)
    assert scale.distance(1.0) == 0.0
    assert scale.distance(0.0) == math.inf
    assert scale.distance(0.5) == pytest.approx(0.6)


def test_a_float32_rounding_below_zero_is_distance_zero_but_real_negatives_are_refused():
    scale = SimilarityScale("euclidean", 0.6)
    assert scale.score(float(np.float32(-1e-7))) == 1.0
    with pytest.raises(ValueError):
        scale.score(-0.1)
    with pytest.raises(ValueError):
        scale.score(math.nan)
    with pytest.raises(ValueError):
        scale.distance(1.5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metric": "manhattan", "threshold": 0.6},
        {"metric": "euclidean", "threshold": 0.0},
        {"metric": "euclidean", "threshold": -1},
        {"metric": "euclidean", "threshold": math.inf},
        {"metric": "cosine", "threshold": 2.0},
        {"metric": "cosine", "threshold": 0.5, "steepness": 0},
    ],
)
def test_meaningless_scales_are_refused(kwargs):
    with pytest.raises(ValueError):
        SimilarityScale(**kwargs)


def test_scale_is_a_frozen_value():
    scale = SimilarityScale("cosine", 0.5)
    assert scale == SimilarityScale("cosine", 0.5, 6.0)
    with pytest.raises(AttributeError):
        scale.threshold = 0.9  # type: ignore[misc]


def test_scale_comes_from_the_embedder_that_made_the_templates():
    class Embedder:
        algorithm_id = "x/1"
        dimension = 4
        metric = "cosine"
        threshold = 0.42
        chip_size = 112

        def embed(self, chips):
            raise NotImplementedError

    assert SimilarityScale.for_embedder(Embedder()) == SimilarityScale("cosine", 0.42)


def test_T01_templates_of_the_same_algorithm_may_be_compared():
    """T-01: templates of the same algorithm may be compared."""
    ensure_same_algorithm("dlib-resnet-v1/chip150-pad0.25", "dlib-resnet-v1/chip150-pad0.25")


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ("dlib-resnet-v1/chip150-pad0.25", "arcface-r100-v1/chip112-pad0.25"),
        ("arcface-r100-v1/chip112-pad0.25", "arcface-r100-v2/chip112-pad0.25"),
        ("dlib-resnet-v1/chip150-pad0.25", "dlib-resnet-v1/chip150-pad0.3"),
        ("", ""),
    ],
)
def test_T01_templates_of_different_algorithms_are_never_compared(expected, actual):
    with pytest.raises(AlgorithmMismatch, match="T-01") as caught:
        ensure_same_algorithm(expected, actual)
    assert isinstance(caught.value, RfrError)
    assert (caught.value.expected, caught.value.actual) == (expected, actual)


def test_T01_a_mismatch_crosses_a_process_boundary_intact():
    error = pickle.loads(pickle.dumps(AlgorithmMismatch("a/1", "b/2")))
    assert (error.expected, error.actual) == ("a/1", "b/2")
    assert "T-01" in str(error)
