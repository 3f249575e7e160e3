"""A tiny ArcFace-shaped ONNX network built in the test, and the same network in numpy.

conv 3x3 stride 2 (3 -> 8 channels) -> ReLU -> global average pool -> matmul -> bias. Small
enough to build and run in milliseconds, real enough that preprocessing mistakes (channel
order, layout, mean/std) change its output.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HIDDEN = 8


@attrs.frozen
class TinyWeights:
    conv_w: np.ndarray  # (HIDDEN, 3, 3, 3)
    conv_b: np.ndarray  # (HIDDEN,)
    fc_w: np.ndarray  # (HIDDEN, dim)
    fc_b: np.ndarray  # (dim,)

    @classmethod
    def random(cls, dim: int, seed: int = 0) -> TinyWeights:
        rng = np.random.default_rng(seed)
        return cls(
            conv_w=rng.normal(scale=0.2, size=(HIDDEN, 3, 3, 3)).astype(np.float32),
            conv_b=rng.normal(scale=0.1, size=HIDDEN).astype(np.float32),
            fc_w=rng.normal(size=(HIDDEN, dim)).astype(np.float32),
            fc_b=rng.normal(scale=0.1, size=dim).astype(np.float32),
        )


def build_tiny_embedder(
    path: Path,
    weights: TinyWeights,
    size: int,
    layout: str = "NCHW",
    batch: int | str = "N",
    input_name: str = "faces",
    output_name: str = "embedding",
) -> Path:
    dim = weights.fc_b.shape[0]
    shape = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    nodes = []
    conv_input = input_name
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [input_name], ["nchw"], perm=[0, 3, 1, 2]))
        conv_input = "nchw"
    nodes += [
        helper.make_node(
            "Conv", [conv_input, "conv_w", "conv_b"], ["conv"], strides=[2, 2], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "fc_w"], ["projected"]),
        helper.make_node("Add", ["projected", "fc_b"], [output_name]),
    ]
    initializers = [
        numpy_helper.from_array(weights.conv_w, "conv_w"),
        numpy_helper.from_array(weights.conv_b, "conv_b"),
        numpy_helper.from_array(weights.fc_w, "fc_w"),
        numpy_helper.from_array(weights.fc_b, "fc_b"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_embedder",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, dim])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def tiny_embedder_numpy(weights: TinyWeights, batch_nchw: np.ndarray) -> np.ndarray:
    """The network above computed directly, in float64, from an already preprocessed batch."""
    x = np.pad(batch_nchw.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    n, _, h, w = batch_nchw.shape
    out_h, out_w = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1
    conv = np.zeros((n, HIDDEN, out_h, out_w))
    for dy in range(3):
        for dx in range(3):
            patch = x[:, :, dy : dy + 2 * out_h - 1 : 2, dx : dx + 2 * out_w - 1 : 2]
            conv += np.einsum("nchw,oc->nohw", patch, weights.conv_w[:, :, dy, dx].astype(np.float64))
    conv += weights.conv_b.astype(np.float64)[None, :, None, None]
    pooled = np.maximum(conv, 0).mean(axis=(2, 3))
    return pooled @ weights.fc_w.astype(np.float64) + weights.fc_b.astype(np.float64)
