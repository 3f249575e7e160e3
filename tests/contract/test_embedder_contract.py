"""The contract every FaceEmbedder adapter keeps. A new adapter is proven by adding it to EMBEDDERS."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rfr.adapters.embedding.onnx_arcface import ArcFaceConfig, OnnxArcFaceEmbedder
from rfr.application.ports import FaceEmbedder
from rfr.application.similarity import SimilarityScale
from rfr.infrastructure.settings import Settings
from tests.contract.force_model import FORCE_MODEL, write_algorithms_file
from tests.contract.onnx_models import TinyWeights, build_tiny_embedder


def _tiny_arcface(folder: Path, store: Callable[[], Any]) -> FaceEmbedder:
    model = build_tiny_embedder(folder / "tiny.onnx", TinyWeights.random(32, seed=1), 32)
    config = ArcFaceConfig(
        algorithm="tiny-arcface", version="1", threshold=0.7, dimension=32, input_size=32, batch_size=8
    )
    return OnnxArcFaceEmbedder(model, config, threads=2)


def _dlib_resnet(folder: Path, store: Callable[[], Any]) -> FaceEmbedder:
    resnet = pytest.importorskip("rfr.adapters.embedding.dlib_resnet")
    models = pytest.importorskip("rfr.infrastructure.models")
    return resnet.DlibResnetEmbedder(store().path(models.RESNET), threads=2)


def _sface(folder: Path, store: Callable[[], Any]) -> FaceEmbedder:
    sface = pytest.importorskip("rfr.adapters.embedding.sface")
    models = pytest.importorskip("rfr.infrastructure.models")
    return sface.SFaceEmbedder(store().path(models.SFACE), threads=2)


def _force_model(folder: Path, store: Callable[[], Any]) -> FaceEmbedder:
    """A force's own model declared in RFR_ALGORITHMS_FILE (ADR 0021), as the composition root
    builds it: the store's SFace file with SFace's preprocessing (tests/contract/force_model.py)."""
    composition = pytest.importorskip("rfr.entrypoints.composition")
    models = pytest.importorskip("rfr.infrastructure.models")
    model_store = store()
    (folder / "models").symlink_to(model_store.models_dir, target_is_directory=True)
    declared = write_algorithms_file(folder, model_store.path(models.SFACE))
    settings = Settings.from_env(
        {"RFR_DATA_DIR": str(folder), "RFR_ALGORITHMS_FILE": str(declared), "RFR_ALGORITHM": FORCE_MODEL}
    )
    return composition.build_custom_engine(settings, settings.custom_algorithm(FORCE_MODEL)).embedder


# Each builder gets a folder of its own and the session's model store (tests/conftest.py), asked
# for only by the adapters that need it, so the tiny adapter's tests convert no model.
EMBEDDERS: dict[str, Callable[[Path, Callable[[], Any]], FaceEmbedder]] = {
    "onnx-arcface": _tiny_arcface,
    "dlib-resnet": _dlib_resnet,
    "sface": _sface,
    "force-model": _force_model,
}

# The range of each metric's distance: a threshold outside it would accept everything or nothing.
METRIC_RANGES = {"euclidean": math.inf, "cosine": 2.0}


@pytest.fixture(scope="session")
def make_embedder(tmp_path_factory, request) -> Callable[[str], FaceEmbedder]:
    """Each adapter is built once per session: the dlib and SFace ones convert models."""
    built: dict[str, FaceEmbedder] = {}

    def make(name: str) -> FaceEmbedder:
        if name not in built:
            built[name] = EMBEDDERS[name](
                tmp_path_factory.mktemp(name), lambda: request.getfixturevalue("model_store")
            )
        return built[name]

    return make


@pytest.fixture(params=list(EMBEDDERS))
def embedder(request, make_embedder) -> FaceEmbedder:
    return make_embedder(request.param)


def chips(embedder: FaceEmbedder, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    size = embedder.chip_size
    return [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]


def distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if metric == "cosine":
        return float(1 - a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))
    return float(np.linalg.norm(a64 - b64))


def test_declares_what_the_application_needs(embedder):
    assert isinstance(embedder, FaceEmbedder)
    assert isinstance(embedder.algorithm_id, str) and embedder.algorithm_id.strip()
    assert embedder.metric in ("euclidean", "cosine")
    assert isinstance(embedder.dimension, int) and embedder.dimension > 0
    assert isinstance(embedder.chip_size, int) and embedder.chip_size > 0
    assert math.isfinite(embedder.threshold) and embedder.threshold > 0
    SimilarityScale.for_embedder(embedder)  # the threshold must make a valid score scale


def test_T01_every_adapter_has_its_own_algorithm_id(make_embedder):
    """T-01 keeps templates apart by algorithm id, so two adapters must never share one."""
    ids = [make_embedder(name).algorithm_id for name in EMBEDDERS]
    assert len(set(ids)) == len(ids)


def test_embeds_a_batch_into_float32_rows(embedder):
    out = embedder.embed(chips(embedder, 3))
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32
    assert out.shape == (3, embedder.dimension)
    assert np.isfinite(out).all()


def test_no_chips_give_no_rows(embedder):
    out = embedder.embed([])
    assert out.shape == (0, embedder.dimension) and out.dtype == np.float32


def test_batching_does_not_change_templates(embedder):
    # More chips than any adapter's internal chunk, so chunk boundaries are crossed.
    batch = chips(embedder, 40, seed=1)
    together = embedder.embed(batch)
    one_by_one = np.concatenate([embedder.embed([chip]) for chip in batch[:5] + batch[-3:]])
    np.testing.assert_allclose(one_by_one, np.concatenate([together[:5], together[-3:]]), atol=1e-4)


def test_is_deterministic_and_tells_chips_apart(embedder):
    a, b = chips(embedder, 2, seed=2)
    first = embedder.embed([a, b, a])
    np.testing.assert_array_equal(first, embedder.embed([a, b, a]))
    np.testing.assert_allclose(first[0], first[2], atol=1e-6)
    assert distance(first[0], first[1], embedder.metric) > 1e-4


@pytest.mark.parametrize(
    "damage",
    [
        lambda chip: chip.astype(np.float32),
        lambda chip: chip[:, :, :2],
        lambda chip: chip[:, :, 0],
    ],
    ids=["float", "two-channels", "grey"],
)
def test_refuses_what_is_not_an_rgb_uint8_chip(embedder, damage):
    with pytest.raises(ValueError):
        embedder.embed([damage(chips(embedder, 1)[0])])


def test_the_threshold_lies_inside_the_metrics_range(embedder):
    """dlib compares by euclidean distance, SFace by cosine: the threshold must be a distance of
    the metric the adapter declares (a cosine distance is at most 2)."""
    assert 0 < embedder.threshold < METRIC_RANGES[embedder.metric]


def test_templates_compare_by_the_declared_metric(embedder):
    """A template is at distance 0 from itself and apart from another chip's under the metric the
    adapter declares; under cosine a zero template has no direction and the indexes refuse it."""
    out = embedder.embed(chips(embedder, 4, seed=3)).astype(np.float64)
    if embedder.metric == "cosine":
        assert (np.linalg.norm(out, axis=1) > 1e-6).all()
    assert distance(out[0], out[0], embedder.metric) == pytest.approx(0.0, abs=1e-6)
    assert min(distance(out[0], other, embedder.metric) for other in out[1:]) > 1e-4
