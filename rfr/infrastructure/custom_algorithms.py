"""A force's own face algorithms, declared in a TOML file named by RFR_ALGORITHMS_FILE (ADR 0021).

The file is the force's: nothing is downloaded, and the model file it names is checked against
the sha256 it gives before anything else starts (T-01: a force must know exactly which model
makes its templates). Every problem is refused when the settings are read, with a message that
names the file, the algorithm and the field, so ``rfr serve`` exits 2 instead of starting.

One ``[[algorithm]]`` table per algorithm::

    [[algorithm]]
    name = "force-arcface"        # what RFR_ALGORITHM names: lowercase, not a built-in's name
    detector = "yunet"            # the built-in YuNet 2023mar (the only detector for now)
    aligner = "arcface_112"       # the 112 px five-point ArcFace chip (the only aligner for now)

    [algorithm.embedder]          # an ArcFace-style ONNX model, run by onnx_arcface.py
    file = "models/arcface.onnx"  # relative to this file's folder
    sha256 = "<64 hex digits>"    # required: a different file is refused
    version = "2024.1"            # the force's name for this release of the model
    channel_order = "rgb"         # the order the model takes the chip's channels in: rgb or bgr
    mean = 127.5                  # one number or three (in channel_order), in 0-255 pixel units:
    std = 127.5                   #   the model sees (pixel - mean) / std
    layout = "nchw"               # optional, nchw (default) or nhwc
    input = "data"                # optional: the input's name, when the model has several
    output = "fc1"                # optional: the output's name or index, when it has several
    dimension = 512               # the template's length
    metric = "cosine"             # the only metric: templates are L2-normalised
    threshold = 0.6               # the decision distance (1 - cosine similarity), in (0, 2)
    threshold_source = "..."      # where that threshold comes from (a model card, an evaluation)
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from rfr.infrastructure.models import sha256_of

# The detectors and aligners a force's algorithm can name: the built-in stages it is built from.
DETECTORS = ("yunet",)
ALIGNERS = ("arcface_112",)
METRICS = ("cosine",)
CHANNEL_ORDERS = ("rgb", "bgr")
LAYOUTS = ("nchw", "nhwc")

NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}")
SHA256 = re.compile(r"[0-9a-f]{64}")

ALGORITHM_FIELDS = ("name", "detector", "aligner", "embedder")
EMBEDDER_FIELDS = (
    "file",
    "sha256",
    "version",
    "channel_order",
    "mean",
    "std",
    "layout",
    "input",
    "output",
    "dimension",
    "metric",
    "threshold",
    "threshold_source",
)
OPTIONAL_EMBEDDER_FIELDS = ("layout", "input", "output")


class CustomAlgorithmsError(ValueError):
    """RFR_ALGORITHMS_FILE cannot be used; the message names the file, the algorithm and the field."""


@attrs.frozen
class OnnxEmbedderDefinition:
    """A force's ArcFace-style ONNX model, as its file declares it; ``file`` is absolute and its
    bytes had ``sha256`` when the declaration was read."""

    file: Path
    sha256: str
    version: str
    channel_order: str  # "rgb" or "bgr"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layout: str  # "nchw" or "nhwc"
    dimension: int
    metric: str
    threshold: float
    threshold_source: str
    input: str | None = None
    output: str | int | None = None


@attrs.frozen
class CustomAlgorithm:
    """One algorithm a force declared: the stages by name and its own embedder. ``source`` is the
    file that declared it."""

    name: str
    detector: str
    aligner: str
    embedder: OnnxEmbedderDefinition
    source: Path


class _Refusal:
    """Builds the errors of one file, naming it, the algorithm and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(
        self, message: str, algorithm: str | None = None, field: str | None = None
    ) -> CustomAlgorithmsError:
        where = f"RFR_ALGORITHMS_FILE {self.path}"
        if algorithm is not None:
            where += f", algorithm {algorithm}"
        if field is not None:
            where += f", field {field}"
        return CustomAlgorithmsError(f"{where}: {message}")


