"""dlib's face chip (``get_face_chip_details`` + ``extract_image_chip``), bit-exact, in numpy.

Follows section 6 of shared/spec/DLIB_MODEL_FORMAT.md. The ResNet descriptor was trained on
chips cut this way, so the chip is reproduced pixel for pixel, including two details that a
plain ``warpAffine`` gets wrong:
- a face much larger than the chip is first shrunk with dlib's ``pyramid_down<2>`` (5-tap
  integer filter), otherwise bilinear sampling would alias (errors up to 146 grey levels);
- samples whose 2x2 neighbourhood leaves the image are black, and values are truncated,
  not rounded.
Every pixel of the chip is sampled in one vectorised step; there is no per-pixel loop.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from rfr.application.ports import DetectedFace, Point

# dlib's 5-point template in unit-square chip coordinates, parts 0..4 (the two corners of the
# eye on the image's right, the two of the eye on the image's left, below the nose).
_TEMPLATE_5 = (
    (0.8595674595992, 0.2134981538014),
    (0.6460604764104, 0.2289674387677),
    (0.1205750620789, 0.2137274526848),
    (0.3340850613712, 0.2290642403242),
    (0.4901123135679, 0.6277975316475),
)


@attrs.frozen
class ChipPlacement:
    """Where the chip lies in the image: dlib's ``chip_details`` (a float rectangle, inclusive
    convention, and the rotation about its centre, in radians)."""

    left: float
    top: float
    right: float
    bottom: float
    angle: float


@attrs.frozen
class ExtractionPlan:
    """How a chip is sampled: from which crop of the image and which pyramid level.

    ``level`` is -1 when the crop is sampled directly, else the index of the
    ``pyramid_down<2>`` level (0 = crop halved once). ``affine`` maps chip (column, row) to
    that source image: x = a00*c + a01*r + b0, y = a10*c + a11*r + b1, as (a00, a01, b0,
    a10, a11, b1).
    """

    crop: tuple[int, int, int, int]  # left, top, right, bottom, inclusive; empty if right < left
    depth: int  # pyramid levels built
    level: int
    affine: tuple[float, float, float, float, float, float]


class DlibChipAligner:
    """``FaceAligner`` cutting dlib's 5-point face chip (default 150 px, padding 0.25)."""

    def __init__(self, size: int = 150, padding: float = 0.25) -> None:
        if size < 2:
            raise ValueError("chip size must be at least 2 pixels")
        if not padding >= 0:
            raise ValueError("padding must be >= 0")
        self.size = size
        self.padding = padding
        self.algorithm_id = f"dlib-chip-5pt-{size}-{padding:g}"
        # The template's points in chip pixels: where each landmark lands in the chip.
        self.template = np.array(
            [
                [((padding + x) / (2 * padding + 1)) * size, ((padding + y) / (2 * padding + 1)) * size]
                for x, y in _TEMPLATE_5
            ],
            dtype=np.float64,
        )

    def align(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        return self.extract(image, self.placement(face.landmarks))

    def placement(self, landmarks: tuple[Point, ...]) -> ChipPlacement:
        """dlib's ``get_face_chip_details`` for 5 landmarks."""
        if len(landmarks) != len(_TEMPLATE_5):
            raise ValueError(f"the 5-point chip needs 5 landmarks, got {len(landmarks)}")
        target = np.array(landmarks, dtype=np.float64)
        linear, offset = _similarity_transform(self.template, target)
        # The chip's x axis in the image: M applied to (1, 0) is M's first column.
        qx, qy = float(linear[0, 0]), float(linear[1, 0])
        angle = math.atan2(qy, qx)
        scale = math.sqrt(qx * qx + qy * qy)
        half = self.size / 2.0
        cx = (float(linear[0, 0]) * half + float(linear[0, 1]) * half) + float(offset[0])
        cy = (float(linear[1, 0]) * half + float(linear[1, 1]) * half) + float(offset[1])
        # A centred rectangle in dlib's inclusive convention: the side shrinks by 1 first.
        extent = self.size * scale - 1
        return ChipPlacement(cx - extent / 2, cy - extent / 2, cx + extent / 2, cy + extent / 2, angle)

    def plan(self, image_shape: tuple[int, ...], placement: ChipPlacement) -> ExtractionPlan:
        """The crop, pyramid depth, level and sampling map dlib's ``extract_image_chips`` uses."""
        height, width = image_shape[:2]
        chip_area = self.size * self.size
        rect = (placement.left, placement.top, placement.right, placement.bottom)

        depth, grow = 0, 2.0
        shrunk = _rect_down(rect)
        while _area(shrunk) > chip_area:
            shrunk = _rect_down(shrunk)
            depth += 1
            # Each level halves the image and keeps a 2-pixel margin against border effects.
            grow = grow * 2 + 2

        corners = _rotated_corners(rect, placement.angle)
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        grown = (min(xs) - grow, min(ys) - grow, max(xs) + grow, max(ys) + grow)
        clipped = (
            max(grown[0], 0.0),
            max(grown[1], 0.0),
            min(grown[2], width - 1.0),
            min(grown[3], height - 1.0),
        )
        # dlib rounds the float box to integer pixels, then tests it for emptiness.
        crop_left, crop_top, crop_right, crop_bottom = (math.floor(v + 0.5) for v in clipped)
        if crop_left > crop_right or crop_top > crop_bottom:
            crop_left, crop_top, crop_right, crop_bottom = 0, 0, -1, -1
        crop = (crop_left, crop_top, crop_right, crop_bottom)

        level = -1
        local = (rect[0] - crop[0], rect[1] - crop[1], rect[2] - crop[0], rect[3] - crop[1])
        while _area(_rect_down(local)) > chip_area:
            level += 1
            local = _rect_down(local)
        # dlib builds exactly ``depth`` levels; the two loops agree but for float noise.
        level = min(level, depth - 1)

        top_left, top_right, bottom_left, _ = _rotated_corners(local, placement.angle)
        span = self.size - 1
        affine = (
            (top_right[0] - top_left[0]) / span,
            (bottom_left[0] - top_left[0]) / span,
            top_left[0],
            (top_right[1] - top_left[1]) / span,
            (bottom_left[1] - top_left[1]) / span,
            top_left[1],
        )
        return ExtractionPlan(crop=crop, depth=depth, level=level, affine=affine)

    def extract(self, image: np.ndarray, placement: ChipPlacement) -> np.ndarray:
        """The chip at ``placement``: (size, size, 3) uint8 RGB."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
        rect_height = placement.bottom - placement.top + 1
        rect_width = placement.right - placement.left + 1
        if placement.angle == 0 and rect_height == self.size and rect_width == self.size:
            return _copy_chip(image, placement)
        plan = self.plan(image.shape, placement)
        left, top, right, bottom = plan.crop
        source = image[top : bottom + 1, left : right + 1]
        levels = []
        for _ in range(plan.depth):
            source_level = _pyramid_down_2(levels[-1] if levels else source)
            levels.append(source_level)
        if plan.level >= 0:
            source = levels[plan.level]
        return _sample_bilinear(source, plan.affine, self.size)


def _similarity_transform(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity source -> target (Umeyama, with reflection guard), as dlib
    computes it: returns the 2x2 linear part and the offset, in float64."""
    count = len(source)
    mean_from = source.sum(axis=0) / count
    mean_to = target.sum(axis=0) / count
    centred_from = source - mean_from
    centred_to = target - mean_to
    sigma_from = float(np.sum(centred_from**2)) / count
    cov = centred_to.T @ centred_from / count
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    determinant = np.linalg.det(cov)
    if determinant < 0 or (determinant == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        if d[1] < d[0]:
            s[1, 1] = -1
        else:
            s[0, 0] = -1
    rotation = u @ s @ vt
    c = 1.0 / sigma_from * float(np.sum(d * np.diag(s))) if sigma_from != 0 else 1.0
    linear = c * rotation
    return linear, mean_to - linear @ mean_from


def _rect_down(rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """pyramid_down<2>'s point map on both corners: (x/2 - 1.25, y/2 - 0.75)."""
    left, top, right, bottom = rect
    return (left / 2.0 - 1.25, top / 2.0 - 0.75, right / 2.0 - 1.25, bottom / 2.0 - 0.75)


def _area(rect: tuple[float, float, float, float]) -> float:
    left, top, right, bottom = rect
    if top > bottom or left > right:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def _rotated_corners(rect: tuple[float, float, float, float], angle: float) -> list[tuple[float, float]]:
    """Top-left, top-right, bottom-left, bottom-right of ``rect`` turned by ``angle`` about its centre."""
    left, top, right, bottom = rect
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    sin_a, cos_a = math.sin(angle), math.cos(angle)
    turned = []
    for x, y in ((left, top), (right, top), (left, bottom), (right, bottom)):
        dx, dy = x - cx, y - cy
        turned.append(((cos_a * dx - sin_a * dy) + cx, (sin_a * dx + cos_a * dy) + cy))
    return turned


def _pyramid_down_2(image: np.ndarray) -> np.ndarray:
    """dlib's pyramid_down<2> on RGB: separable [1 4 6 4 1] filter, every other row and column,
    integer sums divided by 256 with truncation; output ((nr-3)/2, (nc-3)/2)."""
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    out_rows, out_cols = (rows - 3) // 2, (cols - 3) // 2
    pixels = image.astype(np.int32)

    def tap(array: np.ndarray, offset: int, count: int, axis: int) -> np.ndarray:
        index = [slice(None)] * array.ndim
        index[axis] = slice(offset, offset + 2 * count, 2)
        return array[tuple(index)]

    def filt(array: np.ndarray, count: int, axis: int) -> np.ndarray:
        return (
            tap(array, 0, count, axis)
            + 4 * tap(array, 1, count, axis)
            + 6 * tap(array, 2, count, axis)
            + 4 * tap(array, 3, count, axis)
            + tap(array, 4, count, axis)
        )

    across = filt(pixels, out_cols, axis=1)
    down = filt(across, out_rows, axis=0)
    return (down >> 8).astype(np.uint8)


def _sample_bilinear(source: np.ndarray, affine: tuple[float, ...], size: int) -> np.ndarray:
    """dlib's interpolate_bilinear over the chip grid; outside samples are black."""
    a00, a01, b0, a10, a11, b1 = affine
    grid = np.arange(size, dtype=np.float64)
    col, row = grid[None, :], grid[:, None]
    x = (a00 * col + a01 * row) + b0
    y = (a10 * col + a11 * row) + b1
    left, top = np.floor(x), np.floor(y)
    rows, cols = source.shape[:2]
    inside = (left >= 0) & (top >= 0) & (left + 1 < cols) & (top + 1 < rows)
    chip = np.zeros((size, size, 3), dtype=np.uint8)
    if not inside.any():
        return chip
    li = left[inside].astype(np.intp)
    ti = top[inside].astype(np.intp)
    lr = (x[inside] - left[inside])[:, None]
    tb = (y[inside] - top[inside])[:, None]
    tl = source[ti, li].astype(np.float64)
    tr = source[ti, li + 1].astype(np.float64)
    bl = source[ti + 1, li].astype(np.float64)
    br = source[ti + 1, li + 1].astype(np.float64)
    value = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
    chip[inside] = np.clip(value, 0, 255).astype(np.uint8)
    return chip


def _copy_chip(image: np.ndarray, placement: ChipPlacement) -> np.ndarray:
    """dlib's fast path for an unrotated chip of exactly the rectangle's size: a plain copy,
    black where the rectangle leaves the image."""
    left, top, right, bottom = (
        math.floor(v + 0.5) for v in (placement.left, placement.top, placement.right, placement.bottom)
    )
    chip = np.zeros((bottom - top + 1, right - left + 1, 3), dtype=np.uint8)
    height, width = image.shape[:2]
    src_left, src_top = max(left, 0), max(top, 0)
    src_right, src_bottom = min(right, width - 1), min(bottom, height - 1)
    if src_left <= src_right and src_top <= src_bottom:
        chip[src_top - top : src_bottom - top + 1, src_left - left : src_right - left + 1] = image[
            src_top : src_bottom + 1, src_left : src_right + 1
        ]
    return chip
