"""From the detector's score map to dlib's final boxes (shared/spec/DLIB_MODEL_FORMAT.md, 4.3).

Every positive cell is a window centred on its input position; the window is mapped from the
canvas back to the image through the pyramid level it falls in, rounded, sorted by score and
thinned by dlib's greedy non-maximum suppression. Boxes are inclusive (l, t, r, b) integers.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from rfr.adapters.detection.pyramid import Level, lround


@attrs.frozen
class Detection:
    left: int
    top: int
    right: int
    bottom: int
    score: float


@attrs.frozen
class DecodingSpec:
    window: tuple[int, int]  # (width, height)
    output_scale: tuple[int, int]  # (y, x)
    output_offset: tuple[int, int]  # (y, x)
    pyramid_rate: tuple[int, int]  # (N-1, N) of pyramid_down<N>
    nms_iou: float
    nms_covered: float


def decode(
    scores: np.ndarray, levels: Sequence[Level], spec: DecodingSpec, threshold: float = 0.0
) -> list[Detection]:
    """Boxes in image coordinates, best first, after NMS. ``scores`` is the (h, w) map."""
    rows, cols = np.nonzero(scores > threshold)  # row-major: dlib's scan order
    if rows.size == 0 or not levels:
        return []
    confidence = scores[rows, cols].astype(np.float64)
    cy = rows * spec.output_scale[0] + spec.output_offset[0]
    cx = cols * spec.output_scale[1] + spec.output_offset[1]
    half_w = (spec.window[0] - 1) / 2
    half_h = (spec.window[1] - 1) / 2
    box = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float64)
    level = _nearest_level(levels, box)
    origin = np.array([[lv.left, lv.top, lv.left, lv.top] for lv in levels], dtype=np.float64)
    box -= origin[level]
    # pyramid_down<N>::point_up, once per level: p * (N / (N - 1.0)) + 0.3, in double.
    n = spec.pyramid_rate[1]
    ratio = n / (n - 1.0)
    for step in range(int(level.max())):
        up = level > step
        box[up] = box[up] * ratio + 0.3
    rects = lround(box)
    order = np.argsort(-confidence, kind="stable")
    return _non_max_suppression(rects[order], confidence[order], spec.nms_iou, spec.nms_covered)


def _nearest_level(levels: Sequence[Level], box: np.ndarray) -> np.ndarray:
    # dlib's nearest_rect on the rounded box centre: the first level containing it, else the
    # first level at the smallest Euclidean distance.
    centre_x = np.floor((box[:, 0] + box[:, 2]) / 2 + 0.5)
    centre_y = np.floor((box[:, 1] + box[:, 3]) / 2 + 0.5)
    left = np.array([lv.left for lv in levels], dtype=np.float64)
    top = np.array([lv.top for lv in levels], dtype=np.float64)
    right = np.array([lv.right for lv in levels], dtype=np.float64)
    bottom = np.array([lv.bottom for lv in levels], dtype=np.float64)
    px, py = centre_x[:, None], centre_y[:, None]
    inside = (left <= px) & (px <= right) & (top <= py) & (py <= bottom)
    dx = np.clip(px, left, right) - px
    dy = np.clip(py, top, bottom) - py
    distance = np.sqrt(dx * dx + dy * dy)
    return np.where(inside.any(axis=1), inside.argmax(axis=1), distance.argmin(axis=1))


def _area(rect: np.ndarray) -> np.ndarray:
    width = np.maximum(rect[..., 2] - rect[..., 0] + 1, 0)
    height = np.maximum(rect[..., 3] - rect[..., 1] + 1, 0)
    return width * height


def _overlaps_any(kept: np.ndarray, rect: np.ndarray, iou: float, covered: float) -> bool:
    # dlib's test_box_overlap: the "union" is the bounding box of both rectangles.
    inner_rect = np.concatenate(
        [np.maximum(kept[:, :2], rect[:2]), np.minimum(kept[:, 2:], rect[2:])], axis=1
    )
    inner = _area(inner_rect).astype(np.float64)
    hull = np.concatenate([np.minimum(kept[:, :2], rect[:2]), np.maximum(kept[:, 2:], rect[2:])], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = (
            (inner / _area(hull) > iou)
            | (inner / _area(kept) > covered)
            | (inner / _area(rect[None, :]) > covered)
        )
    return bool(np.any(hit & (inner > 0)))


def _non_max_suppression(
    rects: np.ndarray, confidence: np.ndarray, iou: float, covered: float
) -> list[Detection]:
    kept: list[int] = []
    for i in range(len(rects)):
        if kept and _overlaps_any(rects[kept], rects[i], iou, covered):
            continue
        kept.append(i)
    return [Detection(*(int(v) for v in rects[i]), score=float(confidence[i])) for i in kept]


def map_down(detections: Sequence[Detection], times: int) -> list[Detection]:
    """Undo ``times`` pyramid_up steps: pyramid_down<2>'s point map in double, rounded once."""
    if times == 0 or not detections:
        return list(detections)
    box = np.array([[d.left, d.top, d.right, d.bottom] for d in detections], dtype=np.float64)
    for _ in range(times):
        box = box / 2.0 - np.array([1.25, 0.75, 1.25, 0.75])
    rects = lround(box)
    return [Detection(*(int(v) for v in r), score=d.score) for r, d in zip(rects, detections, strict=True)]
