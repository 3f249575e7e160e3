"""dlib's bilinear ``resize_image``, reproduced bit for bit with numpy array operations.

dlib resizes with corner-aligned bilinear sampling, but its optimised path computes each row
in groups of four columns in float32 SSE lanes, with positions accumulated in float32, and
finishes the row (from the first group whose last lane would read past the right edge) in a
scalar path with positions accumulated in double. Which columns take which path, and the
rounding of every weight, decide whether our pixels equal dlib's, so both paths are emulated
exactly (shared/spec/DLIB_MODEL_FORMAT.md, *Detector upsampling*):

- ``resize_rgb``: uint8 RGB (H, W, 3), results truncated; used by pyramid_up.
- ``resize_region`` / ``resize_planes``: float32 planes (C, H, W), used for the detector's
  tiled pyramid, which dlib builds with the same routine on each channel of the input tensor.

Row and column positions do not depend on each other, so each is planned once per size and
applied to the whole image with gathers; no Python loop touches pixels.
"""

from __future__ import annotations

import attrs
import numpy as np

_F32 = np.float32


@attrs.frozen(eq=False)
class _Rows:
    top: np.ndarray
    bottom: np.ndarray
    frac: np.ndarray  # float64, as dlib keeps the row fraction


@attrs.frozen(eq=False)
class _Columns:
    # Columns [0, simd) use the float32 four-lane path, the rest the scalar tail.
    simd: int
    left: np.ndarray  # the float32 path's left and right neighbours (right = left + 1)
    frac: np.ndarray  # float32
    tail_left: np.ndarray
    tail_right: np.ndarray
    tail_frac: np.ndarray  # float64


def _scale(n_in: int, n_out: int) -> float:
    return (n_in - 1) / max(n_out - 1, 1)


def _accumulated(start: float, step: float, count: int) -> np.ndarray:
    # dlib starts one step before the first sample and adds the step once per sample; the
    # accumulated rounding differs from start + i * step, so accumulate the same way.
    steps = np.full(count + 1, step, dtype=np.float64)
    steps[0] = start
    return np.add.accumulate(steps)[1:]


def _plan_rows(n_in: int, n_out: int) -> _Rows:
    scale = _scale(n_in, n_out)
    y = _accumulated(-scale, scale, n_out)
    top = np.floor(y).astype(np.intp)
    return _Rows(top=top, bottom=np.minimum(top + 1, n_in - 1), frac=y - top)


def _plan_columns(n_in: int, n_out: int) -> _Columns:
    scale = _scale(n_in, n_out)
    start = -4 * scale
    groups = (n_out + 3) // 4 + 1
    lanes = np.empty((groups + 1, 4), dtype=_F32)
    lanes[0] = np.array([start, start + scale, start + 2 * scale, start + 3 * scale]).astype(_F32)
    lanes[1:] = _F32(4 * scale)
    positions = np.add.accumulate(lanes, axis=0, dtype=_F32)[1:]
    left = positions.astype(np.int32)  # truncation toward zero, as the SSE conversion does
    stops = np.flatnonzero(left[:, 3] + 1 >= n_in)
    simd = min(4 * int(stops[0]) if stops.size else 4 * groups, n_out)
    left_flat = left.reshape(-1)[:simd].astype(np.intp)
    frac = (positions.reshape(-1)[:simd] - left.reshape(-1)[:simd].astype(_F32)).astype(_F32)
    x = _accumulated(-scale + simd * scale, scale, n_out - simd)
    tail_left = np.floor(x).astype(np.intp)
    return _Columns(
        simd=simd,
        left=left_flat,
        frac=frac,
        tail_left=tail_left,
        tail_right=np.minimum(tail_left + 1, n_in - 1),
        tail_frac=x - tail_left,
    )


def _simd_weights(rows: _Rows, cols: _Columns) -> tuple[np.ndarray, ...]:
    wy = rows.frac.astype(_F32)[:, None]
    wy_inv = (1.0 - rows.frac).astype(_F32)[:, None]
    fx = cols.frac[None, :]
    fx_inv = _F32(1) - fx
    return wy_inv * fx_inv, wy_inv * fx, wy * fx_inv, wy * fx


