"""The user-supplied ArcFace-style embedder, run for real on a tiny ONNX model built here."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from rfr.adapters.embedding.onnx_arcface import ArcFaceConfig, OnnxArcFaceEmbedder
from rfr.application.ports import FaceEmbedder
from tests.contract.onnx_models import TinyWeights, build_tiny_embedder, tiny_embedder_numpy

SIZE = 24
DIM = 16


def chips(n: int, size: int = SIZE, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]


def config(**overrides) -> ArcFaceConfig:
    values = {"algorithm": "tiny", "version": "1", "threshold": 0.7, "dimension": DIM, "input_size": SIZE}
    return ArcFaceConfig(**{**values, **overrides})


def expected(weights: TinyWeights, cfg: ArcFaceConfig, batch: list[np.ndarray]) -> np.ndarray:
    """Preprocessing written out independently of the adapter, then the network in numpy."""
    x = np.stack(batch).astype(np.float64)
    if cfg.channel_order == "BGR":
        x = x[..., [2, 1, 0]]
    x = (x - np.array(cfg.mean)) / np.array(cfg.std)
    raw = tiny_embedder_numpy(weights, x.transpose(0, 3, 1, 2))
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


@pytest.fixture
def weights() -> TinyWeights:
    return TinyWeights.random(DIM, seed=3)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_output_matches_the_same_network_in_numpy(tmp_path, weights, layout, order):
    cfg = config(layout=layout, channel_order=order, mean=(120.0, 110.0, 100.0), std=(60.0, 64.0, 70.0))
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE, layout=layout)
    embedder = OnnxArcFaceEmbedder(model, cfg, threads=1)
    batch = chips(5)
    got = embedder.embed(batch)
    assert got.dtype == np.float32 and got.shape == (5, DIM)
    np.testing.assert_allclose(got, expected(weights, cfg, batch), atol=2e-5)


def test_channel_order_matters_so_the_test_above_can_fail(tmp_path, weights):
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE)
    batch = chips(2)
    rgb = OnnxArcFaceEmbedder(model, config(channel_order="RGB")).embed(batch)
    bgr = OnnxArcFaceEmbedder(model, config(channel_order="BGR")).embed(batch)
    assert np.abs(rgb - bgr).max() > 1e-3


def test_output_is_l2_normalised(tmp_path, weights):
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE)
    out = OnnxArcFaceEmbedder(model, config()).embed(chips(6))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize(("chip_size", "interpolation"), [(40, cv2.INTER_AREA), (16, cv2.INTER_LINEAR)])
def test_chips_of_another_size_are_resized_with_opencv(tmp_path, weights, chip_size, interpolation):
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE)
    cfg = config(chip_size=chip_size)
    embedder = OnnxArcFaceEmbedder(model, cfg)
    assert embedder.chip_size == chip_size
    batch = chips(3, size=chip_size)
    resized = [cv2.resize(c, (SIZE, SIZE), interpolation=interpolation) for c in batch]
    np.testing.assert_allclose(embedder.embed(batch), expected(weights, cfg, resized), atol=2e-5)


@pytest.mark.parametrize("fixed_batch", [1, 4])
def test_models_exported_with_a_fixed_batch_still_take_any_number_of_chips(tmp_path, weights, fixed_batch):
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE, batch=fixed_batch)
    cfg = config()
    batch = chips(7)
    got = OnnxArcFaceEmbedder(model, cfg).embed(batch)
    np.testing.assert_allclose(got, expected(weights, cfg, batch), atol=2e-5)


def test_batches_are_chunked_without_changing_results(tmp_path, weights):
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE)
    batch = chips(7)
    whole = OnnxArcFaceEmbedder(model, config(batch_size=64)).embed(batch)
    chunked = OnnxArcFaceEmbedder(model, config(batch_size=3)).embed(batch)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_named_input_and_output_are_used(tmp_path, weights):
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE, input_name="data", output_name="fc1")
    embedder = OnnxArcFaceEmbedder(model, config(input_name="data", output_name="fc1"))
    assert embedder.embed(chips(1)).shape == (1, DIM)
    with pytest.raises(ValueError, match="no output named 'pre_fc'"):
        OnnxArcFaceEmbedder(model, config(output_name="pre_fc"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"input_size": SIZE * 2}, "expects input"),
        ({"layout": "NHWC"}, "expects input"),
        ({"dimension": DIM + 1}, "outputs 16 values"),
    ],
)
def test_a_config_that_does_not_fit_the_model_is_refused_when_opening(tmp_path, weights, overrides, message):
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE)
    with pytest.raises(ValueError, match=message):
        OnnxArcFaceEmbedder(model, config(**overrides))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((SIZE, SIZE + 2, 3), np.uint8),
        np.zeros((SIZE, SIZE, 3), np.float32),
        np.zeros((SIZE, SIZE), np.uint8),
        np.zeros((SIZE, SIZE, 4), np.uint8),
    ],
    ids=["not-square", "float", "grey", "rgba"],
)
def test_bad_chips_are_refused(tmp_path, weights, bad):
    embedder = OnnxArcFaceEmbedder(build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE), config())
    with pytest.raises(ValueError, match="chip"):
        embedder.embed([bad])


def test_T01_algorithm_id_names_model_version_file_and_preprocessing(tmp_path, weights):
    """T-01: the algorithm id names the model, its version, the file's sha256 and how chips are
    fed to it, so another file or the same file fed otherwise never shares an id."""
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    embedder = OnnxArcFaceEmbedder(model, config(algorithm="arcface-r100", version="2"))
    assert isinstance(embedder, FaceEmbedder)
    assert embedder.model_sha256 == digest
    assert re.fullmatch(
        rf"arcface-r100-2/onnx-sha256-{digest[:16]}/prep-[0-9a-f]{{8}}", embedder.algorithm_id
    )
    assert (embedder.metric, embedder.threshold, embedder.dimension) == ("cosine", 0.7, DIM)
    # The same id for the same file and config, whatever else (the threshold) changes.
    laxer = config(algorithm="arcface-r100", version="2", threshold=0.5)
    assert OnnxArcFaceEmbedder(model, laxer).algorithm_id == embedder.algorithm_id
    ids = {
        OnnxArcFaceEmbedder(model, config(**overrides)).algorithm_id
        for overrides in (
            {},
            {"version": "3"},
            {"chip_padding": 0.3},
            {"chip_size": SIZE * 2},
            {"channel_order": "BGR"},
            {"mean": 120.0},
            {"std": 128.0},
        )
    }
    other = build_tiny_embedder(tmp_path / "other.onnx", TinyWeights.random(DIM, seed=4), SIZE)
    ids.add(OnnxArcFaceEmbedder(other, config()).algorithm_id)
    assert len(ids) == 8


def test_T01_a_model_file_other_than_the_configured_sha256_is_refused(tmp_path, weights):
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert OnnxArcFaceEmbedder(model, config(model_sha256=digest)).model_sha256 == digest
    with pytest.raises(ValueError, match=f"has sha256 {digest}, not the configured {'0' * 64}"):
        OnnxArcFaceEmbedder(model, config(model_sha256="0" * 64))
    with pytest.raises(ValueError, match="model_sha256"):
        config(model_sha256="ABC")


def test_an_output_is_chosen_by_index_and_never_by_guess(tmp_path, weights):
    model = build_tiny_embedder(tmp_path / "m.onnx", weights, SIZE, output_name="fc1")
    by_index = OnnxArcFaceEmbedder(model, config(output_index=0))
    assert by_index.algorithm_id == OnnxArcFaceEmbedder(model, config(output_name="fc1")).algorithm_id
    with pytest.raises(ValueError, match="no output 1"):
        OnnxArcFaceEmbedder(model, config(output_index=1))
    with pytest.raises(ValueError, match="not both"):
        config(output_name="fc1", output_index=0)


def test_config_loads_from_json_and_toml_alike(tmp_path):
    values = {
        "algorithm": "arcface-r50",
        "version": "2024.1",
        "threshold": 0.68,
        "dimension": 512,
        "input_size": 112,
        "channel_order": "BGR",
        "layout": "NCHW",
        "mean": 127.5,
        "std": [128.0, 128.0, 128.0],
    }
    (tmp_path / "m.json").write_text(json.dumps(values))
    (tmp_path / "m.toml").write_text(
        'algorithm = "arcface-r50"\nversion = "2024.1"\nthreshold = 0.68\ndimension = 512\n'
        'input_size = 112\nchannel_order = "BGR"\nlayout = "NCHW"\nmean = 127.5\n'
        "std = [128.0, 128.0, 128.0]\n"
    )
    from_json = ArcFaceConfig.from_file(tmp_path / "m.json")
    assert from_json == ArcFaceConfig.from_file(tmp_path / "m.toml")
    assert from_json.mean == (127.5, 127.5, 127.5)
    assert from_json.chip_size == 112


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"threshold": 0.5, "versoin": "1"}, "unknown"),
        ({"threshold": 0.5, "version": "1", "layout": "CHW"}, "layout"),
        ({"threshold": 0.5, "version": "1", "channel_order": "GBR"}, "channel_order"),
        ({"threshold": 0.5, "version": "1", "std": 0}, "std"),
        ({"threshold": 0.5, "version": "1", "mean": [1, 2]}, "three"),
        ({"threshold": 2.5, "version": "1"}, "below 2"),
        ({"threshold": 0.5, "version": "a/b"}, "version"),
        ({"threshold": -1, "version": "1"}, "threshold"),
    ],
)
def test_bad_configs_are_refused_with_the_offending_key(values, message):
    with pytest.raises(ValueError, match=message):
        ArcFaceConfig.from_mapping({"algorithm": "m", **values})


def test_a_config_file_of_another_kind_is_refused(tmp_path: Path):
    (tmp_path / "m.yaml").write_text("algorithm: m")
    with pytest.raises(ValueError, match=r"\.json or \.toml"):
        ArcFaceConfig.from_file(tmp_path / "m.yaml")
