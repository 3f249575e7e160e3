"""dlib's CNN face detector file (``mmod_human_face_detector.dat``) as an ONNX graph.

shared/spec/DLIB_MODEL_FORMAT.md, sections 2.6 and 3.2. The file is read by the generic stack
reader; this module checks the stack against the one network it may hold, then writes the
convolutional part as ONNX with dynamic height and width. Everything the graph does not do
(canvas layout, mean subtraction, window size, NMS thresholds, the output-to-input map) goes
into the model's metadata under ``METADATA_KEY``, so a detector needs only the ``.onnx`` file.
"""

from __future__ import annotations

import json

import attrs
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rfr.infrastructure.dlib.network import Affine, Conv, ParsedNetwork, Relu, parse_network
from rfr.infrastructure.dlib.serialization import DlibFormatError, DlibReader

OPSET = 17
IR_VERSION = 8
METADATA_KEY = "dlib_mmod"
MODEL_VERSION = "dlib-mmod-v1"
INPUT_NAME = "canvas"
OUTPUT_NAME = "scores"

# The C++ type of the detector: pyramid_down<6> input, then three strided 5x5 convs (the x8
# downsampler), three 5x5 convs of 45 filters, and a 9x9 conv to one score channel.
_PYRAMID_RATE = (5, 6)
_EXPECTED_BLOCKS = ((16, 5, 2), (32, 5, 2), (32, 5, 2), (45, 5, 1), (45, 5, 1), (45, 5, 1))
_EXPECTED_HEAD = (1, 9, 1)


@attrs.frozen
class MmodSpec:
    """What the detector needs besides the graph, in dlib's terms."""

    mean_rgb: tuple[float, float, float]
    pyramid_padding: int
    pyramid_outer_padding: int
    pyramid_rate: tuple[int, int]
    window: tuple[int, int]  # (width, height) of the single detector window
    nms_iou: float
    nms_covered: float
    output_scale: tuple[int, int]  # (y, x): input = output * scale + offset
    output_offset: tuple[int, int]
    min_input: tuple[int, int]  # (y, x): the smallest canvas giving at least one score cell

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), sort_keys=True)


@attrs.frozen(eq=False)
class MmodNetwork:
    spec: MmodSpec
    layers: tuple[tuple[Conv, Affine | None], ...]  # conv, then its folded batch norm (+ ReLU)


def read_mmod(dat_bytes: bytes) -> MmodNetwork:
    """Parse the whole file (to its last byte) and check it is the known detector."""
    reader = DlibReader(dat_bytes)
    net = parse_network(reader)
    reader.expect_end()
    if net.loss.name != "loss_mmod_":
        raise DlibFormatError(f"expected loss_mmod_, found {net.loss.name}")
    layers = _check_layers(net)
    return MmodNetwork(spec=_spec(net, [conv for conv, _ in layers]), layers=layers)


def _spec(net: ParsedNetwork, convs: list[Conv]) -> MmodSpec:
    if not net.input.name.startswith("input_rgb_image_pyramid"):
        raise DlibFormatError(f"expected an RGB image pyramid input, found {net.input.name}")
    settings = net.loss.settings
    windows = settings["detector_windows"]
    if len(windows) != 1:  # type: ignore[arg-type]
        raise DlibFormatError(f"expected one detector window, found {windows}")
    if settings["use_bounding_box_regression"] or not settings["assume_image_pyramid"]:
        raise DlibFormatError("bounding-box regression or a non-pyramid detector is not supported")
    width, height, _label = windows[0]  # type: ignore[index]
    nms_iou, nms_covered = settings["overlaps_nms"]  # type: ignore[misc]
    scale, offset = _output_to_input_map(convs)
    min_input = _min_input(convs)
    return MmodSpec(
        mean_rgb=net.input.mean_rgb,
        pyramid_padding=int(net.input.pyramid_padding or 0),
        pyramid_outer_padding=int(net.input.pyramid_outer_padding or 0),
        pyramid_rate=_PYRAMID_RATE,
        window=(int(width), int(height)),
        nms_iou=float(nms_iou),
        nms_covered=float(nms_covered),
        output_scale=scale,
        output_offset=offset,
        min_input=min_input,
    )


