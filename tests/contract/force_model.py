"""A force's own model for tests: RFR_ALGORITHMS_FILE declaring the store's SFace file as if a force
had brought it (ADR 0021), with SFace's preprocessing, so its templates must equal SFace's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rfr.infrastructure.models import sha256_of

FORCE_MODEL = "force-sface"

# What SFaceEmbedder feeds the graph (rfr/adapters/embedding/sface.py): RGB 0-255 floats, NCHW;
# the graph subtracts 127.5 and scales by 1/128 itself.
SFACE_AS_A_FORCES_MODEL = {
    "version": "2021dec-int8bq",
    "channel_order": "rgb",
    "mean": 0.0,
    "std": 1.0,
    "layout": "nchw",
    "output": "fc1",
    "dimension": 128,
    "metric": "cosine",
    "threshold": 1.0 - 0.363,
    "threshold_source": "OpenCV Zoo's published cosine similarity of 0.363 for SFace, as a distance",
}


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def algorithms_toml(
    model: Path,
    *,
    name: str = FORCE_MODEL,
    sha256: str | None = None,
    algorithm: dict[str, Any] | None = None,
    embedder: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    """The text of an RFR_ALGORITHMS_FILE declaring ``model`` as ``name``: SFace's preprocessing,
    the file's own sha256 unless ``sha256`` is given; ``algorithm``/``embedder`` add or replace
    fields, ``drop`` removes embedder fields."""
    head = {"name": name, "detector": "yunet", "aligner": "arcface_112", **(algorithm or {})}
    fields = {
        "file": str(model),
        "sha256": sha256 if sha256 is not None else sha256_of(model),
        **SFACE_AS_A_FORCES_MODEL,
        **(embedder or {}),
    }
    lines = ["[[algorithm]]", *(f"{k} = {_toml_value(v)}" for k, v in head.items())]
    lines += ["", "[algorithm.embedder]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items() if k not in drop]
    return "\n".join(lines) + "\n"


def write_algorithms_file(folder: Path, model: Path, **options: Any) -> Path:
    """``algorithms_toml(model, **options)`` written to ``folder/algorithms.toml``."""
    path = folder / "algorithms.toml"
    path.write_text(algorithms_toml(model, **options), encoding="utf-8")
    return path
