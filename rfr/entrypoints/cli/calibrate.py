"""`rfr calibrate DATASET --algorithm A`: calibrate an algorithm's scores on labelled photos (ADR 0020).

DATASET is a folder per identity, as `rfr eval` reads it. Every photo is templated with the
named algorithm (the face nearest the centre, as `rfr eval` does), the distances of every pair
of templates are split into genuine (same folder) and impostor pairs, the false match rate is
measured from them (and extrapolated by a fitted tail below what they can count), and the
distance is found at which a search of a gallery of --gallery-size templates by someone not in
it returns a candidate with chance --target-fpir. The displayed score reads 0.5 there.

With --as USER (an Administrator, A-05) and --reason (A-01) the calibration is recorded as the
algorithm's next version and searches use it; without --as it is only printed. A refusal is
recorded too and ends with exit code 3; a dataset or target that cannot give a calibration
ends with exit code 2. Nothing of the photos is kept: the calibration holds the dataset's hash
and counts, never a path, a name, an image or a template.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from rfr.application.calibration import (
    DEFAULT_GALLERY_SIZE,
    DEFAULT_TARGET_FPIR,
    Calibration,
    CalibrationError,
    DatasetFingerprint,
    fit_calibration,
    pair_distances,
)
from rfr.application.face_engine import FaceEngine, face_nearest_centre
from rfr.application.services.calibrations import ScoreCalibrations
from rfr.entrypoints.demo.dataset import identity_folders
from rfr.infrastructure.settings import Settings

EXIT_USAGE = 2
EXIT_REFUSED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    calibrate = subparsers.add_parser(
        "calibrate",
        help="fit an algorithm's false match rates on labelled photos and set its operating point",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    calibrate.add_argument("dataset", type=Path, help="a folder per identity, each holding its photos")
    calibrate.add_argument(
        "--algorithm", required=True, help="the algorithm to calibrate, by name (RFR_ALGORITHM's choices)"
    )
    calibrate.add_argument(
        "--target-fpir",
        type=float,
        default=DEFAULT_TARGET_FPIR,
        help=f"chance that a search of someone not in the gallery scores 0.5 (default {DEFAULT_TARGET_FPIR})",
    )
    calibrate.add_argument(
        "--gallery-size",
        type=int,
        default=DEFAULT_GALLERY_SIZE,
        help=f"templates in the gallery that chance is for (default {DEFAULT_GALLERY_SIZE:,})",
    )
    calibrate.add_argument(
        "--as",
        dest="acting_user",
        metavar="USER",
        help="record it as this Administrator (else it is only printed)",
    )
    calibrate.add_argument("--reason", help="why, recorded with the calibration (needed with --as)")
    calibrate.add_argument("--json", action="store_true", help="print JSON (the default is a summary)")
    calibrate.set_defaults(handler=_calibrate)


@attrs.frozen
class DatasetTemplates:
    """One template per photo a face was found in, with what the fingerprint needs.

    ``labels`` are the identity (folder) of each template; they stay in this process.
    """

    labels: tuple[str, ...]
    templates: np.ndarray
    files: tuple[tuple[str, str], ...]
    identities: int
    images: int

    @property
    def templated(self) -> int:
        return len(self.labels)


def template_dataset(
    engine: FaceEngine, root: Path, *, decode: Callable[[bytes], np.ndarray] | None = None
) -> DatasetTemplates:
    """Templates of the face nearest the centre of every photo under ``root`` (``rfr eval``'s
    protocol); a photo that cannot be decoded or shows no face is counted but not templated."""
    from rfr.adapters.image_decoding import decode_image
    from rfr.application.errors import ImageRejected

    decode = decode or decode_image
    folders = identity_folders(root)
    labels: list[str] = []
    rows: list[np.ndarray] = []
    files: list[tuple[str, str]] = []
    for identity, photos in folders.items():
        for path in photos:
            data = path.read_bytes()
            files.append((path.relative_to(root).as_posix(), hashlib.sha256(data).hexdigest()))
            try:
                image = decode(data)
            except ImageRejected:
                continue
            faces = engine.detector.detect(image)
            if not faces:
                continue
            chosen = faces[face_nearest_centre(faces, image.shape[1], image.shape[0])]
            rows.append(engine.template(image, [chosen])[0])
            labels.append(identity)
    templates = np.stack(rows) if rows else np.zeros((0, engine.embedder.dimension), np.float32)
    return DatasetTemplates(tuple(labels), templates, tuple(files), len(folders), len(files))


def calibrate_templates(
    dataset: DatasetTemplates,
    *,
    algorithm_id: str,
    metric: str,
    target_fpir: float = DEFAULT_TARGET_FPIR,
    gallery_size: int = DEFAULT_GALLERY_SIZE,
) -> Calibration:
    """The calibration of ``dataset``'s templates (``CalibrationError`` if they cannot give one)."""
    genuine, impostor = pair_distances(dataset.templates, dataset.labels, metric)
    fingerprint = DatasetFingerprint(
        sha256=DatasetFingerprint.digest(dataset.files),
        identities=dataset.identities,
        images=dataset.images,
        templated=dataset.templated,
        genuine_pairs=int(genuine.size),
        impostor_pairs=int(impostor.size),
    )
    return fit_calibration(
        genuine,
        impostor,
        algorithm_id=algorithm_id,
        metric=metric,
        dataset=fingerprint,
        target_fpir=target_fpir,
        gallery_size=gallery_size,
    )


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"rfr calibrate: {message}", file=sys.stderr)
    return code


