"""The charts of a usage report (A-04): the same set on the web client's page and in the HTML
report served over the API and attached to scheduled e-mails."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rfr.adapters.reporting.charts import Chart, Series, chart, humane
from rfr.application.services.usage_reports import UsageReport

# The timeline's series drawn, with their titles ({} is the key): searches by each dimension,
# refusals, deletions. Worded unlike the totals' titles, so each chart's name is its own.
TIMELINE_CHARTS = (
    ("requests", "Requests opened, step by step"),
    ("requests_by_purpose", "Requests for the purpose {}, step by step"),
    ("requests_by_ground", "Requests on the ground {}, step by step"),
    ("requests_by_probe_level", "Requests with a probe of level {}, step by step"),
    ("requests_by_user", "Requests opened by {}, step by step"),
    ("by_library", "Searches of the library {}, step by step"),
    ("by_library_level", "Searches of level {} libraries, step by step"),
    ("refusals_by_rule", "Refusals under {}, step by step"),
    ("probes_purged", "Probes deleted, step by step"),
    ("library_images_purged", "Library images deleted, step by step"),
)
# A dimension with more keys than this shows its busiest ones over time (all are in the totals).
MAX_SERIES_PER_DIMENSION = 8


def charts_of(report: UsageReport) -> list[Chart]:
    """The totals of the period, one bar chart each."""
    sections = report.sections
    searches = sections["searches"]
    approvals = sections["approvals"]
    refusals = sections["refusals"]
    ucc = sections["ucc_state"]
    exceptions = sections["policy_exceptions"]
    return [
        chart(
            "Search requests by purpose",
            searches["requests_by_purpose"],
            description="Search requests opened in the period, by purpose "
            "(a request with two purposes counts under both).",
        ),
        chart(
            "Search requests by ground",
            searches["requests_by_ground"],
            description="Search requests opened in the period, by the grounds on their probe's form.",
        ),
        chart(
            "Search requests by probe level",
            searches["requests_by_probe_level"],
            description="Search requests opened in the period, by the level of their probe.",
        ),
        chart(
            "Search requests by requester",
            searches["requests_by_user"],
            description="Search requests opened in the period, by the user who opened them.",
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
            "Library searches by library level",
            searches["by_library_level"],
            description="Library searches in the period, by the level of the library searched.",
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
        chart(
            "Deletions",
            dict(sections["deletions"]),
            description="Probes, library images and templates deleted in the period (R-01..R-05).",
        ),
        chart(
            "Unresolved Crime Cache at the end of the period",
            {"review_in_date": ucc["review_in_date"], "review_overdue": ucc["review_overdue"]},
            description=f"{ucc['in_cache']} probes in the cache (U-01), by the state of their review (U-03).",
            keep_zero=True,
        ),
        chart(
            "Policy exceptions",
            {
                "recorded": exceptions["recorded"],
                "endorsed": exceptions["endorsed"],
                "not_endorsed": exceptions["not_endorsed"],
                "awaiting_the_SRO_at_the_end": exceptions["awaiting_sro"],
            },
            description="Decisions outside the policy recorded and reviewed by the SRO in the period (A-06).",
        ),
    ]


def timeline_of(report: UsageReport) -> list[Series]:
    """The period's figures over time, one column chart per series drawn (see ``TIMELINE_CHARTS``)."""
    timeline = report.sections["timeline"]
    if not timeline["step"]:
        return []
    steps = tuple(_step_label(start, timeline["step"]) for start in timeline["starts"])
    names: Mapping[str, str] = report.sections["searches"]["library_names"]
    drawn: list[Series] = []
    every = f"One column per {timeline['step']}."
    outcomes = timeline["request_outcomes"]
    for outcome in outcomes:
        values = tuple(outcomes[outcome])
        if any(values):
            drawn.append(
                Series(
                    f"Requests opened with the outcome {humane(outcome)}, step by step",
                    f"By when they were opened; outcomes as they stood at the end of the period. {every}",
                    steps,
                    values,
                )
            )
    for measure, title in TIMELINE_CHARTS:
        by_key: dict[str, list[int]] = timeline["series"].get(measure, {})
        busiest = sorted(by_key, key=lambda k: (-sum(by_key[k]), k))[:MAX_SERIES_PER_DIMENSION]
        for key in busiest:
            label = (names.get(key) or humane(key)) if measure == "by_library" else humane(key)
            drawn.append(Series(title.format(label), every, steps, tuple(by_key[key])))
    return drawn


def key_figures(report: UsageReport) -> list[tuple[str, int]]:
    sections = report.sections
    searches = sections["searches"]
    return [
        ("Search requests opened", searches["requests_opened"]),
        ("Library searches", searches["library_searches"]),
        ("Library searches refused", searches["library_searches_refused"]),
        ("Potential matches", searches["potential_matches"]),
        ("Match reports", searches["match_reports"]),
        ("Disseminations", searches["disseminations"]),
        ("Refusals", sections["refusals"]["total"]),
        ("Probes deleted", sections["deletions"]["probes_purged"]),
        ("Library images deleted", sections["deletions"]["library_images_purged"]),
        ("Probes in the Unresolved Crime Cache", sections["ucc_state"]["in_cache"]),
        ("Policy exceptions awaiting the SRO", sections["policy_exceptions"]["awaiting_sro"]),
    ]


def _step_label(start: str, step: str) -> str:
    moment = datetime.fromisoformat(start)
    return moment.strftime("%Y-%m-%d %H:00") if step == "hour" else moment.strftime("%Y-%m-%d")
