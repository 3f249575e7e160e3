"""A-04: a worker round reads as many stored events for a schedule of 500 delivered hourly
periods as for one of 50 (ADR 0028).

Counting, not timing: the rows the application reads from the event store and the snapshot
store are counted at their recorders, for the production worker (``ScheduledReportDelivery``
writing real files) over SQLite and PostgreSQL, with a FixedClock driving the hours. Without
snapshots each round replayed the ~2 events of every period ever delivered (1 + 2n for n
periods), so the worker's cost grew every hour for as long as the schedule ran.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from app_world import FixedClock, World

from rfr.adapters.report_delivery.files import FileReportSink
from rfr.adapters.reporting.html_report import render_html
from rfr.application.app import SNAPSHOT_INTERVAL, RfrApplication
from rfr.application.services.usage_reports import ReportSchedules, ScheduledReportDelivery
from rfr.domain.report_schedule import ReportSchedule
from rfr.infrastructure.audit.verification import verify
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings


@contextmanager
def rows_read(app: RfrApplication) -> Iterator[list[int]]:
    """Counts the stored events and snapshots ``app`` reads while the block runs."""
    recorders = [app.recorder] + ([app.snapshots.recorder] if app.snapshots is not None else [])
    count = [0]
    originals = [
        (recorder, name, getattr(recorder, name))
        for recorder in recorders
        for name in ("select_events", "select_notifications")
        if hasattr(recorder, name)
    ]

    def counting(select: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            found = select(*args, **kwargs)
            count[0] += len(found)
            return found

        return counted

    for recorder, name, select in originals:
        setattr(recorder, name, counting(select))
    try:
        yield count
    finally:
        for recorder, name, select in originals:
            setattr(recorder, name, select)


def delivered_hours(app: RfrApplication, clock: FixedClock, data_dir: Path, hours: int) -> tuple[Any, ...]:
    """A new hourly schedule with ``hours`` periods delivered through the worker, round by round
    (a round catches up at most MAX_PERIODS_PER_RUN periods); returns its id and the worker."""
    schedule_id = ReportSchedules(app, clock).create("admin", "hourly usage", "hourly", ["admin"]).id
    worker = ScheduledReportDelivery(app, clock, FileReportSink(data_dir), render_html)
    clock.advance(hours=hours)
    delivered = 0
    while outcomes := worker.run_due():
        assert all(o.status == "delivered" for o in outcomes)
        delivered += len(outcomes)
    assert delivered == hours
    assert app.get(schedule_id, ReportSchedule).delivered == hours
    return schedule_id, worker


def round_costs(app: RfrApplication, clock: FixedClock, data_dir: Path, hours: int) -> tuple[Any, int, int]:
    """The schedule's id, the rows read by a round with nothing due, and by a round delivering
    one more period."""
    schedule_id, worker = delivered_hours(app, clock, data_dir, hours)
    with rows_read(app) as idle:
        assert worker.run_due() == ()
    clock.advance(hours=1)
    with rows_read(app) as busy:
        (outcome,) = worker.run_due()
    assert outcome.status == "delivered"
    return schedule_id, idle[0], busy[0]


def store_env(store: str, data_dir: Path) -> dict[str, str]:
    """The application's environment over a SQLite file in ``data_dir``, or over PostgreSQL at
    the DSN and schema the environment names (the ``postgres_store`` fixture)."""
    if store == "sqlite":
        return application_env(Settings(data_dir=data_dir, persistence="sqlite"))
    env = {**os.environ, "RFR_DATA_DIR": str(data_dir), "RFR_PERSISTENCE": "postgres"}
    return application_env(Settings.from_env(env))


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_A04_a_worker_round_reads_the_same_events_after_50_or_500_delivered_periods(
    store: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store == "postgres":
        request.getfixturevalue("postgres_store")
    costs = {}
    for hours in (50, 500):
        data_dir = tmp_path / str(hours)
        if store == "postgres":
            # A schema of its own for each history: a round reads every schedule in the store.
            monkeypatch.setenv("RFR_POSTGRES_SCHEMA", _new_schema(hours))
        env = store_env(store, data_dir)
        clock = FixedClock()
        with RfrApplication(env) as app:
            World(app, clock).populate()
            schedule_id, idle, busy = round_costs(app, clock, data_dir, hours)
            costs[hours] = (idle, busy)
            # The snapshots sit beside the chain, not in it: the trail verifies as every event.
            assert app.snapshots is not None and list(app.snapshots.get(schedule_id, desc=True, limit=1))
            audit = verify(app.recorder)
            assert audit.ok, audit.summary()
            assert audit.checked == app.recorder.max_notification_id()
        # What the same load cost without snapshots: the whole history, 1 + 2 events a period
        # (this also shows the counting sees every row a load reads).
        with RfrApplication({**env, "IS_SNAPSHOTTING_ENABLED": "no"}) as app, rows_read(app) as replayed:
            app.get(schedule_id, ReportSchedule)
        assert replayed[0] == 1 + 2 * (hours + 1)
    idle, busy = costs[50]
    assert costs[500] == costs[50]
    # One schedule listed, one snapshot and fewer than SNAPSHOT_INTERVAL events after it; a
    # delivering round also reloads after its saves and may read back what it saved to take
    # the next snapshot.
    assert idle <= 2 + SNAPSHOT_INTERVAL
    assert busy <= 2 * (2 + SNAPSHOT_INTERVAL)


def _new_schema(hours: int) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}_{hours}"
    with psycopg.connect(os.environ["RFR_POSTGRES_DSN"], autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema
