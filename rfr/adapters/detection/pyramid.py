"""The two image pyramids of dlib's CNN face detector.

- ``pyramid_up``: one upsampling step of the input image (pyramid_down<2>'s inverse point
  map for the size, then dlib's bilinear resize), used before detection to find faces
  smaller than the 80 px window.
- ``TiledPyramid`` and ``build_canvas``: the pyramid_down<6> levels of the image tiled into
  one tensor, the network's actual input. Every level after the first is resized from the
  previous level already in the tensor, in normalised float space, not from the image.

shared/spec/DLIB_MODEL_FORMAT.md, section 4.2 and *Detector upsampling*.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import attrs
import numpy as np

from rfr.adapters.detection.dlib_resize import resize_region, resize_rgb

_MIN_LEVEL_HEIGHT = 5


def lround(values: np.ndarray | float) -> np.ndarray:
    """C's lround: nearest integer, halves away from zero (exact, unlike floor(|x| + 0.5))."""
    x = np.asarray(values, dtype=np.float64)
    whole = np.trunc(x)
    rest = x - whole  # exact in binary floating point
    return (whole + np.sign(x) * (np.abs(rest) >= 0.5)).astype(np.int64)


def pyramid_up_size(rows: int, cols: int) -> tuple[int, int]:
    """(rows, cols) after one pyramid_up: the pyramid_down<2> map inverted at the far corner."""
    if rows * cols == 0:
        return (0, 0)
    bottom = int(lround(2 * ((rows - 1) + 0.75)))
    right = int(lround(2 * ((cols - 1) + 1.25)))
    return (bottom + 1, right + 1)


def pyramid_up(image: np.ndarray) -> np.ndarray:
    """One pyramid_up step of a uint8 RGB image, bit-identical to dlib's."""
    rows, cols = pyramid_up_size(image.shape[0], image.shape[1])
    return resize_rgb(image, rows, cols)


@attrs.frozen
class Level:
    """One pyramid level's place in the canvas (inclusive dlib rectangle)."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width - 1

    @property
    def bottom(self) -> int:
        return self.top + self.height - 1


@attrs.frozen
class TiledPyramid:
    """Canvas size and level placement for an image of ``rows`` x ``cols``."""

    rows: int  # canvas height
    cols: int  # canvas width
    levels: tuple[Level, ...]

    @classmethod
    def plan(
        cls, rows: int, cols: int, *, padding: int, outer_padding: int, rate: Sequence[int] = (5, 6)
    ) -> TiledPyramid:
        if rows * cols == 0:
            return cls(0, 0, ())
        sizes = _level_sizes(rows, cols, rate)
        total_height = sum(h + padding for h, _ in sizes) - 2 * padding
        height, prev_width = 0, 0
        for h, w in sizes:
            # The first column ends once the next level fits beside the previous one and
            # the first column is at least half of the remaining height.
            if w <= cols - prev_width - padding and (height - rows) * 2 >= total_height - rows:
                break
            height += h + padding
            prev_width = w
        height -= padding
        levels: list[Level] = []
        y = outer_padding
        i = 0
        while y < height + outer_padding and i < len(sizes):
            h, w = sizes[i]
            levels.append(Level(outer_padding, y, w, h))
            y += h + padding
            i += 1
        y -= padding
        first = levels[0]
        right_edge = outer_padding + cols - 1
        while i < len(sizes):
            h, w = sizes[i]
            level = Level(right_edge - w + 1, y - h, w, h)
            if _intersects(first, level):
                break
            levels.append(level)
            y -= h + padding
            i += 1
        return cls(height + 2 * outer_padding, cols + 2 * outer_padding, tuple(levels))


def _level_sizes(rows: int, cols: int, rate: Sequence[int]) -> list[tuple[int, int]]:
    num, den = rate
    factor = (den - 1.0) / den  # dlib's pyramid_rate, a double
    if num != den - 1:
        raise ValueError(f"pyramid rate {num}/{den} is not a pyramid_down<N> rate")
    sizes = [(rows, cols)]
    while True:
        rows, cols = math.floor(factor * rows), math.floor(factor * cols)
        if rows * cols == 0 or rows < _MIN_LEVEL_HEIGHT:
            return sizes
        sizes.append((rows, cols))


def _intersects(a: Level, b: Level) -> bool:
    return max(a.left, b.left) <= min(a.right, b.right) and max(a.top, b.top) <= min(a.bottom, b.bottom)


def build_canvas(image: np.ndarray, pyramid: TiledPyramid, mean_rgb: Sequence[float]) -> np.ndarray:
    """The network input (1, 3, rows, cols), float32: zeros, then every level in place."""
    canvas = np.zeros((1, 3, pyramid.rows, pyramid.cols), dtype=np.float32)
    if not pyramid.levels:
        return canvas
    planes = canvas[0]
    first = pyramid.levels[0]
    mean = np.asarray(mean_rgb, dtype=np.float32)
    # (pixel - mean) in float32, then / 256: exact, as dlib's double division of a float is.
    normalised = (image.astype(np.float32) - mean) / np.float32(256)
    planes[:, first.top : first.bottom + 1, first.left : first.right + 1] = normalised.transpose(2, 0, 1)
    for prev, level in itertools.pairwise(pyramid.levels):
        source = (prev.top, prev.left, prev.height, prev.width)
        planes[:, level.top : level.bottom + 1, level.left : level.right + 1] = resize_region(
            planes, source, level.height, level.width
        )
    return canvas
