"""Usage reports (A-04, policy 9.1): what the system was used for, computed from the audit trail.

The event store is the single source of truth. A report reads the usage projection
(``rfr.application.projections.usage_counts``), which the store keeps from the same events in
the same transactions and which ``rfr projections rebuild`` recomputes from the log, so a
report costs its period, not the whole history (issue 9, ADR 0013).

A report covers the period ``[start, end)`` by event time (``start`` None: since the first
record; ``end`` None: up to and including now, a real-time report). Counts of things that happened are
counted when they happened; states (the outcome of a request, overdue reviews) are as they
stood at the end of the period, or now if that is earlier. See ``UsageReport`` for every
measure.

Who may run one: Administrators (policy 9.1 gives reporting to the administration client)
and Auditors. A usage report is an aggregate view of the audit trail, which Auditors read
anyway (A-03), and every run is itself recorded (``UsageReportRun``), so letting them read
it adds no unrecorded access. Only Administrators manage schedules, and only enabled
administrators receive scheduled reports (A-04).

Scheduled reports: ``ReportSchedules`` manages the ``ReportSchedule`` aggregates;
``ScheduledReportDelivery.run_due`` (driven by ``rfr worker``) takes each due period in turn:

1. load the schedule; record the attempt (``DeliveryAttempted``, with the period's stable
   Message-ID) and save it against the schedule's version: of two workers, only the one whose
   attempt is saved goes on;
2. compute the period's report and hand the JSON document, the CSV and the HTML report to the
   ``ReportSink`` (e-mail, or files when SMTP is not configured);
3. record ``ReportDelivered`` (with where it went and the SHA-256 of the JSON document) or
   ``DeliveryFailed`` (with the sink's description and when to try again), and save.

The sink acts before the outcome is saved, so an event never claims a delivery that did not
happen; a crash between them leaves an attempt without an outcome, tried again with the same
Message-ID when its lease runs out (docs/adr/0027-report-delivery-by-e-mail.md says why that
is the only way a report can reach anyone twice, and why then it is the same message).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import attrs

from rfr.application.app import ConcurrentModification, RfrApplication
from rfr.application.errors import UnknownUser
from rfr.application.ports import Clock, ReportAttachment, ReportDeliveryError, ReportMessage, ReportSink
from rfr.application.projections.usage_counts import APPROVAL, EXCEPTION, UCC, RequestTimes, micros
from rfr.application.services.base import Need, Page, UseCase, list_ids
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Actor, Role
from rfr.domain.policy_exception import PolicyException
from rfr.domain.probe_image import ProbeImage
from rfr.domain.report_schedule import (
    ReportFrequency,
    ReportPeriod,
    ReportSchedule,
    UsageReportRun,
    may_receive_reports,
    message_id_for,
)

ReportFormat = Literal["json", "csv", "html"]
# JSON and CSV are rendered here; HTML, with its charts, by rfr.adapters.reporting.html_report.
FORMATS: tuple[str, ...] = ("json", "csv", "html")

REPORT_READERS = Need((Role.ADMINISTRATOR, Role.AUDITOR))
SCHEDULE_MANAGERS = Need((Role.ADMINISTRATOR,))

# A worker run catches up at most this many periods per schedule; the next run goes on.
MAX_PERIODS_PER_RUN = 48


# -- the report ------------------------------------------------------------------------------


@attrs.frozen
class UsageReport:
    """A usage report. ``sections`` holds, by section name:

    ``searches``
        requests_opened; requests_by_purpose / _by_ground (a request with two purposes counts
        under both); requests_by_probe_level; requests_by_user (the requester);
        request_outcomes of the requests opened in the period, as they stood at the end:
        viable_match, no_viable_match, not_searched, rejected (by an approver, P-12), and
        refused_to_open (attempts the policy refused, which never became requests);
        library_searches (one per library searched) by_library, by_library_level,
        by_algorithm and by_searcher; library_searches_refused; potential_matches;
        adjudications viable / not_viable; match_reports; disseminations; ucc_rescreens and
        ucc_rescreen_viable_matches (U-02). ``library_names`` names the libraries by id.
    ``approvals``
        library approvals (applied, granted, granted_urgently, awaiting_superintendent,
        rejected, ratified, varied, reviews by outcome, stopped, expired); search approvals
        (granted, rejected, P-08/P-09); UCC additions, reviews and removals.
    ``deletions``
        probes_purged, library_images_purged, templates_deleted (R-05), and
        library_images_retention_expired (R-01, out of searching, deletion pending).
    ``overdue_reviews``
        as_of; library_approvals overdue for review (L-06) and ucc entries
        overdue (U-03), each with its id and due date.
    ``refusals``
        total, by_rule (a refusal naming two rules counts under both) and by_command (A-01).
    ``reports``
        usage reports run on demand, scheduled reports delivered, and failed delivery
        attempts (A-04).
    ``ucc_state``
        as_of; the probes in the Unresolved Crime Cache then (``in_cache``), and of those how
        many were overdue for review (U-03) and how many in date.
    ``policy_exceptions``
        recorded, endorsed and not_endorsed in the period (A-06); ``awaiting_sro``: how many
        awaited the SRO at the end, and ``awaiting``, each with its id, its decision (the first
        words) and when it was recorded (``since``).
    ``timeline``
        the same figures over time: ``step`` (hour, day, week, 30 days or a longer span in whole
        days, the shortest that keeps the timeline within ``MAX_STEPS``), ``starts`` (the start
        of each step), ``series`` (by measure of ``TIMELINE_MEASURES`` and key, the count in each
        step) and ``request_outcomes`` (the outcome, at the end of the period, of the requests
        opened in each step). Empty (``step`` null) when the period counted nothing.
    """

    period_from: datetime | None
    period_to: datetime
    generated_at: datetime
    real_time: bool
    sections: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "report": "usage",
            "rule": "A-04",
            "period": {
                "from": _iso(self.period_from),
                "to": _iso(self.period_to),
                "real_time": self.real_time,
            },
            "generated_at": _iso(self.generated_at),
            **self.sections,
        }

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_json(), indent=2, sort_keys=True).encode("utf-8")

    def rows(self) -> Iterator[tuple[str, str, str, str, str]]:
        """(section, measure, key, label, value): one line per number or listed item; in the
        ``timeline`` section the label is the start of the step counted."""
        yield ("period", "from", "", "", _iso(self.period_from) or "")
        yield ("period", "to", "", "", _iso(self.period_to) or "")
        yield ("period", "generated_at", "", "", _iso(self.generated_at) or "")
        names = self.sections["searches"]["library_names"]
        for section, content in self.sections.items():
            if section == "timeline":
                yield from _timeline_rows(content)
            else:
                yield from _rows(section, "", content, names)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("section", "measure", "key", "label", "value"))
        writer.writerows(self.rows())
        return out.getvalue()

    def render(self, fmt: str) -> tuple[bytes, str]:
        """The report as bytes in ``fmt`` (json or csv) and its media type."""
        if fmt == "csv":
            return self.to_csv().encode("utf-8"), "text/csv; charset=utf-8"
        if fmt == "json":
            return self.to_json_bytes(), "application/json"
        raise ValueError(f"format must be json or csv here (html is drawn by an adapter), not {fmt!r}")


# The HTML report with its charts (``rfr.adapters.reporting.html_report.render_html``): the
# report and a title in, a whole HTML document out.
HtmlRenderer = Callable[[UsageReport, str], bytes]


def _timeline_rows(timeline: Mapping[str, Any]) -> Iterator[tuple[str, str, str, str, str]]:
    yield ("timeline", "step", "", "", timeline["step"] or "")
    starts = timeline["starts"]
    for measure, by_key in timeline["series"].items():
        for key, counts in by_key.items():
            for start, n in zip(starts, counts, strict=True):
                yield ("timeline", measure, key, start, str(n))
    for outcome, counts in timeline["request_outcomes"].items():
        for start, n in zip(starts, counts, strict=True):
            yield ("timeline", "request_outcomes", outcome, start, str(n))


def _rows(
    section: str, measure: str, value: Any, names: Mapping[str, str]
) -> Iterator[tuple[str, str, str, str, str]]:
    if section == "searches" and measure == "library_names":
        return
    if isinstance(value, Mapping):
        if measure and all(isinstance(v, int) for v in value.values()):
            label = names if measure == "by_library" else {}
            for key, count in value.items():
                yield (section, measure, str(key), label.get(str(key), ""), str(count))
            return
        for key, inner in value.items():
            yield from _rows(section, f"{measure}.{key}" if measure else str(key), inner, names)
    elif isinstance(value, list):
        for item in value:
            when = item["due"] if "due" in item else item["since"]
            yield (section, measure, str(item["id"]), str(item.get("label", "")), str(when))
    elif isinstance(value, bool):
        yield (section, measure, "", "", str(value).lower())
    else:
        yield (section, measure, "", "", "" if value is None else str(value))


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _counts(counter: Counter[str]) -> dict[str, int]:
    return {k: counter[k] for k in sorted(counter)}


# -- computing it from the projection ---------------------------------------------------------


class Counts:
    """The facts of a period (``usage_counts.Fact``), summed by measure and key."""

    def __init__(self, facts: Iterable[tuple[str, str, int]]) -> None:
        self.c: dict[str, Counter[str]] = {}
        for measure, key, n in facts:
            self.c.setdefault(measure, Counter())[key] += n

    def total(self, name: str) -> int:
        return self.c.get(name, Counter())[""]

    def by(self, name: str) -> dict[str, int]:
        return _counts(self.c.get(name, Counter()))

    def of(self, name: str, keys: Sequence[str]) -> dict[str, int]:
        found = self.c.get(name, Counter())
        return {k: found[k] for k in keys}


OUTCOMES = ("viable_match", "no_viable_match", "not_searched", "rejected")


def outcome_of(r: RequestTimes, until: int) -> str:
    """A request's outcome as it stood at ``until`` (inclusive): each time is final once set,
    so the first set before the end decides."""

    def by(moment: int | None) -> bool:
        return moment is not None and moment <= until

    if by(r.rejected_at):
        return "rejected"
    if by(r.viable_at):
        return "viable_match"
    if by(r.searched_at):
        return "no_viable_match"
    return "not_searched"


def _outcomes(requests: Sequence[RequestTimes], until: int, refused: int) -> dict[str, int]:
    """The outcome of each request opened in the period, as it stood at its end (``until``)."""
    found = Counter(outcome_of(r, until) for r in requests)
    return {**{k: found[k] for k in OUTCOMES}, "refused_to_open": refused}


# -- the timeline -------------------------------------------------------------------------------

# What the timeline counts per step: the searches by each of their dimensions, refusals and deletions.
TIMELINE_MEASURES = (
    "requests",
    "requests_by_purpose",
    "requests_by_ground",
    "requests_by_probe_level",
    "requests_by_user",
    "library_searches",
    "by_library",
    "by_library_level",
    "refusals",
    "refusals_by_rule",
    "probes_purged",
    "library_images_purged",
)
# The steps a timeline may take, shortest first; the first that keeps it within MAX_STEPS is taken.
STEPS = (
    ("hour", timedelta(hours=1)),
    ("day", timedelta(days=1)),
    ("week", timedelta(days=7)),
    ("30 days", timedelta(days=30)),
)
MAX_STEPS = 60


@attrs.frozen
class TimelineFrame:
    """The steps of a timeline: ``count`` steps of ``step`` from ``origin``."""

    origin: datetime
    name: str
    step: timedelta
    count: int

    def index(self, at_micros: int) -> int:
        """The step holding a moment of the period (the last holds the inclusive end)."""
        return min(
            (at_micros - micros(self.origin)) // (self.step // timedelta(microseconds=1)), self.count - 1
        )

    def starts(self) -> list[str]:
        return [_iso(self.origin + i * self.step) or "" for i in range(self.count)]


def timeline_frame(start: datetime | None, end: datetime, first: datetime | None) -> TimelineFrame | None:
    """The steps of ``[start, end)``; a report since the first record starts on the UTC day of
    its first counted fact (``first``); None when nothing was counted."""
    origin = start
    if origin is None and first is not None:
        origin = first.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if origin is None or origin >= end:
        return None
    span = end - origin
    for name, step in STEPS:
        count = -(-span // step)
        if count <= MAX_STEPS:
            return TimelineFrame(origin, name, step, count)
    days = -(-span // (timedelta(days=1) * MAX_STEPS))
    step = timedelta(days=days)
    return TimelineFrame(origin, f"{days} days", step, -(-span // step))


def timeline_section(
    frame: TimelineFrame | None,
    counted: Iterable[tuple[int, str, str, int]],
    opened: Iterable[tuple[int, str]],
) -> dict[str, Any]:
    """The ``timeline`` section from (step, measure, key, n) of the period's facts and
    (step, outcome) of the requests opened in it."""
    if frame is None:
        return {"step": None, "starts": [], "series": {}, "request_outcomes": {}}
    series: dict[str, dict[str, list[int]]] = {}
    last = frame.count - 1
    for index, measure, key, n in counted:
        # A real-time report's end is included: a fact at that very moment goes in the last step.
        series.setdefault(measure, {}).setdefault(key, [0] * frame.count)[min(index, last)] += n
    outcomes: dict[str, list[int]] = {k: [0] * frame.count for k in OUTCOMES}
    for index, outcome in opened:
        outcomes[outcome][index] += 1
    return {
        "step": frame.name,
        "starts": frame.starts(),
        "series": {m: {k: series[m][k] for k in sorted(series[m])} for m in sorted(series)},
        "request_outcomes": outcomes,
    }


def _as_of(app: RfrApplication, aggregate_id: UUID, end: datetime, *, end_inclusive: bool) -> Any:
    """The aggregate as it stood at the end of the period: its own events up to then, replayed."""
    state = None
    for stored in app.recorder.select_events(aggregate_id):
        event = app.mapper.to_domain_event(stored)
        if event.timestamp > end or (event.timestamp == end and not end_inclusive):
            break
        state = event.mutate(state)
    return state


def _open_at_end(
    app: RfrApplication, end: datetime, as_of: datetime, *, end_inclusive: bool
) -> list[tuple[str, str, Any]]:
    """(id, kind, state at the end of the period) of the library approvals, cache entries and
    policy exceptions open at ``as_of``: the projection names the only ones that can be, and
    each is replayed from its own events, once."""
    return [
        (subject_id, kind, _as_of(app, UUID(subject_id), end, end_inclusive=end_inclusive))
        for subject_id, kind in app.usage_counts.open_for_review(as_of)
    ]


def _overdue(
    open_: Sequence[tuple[str, str, Any]], as_of: datetime, names: Mapping[str, str]
) -> dict[str, Any]:
    """L-06, U-03: the approvals and cache entries overdue for review at ``as_of``, as the
    domain decides it on their state at the end of the period."""
    approvals, cache = [], []
    for subject_id, kind, state in open_:
        if kind == APPROVAL and isinstance(state, LibraryApproval) and state.review_overdue(as_of):
            label = names.get(subject_id, state.application.library_name)
            approvals.append({"id": subject_id, "label": label, "due": _iso(state.review_due)})
        elif kind == UCC and isinstance(state, ProbeImage) and state.ucc_review_overdue(as_of):
            cache.append(
                {"id": subject_id, "label": f"tier {state.ucc.tier}", "due": _iso(state.ucc.review_due)}
            )
    return {
        "as_of": _iso(as_of),
        "library_approvals": sorted(approvals, key=lambda item: (item["due"], item["id"])),
        "ucc": sorted(cache, key=lambda item: (item["due"], item["id"])),
    }


def in_cache(probe: ProbeImage) -> bool:
    """In the Unresolved Crime Cache: added, not removed, not deleted (U-01..U-04)."""
    return probe.ucc is not None and probe.ucc.removed_at is None and probe.purged_at is None


def ucc_state(as_of: datetime, in_cache_count: int, overdue: int) -> dict[str, Any]:
    return {
        "as_of": _iso(as_of),
        "in_cache": in_cache_count,
        "review_overdue": overdue,
        "review_in_date": in_cache_count - overdue,
    }


def awaiting_item(exception: PolicyException) -> dict[str, str]:
    """A policy exception awaiting the SRO as the report lists it: the first words of its decision."""
    words = " ".join(exception.decision.split())
    label = words if len(words) <= 80 else words[:79] + "…"
    return {"id": str(exception.id), "label": label, "since": _iso(exception.created_on) or ""}


def _cache_and_exceptions(open_: Sequence[tuple[str, str, Any]]) -> tuple[int, list[dict[str, str]]]:
    """How many probes were in the cache at the end of the period, and the policy exceptions
    awaiting the SRO then (A-06)."""
    in_ucc, awaiting = 0, []
    for _, kind, state in open_:
        if kind == UCC and isinstance(state, ProbeImage) and in_cache(state):
            in_ucc += 1
        elif kind == EXCEPTION and isinstance(state, PolicyException) and state.awaiting_sro:
            awaiting.append(awaiting_item(state))
    return in_ucc, sorted(awaiting, key=lambda item: (item["since"], item["id"]))


def report_sections(
    counts: Counts,
    outcomes: dict[str, int],
    library_names: Mapping[str, str],
    overdue: dict[str, Any],
    *,
    in_ucc: int,
    awaiting_sro: Sequence[Mapping[str, str]],
    timeline: dict[str, Any],
) -> dict[str, Any]:
    """The sections of a report (see ``UsageReport``) from what its period counted, the outcomes
    of the requests opened in it, the libraries' names, the reviews overdue at its end, the
    cache's size and the policy exceptions awaiting the SRO then, and its timeline."""
    adjudications = counts.of("adjudications", ("viable", "not_viable"))
    return {
        "searches": {
            "requests_opened": counts.total("requests"),
            "requests_by_purpose": counts.by("requests_by_purpose"),
            "requests_by_ground": counts.by("requests_by_ground"),
            "requests_by_probe_level": counts.by("requests_by_probe_level"),
            "requests_by_user": counts.by("requests_by_user"),
            "request_outcomes": outcomes,
            "library_searches": counts.total("library_searches"),
            "by_library": counts.by("by_library"),
            "by_library_level": counts.by("by_library_level"),
            "by_algorithm": counts.by("by_algorithm"),
            "by_searcher": counts.by("by_searcher"),
            "library_searches_refused": counts.total("library_searches_refused"),
            "potential_matches": counts.total("potential_matches"),
            "adjudications": adjudications,
            "match_reports": counts.total("match_reports"),
            "disseminations": counts.total("disseminations"),
            "ucc_rescreens": counts.total("ucc_rescreens"),
            "ucc_rescreen_viable_matches": counts.total("ucc_rescreen_viable_matches"),
            "library_names": {k: library_names[k] for k in sorted(library_names)},
        },
        "approvals": {
            "library": counts.of(
                "library_approvals",
                (
                    "applied",
                    "granted",
                    "granted_urgently",
                    "awaiting_superintendent",
                    "rejected",
                    "ratified",
                    "varied",
                    "stopped",
                    "expired",
                ),
            ),
            "library_reviews": counts.of("library_reviews", ("continue", "vary", "stop")),
            "search": counts.of("search_approvals", ("granted", "rejected")),
            "ucc": counts.of("ucc", ("added", "reviewed", "removed")),
        },
        "deletions": {
            "probes_purged": counts.total("probes_purged"),
            "library_images_purged": counts.total("library_images_purged"),
            "templates_deleted": counts.total("templates_deleted"),
            "library_images_retention_expired": counts.total("library_images_retention_expired"),
        },
        "overdue_reviews": overdue,
        "refusals": {
            "total": counts.total("refusals"),
            "by_rule": counts.by("refusals_by_rule"),
            "by_command": counts.by("refusals_by_command"),
        },
        "reports": {
            "run_on_demand": counts.total("reports_run"),
            "delivered": counts.total("reports_delivered"),
            "delivery_attempts_failed": counts.total("report_deliveries_failed"),
        },
        "ucc_state": ucc_state(datetime.fromisoformat(overdue["as_of"]), in_ucc, len(overdue["ucc"])),
        "policy_exceptions": {
            **counts.of("policy_exceptions", ("recorded", "endorsed", "not_endorsed")),
            "awaiting_sro": len(awaiting_sro),
            "awaiting": [dict(item) for item in awaiting_sro],
        },
        "timeline": timeline,
    }


