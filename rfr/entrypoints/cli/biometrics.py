"""`rfr detect`, `rfr embed` and `rfr eval`: the biometric engine from the command line."""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from rfr.application.errors import ImageRejected
from rfr.application.evaluation import IdentificationResult, StageClock, evaluate_identification
from rfr.application.face_engine import AnalysedFace, FaceEngine, face_nearest_centre
from rfr.entrypoints.demo.dataset import identity_folders
from rfr.infrastructure.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    detect = subparsers.add_parser("detect", help="find faces: boxes, landmarks and quality flags")
    detect.add_argument("image", type=Path)
    detect.add_argument("--json", action="store_true", help="print JSON (the default is a table)")
    detect.add_argument("--upsample", type=int, default=None, help="detector upsampling (default: auto)")
    detect.set_defaults(handler=_refusing_cleanly(_detect))

    embed = subparsers.add_parser("embed", help="templates of the faces in an image")
    embed.add_argument("image", type=Path)
    embed.add_argument("--face", type=int, default=None, help="only this face (0-based, detector order)")
    embed.add_argument("--json", action="store_true", help="print JSON (the default is a summary)")
    embed.add_argument("--upsample", type=int, default=None)
    embed.set_defaults(handler=_refusing_cleanly(_embed))

    evaluate = subparsers.add_parser(
        "eval",
        help="rank-1, TAR at FAR 1e-3 and 1e-4, failure to enrol and time per stage on a "
        "folder-per-identity dataset",
    )
    evaluate.add_argument("dataset", type=Path)
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument(
        "--algorithm",
        default=None,
        metavar="NAME",
        help="the face algorithm to evaluate, one of those the deployment can build "
        "(default: the configured one, RFR_ALGORITHM)",
    )
    evaluate.add_argument(
        "--shrink",
        default="1",
        metavar="F",
        help="resize every image by F (0 < F <= 1, OpenCV's INTER_AREA) before detection, as for "
        "small faces in CCTV stills (default: 1, as decoded)",
    )
    evaluate.add_argument("--upsample", type=int, default=None, help="dlib's detector upsampling")
    evaluate.set_defaults(handler=_refusing_cleanly(_eval))


class EngineOptionRefused(Exception):
    """An option the configured algorithm does not have (``--upsample`` under SFace)."""


def _engine(args: argparse.Namespace, algorithm: str | None = None) -> FaceEngine:
    """The engine of the configured algorithm, or of ``algorithm`` (a name of
    ``Settings.algorithm_names``), with the command's ``--upsample``."""
    from rfr.entrypoints.composition import cached_face_engine

    try:
        settings = Settings.from_env()
        if algorithm is not None and algorithm != settings.algorithm:
            settings = attrs.evolve(settings, algorithm=algorithm)
        return cached_face_engine(settings, args.upsample)
    except ValueError as exc:
        raise EngineOptionRefused(str(exc)) from exc


