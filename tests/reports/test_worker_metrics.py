"""The worker's live metrics (ADR 0024): a delivered report is counted with its lag from the end
of its period, and each round of a job is counted by how it ended."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_world import FixedClock, World

from rfr.application.services.usage_reports import ReportSchedules
from rfr.entrypoints.cli.worker import run_round
from rfr.entrypoints.composition import Services
from rfr.infrastructure.metrics import REGISTRY, worker_job
from rfr.infrastructure.settings import Settings


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
