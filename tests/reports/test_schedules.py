"""A-04: scheduled usage reports: calendar periods, what is due when, and who may schedule them for whom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from app_world import FixedClock, World

from rfr.application.errors import NotFound
from rfr.application.services.usage_reports import ReportSchedules
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.people import Actor, Role
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.report_schedule import ReportFrequency, ReportPeriod, ReportSchedule

HOURLY, DAILY, MONTHLY = ReportFrequency.HOURLY, ReportFrequency.DAILY, ReportFrequency.MONTHLY
ADMIN = Actor("admin", {Role.ADMINISTRATOR})
ADMIN_2 = Actor("admin2", {Role.ADMINISTRATOR})
CREATED = datetime(2024, 2, 28, 10, 30, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("frequency", "moment", "start", "end", "label"),
    [
        (HOURLY, utc(2024, 2, 28, 10, 30), utc(2024, 2, 28, 10), utc(2024, 2, 28, 11), "2024-02-28T10"),
        (HOURLY, utc(2024, 12, 31, 23, 59, 59), utc(2024, 12, 31, 23), utc(2025, 1, 1), "2024-12-31T23"),
        (DAILY, utc(2024, 2, 28, 10, 30), utc(2024, 2, 28), utc(2024, 2, 29), "2024-02-28"),
        (DAILY, utc(2024, 3, 1), utc(2024, 3, 1), utc(2024, 3, 2), "2024-03-01"),
        (MONTHLY, utc(2024, 2, 28, 10, 30), utc(2024, 2, 1), utc(2024, 3, 1), "2024-02"),
        (MONTHLY, utc(2024, 12, 15), utc(2024, 12, 1), utc(2025, 1, 1), "2024-12"),
        # Periods are UTC: 00:30 in UTC+2 on 1 March is still February in UTC.
        (
            MONTHLY,
            datetime(2024, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            utc(2024, 2, 1),
            utc(2024, 3, 1),
            "2024-02",
        ),
    ],
)
def test_A04_periods_are_calendar_periods_in_utc(
    frequency: ReportFrequency, moment: datetime, start: datetime, end: datetime, label: str
) -> None:
    """A-04: periods are calendar periods in utc."""
    period = frequency.period_containing(moment)
    assert (period.start, period.end, period.label) == (start, end, label)
    assert period.following().start == end


def test_A04_the_period_in_progress_at_creation_is_due_once_it_ends() -> None:
    """A-04: the period in progress at creation is due once it ends."""
    schedule = ReportSchedule.create(ADMIN, CREATED, "daily usage", DAILY, [ADMIN_2])
    assert schedule.due_periods(utc(2024, 2, 28, 23, 59, 59)) == ()
    due = schedule.due_periods(utc(2024, 2, 29))
    assert [p.label for p in due] == ["2024-02-28"]
    # A worker that was down catches up period by period, oldest first, at most ``limit``.
    assert [p.label for p in schedule.due_periods(utc(2024, 3, 2, 6))] == [
        "2024-02-28",
        "2024-02-29",
        "2024-03-01",
    ]
    assert [p.label for p in schedule.due_periods(utc(2024, 3, 2, 6), limit=2)] == [
        "2024-02-28",
        "2024-02-29",
    ]


def test_A04_a_delivered_period_is_not_due_again_and_deliveries_go_in_order() -> None:
    """A-04: a delivered period is not due again and deliveries go in order."""
    schedule = ReportSchedule.create(ADMIN, CREATED, "hourly usage", HOURLY, [ADMIN_2, ADMIN])
    now = utc(2024, 2, 28, 13, 5)
    first, second, third = schedule.due_periods(now)
    with pytest.raises(PolicyRefusal, match="not the period due next"):
        schedule.record_delivery(now, second, [ADMIN_2], location="reports/x/2.json", digest="sha256:2")
    with pytest.raises(PolicyRefusal, match="has not ended"):
        schedule.record_delivery(
            first.start, first, [ADMIN_2], location="reports/x/1.json", digest="sha256:1"
        )
    schedule.record_delivery(now, first, [ADMIN_2, ADMIN], location="reports/x/1.json", digest="sha256:1")
    assert schedule.due_periods(now) == (second, third)
    delivered = schedule.pending_events[-1]
    assert isinstance(delivered, ReportSchedule.ReportDelivered)
    assert delivered.recipients == ["admin2", "admin"] and delivered.withheld_from == []
    assert delivered.acting.user_id == "rfr:report-worker"
    assert [r.command for r in schedule.refusals] == [
        "deliver usage report 2024-02-28T11",
        "deliver usage report 2024-02-28T10",
    ]


def test_A04_only_enabled_administrators_receive_a_report() -> None:
    """A-04: only enabled administrators receive a report."""
    schedule = ReportSchedule.create(ADMIN, CREATED, "daily usage", DAILY, [ADMIN, ADMIN_2])
    period = schedule.due_periods(utc(2024, 3, 1))[0]
    demoted = Actor("admin2", {Role.RFR_USER})
    schedule.record_delivery(utc(2024, 3, 1), period, [ADMIN, demoted], location="r.json", digest="sha256:0")
    delivered = schedule.pending_events[-1]
    assert (delivered.recipients, delivered.withheld_from) == (["admin"], ["admin2"])

    nobody = [Actor("admin", {Role.ADMINISTRATOR}, active=False), demoted]
    following = period.following()
    with pytest.raises(PolicyRefusal, match="no recipient may receive"):
        schedule.record_delivery(utc(2024, 3, 2), following, nobody, location="r.json", digest="sha256:0")
    with pytest.raises(PolicyRefusal, match="only to the schedule's recipients"):
        schedule.record_delivery(
            utc(2024, 3, 2), following, [Actor("eve", {Role.ADMINISTRATOR})], location="r", digest="d"
        )
    schedule.withhold_delivery(utc(2024, 3, 2), following, nobody)
    assert isinstance(schedule.pending_events[-1], ReportSchedule.DeliveryWithheld)
    assert schedule.next_period() == following.following()


def test_A04_a_new_frequency_starts_with_the_period_in_progress_and_a_cancelled_schedule_is_never_due() -> (
    None
):
    """A-04: a new frequency starts with the period in progress and a cancelled schedule is never due."""
    schedule = ReportSchedule.create(ADMIN, CREATED, "hourly usage", HOURLY, [ADMIN_2])
    schedule.record_delivery(
        utc(2024, 2, 28, 11), schedule.next_period(), [ADMIN_2], location="l", digest="d"
    )
    schedule.change(ADMIN, utc(2024, 3, 15, 8), "hourly is too much", frequency=MONTHLY)
    assert schedule.next_period() == ReportPeriod(MONTHLY, utc(2024, 3, 1))
    assert [p.label for p in schedule.due_periods(utc(2024, 4, 1))] == ["2024-03"]
    schedule.change(ADMIN, utc(2024, 3, 16), "admin leaves", recipients=[ADMIN])
    assert schedule.recipients == ("admin",) and schedule.next_period().label == "2024-03"
    with pytest.raises(PolicyRefusal, match="changes nothing"):
        schedule.change(ADMIN, utc(2024, 3, 16), "again", frequency=MONTHLY)
    schedule.cancel(ADMIN, utc(2024, 3, 20), "no longer needed")
    assert schedule.due_periods(utc(2025, 1, 1)) == ()
    with pytest.raises(PolicyRefusal, match="cancelled"):
        schedule.change(ADMIN, utc(2024, 3, 21), "revive", frequency=DAILY)


def test_A04_use_case_administrators_schedule_for_administrators(world: World, clock: FixedClock) -> None:
    """A-04: use case administrators schedule for administrators."""
    schedules = ReportSchedules(world.app, clock)
    view = schedules.create("admin", "daily usage", "daily", ["admin2"])
    assert (view.frequency, view.recipients, view.status, view.created_by) == (
        "daily",
        ("admin2",),
        "active",
        "admin",
    )
    assert (view.next_period, view.next_due_at) == ("2024-03-01", utc(2024, 3, 2))
    changed = schedules.change(
        "admin", view.id, "weekly is not offered; monthly", frequency=MONTHLY, recipients=["admin", "admin2"]
    )
    assert (changed.frequency, changed.recipients, changed.next_period) == (
        "monthly",
        ("admin", "admin2"),
        "2024-03",
    )
    assert schedules.get("admin2", view.id) == changed
    assert [v.id for v in schedules.list("admin2").items] == [view.id]
    cancelled = schedules.cancel("admin2", view.id, "replaced")
    assert (cancelled.status, cancelled.next_period) == ("cancelled", None)
    assert world.app.get(view.id, ReportSchedule).status.value == "cancelled"
    with pytest.raises(NotFound):
        schedules.get("admin", "not-a-schedule")


@pytest.mark.parametrize(
    ("acting", "recipients", "rule", "reason"),
    [
        ("op-lead", ["admin2"], "A-05", "does not hold administrator"),
        ("auditor", ["admin2"], "A-05", "does not hold administrator"),
        ("admin", ["analyst"], "A-04", "enabled administrators only, not analyst"),
        ("admin", ["nobody-registered"], "A-04", "not nobody-registered"),
        ("admin", [], "A-04", "at least one administrator"),
        ("admin", ["admin2", "admin2"], "A-04", "named once"),
    ],
)
def test_A04_A05_wrong_schedules_are_refused_and_the_refusal_recorded(
    world: World, clock: FixedClock, acting: str, recipients: list[str], rule: str, reason: str
) -> None:
    """A-04, A-05: wrong schedules are refused and the refusal recorded."""
    with pytest.raises(PolicyRefusal) as refused:
        ReportSchedules(world.app, clock).create(acting, "usage", HOURLY, recipients)
    assert rule in refused.value.rule_ids and reason in refused.value.reason
    attempt = world.app.get(refused.value.record.id, RefusedAttempt)
    assert (attempt.command, attempt.refusals[0].actor.user_id) == ("create report schedule", acting)


def test_A04_a_non_administrator_cannot_change_read_or_cancel_and_the_refusal_stays_on_the_schedule(
    world: World, clock: FixedClock
) -> None:
    """A-04: a non administrator cannot change read or cancel and the refusal stays on the schedule."""
    schedules = ReportSchedules(world.app, clock)
    view = schedules.create("admin", "daily usage", DAILY, ["admin2"])
    with pytest.raises(PolicyRefusal):
        schedules.cancel("op-lead", view.id, "tidying up")
    with pytest.raises(PolicyRefusal):
        schedules.get("auditor", view.id)
    schedule = world.app.get(view.id, ReportSchedule)
    assert schedule.active
    assert [(r.command, r.actor.user_id, r.rule_ids) for r in schedule.refusals] == [
        ("cancel report schedule", "op-lead", ("A-05",))
    ]
