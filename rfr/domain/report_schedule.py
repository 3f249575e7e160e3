"""Usage reports (A-04, policy 9.1): scheduled deliveries to named administrators, and runs on demand.

A ``ReportSchedule`` says how often (hourly, daily, monthly) a usage report goes to which
administrators. Periods are calendar periods in UTC ([start, end), an hour, a day or a
month); the first one due is the period in progress when the schedule was made, or when
its frequency last changed, so an administrator who asks on Tuesday for a daily report gets
Tuesday's the next morning. A period is due once it has ended. Each delivery is recorded as
``ReportDelivered`` naming its recipients and the digest of what was delivered; a period
whose recipients have all lost the Administrator role (or been disabled) is recorded as
``DeliveryWithheld`` instead, so nobody who may no longer see it receives it and the
period is not tried again.

Each delivery is an attempt first (ADR 0027): ``DeliveryAttempted`` is saved, against the
schedule's version, before anything is sent. It names the attempt's number, the period's
stable Message-ID (``message_id_for``: the same for every attempt at that period) and a lease:
while the lease runs no other worker tries the period, so of two workers only the one whose
attempt was saved sends. The attempt ends with ``ReportDelivered`` or ``DeliveryFailed``
(which period, which attempt, a description of the error without secrets, and when the
next attempt is due: ``retry_delay`` doubles from ``RETRY_FIRST`` up to ``RETRY_CAP``). An
attempt that ends with neither (its worker died) is tried again once its lease has run out,
with the same Message-ID.

A ``UsageReportRun`` records one report run on demand (who, for which period, why), so
reading the usage of the system leaves its own trace like any other read (A-01).

Deliveries are made by the worker, not a person: its events name ``REPORT_WORKER``. Its
authority is the schedule an Administrator made; it holds no role of its own.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import attrs
from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as LibrarySnapshot
from eventsourcing.utils import get_topic

from rfr.domain.calendar import add_months, require_aware
from rfr.domain.decisions import Decision, combine
from rfr.domain.governed import GovernedAggregate, RefusalRecord
from rfr.domain.people import Actor, Role
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, stated

REPORT_WORKER = Actor("rfr:report-worker")

# A failed delivery is tried again after RETRY_FIRST, then after twice as long each time, never
# waiting longer than RETRY_CAP: a mail server down for a night is caught up within the hour
# after it returns, without a worker hammering it meanwhile.
RETRY_FIRST = timedelta(minutes=5)
RETRY_CAP = timedelta(hours=1)
# How long an attempt may take before the period is tried again: far longer than an SMTP
# exchange (timeouts of a minute), so a live attempt is never overtaken.
ATTEMPT_LEASE = timedelta(minutes=15)
# The description of a failed attempt is kept short: it is a diagnosis, not a log.
MAX_ERROR_LENGTH = 500


def retry_delay(attempt: int) -> timedelta:
    """How long after failed attempt number ``attempt`` (from 1) the next one is due."""
    return min(RETRY_FIRST * 2 ** min(max(attempt, 1) - 1, 20), RETRY_CAP)


def message_id_for(schedule_id: object, period_label: str, domain: str) -> str:
    """The period's RFC 5322 Message-ID: derived from the schedule and period alone, so every
    attempt at one period sends the same message and a duplicate is recognisable as one."""
    return f"<usage-report.{schedule_id}.{period_label}@{domain}>"


class ReportFrequency(enum.StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    MONTHLY = "monthly"

    def period_containing(self, moment: datetime) -> ReportPeriod:
        t = require_aware(moment).astimezone(UTC)
        if self is ReportFrequency.HOURLY:
            start = t.replace(minute=0, second=0, microsecond=0)
        elif self is ReportFrequency.DAILY:
            start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return ReportPeriod(self, start)


@attrs.frozen
class ReportPeriod:
    """One calendar period of a frequency, in UTC: ``[start, end)``."""

    frequency: ReportFrequency
    start: datetime

    @property
    def end(self) -> datetime:
        if self.frequency is ReportFrequency.HOURLY:
            return self.start + timedelta(hours=1)
        if self.frequency is ReportFrequency.DAILY:
            return self.start + timedelta(days=1)
        return add_months(self.start, 1)

    @property
    def label(self) -> str:
        """A name fit for a file: 2025-03-01T13 (hourly), 2025-03-01 (daily), 2025-03 (monthly)."""
        if self.frequency is ReportFrequency.HOURLY:
            return self.start.strftime("%Y-%m-%dT%H")
        if self.frequency is ReportFrequency.DAILY:
            return self.start.strftime("%Y-%m-%d")
        return self.start.strftime("%Y-%m")

    def following(self) -> ReportPeriod:
        return ReportPeriod(self.frequency, self.end)


class ScheduleStatus(enum.StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


def may_receive_reports(recipient: Actor) -> bool:
    """A-04: usage reports go to administrators only, and only while they may act."""
    return recipient.has(Role.ADMINISTRATOR) and recipient.active


def recipients_acceptable(recipients: Sequence[Actor]) -> Decision:
    """A-04: at least one named recipient, each an enabled Administrator, none named twice."""
    ids = [r.user_id for r in recipients]
    refused = sorted(r.user_id for r in recipients if not may_receive_reports(r))
    return combine(
        Decision.check(bool(recipients), "A-04", "name at least one administrator to receive the report"),
        Decision.check(len(set(ids)) == len(ids), "A-04", "each recipient is named once"),
        Decision.check(
            not refused, "A-04", f"reports go to enabled administrators only, not {', '.join(refused)}"
        ),
    )


class ReportSchedule(GovernedAggregate):
    class Created(GovernedAggregate.Event, Aggregate.Created):
        name: str
        frequency: str
        recipients: list[str]

        def apply(self, agg: ReportSchedule) -> None:
            agg.name = self.name
            agg.frequency = ReportFrequency(self.frequency)
            agg.recipients = tuple(self.recipients)
            agg.anchor = self.timestamp
            agg.status = ScheduleStatus.ACTIVE
            agg.covered_until = None
            agg.last_delivery = None
            agg.delivered = 0
            agg.created_by = self.acting.user_id
            agg.attempt = None
            agg.attempts = 0
            agg.retry_at = None

    class Changed(GovernedAggregate.Event):
        frequency: str
        recipients: list[str]

        def apply(self, agg: ReportSchedule) -> None:
            frequency = ReportFrequency(self.frequency)
            if frequency is not agg.frequency:
                # A new frequency starts with the period in progress now, not from the old one's.
                agg.anchor = self.timestamp
            agg.frequency = frequency
            agg.recipients = tuple(self.recipients)

    class Cancelled(GovernedAggregate.Event):
        def apply(self, agg: ReportSchedule) -> None:
            agg.status = ScheduleStatus.CANCELLED

    class ReportDelivered(GovernedAggregate.Event):
        period_start: datetime
        period_end: datetime
        period_label: str
        recipients: list[str]
        withheld_from: list[str]
        location: str
        digest: str
        message_id: str
        attempt: int

        # v2 names the attempt that delivered and its Message-ID (ADR 0027). A v1 delivery was
        # a folder written once, before attempts were recorded: attempt 1, no Message-ID.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["message_id"] = ""
            state["attempt"] = 1

        def apply(self, agg: ReportSchedule) -> None:
            agg.covered_until = self.period_end
            agg._period_closed()
            # Only the last delivery and how many there were: the state of a schedule stays the
            # same size however long it runs (the history is in the events, for whoever reads it).
            agg.last_delivery = Delivery(
                self.period_label,
                self.period_start,
                self.period_end,
                tuple(self.recipients),
                self.location,
                self.digest,
                self.timestamp,
            )
            agg.delivered += 1

    class DeliveryWithheld(GovernedAggregate.Event):
        period_start: datetime
        period_end: datetime
        period_label: str
        withheld_from: list[str]

        def apply(self, agg: ReportSchedule) -> None:
            agg.covered_until = self.period_end
            agg._period_closed()

    class DeliveryAttempted(GovernedAggregate.Event):
        period_start: datetime
        period_end: datetime
        period_label: str
        attempt: int
        message_id: str
        channel: str
        lease_until: datetime

        def apply(self, agg: ReportSchedule) -> None:
            agg.attempt = Attempt(
                ReportPeriod(agg.frequency, self.period_start),
                self.attempt,
                self.message_id,
                self.lease_until,
            )
            agg.attempts = self.attempt

    class DeliveryFailed(GovernedAggregate.Event):
        period_start: datetime
        period_end: datetime
        period_label: str
        attempt: int
        error: str
        next_attempt_at: datetime

        def apply(self, agg: ReportSchedule) -> None:
            agg.attempt = None
            agg.retry_at = self.next_attempt_at

    class Snapshot(LibrarySnapshot):
        """The schedule's state at one version, as plain data (ADR 0028).

        The worker loads every schedule every round; the application snapshots schedules
        (``RfrApplication.snapshotting_intervals``) so a load reads one snapshot and the few
        events after it, not the ~3 events of every period delivered since the schedule began.
        The state is written as plain data (strings, numbers, datetimes), like an event's, so
        the transcoder needs nothing of ours and ``class_version`` with ``upcast_vN_vN+1`` on
        ``ReportSchedule`` (the library's mechanism) carries a stored snapshot over a change of
        the state. A snapshot is a cache of the chained events, never part of the audit chain.
        """

        @classmethod
        def take(cls, aggregate: Any) -> ReportSchedule.Snapshot:
            state = aggregate._snapshot_state()
            class_version = getattr(type(aggregate), "class_version", 1)
            if class_version > 1:
                state["class_version"] = class_version
            return cls(  # type: ignore[call-arg]
                originator_id=aggregate.id,
                originator_version=aggregate.version,
                timestamp=cls.create_timestamp(),
                topic=get_topic(type(aggregate)),
                state=state,
            )

        def mutate(self, _: None) -> Any:
            # The library upcasts the plain state and makes the object; the values are ours to make.
            aggregate = super().mutate(None)
            aggregate._restore_snapshot_state()
            return aggregate

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        actor: Actor,
        at: datetime,
        name: str,
        frequency: ReportFrequency,
        recipients: Sequence[Actor],
    ) -> ReportSchedule:
        decision = combine(
            authorised(actor, Role.ADMINISTRATOR),
            stated(name, "A-04", "the schedule's name"),
            recipients_acceptable(recipients),
        )
        enforce_new("create report schedule", "ReportSchedule", actor, at, decision)
        return cls._create(
            cls.Created,
            id=uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=f"{frequency.value} usage report",
            name=name.strip(),
            frequency=ReportFrequency(frequency).value,
            recipients=[r.user_id for r in recipients],
        )

    def change(
        self,
        actor: Actor,
        at: datetime,
        reason: str,
        *,
        frequency: ReportFrequency | None = None,
        recipients: Sequence[Actor] | None = None,
    ) -> None:
        new_frequency = self.frequency if frequency is None else ReportFrequency(frequency)
        new_recipients = self.recipients if recipients is None else tuple(r.user_id for r in recipients)
        self._enforce(
            "change report schedule",
            actor,
            at,
            combine(
                authorised(actor, Role.ADMINISTRATOR),
                self._active(),
                stated(reason, "A-04", "the reason for the change"),
                recipients_acceptable(recipients) if recipients is not None else Decision.allow("A-04"),
                Decision.check(
                    (new_frequency, new_recipients) != (self.frequency, self.recipients),
                    "A-04",
                    "the change changes nothing",
                ),
            ),
        )
        self._record(
            self.Changed,
            actor,
            at,
            reason,
            frequency=new_frequency.value,
            recipients=list(new_recipients),
        )

    def cancel(self, actor: Actor, at: datetime, reason: str) -> None:
        self._enforce(
            "cancel report schedule",
            actor,
            at,
            combine(
                authorised(actor, Role.ADMINISTRATOR),
                self._active(),
                stated(reason, "A-04", "the reason for cancelling"),
            ),
        )
        self._record(self.Cancelled, actor, at, reason)

    def record_delivery(
        self,
        at: datetime,
        period: ReportPeriod,
        recipients: Sequence[Actor],
        *,
        location: str,
        digest: str,
    ) -> None:
        """The worker delivered ``period`` to the named recipients who may still receive it."""
        receiving = [r.user_id for r in recipients if may_receive_reports(r)]
        self._enforce(
            f"deliver usage report {period.label}",
            REPORT_WORKER,
            at,
            combine(
                self._deliverable(at, period),
                Decision.check(
                    set(r.user_id for r in recipients) <= set(self.recipients),
                    "A-04",
                    "a report goes only to the schedule's recipients",
                ),
                Decision.check(bool(receiving), "A-04", "no recipient may receive usage reports now"),
                stated(location, "A-04", "where the report was delivered"),
                stated(digest, "A-04", "the digest of the delivered report"),
            ),
        )
        self._record(
            self.ReportDelivered,
            REPORT_WORKER,
            at,
            f"{self.frequency.value} usage report for {period.label}",
            period_start=period.start,
            period_end=period.end,
            period_label=period.label,
            recipients=receiving,
            withheld_from=self._withheld(recipients),
            location=location,
            digest=digest,
            message_id=self.attempt.message_id if self.attempt is not None else "",
            attempt=self.attempt.number if self.attempt is not None else 1,
        )

    def begin_delivery(self, at: datetime, period: ReportPeriod, *, message_id: str, channel: str) -> int:
        """Claims ``period`` for one attempt, saved before anything is sent; returns its number."""
        self._enforce(
            f"deliver usage report {period.label}",
            REPORT_WORKER,
            at,
            combine(
                self._deliverable(at, period),
                Decision.check(
                    self.retry_at is None or self.retry_at <= at,
                    "A-04",
                    f"{period.label} is tried again from {self.retry_at}",
                ),
                Decision.check(
                    self.attempt is None or self.attempt.lease_until <= at,
                    "A-04",
                    f"{period.label} is being delivered by another attempt",
                ),
                stated(message_id, "A-04", "the report's Message-ID"),
                stated(channel, "A-04", "how the report is delivered"),
            ),
        )
        number = self.attempts + 1
        self._record(
            self.DeliveryAttempted,
            REPORT_WORKER,
            at,
            f"attempt {number} at the {self.frequency.value} usage report for {period.label}",
            period_start=period.start,
            period_end=period.end,
            period_label=period.label,
            attempt=number,
            message_id=message_id,
            channel=channel,
            lease_until=require_aware(at) + ATTEMPT_LEASE,
        )
        return number

    def record_failure(self, at: datetime, period: ReportPeriod, error: str) -> datetime:
        """The attempt at ``period`` failed: recorded with when the next is due, which it returns.
        ``error`` must already be free of secrets (the adapter describes its own failures)."""
        self._enforce(
            f"record failed delivery of usage report {period.label}",
            REPORT_WORKER,
            at,
            combine(
                Decision.check(
                    self.attempt is not None and self.attempt.period == period,
                    "A-04",
                    f"no attempt at {period.label} is in progress",
                ),
                stated(error, "A-04", "what went wrong"),
            ),
        )
        assert self.attempt is not None
        due = require_aware(at) + retry_delay(self.attempt.number)
        self._record(
            self.DeliveryFailed,
            REPORT_WORKER,
            at,
            f"attempt {self.attempt.number} at the usage report for {period.label} failed",
            period_start=period.start,
            period_end=period.end,
            period_label=period.label,
            attempt=self.attempt.number,
            error=" ".join(error.split())[:MAX_ERROR_LENGTH],
            next_attempt_at=due,
        )
        return due

    def withhold_delivery(self, at: datetime, period: ReportPeriod, recipients: Sequence[Actor]) -> None:
        """No recipient may receive reports any more: the period is closed without a delivery."""
        self._enforce(
            f"withhold usage report {period.label}",
            REPORT_WORKER,
            at,
            combine(
                self._deliverable(at, period),
                Decision.check(
                    not any(may_receive_reports(r) for r in recipients),
                    "A-04",
                    "a recipient may still receive the report",
                ),
            ),
        )
        self._record(
            self.DeliveryWithheld,
            REPORT_WORKER,
            at,
            "no named recipient is an enabled administrator now",
            period_start=period.start,
            period_end=period.end,
            period_label=period.label,
            withheld_from=list(self.recipients),
        )

    # -- queries ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.status is ScheduleStatus.ACTIVE

    def next_period(self) -> ReportPeriod:
        """The earliest period not yet delivered (or withheld)."""
        since = self.anchor if self.covered_until is None else max(self.anchor, self.covered_until)
        return self.frequency.period_containing(since)

    def due_periods(self, now: datetime, *, limit: int = 100) -> tuple[ReportPeriod, ...]:
        """Ended periods not yet delivered, oldest first, at most ``limit`` (a worker catches up).
        None while the next period waits for its retry or another attempt's lease: periods are
        delivered in order."""
        if not self.active or not self.may_attempt(now):
            return ()
        due: list[ReportPeriod] = []
        period = self.next_period()
        while period.end <= now and len(due) < limit:
            due.append(period)
            period = period.following()
        return tuple(due)

    def may_attempt(self, now: datetime) -> bool:
        """No retry is waited for and no other attempt is live at ``now``."""
        waiting = self.retry_at is not None and self.retry_at > now
        busy = self.attempt is not None and self.attempt.lease_until > now
        return not waiting and not busy

    # -- snapshot state (see ``Snapshot``) ------------------------------------------------------

    # Every attribute a schedule has, so one added without its place in the snapshot fails the
    # first snapshot taken (tests take them) instead of being silently lost on a later load.
    _SNAPSHOT_KEYS = frozenset(
        {
            "name", "frequency", "recipients", "anchor", "status", "covered_until", "created_by",
            "attempt", "attempts", "retry_at", "last_delivery", "delivered", "_refusals",
            "_created_on", "_modified_on",
        }
    )  # fmt: skip
    _LIBRARY_KEYS = frozenset({"_id", "_version", "_pending_events"})

    def _snapshot_state(self) -> dict[str, Any]:
        unkept = set(vars(self)) - self._SNAPSHOT_KEYS - self._LIBRARY_KEYS
        if unkept:
            raise TypeError(
                f"ReportSchedule.{', '.join(sorted(unkept))} has no place in its snapshot: add it to "
                "_snapshot_state and _restore_snapshot_state, bump class_version and add an upcast"
            )
        attempt, last = self.attempt, self.last_delivery
        return {
            "name": self.name,
            "frequency": self.frequency.value,
            "recipients": list(self.recipients),
            "anchor": self.anchor,
            "status": self.status.value,
            "covered_until": self.covered_until,
            "created_by": self.created_by,
            "attempt": None
            if attempt is None
            else {
                "frequency": attempt.period.frequency.value,
                "period_start": attempt.period.start,
                "number": attempt.number,
                "message_id": attempt.message_id,
                "lease_until": attempt.lease_until,
            },
            "attempts": self.attempts,
            "retry_at": self.retry_at,
            "last_delivery": None
            if last is None
            else {**attrs.asdict(last), "recipients": list(last.recipients)},
            "delivered": self.delivered,
            "_refusals": [
                {
                    "command": r.command,
                    "actor": r.actor.to_data(),
                    "rule_ids": list(r.rule_ids),
                    "reason": r.reason,
                    "at": r.at,
                }
                for r in self._refusals
            ],
            "_created_on": self._created_on,
            "_modified_on": self._modified_on,
        }

    def _restore_snapshot_state(self) -> None:
        """Turns the plain values a snapshot set back into the schedule's own."""
        self.frequency = ReportFrequency(self.frequency)
        self.recipients = tuple(self.recipients)
        self.status = ScheduleStatus(self.status)
        attempt: Any = self.attempt
        if attempt is not None:
            self.attempt = Attempt(
                ReportPeriod(ReportFrequency(attempt["frequency"]), attempt["period_start"]),
                attempt["number"],
                attempt["message_id"],
                attempt["lease_until"],
            )
        last: Any = self.last_delivery
        if last is not None:
            self.last_delivery = Delivery(**{**last, "recipients": tuple(last["recipients"])})
        self._refusals = [
            RefusalRecord(
                r["command"], Actor.from_data(r["actor"]), tuple(r["rule_ids"]), r["reason"], r["at"]
            )
            for r in self._refusals  # type: ignore[index]
        ]

    # -- helpers ----------------------------------------------------------------------------

    def _period_closed(self) -> None:
        self.attempt = None
        self.attempts = 0
        self.retry_at = None

    def _active(self) -> Decision:
        return Decision.check(self.active, "A-04", "the schedule was cancelled")

    def _deliverable(self, at: datetime, period: ReportPeriod) -> Decision:
        # A period already sent by the attempt in progress is recorded as delivered even if the
        # schedule changed or was cancelled while it was being sent: the event says what happened.
        claimed = self.attempt is not None and self.attempt.period == period
        return combine(
            Decision.check(claimed or self.active, "A-04", "the schedule was cancelled"),
            Decision.check(
                claimed or period == self.next_period(), "A-04", f"{period.label} is not the period due next"
            ),
            Decision.check(period.end <= at, "A-04", f"{period.label} has not ended yet"),
        )

    def _withheld(self, recipients: Iterable[Actor]) -> list[str]:
        may = {r.user_id for r in recipients if may_receive_reports(r)}
        return [r for r in self.recipients if r not in may]


@attrs.frozen
class Attempt:
    """The attempt in progress: which period, its number, its Message-ID, until when it is live."""

    period: ReportPeriod
    number: int
    message_id: str
    lease_until: datetime


@attrs.frozen
class Delivery:
    period_label: str
    period_start: datetime
    period_end: datetime
    recipients: tuple[str, ...]
    location: str
    digest: str
    delivered_at: datetime


class UsageReportRun(GovernedAggregate):
    """One usage report run on demand: who asked, for which period, in which format, and why."""

    class Produced(GovernedAggregate.Event, Aggregate.Created):
        period_from: datetime | None
        period_to: datetime
        format: str

        def apply(self, agg: UsageReportRun) -> None:
            agg.period_from = self.period_from
            agg.period_to = self.period_to
            agg.format = self.format
            agg.by = self.acting.user_id

    @classmethod
    def record(
        cls,
        actor: Actor,
        at: datetime,
        period_from: datetime | None,
        period_to: datetime,
        *,
        fmt: str,
        reason: str,
    ) -> UsageReportRun:
        decision = combine(
            authorised(actor, Role.ADMINISTRATOR, Role.AUDITOR),
            stated(reason, "A-04", "the reason for the report"),
            Decision.check(
                period_from is None or period_from < period_to, "A-04", "the period must start before it ends"
            ),
        )
        enforce_new("run usage report", "UsageReportRun", actor, at, decision)
        return cls._create(
            cls.Produced,
            id=uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=reason,
            period_from=require_aware(period_from) if period_from is not None else None,
            period_to=require_aware(period_to),
            format=fmt,
        )
