"""DlibResnetEmbedder on chips we make ourselves: contract, batching, determinism, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from rfr.adapters.embedding import dlib_resnet
from rfr.adapters.embedding.dlib_resnet import DlibResnetEmbedder
from rfr.application.ports import FaceEmbedder
from rfr.infrastructure.dlib import resnet


def _random_chips(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(count)]


def test_it_is_a_face_embedder_with_dlibs_metric(resnet_embedder):
    assert isinstance(resnet_embedder, FaceEmbedder)
    assert resnet_embedder.algorithm_id == "dlib-resnet-v1/chip150-pad0.25"
    assert (resnet_embedder.dimension, resnet_embedder.chip_size) == (128, 150)
    assert (resnet_embedder.metric, resnet_embedder.threshold) == ("euclidean", 0.6)


def test_adapter_reads_the_metadata_keys_the_converter_writes():
    assert dlib_resnet._META_MEAN_RGB == resnet.META_MEAN_RGB
    assert dlib_resnet._META_DIVISOR == resnet.META_SCALE
    assert dlib_resnet._META_CHIP_SIZE == resnet.META_CHIP_SIZE


def test_batches_across_the_chunk_size_equal_single_runs_and_repeat_exactly(resnet_embedder):
    chips = _random_chips(resnet_embedder.batch_size + 3)
    together = resnet_embedder.embed(chips)
    assert together.shape == (len(chips), 128) and together.dtype == np.float32
    one_by_one = np.concatenate([resnet_embedder.embed([chip]) for chip in chips[::7]])
    np.testing.assert_allclose(one_by_one, together[::7], atol=1e-6)
    np.testing.assert_array_equal(resnet_embedder.embed(chips), together)
    assert len({row.tobytes() for row in together}) == len(chips)


def test_no_chips_give_an_empty_matrix(resnet_embedder):
    out = resnet_embedder.embed([])
    assert out.shape == (0, 128) and out.dtype == np.float32


def test_descriptor_is_raw_not_normalised(resnet_embedder, shared_faces):
    # The LFW copies are 150x150, so a whole photo is a valid (unaligned) chip.
    paths = sorted((shared_faces / "lfw").rglob("*.jpg"))[:4]
    chips = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    norms = np.linalg.norm(resnet_embedder.embed(chips), axis=1)
    assert np.all((norms > 1.0) & (norms < 2.0)), norms


@pytest.mark.parametrize(
    "chip",
    [
        np.zeros((150, 150), dtype=np.uint8),
        np.zeros((150, 150, 3), dtype=np.float32),
        np.zeros((160, 160, 3), dtype=np.uint8),
        np.zeros((150, 150, 4), dtype=np.uint8),
        [[0] * 3] * 150,
    ],
    ids=["gray", "float", "160px", "rgba", "list"],
)
def test_wrong_chips_are_refused_with_a_clear_error(resnet_embedder, chip):
    good = _random_chips(1)[0]
    with pytest.raises(ValueError, match="chip 1"):
        resnet_embedder.embed([good, chip])


def test_a_model_without_the_input_metadata_is_refused(tmp_path: Path):
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "bare",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 128])],
    )
    path = tmp_path / "bare.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ValueError, match="metadata"):
        DlibResnetEmbedder(path)


def test_threads_must_be_positive(model_store):
    with pytest.raises(ValueError, match="threads"):
        DlibResnetEmbedder(model_store.path("dlib_resnet_v1.onnx"), threads=0)