def _refusing_cleanly(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler``, with an engine option the algorithm refuses reported as a message and exit
    code 2 rather than a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except EngineOptionRefused as exc:
            return _fail(str(exc))

    return run


class UnreadableImage(Exception):
    """The file could not be read or decoded; the message is for the user."""


def _read_image(path: Path) -> np.ndarray:
    from rfr.adapters.image_decoding import decode_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return decode_image(data)
    except ImageRejected as exc:
        raise UnreadableImage(f"{path}: {exc}") from exc


def _face_json(analysed: AnalysedFace) -> dict[str, Any]:
    face = analysed.face
    return {
        "box": {
            "left": face.box.left, "top": face.box.top, "right": face.box.right, "bottom": face.box.bottom
        },
        "score": None if math.isnan(face.score) else round(face.score, 6),
        "landmarks": [list(p) for p in face.landmarks],
        "quality": {
            "measures": {k: round(v, 4) for k, v in analysed.quality.measures.items()},
            "flags": list(analysed.quality.flags),
        },
    }


def _fail(message: str) -> int:
    print(f"rfr: {message}", file=sys.stderr)
    return 2


def _detect(args: argparse.Namespace) -> int:
    try:
        image = _read_image(args.image)
    except UnreadableImage as exc:
        return _fail(str(exc))
    engine = _engine(args)
    faces = engine.detect(image)
    if args.json:
        print(json.dumps({
            "image": str(args.image),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "detector": engine.detector.algorithm_id,
            "faces": [_face_json(f) for f in faces],
        }, indent=2))
        return 0
    print(f"{len(faces)} face(s) in {args.image} ({image.shape[1]}x{image.shape[0]})")
    for i, f in enumerate(faces):
        b = f.face.box
        flags = ", ".join(f.quality.flags) or "none"
        print(f"  [{i}] box=({b.left},{b.top},{b.right},{b.bottom}) score={f.face.score:.3f} flags: {flags}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    try:
        image = _read_image(args.image)
    except UnreadableImage as exc:
        return _fail(str(exc))
    engine = _engine(args)
    faces = engine.detect(image)
    if args.face is not None:
        if not 0 <= args.face < len(faces):
            return _fail(f"--face {args.face} is out of range: {len(faces)} face(s) found")
        faces = [faces[args.face]]
    templates = engine.template(image, [f.face for f in faces])
    out = []
    for analysed, vector in zip(faces, templates, strict=True):
        entry = _face_json(analysed)
        entry["template"] = [float(v) for v in vector]
        out.append(entry)
    if args.json:
        print(json.dumps({"algorithm": engine.algorithm_id, "faces": out}))
    else:
        dim = engine.embedder.dimension
        print(f"{len(out)} template(s) of {dim} values, algorithm {engine.algorithm_id}")
    return 0


def _algorithm_name(requested: str | None) -> str:
    """``--algorithm``'s name, or the configured one; a ValueError (one line) for a name the
    deployment cannot build."""
    settings = Settings.from_env()
    if requested is None:
        return settings.algorithm
    if requested not in settings.algorithm_names:
        names = ", ".join(settings.algorithm_names)
        raise ValueError(f"--algorithm must be one of {names}, not {requested!r}")
    return requested


def _shrink_factor(text: str) -> float:
    """``--shrink``'s F, refused (ValueError, one line) unless 0 < F <= 1."""
    try:
        factor = float(text)
    except ValueError:
        raise ValueError(f"--shrink must be a number in (0, 1], not {text!r}") from None
    if not (math.isfinite(factor) and 0.0 < factor <= 1.0):
        raise ValueError(f"--shrink must lie in (0, 1] (a factor that makes images smaller), not {text}")
    return factor


def _shrunk(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` resized by ``factor`` with OpenCV's INTER_AREA (at least 1 x 1 pixel)."""
    if factor == 1.0:
        return image
    import cv2

    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


@attrs.define
class _EvaluatedImages:
    identities: list[str] = attrs.Factory(list)
    paths: list[str] = attrs.Factory(list)
    rows: list[np.ndarray] = attrs.Factory(list)
    enrolled: list[bool] = attrs.Factory(list)
    rejected: list[dict[str, str]] = attrs.Factory(list)
    image_sizes: list[tuple[int, int]] = attrs.Factory(list)  # (width, height) as detected
    face_sizes: list[tuple[int, int]] = attrs.Factory(list)  # the chosen faces' boxes


def _evaluate_images(
    engine: FaceEngine, items: list[tuple[str, Path]], shrink: float, clock: StageClock
) -> _EvaluatedImages:
    """Decode, shrink, detect and template every image; the face nearest the centre is chosen.

    The engine's detector, aligner and embedder are wrapped by ``clock`` so that the engine's own
    ``template`` runs unchanged while its stages are timed apart. dlib's detector finds the
    landmarks itself, YuNet's detector gives its points: either way they are part of "detect".
    """
    timed = FaceEngine(
        detector=clock.timed(engine.detector, "detect", "detect"),
        landmarks=engine.landmarks,
        aligner=clock.timed(engine.aligner, "align", "align"),
        embedder=clock.timed(engine.embedder, "embed", "embed"),
        quality=engine.quality,
    )
    zero = np.zeros(engine.embedder.dimension, dtype=np.float32)
    seen = _EvaluatedImages()
    for identity, path in items:
        seen.identities.append(identity)
        seen.paths.append(str(path))
        try:
            with clock.measuring("decode"):
                image = _read_image(path)
        except UnreadableImage as exc:
            seen.rejected.append({"path": str(path), "reason": str(exc)})
            seen.rows.append(zero)
            seen.enrolled.append(False)
            continue
        if shrink != 1.0:
            with clock.measuring("shrink"):
                image = _shrunk(image, shrink)
        height, width = image.shape[:2]
        seen.image_sizes.append((width, height))
        faces = timed.detector.detect(image)
        if faces:
            chosen = faces[face_nearest_centre(faces, width, height)]
            seen.face_sizes.append((chosen.box.width, chosen.box.height))
            with clock.measuring("template"):
                seen.rows.append(timed.template(image, [chosen])[0])
        else:
            seen.rows.append(zero)
        seen.enrolled.append(bool(faces))
    return seen


def _median_size(sizes: list[tuple[int, int]]) -> dict[str, float] | None:
    if not sizes:
        return None
    widths, heights = zip(*sizes, strict=True)
    return {"width": float(np.median(widths)), "height": float(np.median(heights))}


def _verification_json(result: IdentificationResult) -> list[dict[str, Any]]:
    return [
        {
            "far": point.far,
            "tar": round(point.tar, 4),
            "threshold": None if math.isinf(point.threshold) else round(point.threshold, 6),
            "n_impostor_pairs": point.n_impostor_pairs,
            "false_accepts_allowed": point.false_accepts_allowed,
            "false_accepts": point.false_accepts,
            "measurable": point.measurable,
            "reliable": point.reliable,
            "note": point.note,
        }
        for point in result.verification
    ]


def _eval(args: argparse.Namespace) -> int:
    # Usage errors first, before any image is read or model loaded.
    try:
        shrink = _shrink_factor(args.shrink)
        name = _algorithm_name(args.algorithm)
    except ValueError as exc:
        return _fail(str(exc))
    if not args.dataset.is_dir():
        return _fail(f"{args.dataset} is not a folder")
    folders = identity_folders(args.dataset)
    items = [(identity, path) for identity, photos in folders.items() for path in photos]
    if not items:
        return _fail(f"no identity folders with images in {args.dataset}")
    engine = _engine(args, name)
    clock = StageClock()
    started = time.perf_counter()
    seen = _evaluate_images(engine, items, shrink, clock)
    elapsed = time.perf_counter() - started
    metric = engine.embedder.metric
    result = evaluate_identification(seen.identities, np.stack(seen.rows), seen.enrolled, metric)
    n = len(items)
    stages = ("decode", "shrink", "detect", "template", "align", "embed")
    report = {
        "dataset": str(args.dataset),
        "algorithm": engine.algorithm_id,
        "algorithm_name": name,
        "shrink": shrink,
        "upsample": args.upsample,
        "rank1": round(result.rank1, 4),
        "tar_at_far_1e-3": round(result.at(1e-3).tar, 4),
        "tar_at_far_1e-4": round(result.at(1e-4).tar, 4),
        "verification": _verification_json(result),
        "fte": round(result.fte, 4),
        "n_images": n,
        "n_identities": len(set(seen.identities)),
        "n_probes": result.n_probes,
        "n_gallery": result.n_gallery,
        "n_failed_to_enrol": result.n_failed_to_enrol,
        "n_genuine_pairs": result.n_genuine_pairs,
        "n_impostor_pairs": result.n_impostor_pairs,
        "median_image_size_px": _median_size(seen.image_sizes),
        "median_face_size_px": _median_size(seen.face_sizes),
        "seconds_per_image": round(elapsed / n, 4),
        # Each stage's seconds over all images, divided by the number of images; "template" is
        # the engine's whole templating of the chosen face, "align" and "embed" are parts of it.
        "seconds_per_image_by_stage": {
            k: round(clock.seconds[k] / n, 5) for k in stages if k in clock.seconds
        },
        "failed_to_enrol": [p for p, ok in zip(seen.paths, seen.enrolled, strict=True) if not ok],
        "rank1_misses": [
            {"probe": seen.paths[probe], "nearest": None if nearest is None else seen.paths[nearest]}
            for probe, nearest in result.rank1_misses
        ],
        "rejected_images": seen.rejected,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    tars = "  ".join(f"TAR@FAR{p.far:g} {p.tar:.4f}" for p in result.verification)
    print(f"{report['algorithm_name']} (shrink {shrink:g}): rank-1 {report['rank1']:.4f}  {tars}  "
          f"FTE {report['fte']:.4f}  ({result.n_probes} probes, {n} images, "
          f"{report['seconds_per_image']:.3f} s/image)")
    for point in result.verification:
        print(f"  FAR {point.far:g}: {point.note}")
    by_stage = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in report["seconds_per_image_by_stage"].items())
    print(f"  ms per image: {by_stage}")
    return 0

