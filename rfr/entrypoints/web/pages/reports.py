"""Usage reports (A-04) on a page: the same report as ``GET /reports/usage``, with its charts.

Run by Administrators and Auditors, as over the API; each run is recorded (``UsageReportRun``,
with the reason given) before it is shown. The charts are inline SVG drawn here, each with its
figures as a table.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template

from rfr.application.services.access import Principal
from rfr.application.services.usage_reports import REPORT_READERS, UsageReport, UsageReports
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.web.charts import Chart, chart
from rfr.entrypoints.web.forms import FormErrors, moment, text
from rfr.entrypoints.web.layout import page
from rfr.entrypoints.web.navigation import NavLink

Query = Annotated[str, QueryParameter(max_length=4000)]


def _reports(ctx: HttpContext) -> UsageReports:
    return ctx.services.usage_reports


def charts_of(report: UsageReport) -> list[Chart]:
    searches = report.sections["searches"]
    approvals = report.sections["approvals"]
    refusals = report.sections["refusals"]
    return [
        chart(
            "Search requests by purpose",
            searches["requests_by_purpose"],
            description="Search requests opened in the period, by purpose "
            "(a request with two purposes counts under both).",
        ),
        chart(
            "Outcomes of the requests opened",
            searches["request_outcomes"],
            description="What became of the requests opened in the period, as they stood at its end.",
        ),
        chart(
            "Library searches by library",
            searches["by_library"],
            description="One library searched for one request counts once.",
            labels=searches["library_names"],
        ),
        chart(
            "Adjudications",
            searches["adjudications"],
            description="Potential matches adjudicated viable or not viable.",
            keep_zero=True,
        ),
        chart(
            "Library approvals",
            approvals["library"],
            description="Steps of library approvals taken in the period.",
        ),
        chart(
            "Refusals by rule",
            refusals["by_rule"],
            description="Refusals recorded in the period (A-01), by the rule that refused; "
            "a refusal naming two rules counts under both.",
        ),
    ]


def key_figures(report: UsageReport) -> list[tuple[str, int]]:
    searches = report.sections["searches"]
    return [
        ("Search requests opened", searches["requests_opened"]),
        ("Library searches", searches["library_searches"]),
        ("Library searches refused", searches["library_searches_refused"]),
        ("Potential matches", searches["potential_matches"]),
        ("Match reports", searches["match_reports"]),
        ("Disseminations", searches["disseminations"]),
        ("Refusals", report.sections["refusals"]["total"]),
    ]


@get("/reports/usage", summary="Usage report", sync_to_thread=True, **allow(*REPORT_READERS.roles))
def usage_report(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    reports: NamedDependency[UsageReports],
    *,
    start: Annotated[str, QueryParameter(name="from", max_length=100)] = "",
    end: Annotated[str, QueryParameter(name="to", max_length=100)] = "",
    reason: Query = "",
    run: Query = "",
) -> Template:
    """The form; with ``run``, the report of ``[from, to)`` (no ``to``: up to now) with its charts."""
    values = {"from": start, "to": end, "reason": reason}
    if not run:
        return page(
            request, "reports/usage.html", title="Usage report", values=values, errors={}, report=None
        )
    errors = FormErrors()
    period_from = moment(start, "from", errors)
    period_to = moment(end, "to", errors)
    why = text(reason, "reason", errors, label="why the report is run")
    if period_from and period_to and period_from >= period_to:
        errors.add("from", "The period must start before it ends.")
    if errors:
        return page(
            request,
            "reports/usage.html",
            title="Usage report",
            status=400,
            values=values,
            errors=errors.by_field,
            report=None,
        )
    report = reports.run(principal.user_id, start=period_from, end=period_to, reason=why)
    sections = report.sections
    return page(
        request,
        "reports/usage.html",
        title="Usage report",
        values=values,
        errors={},
        report=report.to_json(),
        charts=charts_of(report),
        figures=key_figures(report),
        overdue=sections["overdue_reviews"],
    )


ROUTES = [Router(path="/", route_handlers=[usage_report], dependencies={"reports": use_case(_reports)})]
NAV = [NavLink(usage_report, "Usage reports", order=70)]
