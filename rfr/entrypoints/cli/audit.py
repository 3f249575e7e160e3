"""`rfr audit verify | head | replay`: the tamper-evidence and time-travel tools (A-02).

They read the event store named by the environment: RFR_PERSISTENCE, then RFR_DATA_DIR (sqlite)
or RFR_POSTGRES_DSN and RFR_POSTGRES_SCHEMA (postgres).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from rfr.application.app import AggregateNotFoundError, RfrApplication
from rfr.entrypoints.composition import Services
from rfr.infrastructure.audit import replay, verify
from rfr.infrastructure.persistence.chain import ChainedRecorder, ChainHead
from rfr.infrastructure.settings import Settings

EXIT_BROKEN = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser("audit", help="verify, anchor and replay the audit trail")
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="AUDIT_COMMAND")

    verify_cmd = commands.add_parser(
        "verify", help="recompute the hash chain over every stored event; non-zero exit if broken"
    )
    verify_cmd.add_argument(
        "--anchor",
        metavar="COUNT:HASH",
        help="a head published earlier by `rfr audit head`; the chain must still pass through it",
    )
    verify_cmd.set_defaults(handler=_verify)

    head_cmd = commands.add_parser(
        "head", help="print COUNT:HASH of the chain head, to publish outside this system"
    )
    head_cmd.set_defaults(handler=_head)

    replay_cmd = commands.add_parser(
        "replay", help="print an aggregate's state, as JSON, as it was at a time"
    )
    replay_cmd.add_argument("--aggregate", required=True, metavar="ID", help="aggregate id (UUID)")
    replay_cmd.add_argument(
        "--until", metavar="ISO_TIME", help="e.g. 2025-03-01T12:00:00+00:00 (no zone means UTC); default now"
    )
    replay_cmd.set_defaults(handler=_replay)

    schema_cmd = commands.add_parser(
        "schema", help="list every event type the audit trail can hold, with version and fields"
    )
    schema_cmd.add_argument("--markdown", action="store_true", help="as the Markdown of docs/audit-events.md")
    schema_cmd.set_defaults(handler=_schema)


def _schema(args: argparse.Namespace) -> int:
    from rfr.infrastructure.audit.catalogue import catalogue_markdown, event_catalogue

    if args.markdown:
        sys.stdout.write(catalogue_markdown())
        return 0
    for event in event_catalogue():
        fields = ", ".join(name for name, _ in event.fields)
        print(f"{event.topic} v{event.class_version}: {fields}")
    return 0


class _Refused(Exception):
    """Ends a sub-command with a message on stderr and exit code 2."""


def _unreadable(settings: Settings, error: Exception) -> str:
    """Names the store opened: the file, or the schema (never the DSN: it may hold a password)."""
    if settings.persistence == "postgres":
        return (
            f"PostgreSQL schema {settings.postgres_schema!r} is not a readable rfr event store "
            f"(check RFR_POSTGRES_DSN and RFR_POSTGRES_SCHEMA): {error}"
        )
    return f"{settings.event_store_path} is not a readable rfr event store: {error}"


@contextmanager
def _store() -> Iterator[RfrApplication]:
    try:
        settings = Settings.from_env()
    except ValueError as e:
        raise _Refused(str(e)) from e
    if settings.persistence == "sqlite" and not settings.event_store_path.exists():
        # Opening would create an empty store, and "0 events, intact" about the wrong folder
        # is worse than an error.
        raise _Refused(f"no event store at {settings.event_store_path} (check RFR_DATA_DIR)")
    try:
        with Services(settings, create_tables=False) as services:
            yield services.app
    except PersistenceError as e:
        raise _Refused(_unreadable(settings, e)) from e


def _refusable(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except _Refused as e:
            print(str(e), file=sys.stderr)
            return EXIT_USAGE

    return run


@_refusable
def _verify(args: argparse.Namespace) -> int:
    try:
        anchor = ChainHead.parse(args.anchor) if args.anchor else None
    except ValueError as e:
        raise _Refused(f"--anchor: {e}") from e
    with _store() as app:
        result = verify(app.recorder, anchor=anchor)
    print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else EXIT_BROKEN


@_refusable
def _head(args: argparse.Namespace) -> int:
    with _store() as app:
        assert isinstance(app.recorder, ChainedRecorder)
        head = app.recorder.chain_head()
    if head is None:
        print("the chain head is missing: run `rfr audit verify`", file=sys.stderr)
        return EXIT_BROKEN
    print(head)
    return 0


@_refusable
def _replay(args: argparse.Namespace) -> int:
    try:
        aggregate_id = UUID(args.aggregate)
        until = dt.datetime.fromisoformat(args.until) if args.until else None
    except ValueError as e:
        raise _Refused(f"bad argument: {e}") from e
    with _store() as app:
        try:
            state = replay(app, aggregate_id, until)
        except AggregateNotFoundError as e:
            print(str(e), file=sys.stderr)
            return EXIT_BROKEN
    print(json.dumps(state, indent=2, sort_keys=True))
    return 0
