"""dlib's 128-d face descriptor ResNet as an ONNX graph (DLIB_MODEL_FORMAT.md, 3.1 and 3.3).

The file does not say which tag an add_prev or a skip refers to, so the architecture is
written down here and every parsed layer is checked against it before a graph is built: a
different or damaged file fails loudly instead of producing plausible wrong descriptors.
"""

from __future__ import annotations

import attrs
import numpy as np
import onnx

from rfr.infrastructure.dlib.network import (
    AddPrev,
    Affine,
    Conv,
    FullyConnected,
    Layer,
    ParsedNetwork,
    Pool,
    Relu,
    parse_network,
)
from rfr.infrastructure.dlib.serialization import DlibFormatError, DlibReader
from rfr.infrastructure.onnx_graph import GraphBuilder, conv_output_size

INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
# Keys of the model's metadata_props that the embedder reads back.
META_MEAN_RGB = "rfr.input.mean_rgb"
META_SCALE = "rfr.input.divisor"
META_CHIP_SIZE = "rfr.input.chip_size"
META_SOURCE = "rfr.source"


# -- the known architecture ---------------------------------------------------------------
@attrs.frozen
class Step:
    """One stack entry as the C++ type defines it, in execution order.

    ``kind`` is con, affine, relu, max_pool, avg_pool, fc, tag, skip or add_prev; ``size`` is
    filters or outputs, or the tag number for tag, skip and add_prev.
    """

    kind: str
    size: int = 0
    kernel: int = 0
    stride: int = 1
    padding: int = 0


def _block(filters: int, stride: int) -> list[Step]:
    # dlib's default padding: 0 for a strided conv, kernel/2 otherwise.
    first_pad = 0 if stride != 1 else 1
    return [
        Step("con", filters, 3, stride, first_pad),
        Step("affine"),
        Step("relu"),
        Step("con", filters, 3, 1, 1),
        Step("affine"),
    ]


def _ares(filters: int) -> list[Step]:
    return [Step("tag", 1), *_block(filters, 1), Step("add_prev", 1), Step("relu")]


def _ares_down(filters: int) -> list[Step]:
    # The skip returns to the block input (tag1), which is pooled and added to the block output (tag2).
    return [
        Step("tag", 1),
        *_block(filters, 2),
        Step("tag", 2),
        Step("skip", 1),
        Step("avg_pool", 0, 2, 2, 0),
        Step("add_prev", 2),
        Step("relu"),
    ]


def expected_architecture() -> list[Step]:
    steps = [Step("con", 32, 7, 2, 0), Step("affine"), Step("relu"), Step("max_pool", 0, 3, 2, 0)]
    for _ in range(3):
        steps += _ares(32)
    for filters, identity_blocks in ((64, 3), (128, 2), (256, 2), (256, 0)):
        steps += _ares_down(filters)
        for _ in range(identity_blocks):
            steps += _ares(filters)
    steps += [Step("avg_pool", 0, 0, 1, 0), Step("fc", DESCRIPTOR_SIZE)]
    return steps


# -- checking the parsed file against it --------------------------------------------------
def _check_layer(step: Step, layer: Layer | None, position: int) -> None:
    def fail(what: str) -> DlibFormatError:
        found = "a tag or skip" if layer is None else repr(getattr(layer, "name", layer))
        return DlibFormatError(f"stack entry {position}: expected {step.kind} ({what}), found {found}")

    if step.kind in ("tag", "skip"):
        if layer is not None:
            raise fail("a tag/skip wrapper")
        return
    if layer is None:
        raise fail("an add_layer")
    if step.kind == "con":
        if not isinstance(layer, Conv) or layer.fused_relu:
            raise fail("a convolution")
        got = (layer.num_filters, layer.kernel, layer.stride, layer.padding)
        want = (step.size, (step.kernel,) * 2, (step.stride,) * 2, (step.padding,) * 2)
        if got != want or layer.biases is None:
            raise fail(f"filters, kernel, stride, padding {want} with bias; file has {got}")
    elif step.kind == "affine":
        if not isinstance(layer, Affine) or not layer.conv_mode or layer.disabled:
            raise fail("an enabled per-channel affine")
    elif step.kind == "relu":
        if not isinstance(layer, Relu) or layer.disabled:
            raise fail("an enabled relu")
    elif step.kind in ("max_pool", "avg_pool"):
        want_pool = (step.kind[:3], (step.kernel,) * 2, (step.stride,) * 2, (step.padding,) * 2)
        if not isinstance(layer, Pool):
            raise fail("a pool")
        got_pool = (layer.kind, layer.window, layer.stride, layer.padding)
        if got_pool != want_pool:
            raise fail(f"pool {want_pool}; file has {got_pool}")
    elif step.kind == "add_prev":
        if not isinstance(layer, AddPrev):
            raise fail("add_prev")
    elif step.kind == "fc":
        if not isinstance(layer, FullyConnected) or layer.weights.shape[1] != step.size:
            raise fail(f"a fully connected layer with {step.size} outputs")
    else:  # pragma: no cover - the architecture above names only these kinds
        raise AssertionError(step.kind)