def compute_usage(
    app: RfrApplication, *, start: datetime | None, end: datetime, now: datetime, real_time: bool = False
) -> UsageReport:
    """The usage report of ``[start, end)`` as the store holds it now (see ``UsageReport``).

    It reads the usage projection's rows of the period, the libraries, and the approvals and
    cache entries open at its end (each replayed from its own events): never the whole log.
    """
    if start is not None and start >= end:
        raise ValueError("the period must start before it ends")
    # A real-time report includes what happened at the very moment it is run.
    inclusive = real_time
    usage = app.usage_counts
    counts = Counts(usage.facts(start, end, end_inclusive=inclusive))
    libraries = usage.libraries(end, end_inclusive=inclusive)
    until = micros(end) - (0 if inclusive else 1)
    opened = usage.requests_opened(start, end, end_inclusive=inclusive)
    outcomes = _outcomes(opened, until, counts.total("requests_refused"))
    as_of = min(end, now)
    open_ = _open_at_end(app, end, as_of, end_inclusive=inclusive)
    overdue = _overdue(open_, as_of, {lib.approval_id: lib.name for lib in libraries})
    in_ucc, awaiting = _cache_and_exceptions(open_)
    first = usage.first_fact(end, end_inclusive=inclusive) if start is None else None
    frame = timeline_frame(start, end, first)
    timeline = timeline_section(
        frame,
        usage.facts_by_step(
            frame.origin, end, end_inclusive=inclusive, step=frame.step, measures=TIMELINE_MEASURES
        )
        if frame
        else (),
        ((frame.index(r.opened_at), outcome_of(r, until)) for r in opened) if frame else (),
    )
    sections = report_sections(
        counts,
        outcomes,
        {lib.library_id: lib.name for lib in libraries},
        overdue,
        in_ucc=in_ucc,
        awaiting_sro=awaiting,
        timeline=timeline,
    )
    return UsageReport(start, end, now, real_time, sections)


