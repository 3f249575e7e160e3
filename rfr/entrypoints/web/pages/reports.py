"""Usage reports (A-04) on a page: the same report as ``GET /reports/usage``, with its charts.

Run by Administrators and Auditors, as over the API; each run is recorded (``UsageReportRun``,
with the reason given) before it is shown. The charts are inline SVG, each with its figures as a
table; they are the HTML report's (``rfr.adapters.reporting``), so the page, the API's HTML
report and the e-mailed one show the same.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template

from rfr.adapters.reporting.usage_charts import charts_of, key_figures, timeline_of
from rfr.application.services.access import Principal
from rfr.application.services.usage_reports import REPORT_READERS, UsageReports
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.web.forms import FormErrors, moment, text
from rfr.entrypoints.web.layout import page
from rfr.entrypoints.web.navigation import NavLink

Query = Annotated[str, QueryParameter(max_length=4000)]


def _reports(ctx: HttpContext) -> UsageReports:
    return ctx.services.usage_reports


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
        timeline=timeline_of(report),
        step=sections["timeline"]["step"],
        figures=key_figures(report),
        overdue=sections["overdue_reviews"],
    )


ROUTES = [Router(path="/", route_handlers=[usage_report], dependencies={"reports": use_case(_reports)})]
NAV = [NavLink(usage_report, "Usage reports", order=70)]
