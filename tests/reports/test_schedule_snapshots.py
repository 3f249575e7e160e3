"""A-04: a report schedule loaded from its snapshot is the schedule its events make (ADR 0028).

The snapshot goes through the real transcoder and store (SQLite), with every kind of value
the state holds: enums, datetimes, an attempt in progress, the last delivery, a refusal.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from app_world import FixedClock, World, memory_app, sqlite_app

from rfr.application.app import SNAPSHOT_INTERVAL, RfrApplication
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.report_schedule import ReportFrequency, ReportSchedule
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings


def replayed(app: RfrApplication, schedule_id: Any) -> ReportSchedule:
    """The schedule from its events alone."""
    return app.unsnapshotted.get(schedule_id)


def test_A04_a_schedule_loaded_from_its_snapshot_equals_the_schedule_replayed_from_its_events(
    tmp_path: Path, clock: FixedClock
) -> None:
    with sqlite_app(tmp_path) as app:
        world = World(app, clock).populate()
        admin, admin2 = world.actor("admin"), world.actor("admin2")
        schedule = ReportSchedule.create(admin, clock.now(), "hourly usage", ReportFrequency.HOURLY, [admin])
        app.save(schedule)
        clock.advance(hours=1)
        period = schedule.next_period()
        schedule.begin_delivery(clock.now(), period, message_id="<m1@force.example>", channel="email")
        schedule.record_failure(clock.now(), period, "451 mailbox busy")
        schedule.begin_delivery(
            clock.now() + timedelta(hours=1), period, message_id="<m1@force.example>", channel="email"
        )
        schedule.record_delivery(clock.now() + timedelta(hours=1), period, [admin], location="x", digest="d")
        with pytest.raises(PolicyRefusal):
            schedule.cancel(world.actor("analyst"), clock.now(), "not an administrator")
        schedule.change(admin, clock.now(), "a second reader", recipients=[admin, admin2])
        # An attempt in progress at the snapshot's version.
        clock.advance(hours=2)
        schedule.begin_delivery(clock.now(), schedule.next_period(), message_id="<m2@x>", channel="email")
        app.save(schedule)
        assert schedule.version < SNAPSHOT_INTERVAL
        app.take_snapshot(schedule.id)

        (snapshot,) = app.snapshots.get(schedule.id) if app.snapshots is not None else ()
        assert snapshot.originator_version == schedule.version
        loaded = app.get(schedule.id, ReportSchedule)
        events = replayed(app, schedule.id)
        assert vars(loaded) == vars(events)
        assert loaded.attempt is not None and loaded.last_delivery is not None and loaded.refusals
        assert (loaded.frequency, loaded.recipients, loaded.delivered) == (
            ReportFrequency.HOURLY,
            ("admin", "admin2"),
            1,
        )
        # And the loaded schedule decides as the replayed one does: its attempt holds the period.
        assert loaded.due_periods(clock.now()) == events.due_periods(clock.now()) == ()


def test_A04_snapshots_are_taken_every_interval_as_the_worker_saves(
    tmp_path: Path, clock: FixedClock
) -> None:
    with sqlite_app(tmp_path) as app:
        world = World(app, clock).populate()
        admin = world.actor("admin")
        schedule = ReportSchedule.create(admin, clock.now(), "hourly", ReportFrequency.HOURLY, [admin])
        app.save(schedule)
        for _ in range(SNAPSHOT_INTERVAL):
            clock.advance(hours=1)
            period = schedule.next_period()
            schedule.begin_delivery(clock.now(), period, message_id=f"<{period.label}@x>", channel="folder")
            app.save(schedule)
            schedule.record_delivery(clock.now(), period, [admin], location="x", digest="d")
            app.save(schedule)
        assert app.snapshots is not None
        versions = [s.originator_version for s in app.snapshots.get(schedule.id)]
        assert versions == [SNAPSHOT_INTERVAL, 2 * SNAPSHOT_INTERVAL]
        assert vars(app.get(schedule.id, ReportSchedule)) == vars(replayed(app, schedule.id))


def test_a_schedule_with_state_its_snapshot_does_not_keep_cannot_be_snapshotted(clock: FixedClock) -> None:
    """A new attribute must be given its place in the snapshot (and a class_version with an
    upcast) before any snapshot is taken; otherwise loads would silently lose it."""
    app = memory_app()
    world = World(app, clock).populate()
    admin = world.actor("admin")
    schedule = ReportSchedule.create(admin, clock.now(), "hourly", ReportFrequency.HOURLY, [admin])
    schedule.new_thing = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="new_thing has no place in its snapshot"):
        ReportSchedule.Snapshot.take(schedule)


def test_A04_a_read_only_tool_loads_a_schedule_from_a_store_made_before_snapshots(
    tmp_path: Path, clock: FixedClock
) -> None:
    """`rfr audit`, `rfr report usage` open the store without changing it: a store from before
    ADR 0028 has no snapshot table, and they must still load a schedule (from its events)."""
    with sqlite_app(tmp_path) as app:
        world = World(app, clock).populate()
        admin = world.actor("admin")
        schedule = ReportSchedule.create(admin, clock.now(), "hourly", ReportFrequency.HOURLY, [admin])
        app.save(schedule)
    settings = Settings(data_dir=tmp_path, persistence="sqlite")
    with sqlite3.connect(settings.event_store_path) as db:
        db.execute("DROP TABLE stored_snapshots")
    with RfrApplication(application_env(settings, create_tables=False)) as reader:
        assert reader.snapshots is None
        assert reader.get(schedule.id, ReportSchedule).name == "hourly"
    with sqlite3.connect(settings.event_store_path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "stored_snapshots" not in tables  # the reader changed nothing


def test_A04_a_snapshot_of_an_earlier_state_version_is_upcast_when_loaded(
    tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a change of the state takes (ADR 0028): a snapshot stored at class_version 1 is
    loaded by code at class_version 2 through ``upcast_v1_v2`` on the stored dict."""
    with sqlite_app(tmp_path) as app:
        world = World(app, clock).populate()
        admin = world.actor("admin")
        schedule = ReportSchedule.create(admin, clock.now(), "hourly", ReportFrequency.HOURLY, [admin])
        app.save(schedule)
        app.take_snapshot(schedule.id)
        upcast: list[dict[str, Any]] = []

        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast.append(dict(state))
            state["name"] = state["name"] + " (v2)"

        monkeypatch.setattr(ReportSchedule, "class_version", 2)
        monkeypatch.setattr(ReportSchedule, "upcast_v1_v2", staticmethod(upcast_v1_v2), raising=False)
        loaded = app.get(schedule.id, ReportSchedule)
        assert [s["frequency"] for s in upcast] == ["hourly"]  # the plain stored state
        assert loaded.name == "hourly (v2)" and loaded.frequency is ReportFrequency.HOURLY
        # The next snapshot (of a later version: one per version) records the state's version,
        # so it is not upcast again.
        loaded.change(admin, clock.now(), "daily is enough", frequency=ReportFrequency.DAILY)
        app.save(loaded)
        app.take_snapshot(loaded.id)
        (latest,) = app.snapshots.get(schedule.id, desc=True, limit=1) if app.snapshots else ()
        assert latest.state["class_version"] == 2
