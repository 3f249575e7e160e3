"""Usage reports (A-04): run on demand, and scheduled for named administrators.

Administrators and Auditors run reports: a usage report is an aggregate view of the audit
trail that Auditors read anyway (A-03), and each run is recorded as a ``UsageReportRun``.
Only Administrators manage schedules, and only enabled Administrators receive them; the
worker (``rfr worker``) delivers them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import attrs
import msgspec
from litestar import Response, Router, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import FromPath, JSONBody, QueryParameter

from rfr.adapters.reporting.html_report import render_html
from rfr.application.services.access import Principal
from rfr.application.services.usage_reports import (
    REPORT_READERS,
    SCHEDULE_MANAGERS,
    ReportSchedules,
    ScheduleView,
    UsageReports,
)
from rfr.domain.report_schedule import ReportFrequency
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.body_rules import at_least_one_of
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.problem_responses import problem_spec
from rfr.entrypoints.http.resources._workflow import Cursor, unprocessable

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Recipients = Annotated[list[Name], msgspec.Meta(min_length=1, max_length=50)]


class ReportFormat(enum.StrEnum):
    """The representation of a usage report: JSON, CSV, or HTML with charts."""

    JSON = "json"
    CSV = "csv"
    HTML = "html"


class NewSchedule(msgspec.Struct, forbid_unknown_fields=True):
    """A usage report to deliver every period to named administrators (A-04).

    Attributes:
        name: A name for the schedule, e.g. "Monthly report to the SRO's office".
        frequency: How often a report is delivered: each ``hourly``, ``daily`` or ``monthly``
            period (UTC), once the period is over.
        recipients: The user ids of the administrators who receive it; only those still
            enabled administrators when a period is delivered receive that period.
    """

    name: Name
    frequency: ReportFrequency
    recipients: Recipients


class ScheduleChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Give ``frequency``, ``recipients`` or both; a new frequency starts with the period in progress.

    Attributes:
        reason: Why the schedule changes, in the administrator's words; recorded.
        frequency: The new frequency: ``hourly``, ``daily`` or ``monthly``.
        recipients: The new recipients, all of them (user ids of administrators).
    """

    fields_rule: ClassVar = at_least_one_of("frequency", "recipients")

    reason: Text
    frequency: ReportFrequency | msgspec.UnsetType = msgspec.UNSET
    recipients: Recipients | msgspec.UnsetType = msgspec.UNSET


class Reason(msgspec.Struct, forbid_unknown_fields=True):
    """Why a schedule is cancelled.

    Attributes:
        reason: Why, in the administrator's words; recorded with the cancellation.
    """

    reason: Text


@attrs.frozen
class SchedulePage:
    """One page of schedules; pass ``next_after`` as ``after`` for the next (null: last page).

    Attributes:
        items: The schedules on this page, oldest first.
        next_after: The cursor of the next page (pass it as ``after``), or null on the last page.
    """

    items: list[ScheduleView]
    next_after: int | None


def _reports(ctx: HttpContext) -> UsageReports:
    return ctx.services.usage_reports


def _schedules(ctx: HttpContext) -> ReportSchedules:
    return ctx.services.report_schedules


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class UsagePeriod(msgspec.Struct):
    """The period a usage report covers, ``[from, to)``.

    Attributes:
        from: The start of the period, inclusive (ISO 8601, UTC), or null: since the first record.
        to: The end of the period, exclusive (ISO 8601, UTC).
        real_time: Whether the period ends now (no ``to`` was asked for): a real-time report.
    """

    period_from: str | None = msgspec.field(name="from")
    to: str | None
    real_time: bool


class UsageReportDocument(msgspec.Struct):
    """A usage report (A-04, policy 9.1), computed from the audit trail: things that happened are
    counted when they happened, states (outcomes, overdue reviews) as they stood at the end.

    Attributes:
        report: Always ``usage``.
        rule: The rule the report serves: always ``A-04``.
        period: The period covered.
        generated_at: When the report was computed (ISO 8601, UTC).
        searches: Search requests opened, by purpose, ground, probe level and user; their
            outcomes; library searches by library, level, algorithm and searcher, and those
            refused; potential matches, adjudications (viable, not viable), match reports,
            disseminations, unresolved-crime-cache rescreens; ``library_names`` names each
            library id.
        approvals: Library approvals by step (applied, granted, granted urgently, awaiting a
            superintendent, rejected, ratified, varied, stopped, expired), library reviews by
            outcome, search approvals granted and rejected, cache entries added, reviewed and
            removed.
        deletions: Probes purged, library images purged, templates deleted, library images past
            their retention.
        overdue_reviews: Library approvals and unresolved-crime-cache entries whose review is
            overdue at ``as_of``, each with its ``id``, ``label`` and ``due`` date.
        refusals: Refusals recorded (A-01): the total, by rule and by command.
        reports: Usage reports run on demand, scheduled reports delivered, and failed delivery
            attempts.
        ucc_state: The probes in the unresolved crime cache at the end (``in_cache``), and how
            many of them were overdue for review (U-03) or in date.
        policy_exceptions: Policy exceptions recorded, endorsed and not endorsed in the period
            (A-06), how many awaited the SRO at the end (``awaiting_sro``) and which
            (``awaiting``: ``id``, ``label``, ``since``).
        timeline: The figures over time: ``step`` (hour, day, week, 30 days...), ``starts`` of
            the steps, ``series`` (measure, key: a count per step) and ``request_outcomes``
            (outcome: the requests opened in each step that reached it); ``step`` null when
            nothing was counted.
    """

    report: Literal["usage"]
    rule: Literal["A-04"]
    period: UsagePeriod
    generated_at: str
    searches: dict[str, Any]
    approvals: dict[str, Any]
    deletions: dict[str, Any]
    overdue_reviews: dict[str, Any]
    refusals: dict[str, Any]
    reports: dict[str, Any]
    ucc_state: dict[str, Any]
    policy_exceptions: dict[str, Any]
    timeline: dict[str, Any]