def _simd_blend(
    flat: np.ndarray, axis: int, corners: tuple[np.ndarray, ...], weights: tuple[np.ndarray, ...]
) -> np.ndarray:
    # ((w_tl*TL + w_tr*TR) + w_bl*BL) + w_br*BR, every product and sum rounded to float32
    # as the SSE code does; each corner is one gather by flat pixel index.
    out = np.take(flat, corners[0], axis=axis).astype(_F32)
    out *= weights[0]
    for index, weight in zip(corners[1:], weights[1:], strict=True):
        term = np.take(flat, index, axis=axis).astype(_F32)
        term *= weight
        out += term
    return out


def _corner_indices(rows: _Rows, cols: _Columns, row_stride: int, origin: int) -> tuple[np.ndarray, ...]:
    top = (rows.top * row_stride + origin)[:, None]
    bottom = (rows.bottom * row_stride + origin)[:, None]
    left = cols.left[None, :]
    return (top + left, top + left + 1, bottom + left, bottom + left + 1)


def resize_rgb(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """dlib's bilinear resize of a uint8 RGB image (H, W, 3); values are truncated."""
    out = np.zeros((out_h, out_w, 3), dtype=np.uint8)
    if image.size == 0 or out.size == 0:
        return out
    rows = _plan_rows(image.shape[0], out_h)
    cols = _plan_columns(image.shape[1], out_w)
    if cols.simd:
        flat = np.ascontiguousarray(image).reshape(-1, 3)
        weights = tuple(w[:, :, None] for w in _simd_weights(rows, cols))
        corners = _corner_indices(rows, cols, image.shape[1], 0)
        out[:, : cols.simd] = _simd_blend(flat, 0, corners, weights).astype(np.uint8)
    if cols.simd < out_w:
        top = image[rows.top].astype(np.float64)
        bottom = image[rows.bottom].astype(np.float64)
        fx = cols.tail_frac[None, :, None]
        fy = rows.frac[:, None, None]
        upper = (1 - fx) * top[:, cols.tail_left] + fx * top[:, cols.tail_right]
        lower = (1 - fx) * bottom[:, cols.tail_left] + fx * bottom[:, cols.tail_right]
        out[:, cols.simd :] = ((1 - fy) * upper + fy * lower).astype(np.uint8)
    return out


def resize_region(
    planes: np.ndarray, source: tuple[int, int, int, int], out_h: int, out_w: int
) -> np.ndarray:
    """dlib's bilinear resize of the region (top, left, height, width) of float32 planes
    (C, H, W), each plane independently; returns (C, out_h, out_w).

    Reading the region in place by flat index is what keeps the tiled pyramid cheap.
    """
    top0, left0, height, width = source
    out = np.zeros((planes.shape[0], out_h, out_w), dtype=_F32)
    if height * width == 0 or out.size == 0:
        return out
    planes = np.ascontiguousarray(planes, dtype=_F32)
    rows = _plan_rows(height, out_h)
    cols = _plan_columns(width, out_w)
    if cols.simd:
        flat = planes.reshape(planes.shape[0], -1)
        corners = _corner_indices(rows, cols, planes.shape[2], top0 * planes.shape[2] + left0)
        out[:, :, : cols.simd] = _simd_blend(flat, 1, corners, _simd_weights(rows, cols))
    if cols.simd < out_w:
        # The scalar float tail: the column fraction is a float, the row fraction a double,
        # so each row's blend is float32 and the vertical blend is done in double.
        region = planes[:, top0 : top0 + height, left0 : left0 + width]
        top, bottom = region[:, rows.top], region[:, rows.bottom]
        fx = cols.tail_frac.astype(_F32)[None, None, :]
        fx_inv = _F32(1) - fx
        upper = fx_inv * top[:, :, cols.tail_left] + fx * top[:, :, cols.tail_right]
        lower = fx_inv * bottom[:, :, cols.tail_left] + fx * bottom[:, :, cols.tail_right]
        fy = rows.frac[None, :, None]
        out[:, :, cols.simd :] = ((1 - fy) * upper + fy * lower).astype(_F32)
    return out


def resize_planes(planes: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """dlib's bilinear resize of whole float32 planes (C, H, W)."""
    return resize_region(planes, (0, 0, planes.shape[1], planes.shape[2]), out_h, out_w)
