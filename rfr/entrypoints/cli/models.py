"""`rfr models build` and `rfr models verify`: the converted model artefacts under RFR_DATA_DIR."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rfr.infrastructure.models import ModelStore, ModelStoreError
from rfr.infrastructure.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="build or verify the converted face models")
    commands = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    build = commands.add_parser(
        "build", help="convert the installed face models (dlib, YuNet, SFace) once and print the manifest"
    )
    build.add_argument("--force", action="store_true", help="rebuild even artefacts that verify")
    build.add_argument("--models-dir", type=Path, help="default: $RFR_DATA_DIR/models")
    build.set_defaults(handler=_build)

    verify = commands.add_parser("verify", help="check every artefact against the manifest; build nothing")
    verify.add_argument("--models-dir", type=Path, help="default: $RFR_DATA_DIR/models")
    verify.set_defaults(handler=_verify)


def _store(args: argparse.Namespace) -> ModelStore:
    return ModelStore(args.models_dir or Settings.from_env().models_dir)


def _build(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        manifest = store.build_all(force=args.force)
    except ModelStoreError as exc:
        print(f"rfr models build: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"models_dir": str(store.models_dir), "artefacts": list(manifest.values())}, indent=2))
    return 0


def _verify(args: argparse.Namespace) -> int:
    problems = _store(args).verify()
    for name, problem in problems.items():
        print(f"{name}: {problem or 'ok'}")
    return 1 if any(problems.values()) else 0
