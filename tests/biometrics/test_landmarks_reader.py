"""The shape predictor file reader (DLIB_MODEL_FORMAT.md, section 2.7).

A tiny predictor is written here with an encoder that follows section 2 on its own, so every
value read back is known; the real 5-point file is checked for its documented layout and, on
its first trees, against the generic field-by-field ``DlibReader``.
"""

from __future__ import annotations

import math
from pathlib import Path

import face_recognition_models
import numpy as np
import pytest

from rfr.infrastructure.dlib.serialization import DlibFormatError, DlibReader
from rfr.infrastructure.dlib.shape_predictor import ShapePredictorModel

DAT = Path(face_recognition_models.__file__).parent / "models" / "shape_predictor_5_face_landmarks.dat"


# -- an independent encoder of dlib's format ------------------------------------------------
def enc_int(value: int) -> bytes:
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def enc_float(value: float) -> bytes:
    if math.isnan(value):
        return enc_int(1) + enc_int(32002)
    if math.isinf(value):
        return enc_int(1) + enc_int(32000 if value > 0 else 32001)
    fraction, exponent = math.frexp(value)
    mantissa = int(fraction * (1 << 24))
    return enc_int(mantissa) + enc_int(exponent - 24)


def enc_column(values) -> bytes:
    return enc_int(-len(values)) + enc_int(-1) + b"".join(enc_float(v) for v in values)


def enc_predictor(initial, forests, anchors, deltas, version: int = 1) -> bytes:
    out = [enc_int(version), enc_column(initial), enc_int(len(forests))]
    for trees in forests:
        out.append(enc_int(len(trees)))
        for splits, leaves in trees:
            out.append(enc_int(len(splits)))
            out += [enc_int(a) + enc_int(b) + enc_float(t) for a, b, t in splits]
            out.append(enc_int(len(leaves)))
            out += [enc_column(leaf) for leaf in leaves]
    out.append(enc_int(len(anchors)))
    for cascade in anchors:
        out.append(enc_int(len(cascade)) + b"".join(enc_int(a) for a in cascade))
    out.append(enc_int(len(deltas)))
    for cascade in deltas:
        out.append(enc_int(len(cascade)) + b"".join(enc_float(x) + enc_float(y) for x, y in cascade))
    return b"".join(out)


def tiny_predictor_parts(seed: int = 0):
    """2 landmarks, 2 cascades of 3 depth-2 trees, 4 feature pixels per cascade."""
    rng = np.random.default_rng(seed)
    initial = [0.25, 0.5, 0.75, -0.5]
    forests = [
        [
            (
                [(int(rng.integers(4)), int(rng.integers(4)), float(rng.integers(-64, 64))) for _ in "abc"],
                [[float(v) for v in rng.integers(-1000, 1000, 4) / 1024] for _ in range(4)],
            )
            for _ in range(3)
        ]
        for _ in range(2)
    ]
    anchors = [[0, 1, 1, 0], [1, 0, 0, 1]]
    deltas = [[(0.125 * i, -0.0625 * i) for i in range(4)] for _ in range(2)]
    return initial, forests, anchors, deltas


def test_tiny_predictor_reads_back_every_value():
    initial, forests, anchors, deltas = tiny_predictor_parts()
    model = ShapePredictorModel.from_dat(enc_predictor(initial, forests, anchors, deltas))

    assert model.initial_shape.tolist() == [[0.25, 0.5], [0.75, -0.5]]
    assert model.split_idx1.shape == (2, 3, 3)
    assert model.leaves.shape == (2, 3, 4, 2, 2)
    assert model.depth == 2
    for c, trees in enumerate(forests):
        for t, (splits, leaves) in enumerate(trees):
            assert model.split_idx1[c, t].tolist() == [s[0] for s in splits]
            assert model.split_idx2[c, t].tolist() == [s[1] for s in splits]
            assert model.thresholds[c, t].tolist() == [s[2] for s in splits]
            assert model.leaves[c, t].reshape(4, 4).tolist() == leaves
    assert model.anchor_idx.tolist() == anchors
    assert model.deltas.tolist() == [[list(p) for p in cascade] for cascade in deltas]


