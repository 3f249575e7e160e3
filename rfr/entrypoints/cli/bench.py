"""`rfr bench scale`: one library of 10k, 100k (and 1M) templates through the real application.

The benchmark itself is ``bench/scale.py`` of the source checkout (beside ``bench/
audit_throughput.py``, whose audit measures it reuses), so this command runs from a checkout,
as ``make bench`` does; an installed package without ``bench/`` says so. Nothing heavy is
imported until the command runs: every ``rfr`` command builds this parser.

Exit status: 0 when measured, 2 for bad arguments, no checkout or no shared photos.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
from pathlib import Path
from types import ModuleType

EXIT_USAGE = 2
BENCH_DIR = Path(__file__).resolve().parents[3] / "bench"
DEFAULT_SIZES = "10000,100000"


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "bench", help="benchmarks of the whole application (from a source checkout)"
    )
    commands = group.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    scale = commands.add_parser(
        "scale",
        help="one library filled to 10k and 100k templates (1M with --sizes): searches, enrolments, "
        "recall, index build, memory, beside FAISS and exact numpy",
        description="Fills one library through the real application (domain, SQLite event store, "
        "projections, encrypted store, usearch index) with synthetic templates drawn from a Gaussian "
        "fitted to real templates of the shared photos, enrols real photos and searches real held-back "
        "probes, and runs FAISS (HNSW32, Flat) and exact numpy on the same vectors. See bench/scale.py.",
    )
    scale.add_argument(
        "--sizes",
        type=_sizes,
        default=_sizes(DEFAULT_SIZES),
        metavar="N,N,...",
        help=f"templates in the library, one installation each (default {DEFAULT_SIZES}; "
        "add 1000000 for a million)",
    )
    scale.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown")
    scale.add_argument(
        "--probes", type=_positive, default=200, metavar="N", help="held-back real probes searched per size"
    )
    scale.add_argument(
        "--identities",
        type=_positive,
        default=None,
        metavar="N",
        help="real identities used (default: every one of the shared photos)",
    )
    scale.add_argument(
        "--top-k", type=_positive, default=None, metavar="K", help="candidates per search (default 20)"
    )
    scale.add_argument("--seed", type=int, default=9, help="seed of the synthetic templates")
    scale.add_argument(
        "--work-dir", type=Path, default=None, metavar="DIR", help="where the temporary installations go"
    )
    scale.add_argument(
        "--audit-events",
        type=_positive,
        default=200_000,
        metavar="N",
        help="events of the verified audit store",
    )
    scale.add_argument(
        "--audit-commands", type=_positive, default=2_000, metavar="N", help="audited commands per append run"
    )
    scale.add_argument(
        "--audit-runs", type=_positive, default=5, metavar="N", help="runs of each audit measure"
    )
    scale.add_argument("--quiet", action="store_true", help="no progress on stderr")
    scale.set_defaults(handler=_scale)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive numbers")
    return sizes


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def load_scale() -> ModuleType:
    """``bench/scale.py`` of this checkout."""
    if not (BENCH_DIR / "scale.py").is_file():
        raise FileNotFoundError(f"rfr bench runs from a source checkout: {BENCH_DIR / 'scale.py'} is missing")
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    return importlib.import_module("scale")


def _scale(args: argparse.Namespace) -> int:
    try:
        scale = load_scale()
    except FileNotFoundError as exc:
        print(f"rfr bench: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    options = {"top_k": args.top_k} if args.top_k is not None else {}
    try:
        result = scale.measure(
            args.sizes,
            probes=args.probes,
            identities=args.identities,
            seed=args.seed,
            work_dir=args.work_dir,
            audit_options={
                "events": args.audit_events,
                "commands": args.audit_commands,
                "runs": args.audit_runs,
            },
            command=_command(args),
            log=log,
            **options,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"rfr bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(result, indent=2) if args.json else scale.markdown_section(result))
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command that repeats this run: its sizes, and every option not at its default."""
    words = ["rfr", "bench", "scale", "--sizes", ",".join(str(s) for s in args.sizes)]
    defaults = {
        "probes": 200,
        "identities": None,
        "top_k": None,
        "seed": 9,
        "work_dir": None,
        "audit_events": 200_000,
        "audit_commands": 2_000,
        "audit_runs": 5,
    }
    for name, default in defaults.items():
        value = getattr(args, name)
        if value != default:
            words += [f"--{name.replace('_', '-')}", shlex.quote(str(value))]
    return " ".join(words)  # without --json: the same figures, printed either way