def _check_layers(net: ParsedNetwork) -> tuple[tuple[Conv, Affine | None], ...]:
    if any(entry.is_tag_or_skip for entry in net.stack):
        raise DlibFormatError("the detector has no tags or skips, but the file holds one")
    layers = [entry.layer for entry in net.stack]
    expected_len = 3 * len(_EXPECTED_BLOCKS) + 1
    if len(layers) != expected_len:
        raise DlibFormatError(f"expected {expected_len} layers, found {len(layers)}")
    out: list[tuple[Conv, Affine | None]] = []
    for i, (filters, kernel, stride) in enumerate(_EXPECTED_BLOCKS):
        conv, affine, relu = layers[3 * i : 3 * i + 3]
        if not (isinstance(conv, Conv) and isinstance(affine, Affine) and isinstance(relu, Relu)):
            raise DlibFormatError(
                f"block {i}: expected conv, batch norm, relu; found {layers[3 * i : 3 * i + 3]}"
            )
        _check_conv(conv, filters, kernel, stride, f"block {i}")
        if not affine.conv_mode or affine.disabled or relu.disabled:
            raise DlibFormatError(f"block {i}: batch norm must be per channel and enabled")
        out.append((conv, affine))
    head = layers[-1]
    if not isinstance(head, Conv):
        raise DlibFormatError(f"expected the final score conv, found {head}")
    _check_conv(head, *_EXPECTED_HEAD, "score layer")
    out.append((head, None))
    return tuple(out)


def _check_conv(conv: Conv, filters: int, kernel: int, stride: int, where: str) -> None:
    if conv.num_filters != filters or conv.kernel != (kernel, kernel) or conv.stride != (stride, stride):
        raise DlibFormatError(
            f"{where}: expected {filters} filters {kernel}x{kernel}/{stride}, found "
            f"{conv.num_filters} {conv.kernel}/{conv.stride}"
        )
    if conv.biases is None or conv.fused_relu:
        raise DlibFormatError(f"{where}: expected a biased conv without fused relu")


def _output_to_input_map(convs: list[Conv]) -> tuple[tuple[int, int], tuple[int, int]]:
    # dlib maps an output cell back through each conv, outermost first, with
    # in = out * stride - padding + kernel // 2; composed, that is one scale and one offset.
    scale, offset = [1, 1], [0, 0]
    for conv in reversed(convs):
        for axis in (0, 1):
            offset[axis] = offset[axis] * conv.stride[axis] - conv.padding[axis] + conv.kernel[axis] // 2
            scale[axis] *= conv.stride[axis]
    return (scale[0], scale[1]), (offset[0], offset[1])


def _min_input(convs: list[Conv]) -> tuple[int, int]:
    size = [1, 1]
    for conv in reversed(convs):
        for axis in (0, 1):
            size[axis] = (size[axis] - 1) * conv.stride[axis] + conv.kernel[axis] - 2 * conv.padding[axis]
            size[axis] = max(size[axis], 1)
    return (size[0], size[1])


def build_mmod_onnx(dat_bytes: bytes) -> onnx.ModelProto:
    """The detector network as ONNX (opset 17): canvas (1,3,H,W) -> scores (1,1,h,w)."""
    network = read_mmod(dat_bytes)
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    current = INPUT_NAME
    for i, (conv, affine) in enumerate(network.layers):
        weight, bias = f"conv{i}.weight", f"conv{i}.bias"
        initializers += [
            numpy_helper.from_array(np.ascontiguousarray(conv.filters, dtype=np.float32), weight),
            numpy_helper.from_array(np.asarray(conv.biases, dtype=np.float32), bias),
        ]
        pad_y, pad_x = conv.padding
        out = OUTPUT_NAME if affine is None else f"conv{i}"
        nodes.append(
            helper.make_node(
                "Conv",
                [current, weight, bias],
                [out],
                name=f"conv{i}",
                kernel_shape=list(conv.kernel),
                strides=list(conv.stride),
                pads=[pad_y, pad_x, pad_y, pad_x],
            )
        )
        current = out
        if affine is None:
            continue
        # Kept as Mul + Add, the form dlib computes; onnxruntime fuses them into the conv.
        gamma, beta = f"bn{i}.gamma", f"bn{i}.beta"
        initializers += [
            numpy_helper.from_array(affine.gamma.reshape(1, -1, 1, 1).astype(np.float32), gamma),
            numpy_helper.from_array(affine.beta.reshape(1, -1, 1, 1).astype(np.float32), beta),
        ]
        nodes += [
            helper.make_node("Mul", [current, gamma], [f"bn{i}.mul"], name=f"bn{i}.mul"),
            helper.make_node("Add", [f"bn{i}.mul", beta], [f"bn{i}"], name=f"bn{i}.add"),
            helper.make_node("Relu", [f"bn{i}"], [f"relu{i}"], name=f"relu{i}"),
        ]
        current = f"relu{i}"
    graph = helper.make_graph(
        nodes,
        "dlib_mmod_human_face_detector",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, 1, "out_height", "out_width"])],
        initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="rfr",
        doc_string="dlib mmod_human_face_detector (CC0, face_recognition_models 0.3.0) converted by rfr",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {METADATA_KEY: network.spec.to_json(), "model_version": MODEL_VERSION})
    onnx.checker.check_model(model)
    return model