# -- on demand -------------------------------------------------------------------------------


class UsageReports(UseCase):
    def run(
        self,
        acting_user: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        fmt: str = "json",
        reason: str = "usage report on demand",
    ) -> UsageReport:
        """A-04: the report of ``[start, end)`` (``end`` None: up to now), recorded before it is returned."""
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
        if start is not None and end is not None and start >= end:
            raise ValueError("the period must start before it ends")

        def produce(act: Any) -> UsageReport:
            until = end or act.at
            act.new(UsageReportRun.record(act.actor, act.at, start, until, fmt=fmt, reason=reason))
            return compute_usage(self.app, start=start, end=until, now=act.at, real_time=end is None)

        return self._act(acting_user, "run usage report", [], produce, target_name="UsageReportRun")


# -- schedules -------------------------------------------------------------------------------


@attrs.frozen
class DeliveryView:
    """One scheduled report delivered (A-04).

    Attributes:
        period: The period's label: ``2025-03-01T13`` (hourly), ``2025-03-01`` (daily) or
            ``2025-03`` (monthly).
        period_start: The start of the period, inclusive.
        period_end: The end of the period, exclusive.
        recipients: The user ids of the administrators it was delivered to.
        location: Where the report was written for them.
        digest: ``sha256:`` and the hex SHA-256 of the report delivered.
        delivered_at: When it was delivered.
    """

    period: str
    period_start: datetime
    period_end: datetime
    recipients: tuple[str, ...]
    location: str
    digest: str
    delivered_at: datetime


