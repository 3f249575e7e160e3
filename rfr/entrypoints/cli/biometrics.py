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

import numpy as np

from rfr.application.errors import ImageRejected
from rfr.application.evaluation import evaluate_identification
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
        "eval", help="rank-1, TAR at FAR 1e-3 and failure to enrol on a folder-per-identity dataset"
    )
    evaluate.add_argument("dataset", type=Path)
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--upsample", type=int, default=None)
    evaluate.set_defaults(handler=_refusing_cleanly(_eval))


class EngineOptionRefused(Exception):
    """An option the configured algorithm does not have (``--upsample`` under SFace)."""


def _engine(args: argparse.Namespace) -> FaceEngine:
    from rfr.entrypoints.composition import cached_face_engine

    try:
        return cached_face_engine(Settings.from_env(), args.upsample)
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


def _eval(args: argparse.Namespace) -> int:
    if not args.dataset.is_dir():
        return _fail(f"{args.dataset} is not a folder")
    items = [(name, path) for name, photos in identity_folders(args.dataset).items() for path in photos]
    if not items:
        return _fail(f"no identity folders with images in {args.dataset}")
    engine = _engine(args)
    timing = {"decode": 0.0, "detect": 0.0, "template": 0.0}
    identities, rows, enrolled, rejected = [], [], [], []
    zero = np.zeros(engine.embedder.dimension, dtype=np.float32)
    started = time.perf_counter()
    for identity, path in items:
        t0 = time.perf_counter()
        try:
            image = _read_image(path)
        except UnreadableImage as exc:
            rejected.append({"path": str(path), "reason": str(exc)})
            identities.append(identity)
            rows.append(zero)
            enrolled.append(False)
            continue
        t1 = time.perf_counter()
        faces = engine.detector.detect(image)
        t2 = time.perf_counter()
        if faces:
            chosen = faces[face_nearest_centre(faces, image.shape[1], image.shape[0])]
            rows.append(engine.template(image, [chosen])[0])
        else:
            rows.append(zero)
        t3 = time.perf_counter()
        timing["decode"] += t1 - t0
        timing["detect"] += t2 - t1
        timing["template"] += t3 - t2
        identities.append(identity)
        enrolled.append(bool(faces))
    elapsed = time.perf_counter() - started
    result = evaluate_identification(identities, np.stack(rows), enrolled, engine.embedder.metric)
    n = len(items)
    report = {
        "dataset": str(args.dataset),
        "algorithm": engine.algorithm_id,
        "rank1": round(result.rank1, 4),
        "tar_at_far_1e-3": round(result.tar_at_far, 4),
        "fte": round(result.fte, 4),
        "n_images": n,
        "n_identities": len(set(identities)),
        "n_probes": result.n_probes,
        "n_gallery": result.n_gallery,
        "n_failed_to_enrol": result.n_failed_to_enrol,
        "n_genuine_pairs": result.n_genuine_pairs,
        "n_impostor_pairs": result.n_impostor_pairs,
        "seconds_per_image": round(elapsed / n, 4),
        "seconds_per_image_by_stage": {k: round(v / n, 4) for k, v in timing.items()},
        "rejected_images": rejected,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"rank-1 {report['rank1']:.4f}  TAR@FAR1e-3 {report['tar_at_far_1e-3']:.4f}  "
              f"FTE {report['fte']:.4f}  ({result.n_probes} probes, {n} images, "
              f"{report['seconds_per_image']:.3f} s/image)")
    return 0
