"""dlib's 5-point shape predictor, evaluated with numpy and exactly equal to dlib.

Follows section 5 and *Fast landmark prediction* of shared/spec/DLIB_MODEL_FORMAT.md. All
trees of a cascade are evaluated together, and several faces of one image share every array
operation (``locate_many``), so the cost is a fixed number of numpy calls per cascade rather
than a Python loop per tree.

Exactness rests on doing each arithmetic step in the precision and order dlib does:
- the similarity transform in float64, then only its 2x2 part cast to float32;
- feature points ``(m00*dx + m01*dy) + anchor`` in float32;
- the map to the image in float64, rounded with floor(v + 0.5);
- leaf values added one tree after another in float32 (a running sum, never a pairwise one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rfr.application.ports import FaceBox, Point

# Trees up to this many splits are resolved by one table look-up of their packed split
# decisions (2**15 entries for dlib's default depth 4); deeper ones are walked level by level.
_MAX_TABLE_SPLITS = 15


class ShapePredictorArrays(Protocol):
    """The stacked model arrays the locator evaluates.

    ``rfr.infrastructure.dlib.shape_predictor.ShapePredictorModel`` provides them; the locator
    names only this shape, so any source of the same arrays will do.
    C cascades, T trees, S splits (L = S + 1 leaves), F feature pixels, P landmarks.
    """

    @property
    def initial_shape(self) -> np.ndarray: ...  # (P, 2) float32

    @property
    def split_idx1(self) -> np.ndarray: ...  # (C, T, S) int

    @property
    def split_idx2(self) -> np.ndarray: ...  # (C, T, S) int

    @property
    def thresholds(self) -> np.ndarray: ...  # (C, T, S) float32

    @property
    def leaves(self) -> np.ndarray: ...  # (C, T, L, P, 2) float32

    @property
    def anchor_idx(self) -> np.ndarray: ...  # (C, F) int

    @property
    def deltas(self) -> np.ndarray: ...  # (C, F, 2) float32


class ShapePredictorLocator:
    """``LandmarkLocator`` running a dlib shape predictor model."""

    def __init__(
        self,
        model: ShapePredictorArrays,
        algorithm_id: str = "dlib-shape-predictor-5pt-v1",
        *,
        max_table_splits: int = _MAX_TABLE_SPLITS,
    ) -> None:
        self.model = model
        self.algorithm_id = algorithm_id
        initial = model.initial_shape.astype(np.float64)
        centred = initial - initial.mean(axis=0)
        norm2 = float(np.sum(centred**2))
        # The closed form of Umeyama's similarity in 2-D: with f the centred initial shape and
        # t the current one, a = sum(f . t) / |f|^2 and b = sum(f_x t_y - f_y t_x) / |f|^2.
        # Since sum(f) = 0, t need not be centred, so both are one product with t. Against
        # dlib's SVD form this differs only in the rounding noise of a near-zero b (below 1e-6),
        # and the float32 shapes of all 722 reference faces came out bit-identical.
        cross = np.stack([-centred[:, 1], centred[:, 0]], axis=1)
        self._similarity_weights = np.stack([centred.ravel(), cross.ravel()], axis=1) / norm2
        self._deltas = model.deltas
        # (-dy, dx): the deltas turned a quarter, so that M.delta = a*delta + b*turned.
        self._deltas_turned = np.stack([-model.deltas[..., 1], model.deltas[..., 0]], axis=-1)
        cascades, trees, splits = model.split_idx1.shape
        leaves = model.leaves.shape[2]
        self._trees = trees
        self._splits = splits
        if leaves != splits + 1 or leaves & splits:
            raise ValueError(f"trees of {splits} splits and {leaves} leaves are not complete binary trees")
        self._depth = leaves.bit_length() - 1
        self._cascades = cascades
        self._leaf_rows = model.leaves.reshape(cascades, trees * leaves, -1)
        self._leaf_base = np.arange(trees, dtype=np.intp) * leaves
        self._idx1 = model.split_idx1.reshape(cascades, -1).astype(np.intp)
        self._idx2 = model.split_idx2.reshape(cascades, -1).astype(np.intp)
        self._leaf_of_code = _leaf_table(splits, self._depth) if splits <= max_table_splits else None
        # Packing the decisions with a float32 product is exact: distinct powers of two below 2**24.
        self._bit_values = np.ldexp(np.float32(1), np.arange(splits)).astype(np.float32)

    def locate(self, image: np.ndarray, box: FaceBox) -> tuple[Point, ...]:
        return self.locate_many(image, [box])[0]

    def locate_many(self, image: np.ndarray, boxes: Sequence[FaceBox]) -> list[tuple[Point, ...]]:
        """Landmarks of several faces of one image in one pass."""
        if not boxes:
            return []
        shapes = self.predict(image, boxes)
        origin, scale = _box_maps(boxes)
        points = np.floor(scale * shapes.astype(np.float64) + origin + 0.5).astype(np.int64)
        return [tuple((int(x), int(y)) for x, y in face) for face in points]

    def predict(self, image: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        """The float32 shapes in normalised box coordinates, (faces, parts, 2), before rounding."""
        intensity = _IntensityReader(image)
        origin, scale = _box_maps(boxes)
        model = self.model
        count = len(boxes)
        shape = np.broadcast_to(model.initial_shape, (count, *model.initial_shape.shape)).copy()
        for cascade in range(self._cascades):
            ab = (shape.reshape(count, -1).astype(np.float64) @ self._similarity_weights).astype(np.float32)
            a, b = ab[:, 0, None, None], ab[:, 1, None, None]
            anchors = shape.take(model.anchor_idx[cascade], axis=1)
            features = (a * self._deltas[cascade] + b * self._deltas_turned[cascade]) + anchors
            pixels = np.floor(scale * features.astype(np.float64) + origin + 0.5)
            values = intensity(pixels)
            differences = values.take(self._idx1[cascade], axis=1) - values.take(self._idx2[cascade], axis=1)
            decisions = differences.reshape(count, self._trees, self._splits) > model.thresholds[cascade]
            picked = self._leaf_rows[cascade][self._leaf_base + self._leaves_reached(decisions)]
            running = np.concatenate([shape.reshape(count, 1, -1), picked], axis=1)
            shape = np.add.accumulate(running, axis=1)[:, -1].reshape(shape.shape)
        return shape

    def _leaves_reached(self, decisions: np.ndarray) -> np.ndarray:
        """Leaf index of every tree, (faces, trees), from its split decisions (faces, trees, S).

        dlib goes from node i to 2i+1 when the decision holds, else to 2i+2.
        """
        if self._leaf_of_code is not None:
            codes = decisions.astype(np.float32) @ self._bit_values
            return self._leaf_of_code[codes.astype(np.intp)]
        count = decisions.shape[0]
        flat = decisions.reshape(-1)
        tree_rows = np.arange(count * self._trees, dtype=np.intp).reshape(count, self._trees) * self._splits
        node = np.zeros((count, self._trees), dtype=np.intp)
        for _ in range(self._depth):
            node = 2 * node + 2 - flat[tree_rows + node]
        return node - self._splits


def _leaf_table(splits: int, depth: int) -> np.ndarray:
    """Leaf reached for every combination of split decisions, bit s of the code = split s."""
    codes = np.arange(1 << splits, dtype=np.intp)
    node = np.zeros_like(codes)
    for _ in range(depth):
        holds = (codes >> node) & 1
        node = 2 * node + 2 - holds
    return node - splits


def _box_maps(boxes: Sequence[FaceBox]) -> tuple[np.ndarray, np.ndarray]:
    """Unit box -> image as (faces, 1, 2) origin and scale.

    (0,0) goes to the top-left pixel and (1,1) to the bottom-right one: the scale is
    right - left, not the inclusive width.
    """
    ltrb = np.array([(b.left, b.top, b.right, b.bottom) for b in boxes], dtype=np.float64)
    origin = ltrb[:, None, :2]
    return origin, ltrb[:, None, 2:] - origin


class _IntensityReader:
    """Reads dlib's grey level at integer pixels, as float32; pixels outside the image read 0.

    Only the sampled pixels are converted, so a large photo costs no full grey copy.
    """

    # (R + G + B) / 3 with integer truncation, as dlib converts RGB to grey, by table.
    _GREY_OF_SUM = (np.arange(3 * 255 + 1) // 3).astype(np.float32)

    def __init__(self, image: np.ndarray) -> None:
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise ValueError(f"expected an (H, W, 3) or (H, W) uint8 image, got {image.dtype} {image.shape}")
        self.height, self.width = image.shape[:2]
        self.rgb = image.ndim == 3
        # A view for the usual C-ordered image; a strided one is copied once per call.
        self.rows = np.ascontiguousarray(image).reshape(self.height * self.width, -1)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        x = pixels[..., 0].astype(np.intp)
        y = pixels[..., 1].astype(np.intp)
        outside = (x < 0) | (x >= self.width) | (y < 0) | (y >= self.height)
        flat = y * self.width + x
        flat[outside] = 0
        sampled = self.rows.take(flat, axis=0)
        if self.rgb:
            grey = self._GREY_OF_SUM[sampled.sum(axis=-1, dtype=np.uint16)]
        else:
            grey = sampled[..., 0].astype(np.float32)
        grey[outside] = 0
        return grey
