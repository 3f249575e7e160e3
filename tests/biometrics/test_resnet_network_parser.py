"""The generic dlib DNN reader on the two CC0 network files and on malformed bytes."""

from __future__ import annotations

from pathlib import Path

import face_recognition_models
import pytest

from rfr.infrastructure.dlib.network import Affine, Conv, FullyConnected, parse_network
from rfr.infrastructure.dlib.serialization import DlibFormatError, DlibReader

MODELS = Path(face_recognition_models.__file__).parent / "models"


@pytest.fixture(scope="module")
def resnet_bytes() -> bytes:
    return (MODELS / "dlib_face_recognition_resnet_model_v1.dat").read_bytes()


def test_resnet_file_is_read_to_its_last_byte(resnet_bytes):
    reader = DlibReader(resnet_bytes)
    net = parse_network(reader)
    reader.expect_end()
    assert net.loss.name == "loss_metric_2"
    assert net.loss.settings["dist_thresh"] == pytest.approx(0.6)
    assert net.input.size == (150, 150)
    assert net.input.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-5)
    assert len(net.stack) == 130
    assert net.parameter_count == 5_614_592
    kinds = [type(entry.layer).__name__ for entry in net.stack]
    assert kinds.count("NoneType") == 22
    assert kinds.count("Conv") == 29 and kinds.count("Affine") == 29 and kinds.count("Relu") == 29
    assert kinds.count("AddPrev") == 14 and kinds.count("FullyConnected") == 1 and kinds.count("Pool") == 6
    first = net.stack[0].layer
    assert isinstance(first, Conv) and first.kernel == (7, 7) and first.stride == (2, 2)
    assert first.padding == (0, 0) and first.num_filters == 32 and first.biases is not None
    last = net.stack[-1].layer
    assert isinstance(last, FullyConnected) and last.weights.shape == (256, 128) and last.biases is None


def test_mmod_file_is_read_and_its_batch_norm_folded():
    reader = DlibReader((MODELS / "mmod_human_face_detector.dat").read_bytes())
    net = parse_network(reader)
    reader.expect_end()
    assert net.loss.name == "loss_mmod_"
    assert net.loss.settings["detector_windows"] == [(80, 80, "")]
    assert net.loss.settings["overlaps_nms"][0] == pytest.approx(0.3382761351109955)
    assert (net.input.pyramid_padding, net.input.pyramid_outer_padding) == (10, 11)
    assert len(net.stack) == 19 and net.parameter_count == 181_141
    bns = [layer for layer in net.layers if isinstance(layer, Affine)]
    assert len(bns) == 6 and all(bn.name == "bn_con2" and bn.conv_mode for bn in bns)
    assert all(layer.gamma.dtype.name == "float32" for layer in bns)
    assert isinstance(net.layers[-1], Conv) and net.layers[-1].kernel == (9, 9)


def test_truncated_file_fails_loudly(resnet_bytes):
    with pytest.raises(DlibFormatError):
        parse_network(DlibReader(resnet_bytes[: len(resnet_bytes) // 2]))


def test_unknown_layer_name_is_refused(resnet_bytes):
    corrupted = resnet_bytes.replace(b"\x05relu_", b"\x05relu9", 1)
    with pytest.raises(DlibFormatError, match="relu9"):
        parse_network(DlibReader(corrupted))
