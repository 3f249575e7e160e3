"""A small builder for the ONNX graphs we convert dlib networks into.

It hands out unique tensor names and keeps weights as initializers, so a converter reads as
a list of layers. Opset 17 and IR version 8 (shared/spec/DLIB_MODEL_FORMAT.md, 3.3) load in
every onnxruntime we support.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8

Dim = int | str  # a fixed size, or a symbolic name for a dynamic axis


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a conv or pool along one axis (floor division, as dlib and ONNX)."""
    return 1 + (size + 2 * padding - kernel) // stride


class GraphBuilder:
    """Accumulates nodes and initializers; ``model()`` returns the checked ModelProto."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._nodes: list[onnx.NodeProto] = []
        self._initializers: list[onnx.TensorProto] = []
        self._used: set[str] = set()

    def _fresh(self, hint: str) -> str:
        index = 0
        name = hint
        while name in self._used:
            index += 1
            name = f"{hint}_{index}"
        self._used.add(name)
        return name

    # -- primitives ------------------------------------------------------------------------
    def constant(self, array: np.ndarray, hint: str) -> str:
        name = self._fresh(hint)
        self._initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], hint: str, **attributes: object) -> str:
        output = self._fresh(hint)
        self._nodes.append(
            helper.make_node(
                op_type, list(inputs), [output], name=self._fresh(f"{hint}/{op_type}"), **attributes
            )
        )
        return output

    # -- layers ----------------------------------------------------------------------------
    def conv(
        self,
        x: str,
        weights: np.ndarray,
        bias: np.ndarray | None,
        *,
        stride: tuple[int, int],
        padding: tuple[int, int],
        hint: str,
    ) -> str:
        inputs = [x, self.constant(weights.astype(np.float32), f"{hint}.weight")]
        if bias is not None:
            inputs.append(self.constant(bias.astype(np.float32), f"{hint}.bias"))
        kernel = list(weights.shape[2:])
        pads = [padding[0], padding[1], padding[0], padding[1]]
        return self.node("Conv", inputs, hint, kernel_shape=kernel, strides=list(stride), pads=pads)

    def scale_shift(self, x: str, scale: np.ndarray, shift: np.ndarray, hint: str) -> str:
        """y = scale * x + shift, the two constants broadcasting against x."""
        scaled = self.node(
            "Mul", [x, self.constant(scale.astype(np.float32), f"{hint}.scale")], f"{hint}.mul"
        )
        return self.node("Add", [scaled, self.constant(shift.astype(np.float32), f"{hint}.shift")], hint)

    def relu(self, x: str, hint: str) -> str:
        return self.node("Relu", [x], hint)

    def pool(
        self,
        kind: str,
        x: str,
        *,
        window: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        hint: str,
    ) -> str:
        op = {"max": "MaxPool", "avg": "AveragePool"}[kind]
        pads = [padding[0], padding[1], padding[0], padding[1]]
        extra: dict[str, object] = {"count_include_pad": 0} if kind == "avg" else {}
        return self.node(op, [x], hint, kernel_shape=list(window), strides=list(stride), pads=pads, **extra)

    def global_average_pool(self, x: str, hint: str) -> str:
        return self.node("GlobalAveragePool", [x], hint)

    def flatten(self, x: str, hint: str) -> str:
        return self.node("Flatten", [x], hint, axis=1)

    def matmul(self, x: str, weights: np.ndarray, hint: str) -> str:
        return self.node("MatMul", [x, self.constant(weights.astype(np.float32), f"{hint}.weight")], hint)

    def add(self, a: str, b: str, hint: str) -> str:
        return self.node("Add", [a, b], hint)

    def pad_end(self, x: str, amounts: Sequence[int], hint: str) -> str:
        """Zero-pad each axis at its end only; ``amounts`` has one entry per axis."""
        if not any(amounts):
            return x
        pads = np.asarray([0] * len(amounts) + list(amounts), dtype=np.int64)
        return self.node("Pad", [x, self.constant(pads, f"{hint}.pads")], hint, mode="constant")

    def identity(self, x: str, hint: str) -> str:
        return self.node("Identity", [x], hint)

    # -- result ------------------------------------------------------------------------------
    def model(
        self,
        inputs: Sequence[tuple[str, Sequence[Dim]]],
        outputs: Sequence[tuple[str, Sequence[Dim]]],
        *,
        doc: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> onnx.ModelProto:
        """Float32 inputs and outputs with the given shapes; the model is checked before return."""
        graph = helper.make_graph(
            self._nodes,
            self.name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in outputs],
            initializer=self._initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="rfr",
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model, full_check=True)
        return model
