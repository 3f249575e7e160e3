"""dlib's bilinear resize, pyramid_up and the tiled pyramid canvas, against a scalar transcription.

The scalar functions below follow shared/spec/DLIB_MODEL_FORMAT.md (*Detector upsampling*)
pixel by pixel, one float32 or double operation at a time; the vectorised code must give the
same bits. The end-to-end proof against dlib itself is the parity test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from rfr.adapters.detection.dlib_resize import _plan_columns, resize_planes, resize_region, resize_rgb
from rfr.adapters.detection.pyramid import (
    TiledPyramid,
    build_canvas,
    lround,
    pyramid_up,
    pyramid_up_size,
)

F = np.float32


def _scalar_resize(src: np.ndarray, out_h: int, out_w: int, *, rgb: bool) -> np.ndarray:
    """dlib's resize_image loop for one plane (float) or an RGB image (uint8), scalar."""
    n_r, n_c = src.shape[:2]
    out = np.zeros((out_h, out_w, *src.shape[2:]), dtype=src.dtype)
    sx = (n_c - 1) / max(out_w - 1, 1)
    sy = (n_r - 1) / max(out_h - 1, 1)
    y = -sy
    for r in range(out_h):
        y += sy
        top = math.floor(y)
        bottom = min(top + 1, n_r - 1)
        fy = y - top
        wy, wy_inv = F(fy), F(1 - fy)
        x0 = -4 * sx
        lanes = [F(x0), F(x0 + sx), F(x0 + 2 * sx), F(x0 + 3 * sx)]
        step = F(4 * sx)
        c = 0
        while True:
            lanes = [F(v + step) for v in lanes]
            left = [int(v) for v in lanes]  # truncation toward zero
            if left[3] + 1 >= n_c:
                break
            for j in range(4):
                fx = F(lanes[j] - F(left[j]))
                fx_inv = F(F(1) - fx)
                w = (F(wy_inv * fx_inv), F(wy_inv * fx), F(wy * fx_inv), F(wy * fx))
                px = (
                    src[top, left[j]],
                    src[top, left[j] + 1],
                    src[bottom, left[j]],
                    src[bottom, left[j] + 1],
                )
                value = F(w[0] * F(px[0]))
                value = F(value + F(w[1] * F(px[1])))
                value = F(value + F(w[2] * F(px[2])))
                value = F(value + F(w[3] * F(px[3])))
                out[r, c + j] = np.trunc(value).astype(np.uint8) if rgb else value
            c += 4
        x = -sx + c * sx
        for cc in range(c, out_w):
            x += sx
            left = math.floor(x)
            right = min(left + 1, n_c - 1)
            if rgb:
                fx = x - left
                tl, tr = src[top, left].astype(float), src[top, right].astype(float)
                bl, br = src[bottom, left].astype(float), src[bottom, right].astype(float)
                value = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
                out[r, cc] = np.trunc(value).astype(np.uint8)
            else:
                fx = F(x - left)
                upper = F(F(F(1) - fx) * src[top, left]) + F(fx * src[top, right])
                lower = F(F(F(1) - fx) * src[bottom, left]) + F(fx * src[bottom, right])
                out[r, cc] = F((1 - fy) * float(F(upper)) + fy * float(F(lower)))
    return out


SIZES = [
    ((1, 1), (3, 4)),
    ((2, 5), (5, 12)),
    ((7, 9), (15, 20)),
    ((13, 13), (27, 28)),
    ((20, 31), (16, 25)),  # the 5/6 shrink of the canvas
    ((24, 17), (20, 14)),
    ((6, 11), (9, 7)),
]


@pytest.mark.parametrize(("size_in", "size_out"), SIZES)
def test_rgb_resize_is_bit_identical_to_the_scalar_loop(size_in, size_out):
    rng = np.random.default_rng(sum(size_in) * 31 + sum(size_out))
    image = rng.integers(0, 256, (*size_in, 3), dtype=np.uint8)
    want = _scalar_resize(image, *size_out, rgb=True)
    assert np.array_equal(resize_rgb(image, *size_out), want)


@pytest.mark.parametrize(("size_in", "size_out"), SIZES)
def test_float_plane_resize_is_bit_identical_to_the_scalar_loop(size_in, size_out):
    rng = np.random.default_rng(sum(size_in) * 17 + sum(size_out))
    planes = (rng.standard_normal((2, *size_in)) * 0.3).astype(np.float32)
    got = resize_planes(planes, *size_out)
    for k in range(2):
        want = _scalar_resize(planes[k], *size_out, rgb=False)
        assert np.array_equal(got[k], want)


