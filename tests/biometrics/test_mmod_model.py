"""The MMOD detector file read to its last byte and its ONNX graph checked against numpy."""

from __future__ import annotations

import json
from pathlib import Path

import face_recognition_models
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from rfr.infrastructure.dlib.mmod import METADATA_KEY, build_mmod_onnx, read_mmod
from rfr.infrastructure.dlib.serialization import DlibFormatError

MODELS = Path(face_recognition_models.__file__).parent / "models"


@pytest.fixture(scope="module")
def mmod_bytes() -> bytes:
    return (MODELS / "mmod_human_face_detector.dat").read_bytes()


@pytest.fixture(scope="module")
def mmod_onnx(mmod_bytes: bytes) -> onnx.ModelProto:
    return build_mmod_onnx(mmod_bytes)


def test_file_holds_the_known_detector_and_its_settings(mmod_bytes):
    network = read_mmod(mmod_bytes)
    spec = network.spec
    assert spec.window == (80, 80)
    assert spec.nms_iou == pytest.approx(0.3382761351109955, abs=1e-15)
    assert spec.nms_covered == 1.0
    assert (spec.pyramid_padding, spec.pyramid_outer_padding) == (10, 11)  # implied by pyramid v1
    assert spec.pyramid_rate == (5, 6)
    assert spec.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-5)
    # x_in = 8 x_out + 14 (section 3.2), and the smallest canvas that yields one score cell.
    assert spec.output_scale == (8, 8) and spec.output_offset == (14, 14)
    assert spec.min_input == (29, 29)
    filters = [conv.num_filters for conv, _ in network.layers]
    assert filters == [16, 32, 32, 45, 45, 45, 1]
    params = sum(conv.filters.size + conv.biases.size for conv, _ in network.layers)
    params += sum(2 * affine.gamma.size for _, affine in network.layers if affine is not None)
    assert params == 181_141


def test_batch_norm_is_folded_with_running_statistics(mmod_bytes):
    # The folded scale must be finite and not the identity: bn_con2 was read and converted.
    for _, affine in read_mmod(mmod_bytes).layers[:-1]:
        assert affine is not None and affine.conv_mode
        assert np.all(np.isfinite(affine.gamma)) and not np.allclose(affine.gamma, 1.0)


def test_other_or_damaged_files_are_refused(mmod_bytes):
    with pytest.raises(DlibFormatError):
        read_mmod(mmod_bytes[:-1])
    with pytest.raises(DlibFormatError):
        read_mmod(mmod_bytes + b"\x00")
    resnet = (MODELS / "dlib_face_recognition_resnet_model_v1.dat").read_bytes()
    with pytest.raises(DlibFormatError, match="loss_mmod_"):
        read_mmod(resnet)


def test_graph_is_valid_opset17_with_dynamic_size_and_metadata(mmod_onnx):
    onnx.checker.check_model(mmod_onnx, full_check=True)
    assert [o.version for o in mmod_onnx.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert mmod_onnx.ir_version == 8
    dims = mmod_onnx.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value or d.dim_param for d in dims] == [1, 3, "height", "width"]
    assert {n.op_type for n in mmod_onnx.graph.node} == {"Conv", "Mul", "Add", "Relu"}
    metadata = {p.key: p.value for p in mmod_onnx.metadata_props}
    assert json.loads(metadata[METADATA_KEY])["window"] == [80, 80]
    assert metadata["model_version"] == "dlib-mmod-v1"


def _numpy_forward(network, x: np.ndarray) -> np.ndarray:
    # Direct float64 cross-correlation: an independent check of weight layout and padding.
    out = x[0].astype(np.float64)
    for conv, affine in network.layers:
        (pad_y, pad_x), (stride_y, stride_x) = conv.padding, conv.stride
        padded = np.pad(out, ((0, 0), (pad_y, pad_y), (pad_x, pad_x)))
        kh, kw = conv.kernel
        windows = sliding_window_view(padded, (kh, kw), axis=(1, 2))[:, ::stride_y, ::stride_x]
        out = np.einsum("chwij,ocij->ohw", windows, conv.filters.astype(np.float64))
        out += conv.biases[:, None, None]
        if affine is not None:
            out = np.maximum(out * affine.gamma[0] + affine.beta[0], 0.0)
    return out[None]


def test_onnxruntime_output_equals_a_numpy_forward_pass(mmod_bytes, mmod_onnx):
    session = ort.InferenceSession(mmod_onnx.SerializeToString(), providers=["CPUExecutionProvider"])
    network = read_mmod(mmod_bytes)
    rng = np.random.default_rng(7)
    for shape in [(29, 29), (61, 47)]:
        x = (rng.standard_normal((1, 3, *shape)) * 0.4).astype(np.float32)
        (got,) = session.run(None, {"canvas": x})
        want = _numpy_forward(network, x)
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) < 1e-4 * max(1.0, float(np.max(np.abs(want))))
    (smallest,) = session.run(None, {"canvas": np.zeros((1, 3, 29, 29), np.float32)})
    assert smallest.shape == (1, 1, 1, 1)