@dataclass
class _UsageReportOperation(Operation):
    """Documents the CSV and HTML representations beside the JSON one (``UsageReportDocument``):
    Litestar sees only the bytes the handler returns."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {
                **(ok.content or {}),
                "text/csv": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, description="section,measure,key,label,value")
                ),
                "text/html": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.STRING,
                        description="the report as one HTML page with inline SVG charts, no script",
                    )
                ),
            }


@get(
    "/reports/usage",
    summary="Usage report (A-04)",
    sync_to_thread=True,
    operation_class=_UsageReportOperation,
    responses={
        200: ResponseSpec(
            UsageReportDocument,
            generate_examples=False,
            description="The report: JSON (format=json), CSV (format=csv) or HTML with charts (format=html)",
        ),
        422: problem_spec("from is not before to"),
    },
    **allow(*REPORT_READERS.roles),
)
def usage_report(
    principal: NamedDependency[Principal],
    reports: NamedDependency[UsageReports],
    *,
    start: Annotated[
        datetime | None,
        QueryParameter(
            name="from",
            description="start of the period, inclusive (no zone: UTC), before to; default: the first record",
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        QueryParameter(
            name="to", description="end of the period, exclusive (no zone: UTC); default: now, real time"
        ),
    ] = None,
    report_format: Annotated[
        ReportFormat, QueryParameter(name="format", description="json, csv or html (a page with charts)")
    ] = ReportFormat.JSON,
    reason: Annotated[
        str, QueryParameter(min_length=1, max_length=2000, description="recorded with the run")
    ] = ("usage report on demand"),
) -> Response[bytes]:
    """Searches (purpose, ground, library, level, user, outcome), approvals, deletions, overdue
    reviews, refusals, the cache, policy exceptions awaiting the SRO, and all of it over time,
    over ``[from, to)``. The run is recorded (A-04, A-01)."""
    start, end = _utc(start), _utc(end)
    if start is not None and end is not None and start >= end:
        raise unprocessable("from", "from must be before to", source="query")
    report = reports.run(principal.user_id, start=start, end=end, fmt=report_format.value, reason=reason)
    if report_format is ReportFormat.HTML:
        return Response(content=render_html(report, "Usage report"), media_type="text/html; charset=utf-8")
    content, media_type = report.render(report_format.value)
    headers = {}
    if report_format is ReportFormat.CSV:
        headers["Content-Disposition"] = 'attachment; filename="usage-report.csv"'
    return Response(content=content, media_type=media_type, headers=headers)


@post(
    "/reports/schedules",
    summary="Schedule a usage report",
    sync_to_thread=True,
    **allow(*SCHEDULE_MANAGERS.roles),
)
def create_schedule(
    principal: NamedDependency[Principal],
    schedules: NamedDependency[ReportSchedules],
    data: JSONBody[NewSchedule],
) -> ScheduleView:
    """Schedule a usage report, hourly, daily or monthly, for named enabled administrators."""
    return schedules.create(principal.user_id, data.name, data.frequency, data.recipients)


@get(
    "/reports/schedules",
    summary="List report schedules",
    sync_to_thread=True,
    **allow(*SCHEDULE_MANAGERS.roles),
)
def list_schedules(
    principal: NamedDependency[Principal],
    schedules: NamedDependency[ReportSchedules],
    after: Cursor = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> SchedulePage:
    page = schedules.list(principal.user_id, after=after, limit=limit)
    return SchedulePage(list(page.items), page.next_after)


@get(
    "/reports/schedules/{schedule_id:uuid}",
    summary="Read a report schedule",
    sync_to_thread=True,
    **allow(*SCHEDULE_MANAGERS.roles),
)
def get_schedule(
    principal: NamedDependency[Principal],
    schedules: NamedDependency[ReportSchedules],
    schedule_id: FromPath[UUID],
) -> ScheduleView:
    return schedules.get(principal.user_id, schedule_id)


@patch(
    "/reports/schedules/{schedule_id:uuid}",
    summary="Change a report schedule",
    sync_to_thread=True,
    **allow(*SCHEDULE_MANAGERS.roles),
)
def change_schedule(
    principal: NamedDependency[Principal],
    schedules: NamedDependency[ReportSchedules],
    schedule_id: FromPath[UUID],
    data: JSONBody[ScheduleChange],
) -> ScheduleView:
    frequency = data.frequency if data.frequency is not msgspec.UNSET else None
    recipients = data.recipients if data.recipients is not msgspec.UNSET else None
    return schedules.change(
        principal.user_id, schedule_id, data.reason, frequency=frequency, recipients=recipients
    )


@post(
    "/reports/schedules/{schedule_id:uuid}/cancel",
    summary="Cancel a report schedule",
    sync_to_thread=True,
    **allow(*SCHEDULE_MANAGERS.roles),
)
def cancel_schedule(
    principal: NamedDependency[Principal],
    schedules: NamedDependency[ReportSchedules],
    schedule_id: FromPath[UUID],
    data: JSONBody[Reason],
) -> ScheduleView:
    return schedules.cancel(principal.user_id, schedule_id, data.reason)


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            usage_report,
            create_schedule,
            list_schedules,
            get_schedule,
            change_schedule,
            cancel_schedule,
        ],
        dependencies={"reports": use_case(_reports), "schedules": use_case(_schedules)},
        tags=["reports"],
    )
]