def test_region_resize_reads_only_its_region():
    rng = np.random.default_rng(3)
    planes = rng.standard_normal((3, 40, 50)).astype(np.float32)
    region = (5, 7, 20, 31)
    got = resize_region(planes, region, 16, 25)
    inner = np.ascontiguousarray(planes[:, 5:25, 7:38])
    assert np.array_equal(got, resize_planes(inner, 16, 25))


def test_column_paths_split_where_float32_rounding_puts_them():
    # Section *Detector upsampling*: 150 -> 302 takes 300 columns through the float32 lanes
    # and 2 through the double tail; 53 -> 108 and 401 -> 804 take every column as lanes.
    assert _plan_columns(150, 302).simd == 300
    assert _plan_columns(53, 108).simd == 108
    assert _plan_columns(401, 804).simd == 804


def test_pyramid_up_size_is_not_exactly_double():
    assert pyramid_up_size(150, 150) == (301, 302)
    assert pyramid_up_size(301, 302) == (603, 606)
    assert pyramid_up_size(0, 10) == (0, 0)
    image = np.zeros((150, 150, 3), dtype=np.uint8)
    assert pyramid_up(image).shape == (301, 302, 3)


def test_lround_rounds_halves_away_from_zero_exactly():
    values = np.array([2.5, -2.5, -36.5, 3.5, 0.49999999999999994, -0.49999999999999994, 1.4999, -7.0])
    assert lround(values).tolist() == [3, -3, -37, 4, 0, 0, 1, -7]


def test_tiled_pyramid_levels_shrink_by_five_sixths_and_never_overlap():
    pyramid = TiledPyramid.plan(301, 302, padding=10, outer_padding=11)
    sizes = [(lv.height, lv.width) for lv in pyramid.levels]
    assert sizes[0] == (301, 302) and (pyramid.levels[0].left, pyramid.levels[0].top) == (11, 11)
    for (h0, w0), (h1, w1) in itertools.pairwise(sizes):
        assert (h1, w1) == (math.floor(h0 * 5 / 6), math.floor(w0 * 5 / 6))
    assert sizes[-1][0] >= 5 and pyramid.cols == 302 + 22
    for i, a in enumerate(pyramid.levels):
        assert 0 <= a.left and a.right < pyramid.cols and 0 <= a.top and a.bottom < pyramid.rows
        for b in pyramid.levels[i + 1 :]:
            # Levels never share a pixel (a level of the second column may come closer to the
            # first level than the padding: dlib only checks that they do not intersect).
            apart_x = a.right < b.left or b.right < a.left
            apart_y = a.bottom < b.top or b.bottom < a.top
            assert apart_x or apart_y, (a, b)


def test_tiled_pyramid_of_a_wide_image_doubles_back_into_a_second_column():
    pyramid = TiledPyramid.plan(100, 400, padding=10, outer_padding=11)
    right_column = [lv for lv in pyramid.levels if lv.left > 11]
    assert right_column, pyramid
    assert all(lv.right == 11 + 400 - 1 for lv in right_column)
    assert TiledPyramid.plan(0, 40, padding=10, outer_padding=11).levels == ()


def test_canvas_holds_the_normalised_image_then_each_level_resized_from_the_previous():
    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (60, 45, 3), dtype=np.uint8)
    mean = (122.78199768066406, 117.0009994506836, 104.2979965209961)
    pyramid = TiledPyramid.plan(60, 45, padding=10, outer_padding=11)
    canvas = build_canvas(image, pyramid, mean)[0]
    first = pyramid.levels[0]
    want = (image.astype(np.float32) - np.asarray(mean, np.float32)) / np.float32(256)
    assert np.array_equal(canvas[:, 11:71, 11:56], want.transpose(2, 0, 1))
    covered = np.zeros(canvas.shape[1:], dtype=bool)
    for prev, level in itertools.pairwise(pyramid.levels):
        source = canvas[:, prev.top : prev.bottom + 1, prev.left : prev.right + 1]
        region = canvas[:, level.top : level.bottom + 1, level.left : level.right + 1]
        assert np.array_equal(region, resize_planes(np.ascontiguousarray(source), level.height, level.width))
    for lv in pyramid.levels:
        covered[lv.top : lv.bottom + 1, lv.left : lv.right + 1] = True
    assert first.top == 11 and not np.any(canvas[:, ~covered])