def check_architecture(net: ParsedNetwork) -> None:
    """Raise DlibFormatError unless ``net`` is exactly the descriptor ResNet."""
    if net.loss.name not in ("loss_metric_", "loss_metric_2"):
        raise DlibFormatError(f"expected a metric loss, found {net.loss.name!r}")
    if net.input.name != "input_rgb_image_sized" or net.input.size != (CHIP_SIZE, CHIP_SIZE):
        raise DlibFormatError(f"expected a {CHIP_SIZE}x{CHIP_SIZE} RGB input, found {net.input}")
    steps = expected_architecture()
    if len(net.stack) != len(steps):
        raise DlibFormatError(f"expected {len(steps)} stack entries, found {len(net.stack)}")
    for position, (step, entry) in enumerate(zip(steps, net.stack, strict=True)):
        _check_layer(step, entry.layer, position)


# -- graph ------------------------------------------------------------------------------
Shape = tuple[int, int, int]  # (C, H, W); the batch axis is dynamic


def _add_prev(
    graph: GraphBuilder, a: tuple[str, Shape], b: tuple[str, Shape], hint: str
) -> tuple[str, Shape]:
    # dlib adds tensors of different shapes by zero-filling each up to the larger extent on every
    # axis, at the end (spec 2.6): channels 32->64 and spatially 3x3 vs 4x4, 1x1 vs 2x2.
    target: Shape = tuple(max(x, y) for x, y in zip(a[1], b[1], strict=True))  # type: ignore[assignment]
    padded = [
        graph.pad_end(name, [0, *(t - s for t, s in zip(target, shape, strict=True))], f"{hint}.pad{i}")
        for i, (name, shape) in enumerate((a, b))
    ]
    return graph.add(padded[0], padded[1], hint), target


