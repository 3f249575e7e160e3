"""The ResNet converter: the architecture check, the graph it emits, and add_prev's zero padding."""

from __future__ import annotations

import attrs
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from rfr.infrastructure.dlib.network import Conv, StackEntry
from rfr.infrastructure.dlib.resnet import (
    INPUT_NAME,
    OUTPUT_NAME,
    _add_prev,
    build_resnet_onnx,
    check_architecture,
    expected_architecture,
    mean_rgb_of,
    parse_resnet,
)
from rfr.infrastructure.dlib.serialization import DlibFormatError
from rfr.infrastructure.models import ARTEFACTS, RESNET, dlib_models_dir
from rfr.infrastructure.onnx_graph import GraphBuilder

ALLOWED_OPS = {
    "Conv",
    "Mul",
    "Add",
    "Relu",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
    "MatMul",
}
ALLOWED_OPS |= {"Pad", "Identity"}


@pytest.fixture(scope="module")
def resnet_dat() -> bytes:
    return (dlib_models_dir() / ARTEFACTS[RESNET].source).read_bytes()


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def test_known_architecture_has_the_documented_shape():
    steps = expected_architecture()
    kinds = [s.kind for s in steps]
    assert len(steps) == 130
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14
    assert kinds.count("tag") + kinds.count("skip") == 22
    # every add_prev and skip refers to a tag seen before it
    seen: set[int] = set()
    for step in steps:
        if step.kind == "tag":
            seen.add(step.size)
        elif step.kind in ("skip", "add_prev"):
            assert step.size in seen


def test_a_file_of_another_architecture_is_refused(resnet_dat):
    net = parse_resnet(resnet_dat)
    # one tag/skip fewer
    with pytest.raises(DlibFormatError, match="stack entries"):
        check_architecture(attrs.evolve(net, stack=net.stack[:4] + net.stack[5:]))
    # a conv with another stride where the type says stride 1
    position = next(i for i, s in enumerate(expected_architecture()) if s.kind == "con" and s.stride == 1)
    conv = net.stack[position].layer
    assert isinstance(conv, Conv)
    changed = StackEntry(attrs.evolve(conv, stride=(2, 2)))
    with pytest.raises(DlibFormatError, match=f"stack entry {position}"):
        check_architecture(
            attrs.evolve(net, stack=(*net.stack[:position], changed, *net.stack[position + 1 :]))
        )
    # a tag where a layer belongs
    with pytest.raises(DlibFormatError, match="stack entry 0"):
        check_architecture(attrs.evolve(net, stack=(StackEntry(None), *net.stack[1:])))


def test_graph_is_opset_17_with_only_the_documented_ops(resnet_dat):
    model = build_resnet_onnx(resnet_dat)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    assert {node.op_type for node in model.graph.node} <= ALLOWED_OPS
    assert [i.name for i in model.graph.input] == [INPUT_NAME]
    assert [o.name for o in model.graph.output] == [OUTPUT_NAME]
    # add_prev pads the shortcut in 3 down blocks (channels) and the conv branch in 2 (spatially)
    assert sum(node.op_type == "Pad" for node in model.graph.node) == 5
    np.testing.assert_allclose(mean_rgb_of(model), [122.782, 117.001, 104.298], atol=1e-5)
    params = sum(np.prod(t.dims) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    assert params == 5_614_592


def test_conversion_is_deterministic(resnet_dat):
    assert (
        build_resnet_onnx(resnet_dat).SerializeToString() == build_resnet_onnx(resnet_dat).SerializeToString()
    )


def test_folding_affine_into_conv_gives_the_same_descriptors(resnet_dat):
    rng = np.random.default_rng(7)
    chips = ((rng.integers(0, 256, (4, 3, 150, 150)) - 117.0) / 256).astype(np.float32)
    plain = _session(build_resnet_onnx(resnet_dat)).run(None, {INPUT_NAME: chips})[0]
    folded_model = build_resnet_onnx(resnet_dat, fold_affine=True)
    assert not any(node.op_type == "Mul" for node in folded_model.graph.node)
    folded = _session(folded_model).run(None, {INPUT_NAME: chips})[0]
    assert plain.shape == (4, 128)
    np.testing.assert_allclose(folded, plain, atol=1e-6)


@pytest.mark.parametrize(
    ("a_shape", "b_shape"), [((2, 3, 3), (4, 4, 4)), ((4, 1, 1), (4, 2, 2)), ((3, 5, 2), (3, 5, 2))]
)
def test_add_prev_zero_pads_each_operand_at_its_end(a_shape, b_shape):
    graph = GraphBuilder("add_prev")
    out, shape = _add_prev(graph, ("a", a_shape), ("b", b_shape), "sum")
    model = graph.model([("a", [1, *a_shape]), ("b", [1, *b_shape])], [(out, [1, *shape])])
    rng = np.random.default_rng(3)
    a = rng.standard_normal((1, *a_shape)).astype(np.float32)
    b = rng.standard_normal((1, *b_shape)).astype(np.float32)
    expected = np.zeros((1, *np.maximum(a_shape, b_shape)), dtype=np.float32)
    expected[:, : a_shape[0], : a_shape[1], : a_shape[2]] += a
    expected[:, : b_shape[0], : b_shape[1], : b_shape[2]] += b
    (got,) = _session(model).run(None, {"a": a, "b": b})
    np.testing.assert_array_equal(got, expected)
