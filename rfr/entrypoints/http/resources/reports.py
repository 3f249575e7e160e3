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
from typing import Annotated
from uuid import UUID

import attrs
import msgspec
from litestar import Response, Router, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import FromPath, JSONBody, QueryParameter

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
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.resources._workflow import Cursor, documented

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Recipients = Annotated[list[Name], msgspec.Meta(min_length=1, max_length=50)]


class ReportFormat(enum.StrEnum):
    JSON = "json"
    CSV = "csv"


class NewSchedule(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    frequency: ReportFrequency
    recipients: Recipients


class ScheduleChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Give ``frequency``, ``recipients`` or both; a new frequency starts with the period in progress."""

    reason: Text
    frequency: ReportFrequency | None = None
    recipients: Recipients | None = None


class Reason(msgspec.Struct, forbid_unknown_fields=True):
    reason: Text


@attrs.frozen
class SchedulePage:
    """One page of schedules; pass ``next_after`` as ``after`` for the next (null: last page)."""

    items: list[ScheduleView]
    next_after: int | None


def _reports(ctx: HttpContext) -> UsageReports:
    return UsageReports(ctx.app, ctx.clock)


def _schedules(ctx: HttpContext) -> ReportSchedules:
    return ReportSchedules(ctx.app, ctx.clock)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _invalid(key: str, message: str) -> ValidationException:
    return ValidationException(message, extra=[{"key": key, "source": "query", "message": message}])


REPORT_SECTIONS = ("searches", "approvals", "deletions", "overdue_reviews", "refusals", "reports")


@dataclass
class _UsageReportOperation(Operation):
    """Documents both representations of the report: Litestar sees only the bytes it returns."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["report", "rule", "period", "generated_at", *REPORT_SECTIONS],
                    )
                ),
                "text/csv": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, description="section,measure,key,label,value")
                ),
            }


@get(
    "/reports/usage",
    summary="Usage report (A-04)",
    sync_to_thread=True,
    operation_class=_UsageReportOperation,
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
            description="start of the period, inclusive (no zone: UTC); default: the first record",
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        QueryParameter(
            name="to", description="end of the period, exclusive (no zone: UTC); default: now, real time"
        ),
    ] = None,
    report_format: Annotated[
        ReportFormat, QueryParameter(name="format", description="json or csv")
    ] = ReportFormat.JSON,
    reason: Annotated[
        str, QueryParameter(min_length=1, max_length=2000, description="recorded with the run")
    ] = ("usage report on demand"),
) -> Response[bytes]:
    """Searches (purpose, ground, library, level, user, outcome), approvals, deletions, overdue
    reviews and refusals over ``[from, to)``. The run is recorded (A-04, A-01)."""
    start, end = _utc(start), _utc(end)
    if start is not None and end is not None and start >= end:
        raise _invalid("from", "from must be before to")
    report = reports.run(principal.user_id, start=start, end=end, fmt=report_format.value, reason=reason)
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
    if data.frequency is None and data.recipients is None:
        raise ValidationException(
            "give frequency, recipients or both",
            extra=[{"key": "frequency", "source": "body", "message": "give frequency, recipients or both"}],
        )
    return schedules.change(
        principal.user_id, schedule_id, data.reason, frequency=data.frequency, recipients=data.recipients
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
        route_handlers=documented(
            [
                usage_report,
                create_schedule,
                list_schedules,
                get_schedule,
                change_schedule,
                cancel_schedule,
            ],
            only_applicable=True,
        ),
        dependencies={"reports": use_case(_reports), "schedules": use_case(_schedules)},
        tags=["reports"],
    )
]