def load_custom_algorithms(path: Path, *, reserved: Iterable[str] = ()) -> tuple[CustomAlgorithm, ...]:
    """The algorithms declared in ``path``, each model file checked against its sha256.

    ``reserved`` are the built-in algorithms' names, which a force's may not take. Raises
    ``CustomAlgorithmsError`` on the first problem.
    """
    path = Path(path).expanduser().resolve()
    refuse = _Refusal(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise refuse("no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse(f"cannot be read ({exc})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise refuse(f"is not valid TOML ({exc})") from None
    _no_unknown(document, ("algorithm",), refuse, None, None)
    entries = document.get("algorithm")
    if entries is None:
        raise refuse("declares no algorithm: add an [[algorithm]] table")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries) or not entries:
        raise refuse("'algorithm' must be one or more [[algorithm]] tables")
    reserved = tuple(reserved)
    algorithms: list[CustomAlgorithm] = []
    for position, entry in enumerate(entries, start=1):
        algorithm = _algorithm(entry, position, path, refuse, reserved)
        if any(a.name == algorithm.name for a in algorithms):
            raise refuse("is declared twice", repr(algorithm.name), "name")
        algorithms.append(algorithm)
    return tuple(algorithms)


def _algorithm(
    entry: Mapping[str, Any], position: int, path: Path, refuse: _Refusal, reserved: tuple[str, ...]
) -> CustomAlgorithm:
    label = f"#{position}"
    name = entry.get("name")
    if name is None:
        raise refuse("is missing: every algorithm needs a name, which RFR_ALGORITHM names", label, "name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise refuse(
            f"must be lowercase letters, digits, '-' or '_', starting with a letter, at most 40 "
            f"characters, not {name!r}",
            label,
            "name",
        )
    if name in reserved:
        raise refuse(
            f"{name!r} is a built-in algorithm's name (reserved: {', '.join(reserved)})", label, "name"
        )
    label = repr(name)
    _no_unknown(entry, ALGORITHM_FIELDS, refuse, label, None)
    detector = _choice(entry, "detector", DETECTORS, refuse, label, field="detector")
    aligner = _choice(entry, "aligner", ALIGNERS, refuse, label, field="aligner")
    table = entry.get("embedder")
    if not isinstance(table, dict):
        raise refuse(
            "is missing: add an [algorithm.embedder] table after the [[algorithm]]", label, "embedder"
        )
    embedder = _embedder(table, path, refuse, label)
    return CustomAlgorithm(name=name, detector=detector, aligner=aligner, embedder=embedder, source=path)


def _embedder(table: Mapping[str, Any], path: Path, refuse: _Refusal, label: str) -> OnnxEmbedderDefinition:
    _no_unknown(table, EMBEDDER_FIELDS, refuse, label, "embedder.")
    for field in EMBEDDER_FIELDS:
        if field not in table and field not in OPTIONAL_EMBEDDER_FIELDS:
            raise refuse("is missing (required)", label, f"embedder.{field}")

    def text(field: str) -> str:
        value = table[field]
        if not isinstance(value, str) or not value.strip():
            raise refuse(f"must be a non-empty string, not {value!r}", label, f"embedder.{field}")
        return value.strip()

    sha256 = text("sha256").lower()
    if not SHA256.fullmatch(sha256):
        raise refuse(
            f"must be the model file's sha256 as 64 hex digits, not {sha256!r}", label, "embedder.sha256"
        )
    version = text("version")
    if not VERSION.fullmatch(version):
        raise refuse(
            f"must be letters, digits, '.', '_', '+' or '-', at most 40 characters, not {version!r}",
            label,
            "embedder.version",
        )
    channel_order = _choice(
        table, "channel_order", CHANNEL_ORDERS, refuse, label, field="embedder.channel_order"
    )
    mean = _triple(table["mean"], refuse, label, "embedder.mean")
    if not all(0.0 <= m <= 255.0 for m in mean):
        raise refuse(f"must lie within 0-255 (pixel units), not {mean}", label, "embedder.mean")
    std = _triple(table["std"], refuse, label, "embedder.std")
    if not all(s >= 1.0 for s in std):
        raise refuse(
            f"must be at least 1, not {std}: mean and std are in 0-255 pixel units (e.g. 127.5 or "
            "128); for a model normalised in 0-1 units multiply both by 255",
            label,
            "embedder.std",
        )
    layout = _choice(table, "layout", LAYOUTS, refuse, label, field="embedder.layout", default="nchw")
    input_name = text("input") if "input" in table else None
    output: str | int | None = None
    if "output" in table:
        value = table["output"]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise refuse(f"must be the output's name or its index, not {value!r}", label, "embedder.output")
        if isinstance(value, int) and value < 0:
            raise refuse(f"an index must be 0 or more, not {value}", label, "embedder.output")
        output = text("output") if isinstance(value, str) else value
    dimension = table["dimension"]
    if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= 8192:
        raise refuse(f"must be a whole number from 1 to 8192, not {dimension!r}", label, "embedder.dimension")
    metric = table["metric"]
    if metric not in METRICS:
        raise refuse(
            f"must be 'cosine', not {metric!r}: the adapter L2-normalises every template, on which "
            "euclidean distance only restates cosine distance",
            label,
            "embedder.metric",
        )
    threshold = table["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold < 2.0:
        raise refuse(
            f"must be a cosine distance (1 - similarity) between 0 and 2, exclusive, not {threshold!r}",
            label,
            "embedder.threshold",
        )
    threshold_source = text("threshold_source")
    model = _model_file(text("file"), path, sha256, refuse, label)
    return OnnxEmbedderDefinition(
        file=model,
        sha256=sha256,
        version=version,
        channel_order=channel_order,
        mean=mean,
        std=std,
        layout=layout,
        dimension=dimension,
        metric=metric,
        threshold=float(threshold),
        threshold_source=threshold_source,
        input=input_name,
        output=output,
    )


def _model_file(value: str, path: Path, sha256: str, refuse: _Refusal, label: str) -> Path:
    """The model file, resolved against the declaring file's folder, with the sha256 declared."""
    model = Path(value).expanduser()
    if not model.is_absolute():
        model = path.parent / model
    model = model.resolve()
    if not model.is_file():
        raise refuse(f"{model} does not exist or is not a file", label, "embedder.file")
    try:
        actual = sha256_of(model)
    except OSError as exc:
        raise refuse(f"{model} cannot be read ({exc.strerror})", label, "embedder.file") from None
    if actual != sha256:
        raise refuse(
            f"{model} has sha256 {actual}, not the declared {sha256}: the templates' model must be "
            "exactly the one declared (T-01)",
            label,
            "embedder.sha256",
        )
    return model


def _no_unknown(
    table: Mapping[str, Any], known: tuple[str, ...], refuse: _Refusal, label: str | None, prefix: str | None
) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise refuse(
            f"is not a known field (known: {', '.join(known)})", label, f"{prefix or ''}{unknown[0]}"
        )


def _choice(
    table: Mapping[str, Any],
    key: str,
    choices: tuple[str, ...],
    refuse: _Refusal,
    label: str,
    *,
    field: str,
    default: str | None = None,
) -> str:
    value = table.get(key, default)
    if value is None:
        raise refuse(f"is missing (one of {', '.join(choices)})", label, field)
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise refuse(f"must be one of {', '.join(choices)}, not {value!r}", label, field)
    return value.strip().lower()


def _triple(value: Any, refuse: _Refusal, label: str, field: str) -> tuple[float, float, float]:
    values = value if isinstance(value, list) else [value]
    if len(values) not in (1, 3) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise refuse(f"must be one number or three (one per channel), not {value!r}", label, field)
    if len(values) == 1:
        values = values * 3
    return (float(values[0]), float(values[1]), float(values[2]))
