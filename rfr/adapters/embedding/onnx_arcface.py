"""A user-supplied ArcFace-style ONNX model as a ``FaceEmbedder``.

Forces license their own models; this adapter runs any network that maps one aligned face
crop to one embedding, described by an ``ArcFaceConfig`` kept beside the model (JSON or
TOML). Preprocessing, in order:

1. the aligned chip (RGB uint8, square) is resized to ``input_size`` with OpenCV when the
   aligner produced another size: ``INTER_AREA`` when shrinking (averages, no aliasing),
   ``INTER_LINEAR`` when enlarging. Aligning straight to ``input_size`` (``chip_size`` is
   that by default) avoids the resampling altogether;
2. channels are reordered to ``channel_order`` (models trained with OpenCV expect BGR);
3. ``(pixel - mean) / std`` per channel, with mean and std given in the model's channel order;
4. the batch is laid out as ``layout`` (NCHW or NHWC).

The output is L2-normalised, so cosine distance is ``1 - dot`` and Euclidean distance is a
monotonic function of it.

T-01: the embedder hashes the model file when it opens it, refuses it when the config names
another sha256 (``model_sha256``), and its ``algorithm_id`` is the config's algorithm and
version, the first 16 hex digits of the file's sha256 and a digest of the preprocessing (chip
size and padding, channel order, layout, mean, std, input and output): two different files, or
one file fed differently, never share an id. A force declares its models in RFR_ALGORITHMS_FILE
(rfr/infrastructure/custom_algorithms.py, ADR 0021); the composition root maps a declaration to
an ``ArcFaceConfig``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import cv2
import numpy as np
import onnxruntime as ort

from rfr.adapters.onnx_session import cpu_session
from rfr.infrastructure.models import sha256_of

METRICS = ("cosine", "euclidean")
SHA256 = re.compile(r"[0-9a-f]{64}")
# How much of the model file's sha256 and of the preprocessing digest the algorithm id shows.
MODEL_DIGEST_CHARS = 16
PREPROCESSING_DIGEST_CHARS = 8


def _triple(value: Any) -> tuple[float, float, float]:
    if isinstance(value, int | float):
        return (float(value),) * 3
    values = tuple(float(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"expected one number or three, not {value!r}")
    return values  # type: ignore[return-value]


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def _all_nonzero(instance: object, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
    if not all(math.isfinite(v) and v != 0 for v in value):
        raise ValueError(f"{attribute.name} must be finite and non-zero, not {value!r}")


def _non_empty(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if not value.strip() or "/" in value or "|" in value:
        raise ValueError(f"{attribute.name} must be a non-empty name without '/' or '|', not {value!r}")


def _sha256(instance: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not SHA256.fullmatch(value):
        raise ValueError(f"{attribute.name} must be 64 lowercase hex digits, not {value!r}")


def _index(instance: object, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{attribute.name} must be a whole number of at least 0, not {value!r}")


@attrs.frozen
class ArcFaceConfig:
    """What the adapter must know about a model that the ONNX file does not say.

    ``algorithm`` and ``version`` name the model (T-01: a retrained model gets a new
    version, so its templates are never compared with the old ones); ``threshold`` is the
    decision distance in ``metric`` published for the model; ``chip_size`` and
    ``chip_padding`` are what the aligner should produce for it (they are part of the
    algorithm id because the same network on other crops makes other templates).
    ``model_sha256``, when given, is the only model file the embedder accepts. The output is
    ``output_name`` or the ``output_index``-th output, the input ``input_name``; either may be
    left out when the model has only one.
    """

    algorithm: str = attrs.field(validator=_non_empty)
    version: str = attrs.field(validator=_non_empty)
    threshold: float = attrs.field(converter=float, validator=_positive)
    dimension: int = attrs.field(default=512, validator=_positive)
    input_size: int = attrs.field(default=112, validator=_positive)
    channel_order: str = attrs.field(default="RGB", validator=attrs.validators.in_(("RGB", "BGR")))
    layout: str = attrs.field(default="NCHW", validator=attrs.validators.in_(("NCHW", "NHWC")))
    mean: tuple[float, float, float] = attrs.field(default=(127.5, 127.5, 127.5), converter=_triple)
    std: tuple[float, float, float] = attrs.field(
        default=(127.5, 127.5, 127.5), converter=_triple, validator=_all_nonzero
    )
    metric: str = attrs.field(default="cosine", validator=attrs.validators.in_(METRICS))
    chip_size: int = attrs.field(
        default=attrs.Factory(lambda self: self.input_size, takes_self=True), validator=_positive
    )
    chip_padding: float = attrs.field(default=0.25, converter=float)
    batch_size: int = attrs.field(default=32, validator=_positive)
    input_name: str | None = None
    output_name: str | None = None
    output_index: int | None = attrs.field(default=None, validator=_index)
    model_sha256: str | None = attrs.field(default=None, validator=_sha256)

    def __attrs_post_init__(self) -> None:
        if self.metric == "cosine" and self.threshold >= 2.0:
            raise ValueError("a cosine distance threshold must be below 2")
        if not 0.0 <= self.chip_padding < 10.0:
            raise ValueError(f"chip_padding must be within [0, 10), not {self.chip_padding!r}")
        if self.output_name is not None and self.output_index is not None:
            raise ValueError("give output_name or output_index, not both")

    def preprocessing_digest(self, input_name: str, output_name: str) -> str:
        """A short digest of everything that turns a chip into the model's input, and of which
        output is read: the same file fed otherwise makes other templates (T-01)."""
        described = {
            "chip_size": self.chip_size,
            "chip_padding": self.chip_padding,
            "input_size": self.input_size,
            "channel_order": self.channel_order,
            "layout": self.layout,
            "mean": list(self.mean),
            "std": list(self.std),
            "input": input_name,
            "output": output_name,
        }
        text = json.dumps(described, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:PREPROCESSING_DIGEST_CHARS]

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ArcFaceConfig:
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ArcFace config keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: Path) -> ArcFaceConfig:
        """Read a ``.json`` or ``.toml`` file whose keys are this class's fields."""
        path = Path(path)
        if path.suffix == ".json":
            values = json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".toml":
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            raise ValueError(f"{path}: an ArcFace config is a .json or .toml file")
        if not isinstance(values, dict):
            raise ValueError(f"{path}: the config must be one object of keys and values")
        return cls.from_mapping(values)