def _graph_from(net: ParsedNetwork, fold_affine: bool) -> onnx.ModelProto:
    graph = GraphBuilder("dlib_face_recognition_resnet_model_v1")
    current: tuple[str, Shape] = (INPUT_NAME, (3, CHIP_SIZE, CHIP_SIZE))
    tags: dict[int, tuple[str, Shape]] = {}
    steps = expected_architecture()
    entries = list(zip(steps, net.stack, strict=True))
    skip_affine = False
    for position, (step, entry) in enumerate(entries):
        hint = f"l{position:03d}_{step.kind}"
        layer = entry.layer
        name, (channels, height, width) = current
        if step.kind == "tag":
            tags[step.size] = current
        elif step.kind == "skip":
            current = tags[step.size]
        elif step.kind == "add_prev":
            current = _add_prev(graph, current, tags[step.size], hint)
        elif isinstance(layer, Conv):
            if layer.filters.shape[1] != channels:
                raise DlibFormatError(
                    f"stack entry {position}: conv expects {layer.filters.shape[1]} channels"
                )
            weights, bias = layer.filters, layer.biases
            following = entries[position + 1][1].layer if position + 1 < len(entries) else None
            if fold_affine and isinstance(following, Affine):
                # gamma*(W*x + b) + beta == (gamma*W)*x + (gamma*b + beta), per output channel.
                gamma = following.gamma.reshape(-1)
                weights = layer.filters * gamma[:, None, None, None]
                bias = gamma * (layer.biases if layer.biases is not None else 0) + following.beta.reshape(-1)
                skip_affine = True
            out = graph.conv(name, weights, bias, stride=layer.stride, padding=layer.padding, hint=hint)
            kernel, stride, pad = layer.kernel, layer.stride, layer.padding
            current = (
                out,
                (
                    layer.num_filters,
                    conv_output_size(height, kernel[0], stride[0], pad[0]),
                    conv_output_size(width, kernel[1], stride[1], pad[1]),
                ),
            )
        elif isinstance(layer, Affine):
            if skip_affine:
                skip_affine = False
                continue
            if layer.gamma.size != channels:
                raise DlibFormatError(f"stack entry {position}: affine has {layer.gamma.size} channels")
            current = (graph.scale_shift(name, layer.gamma, layer.beta, hint), current[1])
        elif isinstance(layer, Relu):
            current = (graph.relu(name, hint), current[1])
        elif isinstance(layer, Pool) and layer.is_global:
            pooled = graph.global_average_pool(name, hint)
            current = (graph.flatten(pooled, f"{hint}.flat"), (channels, 1, 1))
        elif isinstance(layer, Pool):
            out = graph.pool(
                layer.kind, name, window=layer.window, stride=layer.stride, padding=layer.padding, hint=hint
            )
            current = (
                out,
                (
                    channels,
                    conv_output_size(height, layer.window[0], layer.stride[0], layer.padding[0]),
                    conv_output_size(width, layer.window[1], layer.stride[1], layer.padding[1]),
                ),
            )
        elif isinstance(layer, FullyConnected):
            if layer.weights.shape[0] != channels * height * width:
                raise DlibFormatError(f"stack entry {position}: fc expects {layer.weights.shape[0]} inputs")
            out = graph.matmul(name, layer.weights, hint)
            current = (graph.identity(out, OUTPUT_NAME), (layer.weights.shape[1], 1, 1))
        else:  # pragma: no cover - check_architecture admits nothing else
            raise AssertionError(step)
    if current[0] != OUTPUT_NAME:
        raise DlibFormatError("the network does not end in its fully connected layer")
    mean = net.input.mean_rgb
    return graph.model(
        [(INPUT_NAME, ["batch", 3, CHIP_SIZE, CHIP_SIZE])],
        [(OUTPUT_NAME, ["batch", DESCRIPTOR_SIZE])],
        doc=(
            "dlib face descriptor ResNet (dlib_face_recognition_resnet_model_v1, CC0), converted by rfr. "
            "Input: RGB chips 150x150, NCHW float32, (pixel - mean) / 256. Output: raw 128-d descriptor; "
            "compare with Euclidean distance, threshold 0.6."
        ),
        metadata={
            META_MEAN_RGB: ",".join(repr(float(m)) for m in mean),
            META_SCALE: "256",
            META_CHIP_SIZE: str(CHIP_SIZE),
            META_SOURCE: "dlib_face_recognition_resnet_model_v1.dat",
            "rfr.affine_folded": "1" if fold_affine else "0",
        },
    )


def parse_resnet(dat_bytes: bytes) -> ParsedNetwork:
    """Read the whole file, to its exact end, and check it is the known architecture."""
    reader = DlibReader(dat_bytes)
    net = parse_network(reader)
    reader.expect_end()
    check_architecture(net)
    return net


def build_resnet_onnx(dat_bytes: bytes, *, fold_affine: bool = False) -> onnx.ModelProto:
    """Convert the bytes of ``dlib_face_recognition_resnet_model_v1.dat`` to an ONNX model.

    ``fold_affine`` merges each affine into the conv before it; onnxruntime already does this
    fusion at session creation, so the default keeps the graph a literal image of the file.
    """
    return _graph_from(parse_resnet(dat_bytes), fold_affine)


def mean_rgb_of(model: onnx.ModelProto) -> np.ndarray:
    """The channel means the model was trained with, as float32 (R, G, B)."""
    props = {p.key: p.value for p in model.metadata_props}
    return np.asarray([float(v) for v in props[META_MEAN_RGB].split(",")], dtype=np.float32)
