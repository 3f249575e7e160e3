"""`rfr worker [--once]`: the background worker; it delivers scheduled usage reports (A-04).

Each round delivers every period of every active report schedule that has ended and not
been delivered: the report is written to ``$RFR_DATA_DIR/reports/<schedule id>/<period>.json``
and a ``ReportDelivered`` event names the recipients, the file and its SHA-256. Without
``--once`` it runs a round every ``--interval`` seconds until SIGINT or SIGTERM.

Several workers may run at once: each delivery is saved against the schedule's version, so
only one of two workers delivering the same period records it (the other's file write is
the same period's report, replaced).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from eventsourcing.persistence import PersistenceError

from rfr.adapters.clock import SystemClock
from rfr.adapters.report_delivery.files import FileReportSink
from rfr.application.app import RfrApplication
from rfr.application.ports import Clock
from rfr.application.services.usage_reports import DeliveryOutcome, ScheduledReportDelivery
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

DEFAULT_INTERVAL_S = 60.0
def register(subparsers: argparse._SubParsersAction) -> None:
    worker = subparsers.add_parser("worker", help="run background work: deliver scheduled usage reports")
    worker.add_argument("--once", action="store_true", help="run one round and exit")
    worker.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_S,
        metavar="SECONDS",
        help=f"seconds between rounds (default {DEFAULT_INTERVAL_S:g})",
    )
    worker.set_defaults(handler=_worker)


def run_round(app: RfrApplication, clock: Clock, settings: Settings) -> tuple[DeliveryOutcome, ...]:
    """One round of the worker over ``app``: every due scheduled report delivered."""
    delivery = ScheduledReportDelivery(app, clock, FileReportSink(settings.data_dir))
    return delivery.run_due()


def _worker(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        print("rfr worker: --interval must be positive", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except ValueError as e:
        print(f"rfr worker: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    if not args.once:
        _stop_on_signals(stop)
    try:
        with RfrApplication(env=application_env(settings)) as app:
            clock = SystemClock()
            while True:
                for outcome in run_round(app, clock, settings):
                    _report(outcome)
                if args.once or stop.wait(args.interval):
                    return 0
    except PersistenceError as e:
        print(f"rfr worker: cannot use the event store at {settings.event_store_path}: {e}", file=sys.stderr)
        return 1


def _report(outcome: DeliveryOutcome) -> None:
    if outcome.delivered:
        print(
            f"delivered {outcome.period} of schedule {outcome.schedule_id} to "
            f"{', '.join(outcome.recipients)}: {outcome.location}",
            flush=True,
        )
    else:
        print(
            f"withheld {outcome.period} of schedule {outcome.schedule_id}: no recipient is an enabled "
            "administrator",
            flush=True,
        )


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