@attrs.frozen
class ScheduleView:
    """A usage report schedule (A-04).

    Attributes:
        id: The schedule's id.
        name: Its name.
        frequency: ``hourly``, ``daily`` or ``monthly``.
        recipients: The user ids of the administrators who receive its reports.
        status: ``active`` or ``cancelled``.
        created_by: The user id of the administrator who created it.
        next_period: The label of the next period to deliver, or null once cancelled.
        next_due_at: When that period ends and its report falls due, or null once cancelled.
        last_delivery: The latest delivery, or null before the first.
        deliveries: How many periods have been delivered.
        failed_attempts: Attempts at the next period that failed (each a ``DeliveryFailed``
            event with the reason), 0 when none has.
        retry_at: When the next period, whose last attempt failed, is tried again; else null.
    """

    id: UUID
    name: str
    frequency: str
    recipients: tuple[str, ...]
    status: str
    created_by: str
    next_period: str | None
    next_due_at: datetime | None
    last_delivery: DeliveryView | None
    deliveries: int
    failed_attempts: int
    retry_at: datetime | None

    @classmethod
    def of(cls, schedule: ReportSchedule) -> ScheduleView:
        following = schedule.next_period() if schedule.active else None
        last = schedule.last_delivery
        return cls(
            id=schedule.id,
            name=schedule.name,
            frequency=schedule.frequency.value,
            recipients=schedule.recipients,
            status=schedule.status.value,
            created_by=schedule.created_by,
            next_period=following.label if following else None,
            next_due_at=following.end if following else None,
            last_delivery=DeliveryView(
                last.period_label,
                last.period_start,
                last.period_end,
                last.recipients,
                last.location,
                last.digest,
                last.delivered_at,
            )
            if last
            else None,
            deliveries=schedule.delivered,
            failed_attempts=schedule.attempts - (1 if schedule.attempt is not None else 0),
            retry_at=schedule.retry_at,
        )


