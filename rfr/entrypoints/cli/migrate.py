"""`rfr migrate --from sqlite:PATH --to postgres:DSN [--schema NAME]` (issue 10).

Copies an embedded installation's event store into an empty PostgreSQL store: the source's
chain is verified first, a target holding any event is refused before anything is written, the
events are copied in notification order with their ids, through the target's own insert path
(its own chain links and projections in the same transactions), and the target is verified
afterwards. The steps and their reasons: ``rfr.infrastructure.persistence.migration`` and
docs/operations.md. The DSN's password is never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rfr.infrastructure.persistence.migration import (
    BATCH_EVENTS,
    MigrationError,
    MigrationFailed,
    SourceBroken,
    TargetNotEmpty,
    describe_dsn,
    migrate,
    redact,
)

EXIT_SOURCE_BROKEN = 1  # as `rfr audit verify` on a chain that does not verify
EXIT_USAGE = 2  # bad arguments, no source store, target unreachable or without its schema
EXIT_TARGET_NOT_EMPTY = 3
EXIT_FAILED = 4  # copied, but the target does not check out: discard it

# Progress is printed every this many events copied (a large store takes minutes).
PROGRESS_EVERY = 50_000

NOT_MIGRATED = (
    "not migrated: the biometric store (biometrics/), its master key (keys/master.key), the vector "
    "indexes (indexes/), models and reports are files under RFR_DATA_DIR; point the PostgreSQL "
    "service at the same data folder"
)

DESCRIPTION = f"""\
Copy an embedded installation's event store (SQLite) into an empty PostgreSQL store.

The source's audit chain is verified first; a target schema holding any stored event is
refused before anything is written. Every event is copied in notification order, with its
notification id, originator id, version, topic and state bytes, through the target's own
insert path, which writes its own chain links and projections in the same transactions
({BATCH_EVENTS} events per transaction). The target is verified afterwards; its head equals the
source's, so a head published before the migration still anchors the new store.

Stop every process using the source first (`rfr serve`, `rfr worker`), and create the target
schema beforehand (CREATE SCHEMA name). Then run the service with RFR_PERSISTENCE=postgres,
RFR_POSTGRES_DSN, RFR_POSTGRES_SCHEMA and the same RFR_DATA_DIR.

Not migrated: the biometric store (biometrics/), its master key (keys/master.key), the
vector indexes (indexes/), models and reports are files under RFR_DATA_DIR, not events; point
the PostgreSQL service at the same data folder (the indexes' positions stay valid because the
notification ids are kept).
"""

EPILOG = f"""\
exit codes: 0 copied and verified; {EXIT_SOURCE_BROKEN} the source's chain does not verify (nothing
written); {EXIT_USAGE} bad arguments, no source store, or a target unreachable or without its schema
(nothing written); {EXIT_TARGET_NOT_EMPTY} the target already holds events (nothing written);
{EXIT_FAILED} copied but the target does not check out (discard the target schema and migrate again).
See docs/operations.md."""


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "migrate",
        help="copy a SQLite event store into an empty PostgreSQL store (the biometric files stay put)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="sqlite:PATH",
        help="the SQLite event store: the data folder holding events.sqlite3, or the file itself",
    )
    command.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="postgres:DSN",
        help="the PostgreSQL database, e.g. postgres:postgresql://rfr@db.internal/rfr; "
        "`postgres:` alone takes the DSN from RFR_POSTGRES_DSN, which keeps a password out of "
        "the process list and the shell history",
    )
    command.add_argument(
        "--schema",
        metavar="NAME",
        help="the target schema (default: RFR_POSTGRES_SCHEMA, else public); it must exist",
    )
    command.add_argument("--batch", type=int, default=BATCH_EVENTS, metavar="N", help=argparse.SUPPRESS)
    command.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    kind, sep, path = args.source.partition(":")
    if not sep or kind != "sqlite" or not path:
        return _refuse("--from must be sqlite:PATH (a data folder or its events.sqlite3)")
    kind, sep, dsn = args.target.partition(":")
    if not sep or kind != "postgres":
        return _refuse("--to must be postgres:DSN, or postgres: with the DSN in RFR_POSTGRES_DSN")
    dsn = dsn.strip() or os.environ.get("RFR_POSTGRES_DSN", "").strip()
    if not dsn:
        return _refuse("--to postgres: names no DSN and RFR_POSTGRES_DSN is not set")
    schema = (args.schema or os.environ.get("RFR_POSTGRES_SCHEMA", "")).strip() or "public"
    if args.batch < 1:
        return _refuse("--batch must be at least 1")
    try:
        where = describe_dsn(dsn)
        print(f"migrating {Path(path).expanduser()} to schema {schema} on {where}", flush=True)
        report = migrate(
            Path(path),
            dsn,
            schema,
            batch_events=args.batch,
            progress=_progress_printer(),
        )
    except MigrationError as e:
        # The messages name no DSN; redacting them again costs nothing and guards the password.
        return _refuse(redact(str(e), dsn), _exit_code(e))
    print(f"copied {report.copied} events from {report.source} in {report.seconds:.1f} s")
    print(f"source head: {report.source_head} (verified before the copy)")
    print(f"target head: {report.target_head} (verified)")
    if report.same_chain:
        print("the target's chain is the source's, link for link: heads published before still anchor it")
    else:
        print(
            "the target's chain differs from the source's (same events and ids, but some originator "
            "ids were not stored in rfr's spelling in the source): it is valid and verified; publish "
            "the target head above as the new anchor, beside the source head it replaces"
        )
    print(NOT_MIGRATED)
    return 0


def _exit_code(error: MigrationError) -> int:
    if isinstance(error, SourceBroken):
        return EXIT_SOURCE_BROKEN
    if isinstance(error, TargetNotEmpty):
        return EXIT_TARGET_NOT_EMPTY
    if isinstance(error, MigrationFailed):
        return EXIT_FAILED
    return EXIT_USAGE


def _progress_printer() -> Callable[[int, int], None]:
    printed = 0

    def progress(copied: int, total: int) -> None:
        nonlocal printed
        if copied < total and copied // PROGRESS_EVERY > printed // PROGRESS_EVERY:
            print(f"  {copied} of {total} events copied", flush=True)
            printed = copied

    return progress


def _refuse(message: str, code: int = EXIT_USAGE) -> int:
    print(f"rfr migrate: {message}", file=sys.stderr)
    return code
