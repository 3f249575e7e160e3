"""Decoding of the MMOD score map: windows, level mapping, rounding, dlib's NMS, map back."""

from __future__ import annotations

import numpy as np

from rfr.adapters.detection.mmod_decoding import (
    DecodingSpec,
    Detection,
    _non_max_suppression,
    decode,
    map_down,
)
from rfr.adapters.detection.pyramid import TiledPyramid

SPEC = DecodingSpec(
    window=(80, 80),
    output_scale=(8, 8),
    output_offset=(14, 14),
    pyramid_rate=(5, 6),
    nms_iou=0.3382761351109955,
    nms_covered=1.0,
)
PYRAMID = TiledPyramid.plan(200, 200, padding=10, outer_padding=11)


def _scores(cells: dict[tuple[int, int], float]) -> np.ndarray:
    out_h = (PYRAMID.rows - 14) // 8 + 1
    out_w = (PYRAMID.cols - 14) // 8 + 1
    scores = np.full((out_h, out_w), -1.0, dtype=np.float32)
    for (r, c), value in cells.items():
        scores[r, c] = value
    return scores


def test_a_cell_in_level_zero_is_the_80px_window_around_8c_plus_14():
    # Cell (5, 5) -> centre (54, 54) -> window 14.5..93.5 -> minus the level's corner (11, 11).
    (found,) = decode(_scores({(5, 5): 0.75}), PYRAMID.levels, SPEC)
    assert (found.left, found.top, found.right, found.bottom) == (4, 4, 83, 83)
    assert found.score == np.float32(0.75)


def test_negative_halves_round_away_from_zero_like_lround():
    # Cell (0, 0): window -25.5..53.5 in the canvas, -36.5..42.5 in the image; lround gives -37
    # where floor(x + 0.5) would give -36.
    (found,) = decode(_scores({(0, 0): 0.5}), PYRAMID.levels, SPEC)
    assert (found.left, found.top, found.right, found.bottom) == (-37, -37, 43, 43)


def test_a_cell_in_a_smaller_level_is_scaled_up_through_each_level():
    level = PYRAMID.levels[2]
    # A cell whose centre falls inside level 2.
    c = (level.left + level.width // 2 - 14) // 8
    r = (level.top + level.height // 2 - 14) // 8
    (found,) = decode(_scores({(r, c): 1.0}), PYRAMID.levels, SPEC)
    box = np.array([8 * c + 14 - 39.5, 8 * r + 14 - 39.5, 8 * c + 14 + 39.5, 8 * r + 14 + 39.5])
    box -= [level.left, level.top, level.left, level.top]
    for _ in range(2):
        box = box * 1.2 + 0.3
    assert [found.left, found.top, found.right, found.bottom] == [round(v) for v in box]
    assert found.right - found.left > 80 * 1.4


def test_zero_is_not_a_detection_and_results_are_best_first():
    found = decode(_scores({(2, 3): 0.0, (5, 5): 0.2, (15, 15): 0.9}), PYRAMID.levels, SPEC)
    assert [d.score for d in found] == [np.float32(0.9), np.float32(0.2)]


def test_nms_uses_the_bounding_box_hull_not_the_union():
    # 100 px boxes 28 px apart diagonally: IoU 5184/14816 = 0.35 (> 0.338) but the hull gives
    # 5184/16384 = 0.316, so dlib keeps both.
    rects = np.array([[0, 0, 99, 99], [28, 28, 127, 127]])
    kept = _non_max_suppression(rects, np.array([0.9, 0.8]), SPEC.nms_iou, SPEC.nms_covered)
    assert [d.score for d in kept] == [0.9, 0.8]
    # Windows one cell (8 px) apart on one axis: hull = union, IoU 0.82, the weaker one goes.
    straight = decode(_scores({(10, 10): 0.9, (10, 11): 0.8}), PYRAMID.levels, SPEC)
    assert [d.score for d in straight] == [np.float32(0.9)]
    # Touching boxes do not overlap; a box inside another is not suppressed by coverage 1.0.
    apart = np.array([[0, 0, 9, 9], [10, 0, 19, 9], [100, 100, 199, 199], [140, 140, 149, 149]])
    kept = _non_max_suppression(apart, np.array([0.9, 0.8, 0.7, 0.6]), SPEC.nms_iou, SPEC.nms_covered)
    assert len(kept) == 4


def test_map_down_applies_pyramid_down_2_per_step_and_rounds_once():
    d = Detection(10, 20, 100, 120, 0.5)
    (once,) = map_down([d], 1)
    assert (once.left, once.top, once.right, once.bottom) == (4, 9, 49, 59)  # 3.75 9.25 48.75 59.25
    (twice,) = map_down([d], 2)
    # 10 -> 3.75 -> 0.625 ; 20 -> 9.25 -> 3.875 ; 100 -> 48.75 -> 23.125 ; 120 -> 59.25 -> 28.875
    assert (twice.left, twice.top, twice.right, twice.bottom) == (1, 4, 23, 29)
    assert twice.score == 0.5
    assert map_down([d], 0) == [d]
