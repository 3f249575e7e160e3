"""A-04: the figures of the usage report (JSON and the HTML report with charts) equal counts the
test makes itself from the stored events of a scripted workflow.

The workflow is ``report_history`` (libraries, five requests, adjudications, refusals, the
cache, deletions, through the services) and two policy exceptions, one reviewed by the SRO.
The recount reads every stored event in order and counts by event type, with none of the
report's code: no usage projection, no ``usage_facts``, no ``report_sections``.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from html import unescape
from typing import Any

from app_world import T0, World
from report_history import DAY_100, build_history

from rfr.adapters.reporting.html_report import render_html
from rfr.application.services.usage_reports import UsageReports
from rfr.domain.enrolment_batch import ImageHolder
from rfr.domain.governed import GovernedAggregate
from rfr.domain.policy_exception import PolicyException
from rfr.domain.probe_image import ProbeImage
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.search_request import SearchRequest

WEEK = timedelta(days=7)


def recount(world: World) -> dict[str, Any]:
    """Counts of ``[T0, DAY_100)`` from the stored events, by event type."""
    purposes: Counter[str] = Counter()
    users: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    per_week = [0] * 15  # 100 days in weeks from T0
    probes_purged = images_purged = 0
    awaiting: set[str] = set()
    cache: set[str] = set()
    for stored in world.app.recorder.select_notifications(start=1, limit=10**9):
        e = world.app.mapper.to_domain_event(stored)
        if not T0 <= e.timestamp < DAY_100:
            continue
        subject = str(e.originator_id)
        if isinstance(e, SearchRequest.Opened):
            purposes.update(e.purposes)
            users[e.acting.user_id] += 1
            levels[str(e.probe_level)] += 1
            per_week[(e.timestamp - T0) // WEEK] += 1
        elif isinstance(e, SearchRequest.LibrarySearched):
            libraries[e.library_id] += 1
        elif isinstance(e, GovernedAggregate.Refused | RefusedAttempt.AttemptRefused):
            rules.update(e.rule_ids)
        elif isinstance(e, ProbeImage.Purged):
            probes_purged += 1
            cache.discard(subject)
        elif isinstance(e, ImageHolder.ImagesPurged):
            images_purged += len(e.image_ids)
        elif isinstance(e, PolicyException.Recorded):
            awaiting.add(subject)
        elif isinstance(e, PolicyException.ReviewedBySro):
            awaiting.discard(subject)
        elif isinstance(e, ProbeImage.AddedToUcc):
            cache.add(subject)
        elif isinstance(e, ProbeImage.RemovedFromUcc):
            cache.discard(subject)
    return {
        "requests": sum(users.values()),
        "purposes": dict(purposes),
        "users": dict(users),
        "levels": dict(levels),
        "libraries": dict(libraries),
        "rules": dict(rules),
        "per_week": per_week,
        "probes_purged": probes_purged,
        "images_purged": images_purged,
        "awaiting": sorted(awaiting),
        "in_cache": len(cache),
    }


def figures_in_html(html: str) -> dict[str, dict[str, int]]:
    """Each chart's table in the HTML report: title -> {row label: count}."""
    found: dict[str, dict[str, int]] = {}
    for figure in re.findall(r"<figure>(.*?)</figure>", html, flags=re.S):
        title = unescape(re.search(r"<h3>(.*?)</h3>", figure, flags=re.S).group(1))
        rows = re.findall(r'<th scope="row">(.*?)</th><td class="number">(\d+)</td>', figure)
        found[title] = {unescape(label): int(value) for label, value in rows}
    return found


def test_A04_report_figures_equal_counts_recomputed_from_the_events_of_a_scripted_workflow(
    world: World,
) -> None:
    """A-04: the JSON report's and the HTML report's figures are the events' own counts."""
    history = build_history(world)
    world.clock.advance(days=-60)  # day 40, inside the period
    kept = world.exceptions.record("analyst", "searched outside hours", "risk to life", "advice A")
    reviewed = world.exceptions.record("analyst", "kept a probe longer", "court date", "advice B")
    world.exceptions.review("sro", reviewed.id, True, "endorsed")
    world.clock.advance(days=60)

    expected = recount(world)
    report = UsageReports(world.app, world.clock).run("admin2", start=T0, end=DAY_100, reason="figures")
    s = report.sections
    searches = s["searches"]
    assert searches["requests_opened"] == expected["requests"] == 5
    assert searches["requests_by_purpose"] == expected["purposes"]
    assert searches["requests_by_user"] == expected["users"]
    assert searches["requests_by_probe_level"] == expected["levels"]
    assert searches["by_library"] == expected["libraries"]
    assert s["refusals"]["by_rule"] == expected["rules"] and expected["rules"]["L-13"] == 1
    assert s["deletions"]["probes_purged"] == expected["probes_purged"] == 1
    assert s["deletions"]["library_images_purged"] == expected["images_purged"] == 1
    assert s["ucc_state"]["in_cache"] == expected["in_cache"] == 1
    assert [i["id"] for i in s["policy_exceptions"]["awaiting"]] == expected["awaiting"] == [str(kept.id)]
    assert s["policy_exceptions"]["awaiting_sro"] == 1 and s["policy_exceptions"]["endorsed"] == 1
    timeline = s["timeline"]
    assert timeline["step"] == "week" and len(timeline["starts"]) == 15
    assert timeline["series"]["requests"][""] == expected["per_week"]
    assert sum(timeline["request_outcomes"]["rejected"]) == searches["request_outcomes"]["rejected"] == 1

    html = render_html(report, "Usage report").decode()
    charts = figures_in_html(html)
    names = searches["library_names"]
    assert charts["Search requests by requester"] == expected["users"]
    assert charts["Library searches by library"] == {names[k]: n for k, n in expected["libraries"].items()}
    assert charts["Refusals by rule"] == expected["rules"]
    assert charts["Deletions"]["probes purged"] == expected["probes_purged"]
    assert charts["Unresolved Crime Cache at the end of the period"]["review overdue"] == 1  # U-03
    assert charts["Policy exceptions"]["awaiting the SRO at the end"] == len(expected["awaiting"])
    # Over time, step by step: each week's column is the week's count of requests opened.
    weekly = charts["Requests opened, step by step"]
    assert list(weekly.values()) == expected["per_week"]
    assert "<script" not in html and html.count("<svg") == len(charts) - sum(
        1 for c in charts.values() if not c
    )
    assert history.ucc_probe  # the history's cache entry is the one counted
