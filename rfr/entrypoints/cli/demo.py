"""`rfr demo`: the whole governed workflow over the HTTP API, printed as numbered lessons.

Against a running server (``--server URL --token-file FILE`` with an administrator's token,
bearer or the one-time bootstrap token) or, by default, a server it starts itself on a free
loopback port over a fresh data folder, which it leaves in place for ``rfr audit verify``.
Exit status: 0 when every step worked, 1 when a step was refused or failed (the API's problem
is printed), 2 for bad arguments or a server that would not start.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rfr.entrypoints.demo.dataset import DemoDataset

EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_MAX_IDENTITIES = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="a guided run of the whole workflow over the API (policy rules explained step by step)",
        description="Runs the workflow over HTTP as each role in turn: users, library approval, "
        "enrolment, probe with Form 3, search, adjudication, match report, dissemination, audit.",
    )
    demo.add_argument(
        "--images",
        required=True,
        type=Path,
        metavar="DIR",
        help="one folder per person with their photos, e.g. datasets/faces/lfw",
    )
    demo.add_argument(
        "--max-identities",
        type=int,
        default=DEFAULT_MAX_IDENTITIES,
        metavar="N",
        help=f"enrol the first N people, in folder-name order (default {DEFAULT_MAX_IDENTITIES})",
    )
    demo.add_argument(
        "--probe-identity",
        metavar="NAME",
        help="the person whose last photo is held back as the probe (default: the last photo of everyone "
        "with two or more is held back, and the first of an enrolled person showing one face is the probe)",
    )
    demo.add_argument("--server", metavar="URL", help="use this running server instead of starting one")
    demo.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="with --server: an administrator's token (bearer, or the one-time bootstrap token)",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="without --server: the data folder of the server started (default: a new temporary folder)",
    )
    demo.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="where the match report is saved (default: DATA_DIR/demo, or ./rfr-demo with --server)",
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    # Imported here so other commands do not pay for the HTTP client.
    from rfr.entrypoints.demo import server as local
    from rfr.entrypoints.demo.api import Api, ApiError
    from rfr.entrypoints.demo.dataset import DatasetError, choose
    from rfr.entrypoints.demo.walkthrough import STEPS, DemoStopped, run

    if args.max_identities < 1:
        return _usage("--max-identities must be at least 1")
    if args.server and args.token_file is None:
        return _usage("--server needs --token-file (an administrator's token)")
    if args.server and args.data_dir is not None:
        return _usage("--data-dir is for the server the demo starts; a running server has its own")
    try:
        dataset = choose(args.images, max_identities=args.max_identities, probe_identity=args.probe_identity)
    except DatasetError as e:
        return _usage(str(e))

    started = None
    if args.server:
        base_url = args.server.rstrip("/")
        token_file = args.token_file
        output = args.output or Path("rfr-demo").resolve()
    else:
        data_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="rfr-demo-")) / "data").resolve()
        output = args.output or data_dir / "demo"
        print(f"Starting rfr serve over {data_dir} ...", flush=True)
        try:
            started = local.start(data_dir, output / "server.log")
        except local.ServerFailed as e:
            print(f"rfr demo: {e}", file=sys.stderr)
            return EXIT_USAGE
        base_url, token_file = started.base_url, started.bootstrap_token_file
        if not token_file.exists():
            started.stop()
            return _usage(f"{data_dir} is not a new installation: no {token_file.name} (use --server)")

    api = Api(base_url)
    began = time.monotonic()
    try:
        print(f"rfr demo: {STEPS} steps against {base_url} (API reference: {base_url}/schema)")
        print(f"Photos: {dataset.identities} people from {args.images}, {_held_back(dataset)}", flush=True)
        admin = api.administrator(token_file)
        outcome = run(api, admin, dataset, output, sys.stdout)
    except (ApiError, DemoStopped) as e:
        print(f"\nrfr demo FAILED: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        api.close()
        if started is not None:
            started.stop()

    print(f"\nDone in {time.monotonic() - began:.0f} s.")
    answer = "yes" if outcome.correct_first else "no"
    rank = outcome.rank_of_correct_identity
    print(f"Correct identity first: {answer} ({outcome.probe_identity} at rank {rank})")
    print(f"Match report: {outcome.report_path}")
    if started is not None:
        print(f"Data folder: {started.data_dir}")
        print(f"Check the trail yourself: RFR_DATA_DIR={started.data_dir} rfr audit verify")
    if not outcome.audit_ok:
        print(f"rfr demo FAILED: {outcome.audit_summary}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _held_back(dataset: DemoDataset) -> str:
    first, more = dataset.held_back[0], len(dataset.held_back) - 1
    return f"{len(dataset.enrol)} to enrol; probe held back: {first.identity}/{first.path.name}" + (
        f" (and {more} more, each the last photo of another person, in case it will not do)" if more else ""
    )


def _usage(message: str) -> int:
    print(f"rfr demo: {message}", file=sys.stderr)
    return EXIT_USAGE