def test_special_floats_decode():
    initial, forests, anchors, deltas = tiny_predictor_parts()
    forests[0][0][1][0][:3] = [math.inf, -math.inf, math.nan]
    model = ShapePredictorModel.from_dat(enc_predictor(initial, forests, anchors, deltas))
    first = model.leaves[0, 0, 0].ravel()
    assert first[0] == np.inf and first[1] == -np.inf and np.isnan(first[2])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:-1], "end of file"),
        (lambda d: d + enc_int(0), "unread"),
        (lambda d: enc_int(2) + d[2:], "version"),
        (lambda d: d[:4] + b"\x7f" + d[5:], "control byte"),
    ],
)
def test_damaged_files_are_refused(damage, message):
    data = enc_predictor(*tiny_predictor_parts())
    with pytest.raises(DlibFormatError, match=message):
        ShapePredictorModel.from_dat(damage(data))


def test_incomplete_trees_and_bad_indices_are_refused():
    initial, forests, anchors, deltas = tiny_predictor_parts()
    uneven = [list(trees) for trees in forests]
    splits, leaves = uneven[1][2]
    uneven[1][2] = (splits[:1], leaves[:2])  # a shallower tree in the middle of a cascade
    with pytest.raises(DlibFormatError):
        ShapePredictorModel.from_dat(enc_predictor(initial, uneven, anchors, deltas))

    out_of_range = [[(list(s), lv) for s, lv in trees] for trees in forests]
    out_of_range[0][0][0][0] = (9, 0, 1.0)  # feature 9 of 4
    with pytest.raises(DlibFormatError, match="feature"):
        ShapePredictorModel.from_dat(enc_predictor(initial, out_of_range, anchors, deltas))

    with pytest.raises(DlibFormatError, match="landmarks"):
        ShapePredictorModel.from_dat(enc_predictor(initial, forests, [[0, 1, 2, 0], [1, 0, 0, 1]], deltas))


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    return DAT.read_bytes()


@pytest.fixture(scope="module")
def real_model(dat_bytes) -> ShapePredictorModel:
    return ShapePredictorModel.from_dat(dat_bytes)


def test_real_file_is_read_to_its_end_with_the_documented_layout(real_model):
    # from_dat refuses any unread byte, so getting here means the file was consumed exactly.
    model = real_model
    assert model.num_parts == 5
    assert model.num_cascades == 15 and model.trees_per_cascade == 500
    assert model.split_idx1.shape[2] == 15 and model.leaves.shape[2] == 16 and model.depth == 4
    assert model.anchor_idx.shape == (15, 800) and model.deltas.shape == (15, 800, 2)
    spec_initial = [(0.7763, 0.3455), (0.6186, 0.3538), (0.2265, 0.3455), (0.3842, 0.3538), (0.5014, 0.6576)]
    np.testing.assert_allclose(model.initial_shape, spec_initial, atol=5e-5)


def test_real_file_agrees_with_the_generic_reader_on_its_first_trees(dat_bytes, real_model):
    reader = DlibReader(dat_bytes)
    reader.expect_int(1, "version")
    np.testing.assert_array_equal(reader.read_matrix().ravel(), real_model.initial_shape.ravel())
    assert reader.read_uint() == 15
    assert reader.read_uint() == 500
    for tree in range(20):
        splits = reader.read_vector(lambda: (reader.read_uint(), reader.read_uint(), reader.read_float()))
        leaves = reader.read_vector(reader.read_matrix)
        assert [s[0] for s in splits] == real_model.split_idx1[0, tree].tolist()
        assert [s[1] for s in splits] == real_model.split_idx2[0, tree].tolist()
        np.testing.assert_array_equal(np.float32([s[2] for s in splits]), real_model.thresholds[0, tree])
        np.testing.assert_array_equal(np.stack(leaves).reshape(16, 5, 2), real_model.leaves[0, tree])


def test_npz_cache_round_trips_exactly(real_model, tmp_path):
    path = tmp_path / "cache" / "shape_predictor_5.npz"
    real_model.save_npz(path)
    assert path.exists()
    loaded = ShapePredictorModel.load_npz(path)
    for name in ("initial_shape", "split_idx1", "split_idx2", "thresholds", "leaves", "anchor_idx", "deltas"):
        original, again = getattr(real_model, name), getattr(loaded, name)
        assert original.dtype == again.dtype, name
        np.testing.assert_array_equal(original, again, err_msg=name)


def test_npz_that_is_not_a_predictor_cache_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    with path.open("wb") as fh:
        np.savez(fh, something=np.zeros(3))
    with pytest.raises(ValueError, match="not a shape predictor cache"):
        ShapePredictorModel.load_npz(path)
