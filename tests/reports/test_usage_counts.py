"""A-04: a usage report counts, from the audit trail, exactly what the services recorded."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from app_world import ALG, T0, FixedClock, World, postgres_app, sqlite_app
from report_history import DAY_1, DAY_40, DAY_100, History, build_history
from usage_oracle import replayed_report

from rfr.application.services.searches import LibrarySelection
from rfr.application.services.usage_reports import UsageReport, UsageReports, compute_usage
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.report_schedule import UsageReportRun


@pytest.fixture
def history(world: World) -> History:
    return build_history(world)


def _named(report: UsageReport, counts: dict[str, int]) -> dict[str, int]:
    names = report.sections["searches"]["library_names"]
    return {names[k]: v for k, v in counts.items()}


def _overdue_ids(report: UsageReport) -> tuple[list[str], list[str]]:
    overdue = report.sections["overdue_reviews"]
    return (
        [i["id"] for i in overdue["library_approvals"]],
        [i["id"] for i in overdue["ucc"]],
    )


def test_A04_real_time_report_counts_every_fact_of_the_history(world: World, history: History) -> None:
    """A-04: real time report counts every fact of the history."""
    report = UsageReports(world.app, world.clock).run("admin2")
    s = report.sections
    assert report.real_time and report.period_from is None and report.period_to == DAY_100
    searches = s["searches"]
    assert searches["requests_opened"] == 5
    assert searches["requests_by_purpose"] == {"a_identify": 5, "b_place_at_location": 1}
    assert searches["requests_by_ground"] == {"a_wanted_by_courts": 1, "b_offence": 5}
    assert searches["requests_by_probe_level"] == {"3": 4, "4": 1}
    assert searches["requests_by_user"] == {"analyst": 4, "analyst-2": 1}
    assert searches["request_outcomes"] == {
        "viable_match": 1,
        "no_viable_match": 2,
        "not_searched": 1,
        "rejected": 1,
        "refused_to_open": 1,
    }
    assert searches["library_searches"] == 3
    assert _named(report, searches["by_library"]) == {"lib-a": 2, "lib-b": 1}
    assert searches["library_names"] == {str(history.library_a): "lib-a", str(history.library_b): "lib-b"}
    assert searches["by_library_level"] == {"2": 3}
    assert searches["by_algorithm"] == {ALG: 3}
    assert searches["by_searcher"] == {"analyst": 2, "analyst-2": 1}
    assert searches["library_searches_refused"] == 1
    assert searches["potential_matches"] == 6
    assert searches["adjudications"] == {"viable": 1, "not_viable": 3}
    assert (searches["match_reports"], searches["disseminations"]) == (1, 1)
    assert (searches["ucc_rescreens"], searches["ucc_rescreen_viable_matches"]) == (0, 0)

    assert s["approvals"] == {
        "library": {
            "applied": 4,
            "granted": 3,
            "granted_urgently": 1,
            "awaiting_superintendent": 0,
            "rejected": 1,
            "ratified": 0,
            "varied": 0,
            "stopped": 1,
            "expired": 0,
        },
        "library_reviews": {"continue": 0, "vary": 0, "stop": 0},
        "search": {"granted": 0, "rejected": 1},
        "ucc": {"added": 1, "reviewed": 0, "removed": 0},
    }
    assert s["deletions"] == {
        "probes_purged": 1,
        "library_images_purged": 1,
        "templates_deleted": 2,
        "library_images_retention_expired": 0,
    }
    # L-06: both approvals in force are past their review date; the stopped one is not listed.
    # U-03: the tier-3 entry was due three months after it was added.
    overdue = s["overdue_reviews"]
    assert overdue["as_of"] == DAY_100.isoformat()
    assert [(i["id"], i["label"], i["due"]) for i in overdue["library_approvals"]] == [
        (str(history.approval_a), "lib-a", (T0 + timedelta(days=30)).isoformat()),
        (str(history.approval_b), "lib-b", (DAY_40 + timedelta(days=30)).isoformat()),
    ]
    assert [(i["id"], i["due"]) for i in overdue["ucc"]] == [
        (str(history.ucc_probe), "2024-06-01T09:00:00+00:00")
    ]
    assert s["refusals"] == {
        "total": 2,
        "by_rule": {"L-13": 1, "S-04": 1},
        "by_command": {"open search request": 1, "search library": 1},
    }
    assert s["reports"] == {"run_on_demand": 0, "delivered": 0, "delivery_attempts_failed": 0}


def test_A04_a_period_counts_only_what_happened_in_it_and_states_at_its_end(
    world: World, history: History
) -> None:
    """A-04: a period counts only what happened in it and states at its end."""
    reports = UsageReports(world.app, world.clock)
    first = reports.run("admin2", start=T0, end=DAY_1)
    searches = first.sections["searches"]
    assert not first.real_time
    assert searches["requests_opened"] == 3
    assert searches["request_outcomes"] == {
        "viable_match": 1,
        "no_viable_match": 1,
        "not_searched": 0,
        "rejected": 1,
        "refused_to_open": 1,
    }
    assert _named(first, searches["by_library"]) == {"lib-a": 2}
    assert first.sections["approvals"]["library"]["applied"] == 3
    assert first.sections["approvals"]["library"]["stopped"] == 0  # stopped on day 40
    assert first.sections["deletions"]["probes_purged"] == 0
    assert _overdue_ids(first) == ([], [])
    assert first.sections["overdue_reviews"]["as_of"] == DAY_1.isoformat()

    second = reports.run("admin2", start=DAY_1)
    searches = second.sections["searches"]
    assert searches["requests_opened"] == 2
    assert searches["requests_by_user"] == {"analyst": 2}
    assert searches["request_outcomes"] == {
        "viable_match": 0,
        "no_viable_match": 1,
        "not_searched": 1,
        "rejected": 0,
        "refused_to_open": 0,
    }
    assert _named(second, searches["by_library"]) == {"lib-b": 1}
    assert second.sections["approvals"]["library"] == {
        "applied": 1,
        "granted": 1,
        "granted_urgently": 0,
        "awaiting_superintendent": 0,
        "rejected": 0,
        "ratified": 0,
        "varied": 0,
        "stopped": 1,
        "expired": 0,
    }
    assert second.sections["deletions"]["templates_deleted"] == 2
    assert second.sections["refusals"]["total"] == 0
    assert second.sections["reports"]["run_on_demand"] == 1  # the first report, run on day 100

    # L-06 as it stood on day 35: approval A and the urgent one (both due day 30) were overdue;
    # the urgent one was stopped on day 40, so the real-time report no longer lists it.
    day_35 = reports.run("admin2", start=T0, end=T0 + timedelta(days=35))
    approvals, cache = _overdue_ids(day_35)
    assert sorted(approvals) == sorted([str(history.approval_a), str(history.urgent_approval)])
    assert cache == []


def test_A04_csv_carries_the_same_numbers_as_json(world: World, history: History) -> None:
    """A-04: csv carries the same numbers as json."""
    report = UsageReports(world.app, world.clock).run("admin2", fmt="csv")
    content, media_type = report.render("csv")
    assert media_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert rows[0].keys() == {"section", "measure", "key", "label", "value"}
    table = {(r["section"], r["measure"], r["key"]): (r["label"], r["value"]) for r in rows}
    assert table["searches", "requests_opened", ""] == ("", "5")
    assert table["searches", "requests_by_ground", "a_wanted_by_courts"] == ("", "1")
    assert table["searches", "request_outcomes", "refused_to_open"] == ("", "1")
    assert table["searches", "by_library", str(history.library_a)] == ("lib-a", "2")
    assert table["approvals", "library", "granted_urgently"] == ("", "1")
    assert table["deletions", "templates_deleted", ""] == ("", "2")
    assert table["refusals", "by_rule", "L-13"] == ("", "1")
    assert table["overdue_reviews", "ucc", str(history.ucc_probe)] == (
        "tier 3",
        "2024-06-01T09:00:00+00:00",
    )
    assert table["period", "to", ""] == ("", DAY_100.isoformat())
    # Every count of the JSON is a line of the CSV, and nothing else is.
    flat = [r for r in rows if r["section"] not in ("period", "overdue_reviews")]
    assert len(flat) == _count_numbers(report.sections)
    with pytest.raises(ValueError, match="format"):
        report.render("xml")


def _count_numbers(sections: dict[str, Any]) -> int:
    def walk(value: Any, key: str) -> int:
        if key in ("library_names", "overdue_reviews", "starts"):
            return 0
        if isinstance(value, dict):
            return sum(walk(v, k) for k, v in value.items())
        if isinstance(value, list):  # a timeline's counts, step by step; the items awaiting the SRO
            return len(value)
        return 1

    return sum(walk(v, k) for k, v in sections.items())


def test_A04_runs_are_recorded_and_a_wrong_role_is_refused_and_recorded(
    world: World, history: History
) -> None:
    """A-04: runs are recorded and a wrong role is refused and recorded."""
    reports = UsageReports(world.app, world.clock)
    with pytest.raises(PolicyRefusal) as refused:
        reports.run("analyst")
    assert refused.value.rule_ids == ("A-05",)
    assert isinstance(refused.value.record, RefusedAttempt)
    assert world.app.get(refused.value.record.id, RefusedAttempt).command == "run usage report"

    by_auditor = reports.run("auditor", start=T0, end=DAY_1, fmt="csv", reason="quarterly oversight")
    assert by_auditor.sections["searches"]["requests_opened"] == 3

    after = reports.run("admin2")
    assert after.sections["reports"] == {"run_on_demand": 1, "delivered": 0, "delivery_attempts_failed": 0}
    assert after.sections["refusals"]["by_command"]["run usage report"] == 1
    assert after.sections["refusals"]["by_rule"] == {"A-05": 1, "L-13": 1, "S-04": 1}
    runs = [
        world.app.mapper.to_domain_event(n)
        for n in world.app.recorder.select_notifications(start=None, limit=10_000)
        if n.topic.endswith("UsageReportRun.Produced")
    ]
    assert [(e.acting.user_id, e.format, e.reason, e.period_from, e.period_to) for e in runs] == [
        ("auditor", "csv", "quarterly oversight", T0, DAY_1),
        ("admin2", "json", "usage report on demand", None, DAY_100),
    ]
    assert isinstance(world.app.get(runs[0].originator_id), UsageReportRun)


def test_A04_a_period_that_ends_before_it_starts_is_refused_before_anything_runs(world: World) -> None:
    """A-04: a period that ends before it starts is refused before anything runs."""
    with pytest.raises(ValueError, match="start before it ends"):
        UsageReports(world.app, world.clock).run("admin2", start=DAY_1, end=T0)
    with pytest.raises(ValueError, match="format"):
        UsageReports(world.app, world.clock).run("admin2", fmt="pdf")


def test_A04_report_from_a_sqlite_store_after_a_restart(tmp_path: Path) -> None:
    """A-04: report from a sqlite store after a restart."""
    clock = FixedClock()
    with sqlite_app(tmp_path) as app:
        history = build_history(World(app, clock).populate())
    with sqlite_app(tmp_path) as reopened:
        report = compute_usage(reopened, start=None, end=DAY_100, now=DAY_100, real_time=True)
    searches = report.sections["searches"]
    assert searches["requests_opened"] == 5
    assert searches["request_outcomes"]["viable_match"] == 1
    assert _named(report, searches["by_library"]) == {"lib-a": 2, "lib-b": 1}
    assert report.sections["deletions"]["templates_deleted"] == 2
    assert _overdue_ids(report) == (
        [str(history.approval_a), str(history.approval_b)],
        [str(history.ucc_probe)],
    )
    assert report.sections["refusals"]["by_rule"] == {"L-13": 1, "S-04": 1}


# -- the usage projection (issue 9): a report reads its period, and equals a replay of the log ----

_MOMENTS = (
    None,
    T0,
    T0 + timedelta(microseconds=1),
    DAY_1,
    T0 + timedelta(days=35),
    DAY_40,
    DAY_40 + timedelta(microseconds=1),
    DAY_100,
)


def test_A04_every_period_of_the_history_equals_a_replay_of_the_whole_log(
    world: World, history: History
) -> None:
    """A-04: for every period between moments of the history (including the very instants of its
    events, either side), the report read from the usage projection equals the one recomputed
    from every event with the domain's own state at the period's end."""
    compared = 0
    for start in _MOMENTS:
        for end in _MOMENTS[1:]:
            if start is not None and start >= end:
                continue
            for real_time in (False, True):
                report = compute_usage(world.app, start=start, end=end, now=DAY_100, real_time=real_time)
                expected = replayed_report(world.app, start=start, end=end, now=DAY_100, real_time=real_time)
                assert report.sections == expected, (start, end, real_time)
                compared += 1
    assert compared == 56


@contextmanager
def reads(world: World) -> Iterator[Counter[str]]:
    """Counts the stored events (by how they were read) and the projection rows the application
    reads in the block."""
    recorder = world.app.recorder
    names = ("select_events", "select_notifications", "query")
    originals = {name: getattr(recorder, name) for name in names}
    count: Counter[str] = Counter()

    def counting(name: str, select: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            found = select(*args, **kwargs)
            count[name] += len(found)
            return found

        return counted

    for name in names:
        setattr(recorder, name, counting(name, originals[name]))
    try:
        yield count
    finally:
        for name in names:
            setattr(recorder, name, originals[name])


def test_A04_a_report_costs_its_period_not_the_history_after_it(world: World, history: History) -> None:
    """A-04, issue 9: the report of day 0 reads the same events and rows after another 15 days
    of searches, refusals and reports (60 of each) as before them; it reads no notification."""

    def day_0() -> tuple[Counter[str], dict[str, Any]]:
        with reads(world) as count:
            report = compute_usage(world.app, start=T0, end=DAY_1, now=world.clock.now())
        return count, report.sections

    before, sections = day_0()
    log_before = world.app.recorder.max_notification_id()
    _, library_c = world.enrolled_library("lib-c")  # lib-a and lib-b are overdue for review by now
    for step in range(60):
        world.clock.advance(hours=6)
        request = world.searches.open(
            "analyst", world.probe(), [LibrarySelection(str(library_c), "may hold the subject")]
        ).id
        world.search(request, library_c)
        with pytest.raises(PolicyRefusal):
            world.searches.open(
                "outsider", world.probe(), [LibrarySelection(str(history.library_a), "may hold them")]
            )
        UsageReports(world.app, world.clock).run("admin2", start=T0 + timedelta(hours=step))
    assert world.app.recorder.max_notification_id() > log_before + 600

    after, same = day_0()
    assert (after, same) == (before, sections)
    # Rows of day 0 and the events of the three approvals and the cache entry open on day 1.
    assert before["select_notifications"] == 0
    assert 0 < before["query"] < 100 and 0 < before["select_events"] < 100


def test_A04_on_postgres_every_period_equals_a_replay_of_the_whole_log(
    postgres_store: str, tmp_path: Path
) -> None:
    """A-04, issue 10: the usage projection's SQL gives the same report on PostgreSQL as a replay
    of the log, for periods bounded at the history's own instants."""
    clock = FixedClock()
    app = postgres_app(tmp_path)
    try:
        build_history(World(app, clock).populate())
        for start, end in (
            (None, DAY_100),
            (T0, DAY_1),
            (T0 + timedelta(microseconds=1), DAY_40),
            (DAY_1, DAY_100),
        ):
            for real_time in (False, True):
                report = compute_usage(app, start=start, end=end, now=DAY_100, real_time=real_time)
                assert report.sections == replayed_report(
                    app, start=start, end=end, now=DAY_100, real_time=real_time
                )
    finally:
        app.close()