def _calibrate(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ValueError as e:
        return _fail(str(e))
    if args.algorithm not in settings.algorithm_names:
        names = ", ".join(settings.algorithm_names)
        return _fail(f"--algorithm must be one of {names}, not {args.algorithm!r}")
    if not 0.0 < args.target_fpir < 1.0:
        return _fail(f"--target-fpir must lie strictly between 0 and 1, not {args.target_fpir}")
    if args.gallery_size < 1:
        return _fail(f"--gallery-size must be at least 1, not {args.gallery_size}")
    if args.acting_user is not None and not (args.reason and args.reason.strip()):
        return _fail("--reason is needed with --as: every recorded action says why (A-01)")
    if not args.dataset.is_dir():
        return _fail(f"{args.dataset} is not a folder")
    if not identity_folders(args.dataset):
        return _fail(f"no identity folders with images in {args.dataset}")

    from rfr.entrypoints.composition import cached_face_engine

    if args.acting_user is not None:
        # Refused before the photos are templated, not after (the refusal is recorded, A-01).
        refused = _recording(settings, lambda c: c.ensure_may_calibrate(args.acting_user, args.reason))
        if refused is not None:
            return refused
    try:
        engine = cached_face_engine(attrs.evolve(settings, algorithm=args.algorithm))
    except ValueError as e:
        return _fail(str(e))
    try:
        templates = template_dataset(engine, args.dataset)
    except OSError as e:
        return _fail(f"cannot read {e.filename}: {e.strerror}")
    embedder = engine.embedder
    try:
        calibration = calibrate_templates(
            templates,
            algorithm_id=engine.algorithm_id,
            metric=embedder.metric,
            target_fpir=args.target_fpir,
            gallery_size=args.gallery_size,
        )
    except CalibrationError as e:
        return _fail(str(e))

    report = _report(args.algorithm, calibration, embedder.threshold)
    if args.acting_user is not None:

        def record(calibrations: ScoreCalibrations) -> None:
            recorded = calibrations.calibrate(args.acting_user, calibration, args.reason)
            at = recorded.at.isoformat()
            report["recorded"] = {"version": recorded.version, "by": recorded.by, "at": at}

        refused = _recording(settings, record)
        if refused is not None:
            return refused
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    _print_summary(report, calibration)
    return 0


def _recording(settings: Settings, command: Callable[[ScoreCalibrations], None]) -> int | None:
    """Runs ``command`` on the store's calibrations; the exit code of a refusal or failure, else None."""
    from eventsourcing.persistence import PersistenceError

    from rfr.application.errors import AccessDenied, UnknownUser
    from rfr.domain.decisions import PolicyRefusal
    from rfr.entrypoints.composition import Services

    try:
        with Services(settings) as services:
            command(services.score_calibrations)
    except (PolicyRefusal, AccessDenied, UnknownUser) as e:
        return _fail(f"refused: {e}", EXIT_REFUSED)
    except PersistenceError as e:
        return _fail(f"cannot write the event store: {e}")
    return None


def _report(name: str, calibration: Calibration, own_threshold: float) -> dict[str, Any]:
    n = calibration.gallery_size
    return {
        "algorithm": name,
        "operating_point": {
            "target_fpir": calibration.target_fpir,
            "gallery_size": n,
            "target_fmr": calibration.target_fmr,
            "threshold": calibration.threshold,
            "fnmr": calibration.fnmr,
            "impostor_pairs_behind_it": calibration.pairs_behind_threshold,
            "extrapolated": calibration.extrapolated,
        },
        "own_threshold": {
            "threshold": own_threshold,
            "fmr": calibration.fmr_at(own_threshold),
            "non_mate_chance": calibration.non_mate_chance(own_threshold, n),
            "calibrated_score": calibration.scale.score(own_threshold),
        },
        "recorded": None,
        "calibration": calibration.to_data(),
    }


def _print_summary(report: dict[str, Any], calibration: Calibration) -> None:
    point, own, data = report["operating_point"], report["own_threshold"], calibration.dataset
    print(
        f"{report['algorithm']}: {data.templated} of {data.images} photos templated, {data.identities} "
        f"identities; {data.genuine_pairs:,} genuine and {data.impostor_pairs:,} impostor pairs"
    )
    print(f"algorithm id: {calibration.algorithm_id}")
    print(
        f"operating point: FPIR {point['target_fpir']:g} in a gallery of {point['gallery_size']:,} needs "
        f"FMR {point['target_fmr']:.3g}, at distance {point['threshold']:.4f} ({calibration.metric}); "
        f"the score reads 0.5 there"
    )
    behind = point["impostor_pairs_behind_it"]
    if point["extrapolated"]:
        print(
            f"  that FMR is {behind:.3g} of the impostor pairs measured: the threshold rests on the "
            "fitted tail alone, an extrapolation (ADR 0020)"
        )
    elif behind < 30:
        print(f"  that FMR is {behind:.1f} impostor pairs: fewer than 30, a rough figure")
    print(f"  genuine pairs farther apart (false non-matches): {point['fnmr']:.3f}")
    print(
        f"the algorithm's own threshold {own['threshold']:g}: FMR {own['fmr']:.3g}, chance of a non-mate "
        f"in {point['gallery_size']:,} {own['non_mate_chance']:.3g}, calibrated score "
        f"{own['calibrated_score']:.2f}"
    )
    recorded = report["recorded"]
    if recorded is None:
        print("not recorded: name yourself with --as USER (an Administrator) and give --reason to record it")
    else:
        print(f"recorded as version {recorded['version']} by {recorded['by']}")