def _static(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxArcFaceEmbedder:
    """``FaceEmbedder`` running an ArcFace-style ONNX model with onnxruntime on the CPU."""

    def __init__(self, model_path: Path, config: ArcFaceConfig, threads: int = 2) -> None:
        self.config = config
        self.dimension = config.dimension
        self.metric = config.metric
        self.threshold = config.threshold
        self.chip_size = config.chip_size
        self.chip_padding = config.chip_padding
        # Hashed as the session opens it, not only when the settings were read: the engine may
        # be built long after start, and the id must name the bytes that make the templates.
        self.model_sha256 = sha256_of(Path(model_path))
        if config.model_sha256 is not None and self.model_sha256 != config.model_sha256:
            raise ValueError(
                f"{model_path} has sha256 {self.model_sha256}, not the configured {config.model_sha256} "
                "(T-01: templates are made only by the model named)"
            )
        self._session = cpu_session(model_path, threads)
        self._input = self._pick(self._session.get_inputs(), config.input_name, None, "input")
        self._output = self._pick(
            self._session.get_outputs(), config.output_name, config.output_index, "output"
        )
        self._fixed_batch = self._check_signature()
        self._scale = (1.0 / np.asarray(config.std, dtype=np.float32)).reshape(1, 1, 3)
        self._mean = np.asarray(config.mean, dtype=np.float32).reshape(1, 1, 3)
        self.algorithm_id = (
            f"{config.algorithm}-{config.version}/onnx-sha256-{self.model_sha256[:MODEL_DIGEST_CHARS]}"
            f"/prep-{config.preprocessing_digest(self._input.name, self._output.name)}"
        )

    @staticmethod
    def _pick(args: list[ort.NodeArg], name: str | None, index: int | None, kind: str) -> ort.NodeArg:
        names = [a.name for a in args]
        if index is not None:
            if index >= len(args):
                raise ValueError(f"the model has no {kind} {index}; it has {len(args)}: {names}")
            return args[index]
        if name is None:
            if len(args) != 1:
                raise ValueError(f"the model has {len(args)} {kind}s {names}: name the one to use")
            return args[0]
        for arg in args:
            if arg.name == name:
                return arg
        raise ValueError(f"the model has no {kind} named {name!r}; it has {names}")

    def _check_signature(self) -> int | None:
        """Refuse, when the session opens, a model that cannot take this config's input."""
        cfg = self.config
        if self._input.type != "tensor(float)":
            raise ValueError(f"the model's input is {self._input.type}; only float32 input is supported")
        shape = list(self._input.shape)
        if len(shape) != 4:
            raise ValueError(f"the model's input has rank {len(shape)}, not 4 ({cfg.layout})")
        expected = [cfg.input_size, cfg.input_size, 3]
        if cfg.layout == "NCHW":
            expected = [3, cfg.input_size, cfg.input_size]
        for got, want in zip(shape[1:], expected, strict=True):
            if _static(got) is not None and got != want:
                raise ValueError(
                    f"the model expects input {shape}, the config describes {cfg.layout} {expected}"
                )
        out_shape = list(self._output.shape)
        if out_shape and _static(out_shape[-1]) is not None and out_shape[-1] != cfg.dimension:
            raise ValueError(f"the model outputs {out_shape[-1]} values, the config says {cfg.dimension}")
        return _static(shape[0])

    def _prepare(self, chip: np.ndarray) -> np.ndarray:
        if not isinstance(chip, np.ndarray) or chip.dtype != np.uint8 or chip.ndim != 3 or chip.shape[2] != 3:
            raise ValueError("a chip must be an RGB uint8 array of shape (size, size, 3)")
        height, width = chip.shape[:2]
        if height != width or height == 0:
            raise ValueError(f"a chip must be square, not {height}x{width}")
        size = self.config.input_size
        if height != size:
            interpolation = cv2.INTER_AREA if height > size else cv2.INTER_LINEAR
            chip = cv2.resize(chip, (size, size), interpolation=interpolation)
        if self.config.channel_order == "BGR":
            chip = chip[:, :, ::-1]
        return (chip.astype(np.float32) - self._mean) * self._scale

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.config.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        count = batch.shape[0]
        if self._fixed_batch is not None and count < self._fixed_batch:
            # A model exported with a fixed batch needs whole batches; the padding is dropped below.
            padding = np.zeros((self._fixed_batch - count, *batch.shape[1:]), dtype=np.float32)
            batch = np.concatenate([batch, padding])
        (output,) = self._session.run([self._output.name], {self._input.name: batch})
        output = np.asarray(output, dtype=np.float32).reshape(batch.shape[0], -1)[:count]
        if output.shape[1] != self.dimension:
            raise RuntimeError(
                f"the model produced {output.shape[1]} values, the config says {self.dimension}"
            )
        return output

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Embed chips in batches of ``batch_size``; returns L2-normalised float32 rows."""
        if len(chips) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        chunk = self._fixed_batch or self.config.batch_size
        outputs = []
        for start in range(0, len(chips), chunk):
            prepared = np.stack([self._prepare(chip) for chip in chips[start : start + chunk]])
            outputs.append(self._run(prepared))
        raw = np.concatenate(outputs)
        norms = np.linalg.norm(raw.astype(np.float64), axis=1, keepdims=True)
        if not (np.isfinite(norms).all() and (norms > 0).all()):
            raise RuntimeError("the model produced a zero or non-finite embedding")
        return (raw / norms).astype(np.float32)
