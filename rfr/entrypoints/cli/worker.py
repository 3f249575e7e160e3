"""`rfr worker [--once]`: the background worker. Each round delivers scheduled usage reports
(A-04), records the flags that fell due (L-06, L-09, L-10, U-03), runs the retention sweep
(R-01..R-04, R-03a, L-12, U-04), then erases the biometric records that no event names (ADR 0015).

Reports: every period of every active report schedule that has ended and not been delivered
is e-mailed to its administrators (RFR_SMTP_*) or, without a mail server, written to
``$RFR_DATA_DIR/reports/<schedule id>/<period>.{json,csv,html}``; a ``ReportDelivered`` event
names the recipients, where it went and its SHA-256. A failed attempt is a ``DeliveryFailed``
event and a line, and is tried again after a back-off (ADR 0027).

Retention: ``RetentionSweep`` records lapsed approvals as expired, takes library images past
their limit out of searching, and erases what is due (library images under R-01 and L-12,
probes under R-02, R-03, U-04 and R-03a, never searched) with a ``Purged`` event for each, in the name of
``rfr:retention-worker``. A line is printed for what was deleted, for each failure (tried
again next round) and for what a legal hold keeps (again only when that changes). The models
and indexes are opened only when something must be erased.

Flags: ``OverdueFlagging`` records each flag the first time it is due, in the name of
``rfr:oversight-worker`` (``rfr.domain.overdue_flags``), and a line is printed for each.

Reconciliation: ``BiometricReconciliation`` checks the biometric records written since the last
round and at least ``RFR_ORPHAN_GRACE_SECONDS`` ago (default an hour) against the events, and
erases those no event names (left by a process killed inside a command's write window); the
first round of a worker also removes stored files no record names (the next round, if that
failed). A line is printed when it erased anything, and for each failure (tried again next round).

Without ``--once`` a round runs every ``--interval`` seconds until SIGINT or SIGTERM.
``--once --as-of ISO_TIME`` runs the one round on a clock standing at that time (ADR 0025): never
earlier than the latest recorded event, and later than now only with ``--allow-future``.

Several workers may run at once: each delivery attempt is saved against the schedule's
version before anything is sent, so only one of two workers sends a period (ADR 0027); a
deletion done by one is at worst reported as a failure by the other.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime
from types import FrameType

from eventsourcing.persistence import PersistenceError

from rfr.adapters.clock import SystemClock
from rfr.application.services.as_of import StillClock, as_of_refusal, latest_event_time
from rfr.application.services.overdue_flags import FlagSummary
from rfr.application.services.reconciliation import ReconciliationSummary
from rfr.application.services.retention import IMAGE_RULES, HeldItem, RetentionSummary
from rfr.application.services.usage_reports import DeliveryOutcome
from rfr.domain.overdue_flags import FLAG_MESSAGES
from rfr.entrypoints.composition import BiometricOptions, Services
from rfr.infrastructure.metrics import worker_job
from rfr.infrastructure.settings import Settings

DEFAULT_INTERVAL_S = 60.0


def register(subparsers: argparse._SubParsersAction) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="run background work: deliver scheduled usage reports, delete what retention rules say must go",
        description="Each round delivers due scheduled usage reports (A-04), records the flags that "
        "fell due (overdue reviews L-06 and U-03, urgent approvals awaiting their written rationale "
        "L-09 or a Superintendent L-10) and runs the retention "
        "sweep: lapsed approvals recorded as expired, library images past their limit taken out of "
        "searching and deleted (R-01), libraries of ended approvals deleted (L-12), probes deleted "
        "when due (R-02, R-03, U-04, and R-03a: never searched, 31 days after submission by default), "
        "legal holds respected and reported (R-04). Then biometric "
        "records that no event names (left by a killed process) are erased once "
        "RFR_ORPHAN_GRACE_SECONDS old.",
    )
    worker.add_argument("--once", action="store_true", help="run one round (reports and retention) and exit")
    worker.add_argument(
        "--as-of",
        type=_iso_time,
        metavar="ISO_TIME",
        help="with --once: run the round as of this time (e.g. 2031-05-01T02:00:00+00:00), doing "
        "everything due by then and dating its events then; never earlier than the latest recorded "
        "event, and not later than now without --allow-future (ADR 0025)",
    )
    worker.add_argument(
        "--allow-future",
        action="store_true",
        help="with --as-of: allow a time later than now (a copy of a store or a test only: its "
        "events are dated ahead of the real clock)",
    )
    worker.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_S,
        metavar="SECONDS",
        help=f"seconds between rounds (default {DEFAULT_INTERVAL_S:g})",
    )
    worker.set_defaults(handler=_worker)


def run_round(services: Services) -> tuple[DeliveryOutcome, ...]:
    """One round of the worker: every due scheduled report delivered."""
    with worker_job("report_delivery"):
        return services.report_delivery.run_due()


def run_retention_round(services: Services) -> RetentionSummary:
    """One retention sweep; the biometrics are opened only if something must be erased."""
    with worker_job("retention"):
        return services.retention_sweep.run()


def run_reconciliation_round(services: Services, *, first: bool = False) -> ReconciliationSummary:
    """One reconciliation: the records written since the last one that no event names are
    erased; the ``first`` round of a worker also removes stored files no record names."""
    with worker_job("reconciliation"):
        return services.reconciliation.run(sweep_files=first)


def run_flagging_round(services: Services) -> FlagSummary:
    """One oversight round: the flags that fell due recorded (L-06, L-09, L-10, U-03)."""
    return services.overdue_flagging.run()


def _worker(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        print("rfr worker: --interval must be positive", file=sys.stderr)
        return 2
    if args.as_of is not None and not args.once:
        # Rounds every --interval as of one fixed time would redo the same round for ever.
        print("rfr worker: --as-of runs one round: give --once too", file=sys.stderr)
        return 2
    if args.allow_future and args.as_of is None:
        print("rfr worker: --allow-future goes with --as-of", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        options = BiometricOptions.from_env()
    except ValueError as e:
        print(f"rfr worker: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    if not args.once:
        _stop_on_signals(stop)
    held: tuple[HeldItem, ...] = ()
    first = True
    try:
        # The biometrics are opened once, on the first erasure: a worker with nothing to delete
        # loads no model.
        clock = None if args.as_of is None else StillClock(args.as_of)
        with Services(settings, biometric_options=options, clock=clock) as services:
            if args.as_of is not None:
                refused = as_of_refusal(
                    args.as_of,
                    latest=latest_event_time(services.app),
                    now=SystemClock().now(),
                    allow_future=args.allow_future,
                )
                if refused:
                    print(f"rfr worker: cannot run as of that time: {refused}", file=sys.stderr)
                    return 2
                print(f"round as of {args.as_of.isoformat()}", flush=True)
            while True:
                for outcome in run_round(services):
                    _report(outcome)
                _report_flags(run_flagging_round(services))
                summary = run_retention_round(services)
                _report_retention(summary, show_held=summary.held != held)
                held = summary.held
                reconciled = run_reconciliation_round(services, first=first)
                _report_reconciliation(reconciled)
                first = first and not reconciled.swept
                if args.once or stop.wait(args.interval):
                    return 0
    except PersistenceError as e:
        print(f"rfr worker: cannot use the event store at {settings.event_store_path}: {e}", file=sys.stderr)
        return 1


def _iso_time(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    # A time without its offset would be read in the machine's zone: events are compared in UTC.
    if at is None or at.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time with its offset from UTC: {value!r} (e.g. 2031-05-01T02:00:00+00:00)"
        )
    return at


def _report(outcome: DeliveryOutcome) -> None:
    if outcome.delivered:
        print(
            f"delivered {outcome.period} of schedule {outcome.schedule_id} to "
            f"{', '.join(outcome.recipients)}: {outcome.location}",
            flush=True,
        )
    elif outcome.status == "failed":
        # The description is the one recorded in the DeliveryFailed event: free of secrets.
        print(
            f"report delivery: FAILED attempt {outcome.attempt} at {outcome.period} of schedule "
            f"{outcome.schedule_id}, tried again from {outcome.next_attempt_at}: {outcome.error}",
            flush=True,
        )
    else:
        print(
            f"withheld {outcome.period} of schedule {outcome.schedule_id}: no recipient is an enabled "
            "administrator",
            flush=True,
        )


_FLAGGED = {"library_approval": "library approval", "ucc": "cache entry"}


def _report_flags(summary: FlagSummary) -> None:
    for kind, subject_id, rule_id in summary.items:
        print(f"flagged {_FLAGGED[kind]} {subject_id}: {FLAG_MESSAGES[rule_id]} ({rule_id})", flush=True)
    for failure in summary.failed:
        print(
            f"flags: FAILED {_FLAGGED.get(failure.kind, failure.kind)} {failure.aggregate_id}, "
            f"tried again next round: {failure.error}",
            flush=True,
        )


def _report_retention(summary: RetentionSummary, *, show_held: bool) -> None:
    done = []
    if summary.approvals_expired:
        done.append(f"recorded approval {', '.join(summary.approvals_expired)} as expired (L-12)")
    if summary.removed_from_search:
        done.append(f"took {summary.removed_from_search} images out of searching (R-01)")
    if summary.deleted:
        counts = ", ".join(f"{n} {_unit(rule, n)} ({rule})" for rule, n in summary.deleted.items())
        done.append(f"deleted {counts} with {summary.templates_destroyed} templates")
    if done:
        print(f"retention: {'; '.join(done)}", flush=True)
    for failure in summary.failed:
        item = f" image {failure.item}" if failure.item else ""
        print(
            f"retention: FAILED {failure.kind} {failure.aggregate_id}{item} ({failure.rule_id}), "
            f"tried again next round: {failure.error}",
            flush=True,
        )
    if show_held:
        for h in summary.held:
            what = f"{h.count} {_unit(h.rule_id, h.count)}" if h.kind == "library" else "deletion"
            print(
                f"retention: held {h.kind} {h.aggregate_id}: {what} due under {h.rule_id} suspended by a "
                f"legal hold (R-04, {h.hold_kind}: {h.hold_reason})",
                flush=True,
            )


# A record kind's noun, singular and plural.
_RECORD_NOUNS = {
    "image": ("image", "images"),
    "analysis": ("face analysis", "face analyses"),
    "subject": ("subject reference", "subject references"),
    "template": ("template", "templates"),
}


def _report_reconciliation(summary: ReconciliationSummary) -> None:
    if summary.erased_total:
        counts = ", ".join(f"{n} {_RECORD_NOUNS[kind][n != 1]}" for kind, n in summary.erased.items())
        print(
            f"reconciliation: erased {counts} that no event names "
            f"({summary.checked} records written since the last round checked)",
            flush=True,
        )
    if summary.files_removed:
        print(
            f"reconciliation: removed {summary.files_removed} stored files that no record names", flush=True
        )
    for failure in summary.failed:
        print(f"reconciliation: FAILED {failure}, tried again next round", flush=True)


def _unit(rule_id: str, n: int) -> str:
    noun = "image" if rule_id in IMAGE_RULES else "probe"
    return noun if n == 1 else noun + "s"


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
