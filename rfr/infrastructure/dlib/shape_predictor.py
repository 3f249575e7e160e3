"""dlib's ERT shape predictor file (shared/spec/DLIB_MODEL_FORMAT.md, section 2.7), read fast.

Every field of this file is a variable-length integer (2.1): floats are two of them, matrix
headers, vector counts and split indices are one each; there are no strings, bools or raw
bytes. So the whole file is tokenised once (one tight loop over the control bytes), all
values are decoded at once with numpy, and the known layout is then cut out of the token
stream as regular grids. That takes about 0.3 s instead of the 2.4 s of a field-by-field
reader, and the result is cached as an ``.npz`` of the stacked arrays the vectorised predictor
uses (``save_npz`` / ``load_npz``).

The stacked form needs every tree to have the same number of splits, every cascade the same
number of trees and feature pixels; dlib's trainer always writes complete trees of one depth,
and anything else is refused rather than silently mis-read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np

from rfr.infrastructure.dlib.serialization import DlibFormatError

_INF, _NEG_INF, _NAN = 32000, 32001, 32002
_FORMAT_VERSION = 1
# Bumped when the layout of the cached arrays changes, so an old cache is rebuilt, not misused.
_NPZ_LAYOUT = 1

_STEP = bytes(1 + (c & 0x0F) for c in range(256))


def _token_starts(data: bytes) -> Iterator[int]:
    steps = data.translate(_STEP)
    end = len(data)
    pos = 0
    while pos < end:
        yield pos
        pos += steps[pos]


class _Tokens:
    """All integers of the file, decoded, with a cursor for walking the layout."""

    def __init__(self, data: bytes) -> None:
        raw = np.frombuffer(data, dtype=np.uint8)
        starts = np.fromiter(_token_starts(data), dtype=np.int64)
        control = raw[starts]
        size = (control & 0x0F).astype(np.int64)
        bad = np.flatnonzero((control & 0x70) | (size == 0) | (size > 8))
        if bad.size:
            where = int(starts[bad[0]])
            raise DlibFormatError(f"bad integer control byte 0x{raw[where]:02x} at {where}")
        if int(starts[-1] + 1 + size[-1]) != len(data):
            raise DlibFormatError(f"unexpected end of file in the integer at {int(starts[-1])}")
        padded = np.concatenate([raw, np.zeros(8, dtype=np.uint8)])
        lane = np.arange(8, dtype=np.int64)
        digits = padded[starts[:, None] + 1 + lane].astype(np.uint64)
        digits[lane[None, :] >= size[:, None]] = 0
        magnitude = (digits << (lane.astype(np.uint64) * np.uint64(8))).sum(axis=1, dtype=np.uint64)
        if np.any(magnitude > np.uint64(2**63 - 1)):
            raise DlibFormatError("integer magnitude beyond int64")
        value = magnitude.astype(np.int64)
        self.values = np.where(control & 0x80, -value, value)
        self.starts = starts
        self.pos = 0

    @property
    def at_end(self) -> bool:
        return self.pos == len(self.values)

    def _byte_offset(self, token: int) -> int:
        return int(self.starts[min(token, len(self.starts) - 1)])

    def take(self, n: int) -> np.ndarray:
        if self.pos + n > len(self.values):
            raise DlibFormatError(f"unexpected end of file at byte {self._byte_offset(self.pos)}")
        chunk = self.values[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def one(self) -> int:
        return int(self.take(1)[0])

    def uint(self, what: str) -> int:
        start = self.pos
        value = self.one()
        if value < 0:
            raise DlibFormatError(f"{what}: negative value {value} at byte {self._byte_offset(start)}")
        return value

    def expect(self, expected: int, what: str) -> None:
        start = self.pos
        value = self.one()
        if value != expected:
            raise DlibFormatError(
                f"{what}: expected {expected} at byte {self._byte_offset(start)}, found {value}"
            )

    def grid(self, rows: int, cols: int) -> np.ndarray:
        return self.take(rows * cols).reshape(rows, cols)


def _floats(mantissa: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """Pairs (mantissa, exponent) of section 2.2 as float32, rounded once from the exact double."""
    special = exponent >= _INF
    with np.errstate(over="ignore"):
        value = np.ldexp(mantissa.astype(np.float64), np.where(special, 0, exponent).astype(np.int32))
    value = np.where(exponent == _INF, np.inf, value)
    value = np.where(exponent == _NEG_INF, -np.inf, value)
    value = np.where(exponent == _NAN, np.nan, value)
    return value.astype(np.float32)


def _float_columns(block: np.ndarray, first: int, count: int) -> np.ndarray:
    """``count`` consecutive floats starting at column ``first`` of a token grid."""
    pairs = block[..., first : first + 2 * count]
    return _floats(pairs[..., 0::2], pairs[..., 1::2])


def _check_column(column: np.ndarray, expected: int, what: str) -> None:
    if np.any(column != expected):
        found = column[column != expected].ravel()[0]
        raise DlibFormatError(f"{what}: expected {expected}, found {int(found)}")


@attrs.frozen(eq=False)
class ShapePredictorModel:
    """The stacked arrays of a dlib shape predictor.

    C cascades, T trees per cascade, S splits per tree (L = S + 1 leaves), F feature pixels
    per cascade, P landmarks.
    """

    initial_shape: np.ndarray  # (P, 2) float32, normalised face-box coordinates
    split_idx1: np.ndarray  # (C, T, S) int32, feature index
    split_idx2: np.ndarray  # (C, T, S) int32
    thresholds: np.ndarray  # (C, T, S) float32
    leaves: np.ndarray  # (C, T, L, P, 2) float32, shape increments
    anchor_idx: np.ndarray  # (C, F) int32, landmark each feature pixel hangs from
    deltas: np.ndarray  # (C, F, 2) float32, offset from that landmark in normalised coordinates

    @property
    def num_parts(self) -> int:
        return int(self.initial_shape.shape[0])

    @property
    def num_cascades(self) -> int:
        return int(self.split_idx1.shape[0])

    @property
    def trees_per_cascade(self) -> int:
        return int(self.split_idx1.shape[1])

    @property
    def depth(self) -> int:
        return int(self.leaves.shape[2]).bit_length() - 1

    @classmethod
    def from_dat(cls, data: bytes) -> ShapePredictorModel:
        tokens = _Tokens(data)
        tokens.expect(_FORMAT_VERSION, "shape_predictor version")
        initial = _read_column_matrix(tokens, "initial_shape")
        if initial.size % 2 or initial.size == 0:
            raise DlibFormatError(f"initial_shape has odd or zero length {initial.size}")
        parts = initial.size // 2

        num_cascades = tokens.uint("number of cascades")
        idx1, idx2, thresholds, leaves = [], [], [], []
        for cascade in range(num_cascades):
            tree_idx1, tree_idx2, tree_thr, tree_leaves = _read_cascade(tokens, parts, cascade)
            idx1.append(tree_idx1)
            idx2.append(tree_idx2)
            thresholds.append(tree_thr)
            leaves.append(tree_leaves)
        if len({a.shape for a in idx1}) > 1:
            raise DlibFormatError("cascades differ in tree count or depth; not supported")

        tokens.expect(num_cascades, "anchor_idx cascade count")
        anchors = []
        for _ in range(num_cascades):
            count = tokens.uint("anchor_idx length")
            anchors.append(tokens.take(count).copy())
        tokens.expect(num_cascades, "deltas cascade count")
        deltas = []
        for cascade in range(num_cascades):
            count = tokens.uint("deltas length")
            if count != len(anchors[cascade]):
                raise DlibFormatError(
                    f"cascade {cascade}: {count} deltas for {len(anchors[cascade])} anchors"
                )
            block = tokens.grid(count, 4)
            deltas.append(_float_columns(block, 0, 2))
        if not tokens.at_end:
            raise DlibFormatError(f"{len(tokens.values) - tokens.pos} unread integers after the deltas")
        if len({len(a) for a in anchors}) > 1:
            raise DlibFormatError("cascades differ in feature pixel count; not supported")

        model = cls(
            initial_shape=initial.reshape(parts, 2),
            split_idx1=np.stack(idx1).astype(np.int32),
            split_idx2=np.stack(idx2).astype(np.int32),
            thresholds=np.stack(thresholds),
            leaves=np.stack(leaves).reshape(num_cascades, *leaves[0].shape[:2], parts, 2),
            anchor_idx=np.stack(anchors).astype(np.int32),
            deltas=np.stack(deltas),
        )
        model.validate()
        return model

    def validate(self) -> None:
        """Index ranges a corrupt file could break, checked once instead of on every face."""
        features = self.anchor_idx.shape[1]
        for name, idx in (("split idx1", self.split_idx1), ("split idx2", self.split_idx2)):
            if idx.size and (idx.min() < 0 or idx.max() >= features):
                raise DlibFormatError(f"{name} outside the {features} feature pixels")
        if self.anchor_idx.size and (self.anchor_idx.min() < 0 or self.anchor_idx.max() >= self.num_parts):
            raise DlibFormatError(f"anchor index outside the {self.num_parts} landmarks")

    def save_npz(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # np.savez appends ".npz" to names without it; write through a handle to keep the name.
        with path.open("wb") as fh:
            np.savez(
                fh,
                layout=np.int32(_NPZ_LAYOUT),
                **{field.name: getattr(self, field.name) for field in attrs.fields(type(self))},
            )

    @classmethod
    def load_npz(cls, path: Path) -> ShapePredictorModel:
        with np.load(Path(path), allow_pickle=False) as archive:
            if "layout" not in archive or int(archive["layout"]) != _NPZ_LAYOUT:
                raise ValueError(f"{path} is not a shape predictor cache of layout {_NPZ_LAYOUT}")
            model = cls(**{field.name: archive[field.name] for field in attrs.fields(cls)})
        model.validate()
        return model


def _read_column_matrix(tokens: _Tokens, what: str) -> np.ndarray:
    rows, cols = tokens.one(), tokens.one()
    if rows > 0 or cols != -1:
        raise DlibFormatError(f"{what}: expected a new-format column matrix, found header {rows}, {cols}")
    block = tokens.grid(1, -2 * rows)
    return _float_columns(block, 0, -rows)[0]


def _read_cascade(
    tokens: _Tokens, parts: int, cascade: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    trees = tokens.uint(f"cascade {cascade} tree count")
    if trees == 0:
        raise DlibFormatError(f"cascade {cascade} has no trees")
    # The first tree fixes the layout; every tree then occupies the same number of tokens,
    # which the header checks below prove for all of them at once.
    splits = int(tokens.values[tokens.pos]) if tokens.pos < len(tokens.values) else -1
    if splits < 1 or (splits + 1) & splits:
        raise DlibFormatError(f"cascade {cascade}: {splits} splits is not a complete binary tree")
    leaves = splits + 1
    leaf_len = 2 + 4 * parts
    tree_len = 1 + 4 * splits + 1 + leaves * leaf_len
    block = tokens.grid(trees, tree_len)
    where = f"cascade {cascade}"
    _check_column(block[:, 0], splits, f"{where} split count")
    split_block = block[:, 1 : 1 + 4 * splits].reshape(trees, splits, 4)
    if np.any(split_block[..., :2] < 0):
        raise DlibFormatError(f"{where}: negative split feature index")
    _check_column(block[:, 1 + 4 * splits], leaves, f"{where} leaf count")
    leaf_block = block[:, 2 + 4 * splits :].reshape(trees, leaves, leaf_len)
    _check_column(leaf_block[..., 0], -2 * parts, f"{where} leaf rows")
    _check_column(leaf_block[..., 1], -1, f"{where} leaf columns")
    return (
        split_block[..., 0],
        split_block[..., 1],
        _float_columns(split_block, 2, 1)[..., 0],
        _float_columns(leaf_block, 2, 2 * parts),
    )
