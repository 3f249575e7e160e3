"""`rfr report usage`: a usage report (A-04) for an operator on the server, from the event store.

The operator names themselves with ``--user``: the report runs as that registered
Administrator or Auditor, is role-checked like the API's, and is recorded
(``UsageReportRun``), so a report read on the server leaves the same trace as one read
through the API. A refusal is recorded too and ends with exit code 3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from eventsourcing.persistence import PersistenceError

from rfr.adapters.reporting.html_report import render_html
from rfr.application.errors import AccessDenied, UnknownUser
from rfr.application.services.usage_reports import FORMATS
from rfr.domain.decisions import PolicyRefusal
from rfr.entrypoints.composition import Services
from rfr.infrastructure.settings import Settings

EXIT_USAGE = 2
EXIT_REFUSED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="usage reports (A-04)")
    commands = report.add_subparsers(dest="report_command", required=True, metavar="REPORT_COMMAND")
    usage = commands.add_parser(
        "usage", help="searches, approvals, deletions, overdue reviews and refusals over a period"
    )
    usage.add_argument("--user", required=True, help="your user id (an Administrator or Auditor)")
    usage.add_argument(
        "--from",
        dest="start",
        metavar="ISO_TIME",
        help="start of the period, inclusive (no zone means UTC); default: the first record",
    )
    usage.add_argument(
        "--to",
        dest="end",
        metavar="ISO_TIME",
        help="end of the period, exclusive (no zone means UTC); default: now (a real-time report)",
    )
    usage.add_argument(
        "--format", choices=FORMATS, default="json", help="json (default), csv, or html (a page with charts)"
    )
    usage.add_argument("--reason", default="usage report on the server", help="recorded with the run")
    usage.add_argument("--output", type=Path, help="write to this file instead of standard output")
    usage.set_defaults(handler=_usage)


def parse_time(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _usage(args: argparse.Namespace) -> int:
    try:
        start, end = parse_time(args.start), parse_time(args.end)
        settings = Settings.from_env()
    except ValueError as e:
        print(f"rfr report usage: {e}", file=sys.stderr)
        return EXIT_USAGE
    if start is not None and end is not None and start >= end:
        print("rfr report usage: --from must be before --to", file=sys.stderr)
        return EXIT_USAGE
    if settings.persistence == "sqlite" and not settings.event_store_path.exists():
        print(f"rfr report usage: no event store at {settings.event_store_path}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with Services(settings, create_tables=False) as services:
            report = services.usage_reports.run(
                args.user, start=start, end=end, fmt=args.format, reason=args.reason
            )
    except (PolicyRefusal, AccessDenied, UnknownUser) as e:
        print(f"rfr report usage: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except PersistenceError as e:
        print(f"rfr report usage: cannot read the event store: {e}", file=sys.stderr)
        return EXIT_USAGE
    content = render_html(report, "Usage report") if args.format == "html" else report.render(args.format)[0]
    if args.output is not None:
        args.output.write_bytes(content)
    else:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    return 0