class ReportSchedules(UseCase):
    """Administrators schedule usage reports for named administrators (A-04)."""

    def create(
        self, acting_user: str, name: str, frequency: ReportFrequency | str, recipients: Sequence[str]
    ) -> ScheduleView:
        frequency = ReportFrequency(frequency)
        people = self._recipients(recipients)
        schedule = self._act(
            acting_user,
            "create report schedule",
            [],
            lambda a: a.new(ReportSchedule.create(a.actor, a.at, name, frequency, people)),
            target_name="ReportSchedule",
        )
        return ScheduleView.of(schedule)

    def change(
        self,
        acting_user: str,
        schedule_id: UUID | str,
        reason: str,
        *,
        frequency: ReportFrequency | str | None = None,
        recipients: Sequence[str] | None = None,
    ) -> ScheduleView:
        schedule = self.load(schedule_id, ReportSchedule)
        new_frequency = ReportFrequency(frequency) if frequency is not None else None
        people = self._recipients(recipients) if recipients is not None else None
        self._act(
            acting_user,
            "change report schedule",
            [schedule],
            lambda a: schedule.change(a.actor, a.at, reason, frequency=new_frequency, recipients=people),
        )
        return ScheduleView.of(schedule)

    def cancel(self, acting_user: str, schedule_id: UUID | str, reason: str) -> ScheduleView:
        schedule = self.load(schedule_id, ReportSchedule)
        self._act(
            acting_user,
            "cancel report schedule",
            [schedule],
            lambda a: schedule.cancel(a.actor, a.at, reason),
        )
        return ScheduleView.of(schedule)

    def get(self, acting_user: str, schedule_id: UUID | str) -> ScheduleView:
        self._read(
            acting_user, "read report schedule", SCHEDULE_MANAGERS, target=f"ReportSchedule {schedule_id}"
        )
        return ScheduleView.of(self.load(schedule_id, ReportSchedule))

    def list(self, acting_user: str, *, after: int = 0, limit: int = 50) -> Page[ScheduleView]:
        self._read(acting_user, "list report schedules", SCHEDULE_MANAGERS)
        return self.page(
            ReportSchedule.Created,
            lambda i: ScheduleView.of(self.load(i, ReportSchedule)),
            after=after,
            limit=limit,
        )

    def _recipients(self, user_ids: Iterable[str]) -> list[Actor]:
        return [recipient_actor(self, u) for u in user_ids]


