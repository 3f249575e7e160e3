"""The worker's live metrics (ADR 0024): a delivered report is counted with its lag from the end
of its period, and each round of a job is counted by how it ended."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from app_world import FixedClock, World
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from smtp_server import RecordingHandler, smtp_server

from rfr.adapters.report_delivery.smtp import SmtpReportSink
from rfr.adapters.reporting.html_report import render_html
from rfr.application.services.retention import RetentionSweep
from rfr.application.services.usage_reports import ReportSchedules, ScheduledReportDelivery
from rfr.domain.report_schedule import RETRY_FIRST
from rfr.entrypoints.cli.worker import run_round
from rfr.entrypoints.composition import Services
from rfr.infrastructure.metrics import REGISTRY, count_stored_events, worker_job
from rfr.infrastructure.settings import Settings
from rfr.infrastructure.smtp_settings import SmtpSettings


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_A04_a_delivered_report_is_counted_with_its_lag_from_the_end_of_its_period(
    world: World, clock: FixedClock, tmp_path: Path
) -> None:
    services = Services(Settings(data_dir=tmp_path, persistence="sqlite"), application=world.app, clock=clock)
    ReportSchedules(world.app, clock).create("admin", "daily usage", "daily", ["admin"])
    delivered = sample("rfr_report_deliveries_total")
    lag_count = sample("rfr_report_delivery_lag_seconds_count")
    lag_sum = sample("rfr_report_delivery_lag_seconds_sum")
    rounds = sample("rfr_worker_jobs_total", job="report_delivery", outcome="ok")

    assert run_round(services) == ()  # the first day has not ended: nothing delivered, a round run
    clock.advance(hours=16)  # an hour after the first day ended
    (outcome,) = run_round(services)
    assert outcome.delivered

    assert sample("rfr_report_deliveries_total") == delivered + 1
    assert sample("rfr_report_delivery_lag_seconds_count") == lag_count + 1
    assert sample("rfr_report_delivery_lag_seconds_sum") == lag_sum + 3600
    assert sample("rfr_worker_jobs_total", job="report_delivery", outcome="ok") == rounds + 2


def test_a_failed_round_is_counted_as_failed_and_leaves_the_last_success_alone() -> None:
    with worker_job("retention"):
        pass
    last = sample("rfr_worker_job_last_success_timestamp_seconds", job="retention")
    failed = sample("rfr_worker_jobs_total", job="retention", outcome="failed")
    with pytest.raises(RuntimeError), worker_job("retention"):
        raise RuntimeError("the store went away")
    assert sample("rfr_worker_jobs_total", job="retention", outcome="failed") == failed + 1
    assert sample("rfr_worker_job_last_success_timestamp_seconds", job="retention") == last
    with pytest.raises(ValueError):
        worker_job("no such job").__enter__()


def test_the_worker_creates_a_missing_shared_folder_and_writes_its_rounds_there(tmp_path: Path) -> None:
    """``rfr worker --once`` with PROMETHEUS_MULTIPROC_DIR naming a folder not made yet: it is made,
    and the round's figures are read from it as an API process's scrape reads them."""
    folder = tmp_path / "not" / "made" / "yet"
    env = os.environ | {"RFR_DATA_DIR": str(tmp_path / "data"), "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "worker", "--once"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    for job in ("report_delivery", "retention", "reconciliation"):
        assert registry.get_sample_value("rfr_worker_jobs_total", {"job": job, "outcome": "ok"}) == 1, job


def test_R03a_a_probe_the_retention_worker_deletes_is_counted_as_its_deletion(world: World) -> None:
    """R-03a: a probe never searched goes 31 days after submission; the sweep's Purged event is
    counted under the retention worker, with no id in any label."""
    world.app.observe(count_stored_events)
    probe_id = world.probe()
    before = sample("rfr_deletions_total", kind="probe", by="retention_worker")
    by_person = sample("rfr_deletions_total", kind="probe", by="person")
    world.clock.advance(days=32)
    summary = RetentionSweep(world.app, world.clock, lambda: world.bio).run()
    assert summary.deleted.get("R-03a") == 1 and not summary.failed, summary
    assert sample("rfr_deletions_total", kind="probe", by="retention_worker") == before + 1
    assert sample("rfr_deletions_total", kind="probe", by="person") == by_person
    labels = {v for metric in REGISTRY.collect() for s in metric.samples for v in s.labels.values()}
    assert not [v for v in labels if str(probe_id) in v], labels


def test_A04_a_failed_delivery_attempt_is_counted_once_and_its_retry_that_succeeds_is_not(
    world: World, clock: FixedClock
) -> None:
    """A-04: a mail server refusing a report is seen on the dashboard before the report is late:
    each DeliveryFailed is counted, with no label naming a schedule or a person."""
    world.app.observe(count_stored_events)  # as the composition root does
    world.users.set_email("admin2", "admin", "admin@force.example", "where usage reports go")
    ReportSchedules(world.app, clock).create("admin", "hourly usage", "hourly", ["admin"])
    failed = sample("rfr_report_delivery_failures_total")
    delivered = sample("rfr_report_deliveries_total")
    handler = RecordingHandler()
    handler.refuse("451 4.3.0 mailbox busy, try again later")
    with smtp_server(handler) as port:
        sink = SmtpReportSink(
            SmtpSettings(
                host="127.0.0.1", port=port, sender="rfr@force.example", starttls=False, timeout_seconds=10
            )
        )
        worker = ScheduledReportDelivery(world.app, clock, sink, render_html)
        clock.advance(hours=1)
        (first,) = worker.run_due()
        assert first.status == "failed"
        assert sample("rfr_report_delivery_failures_total") == failed + 1
        clock.advance(hours=RETRY_FIRST / timedelta(hours=1))
        (second,) = worker.run_due()
        assert second.status == "delivered"
    assert sample("rfr_report_delivery_failures_total") == failed + 1
    assert sample("rfr_report_deliveries_total") == delivered + 1
    families = [m for m in REGISTRY.collect() if m.name == "rfr_report_delivery_failures"]
    assert [s.labels for m in families for s in m.samples] == [{}, {}]  # _total and _created