def recipient_actor(use_case: UseCase, user_id: str) -> Actor:
    """The recipient as their User record says now; an unknown id is nobody who may receive reports."""
    try:
        return use_case.user(user_id).actor()
    except UnknownUser:
        return Actor(user_id, active=False)


# -- delivery --------------------------------------------------------------------------------


@attrs.frozen
class DeliveryOutcome:
    """What a worker did with one due period: ``delivered``, ``withheld`` (nobody may receive it)
    or ``failed`` (tried again from ``next_attempt_at``)."""

    schedule_id: UUID
    period: str
    delivered: bool
    recipients: tuple[str, ...]
    location: str | None
    status: str = "delivered"
    attempt: int = 0
    error: str | None = None
    next_attempt_at: datetime | None = None


# Saving an outcome against a schedule an administrator changed meanwhile is tried this often.
OUTCOME_SAVES = 5


class ScheduledReportDelivery(UseCase):
    """Runs the due periods of every active schedule; see the module docstring for the order of writes."""

    def __init__(
        self, app: RfrApplication, clock: Clock, sink: ReportSink, render_html: HtmlRenderer
    ) -> None:
        super().__init__(app, clock)
        self.sink = sink
        self.render_html = render_html
        # The schedule as saved last by the period in hand (one worker round runs at a time).
        self._current: ReportSchedule | None = None

    def run_due(self, *, max_periods: int = MAX_PERIODS_PER_RUN) -> tuple[DeliveryOutcome, ...]:
        outcomes: list[DeliveryOutcome] = []
        after: int | None = 0
        while after is not None:
            ids, after = list_ids(self.app, ReportSchedule.Created, after=after, limit=200)
            for schedule_id in ids:
                outcomes.extend(self._run_schedule(schedule_id, max_periods))
        return tuple(outcomes)

    def _run_schedule(self, schedule_id: UUID, max_periods: int) -> list[DeliveryOutcome]:
        schedule = self.load(schedule_id, ReportSchedule)
        done: list[DeliveryOutcome] = []
        for period in schedule.due_periods(self.clock.now(), limit=max_periods):
            outcome = self._run_period(schedule, period)
            if outcome is None:
                break
            done.append(outcome)
            if outcome.status == "failed":
                break  # periods go in order: the next waits for this one's retry
            if self._current is not schedule:
                # Its outcome was recorded on a copy loaded after a conflict: go on from that.
                schedule = self._current or self.load(schedule_id, ReportSchedule)
        return done

    def _run_period(self, schedule: ReportSchedule, period: ReportPeriod) -> DeliveryOutcome | None:
        """One period: withheld, or attempted, sent and its outcome recorded. None: another
        worker or an administrator got there first, or the policy refused; the next run decides.
        ``_current`` is then the schedule as saved last (None: not known)."""
        self._current = schedule
        at = self.clock.now()
        people = {u: self._recipient(u) for u in schedule.recipients}
        receiving = [(actor, email) for actor, email in people.values() if may_receive_reports(actor)]
        if not receiving:
            return self._withhold(schedule, period, [actor for actor, _ in people.values()], at)
        message_id = message_id_for(schedule.id, period.label, self.sink.message_domain)
        try:
            attempt = schedule.begin_delivery(at, period, message_id=message_id, channel=self.sink.channel)
        except PolicyRefusal:
            self._keep_refusal(schedule)
            return None
        try:
            # The attempt is saved before anything is sent: of two workers, one sends.
            self.app.save(schedule)
        except ConcurrentModification:
            return None
        addressed = [(a, e) for a, e in receiving if e or not self.sink.needs_addresses]
        if not addressed:
            missing = ", ".join(a.user_id for a, _ in receiving)
            return self._failed(schedule, period, attempt, f"no e-mail address is recorded for {missing}")
        report = compute_usage(self.app, start=period.start, end=period.end, now=self.clock.now())
        message = self._message(schedule, period, message_id, addressed, report)
        try:
            location = self.sink.deliver(message)
        except ReportDeliveryError as e:
            return self._failed(schedule, period, attempt, str(e) or type(e).__name__)
        digest = "sha256:" + hashlib.sha256(message.attachments[0].content).hexdigest()
        actors = [a for a, _ in addressed]
        self._record_outcome(
            schedule,
            lambda s: s.record_delivery(self.clock.now(), period, actors, location=location, digest=digest),
        )
        return DeliveryOutcome(
            schedule.id, period.label, True, tuple(a.user_id for a in actors), location, "delivered", attempt
        )

    def _withhold(
        self, schedule: ReportSchedule, period: ReportPeriod, people: list[Actor], at: datetime
    ) -> DeliveryOutcome | None:
        try:
            schedule.withhold_delivery(at, period, people)
        except PolicyRefusal:
            self._keep_refusal(schedule)
            return None
        try:
            self.app.save(schedule)
        except ConcurrentModification:
            return None
        return DeliveryOutcome(schedule.id, period.label, False, (), None, "withheld")

    def _failed(
        self, schedule: ReportSchedule, period: ReportPeriod, attempt: int, error: str
    ) -> DeliveryOutcome:
        due: list[datetime] = []
        self._record_outcome(
            schedule, lambda s: due.append(s.record_failure(self.clock.now(), period, error))
        )
        return DeliveryOutcome(
            schedule.id,
            period.label,
            False,
            (),
            None,
            "failed",
            attempt,
            " ".join(error.split()),
            due[-1] if due else None,
        )

    def _record_outcome(self, schedule: ReportSchedule, command: Callable[[ReportSchedule], object]) -> None:
        """Records the attempt's outcome and saves it; if an administrator changed the schedule
        meanwhile, the outcome is recorded again on the schedule as it is now (ADR 0011). If it
        cannot be saved, the attempt's lease runs out and the period is tried again, with the
        same Message-ID."""
        for _ in range(OUTCOME_SAVES):
            self._current = None
            try:
                command(schedule)
            except PolicyRefusal:
                self._keep_refusal(schedule)
                return
            try:
                self.app.save(schedule)
                self._current = schedule
                return
            except ConcurrentModification:
                schedule = self.load(schedule.id, ReportSchedule)

    def _keep_refusal(self, schedule: ReportSchedule) -> None:
        # If the schedule moved on meanwhile, the next run decides again and records anew.
        with contextlib.suppress(ConcurrentModification):
            self.app.save(schedule)

    def _recipient(self, user_id: str) -> tuple[Actor, str | None]:
        """The recipient as their User record says now, with their e-mail address if any."""
        try:
            user = self.user(user_id)
        except UnknownUser:
            return Actor(user_id, active=False), None
        return user.actor(), user.email

    def _message(
        self,
        schedule: ReportSchedule,
        period: ReportPeriod,
        message_id: str,
        recipients: list[tuple[Actor, str | None]],
        report: UsageReport,
    ) -> ReportMessage:
        document = {
            "schedule": {
                "id": str(schedule.id),
                "name": schedule.name,
                "frequency": schedule.frequency.value,
            },
            "period": period.label,
            "recipients": [a.user_id for a, _ in recipients],
            "usage": report.to_json(),
        }
        title = f"{schedule.name}: usage report for {period.label}"
        stem = f"usage-report-{period.label}"
        return ReportMessage(
            schedule_id=str(schedule.id),
            period_label=period.label,
            message_id=message_id,
            # One line: a schedule's name may hold line breaks, which no mail header may.
            subject=f"RFR usage report {period.label} ({' '.join(schedule.name.split())})",
            text=(
                f"The {schedule.frequency.value} usage report (A-04) of the retrospective facial "
                f"recognition system for {period.label}, {_iso(period.start)} to {_iso(period.end)} "
                f'(UTC), scheduled as "{schedule.name}".\n\n'
                "Attached: the report as a page with charts (HTML), its figures as CSV, and as JSON.\n"
            ),
            recipients=tuple((a.user_id, e) for a, e in recipients),
            attachments=(
                ReportAttachment(
                    f"{stem}.json",
                    "application/json",
                    json.dumps(document, indent=2, sort_keys=True).encode("utf-8"),
                ),
                ReportAttachment(f"{stem}.csv", "text/csv", report.to_csv().encode("utf-8")),
                ReportAttachment(f"{stem}.html", "text/html", self.render_html(report, title)),
            ),
        )
