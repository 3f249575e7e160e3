"""A-04: the worker delivers due scheduled reports as files and records each delivery; `rfr report usage`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from app_world import T0, FixedClock, World, sqlite_app

from rfr.adapters.report_delivery.files import FileReportSink
from rfr.application.services.usage_reports import ReportSchedules, compute_usage
from rfr.domain.people import Role
from rfr.domain.report_schedule import ReportSchedule
from rfr.entrypoints.cli.worker import run_round
from rfr.entrypoints.composition import Services
from rfr.infrastructure.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, persistence="sqlite")


def _services(world: World, clock: FixedClock, data_dir: Path) -> Services:
    """The worker's composition root over the test's application and clock."""
    return Services(_settings(data_dir), application=world.app, clock=clock)


def test_A04_worker_writes_the_due_report_and_records_its_delivery(
    world: World, clock: FixedClock, tmp_path: Path
) -> None:
    """A-04: worker writes the due report and records its delivery."""
    view = ReportSchedules(world.app, clock).create("admin", "daily usage", "daily", ["admin2", "admin"])
    world.approved()  # something to count on the first day
    assert run_round(_services(world, clock, tmp_path)) == ()  # 2024-03-01 has not ended

    clock.advance(hours=16)  # 2024-03-02 01:00
    (outcome,) = run_round(_services(world, clock, tmp_path))
    location = f"reports/{view.id}/2024-03-01.json"
    assert (outcome.period, outcome.delivered, outcome.recipients, outcome.location) == (
        "2024-03-01",
        True,
        ("admin2", "admin"),
        location,
    )
    written = tmp_path / location
    content = written.read_bytes()
    document = json.loads(content)
    assert document["schedule"] == {"id": str(view.id), "name": "daily usage", "frequency": "daily"}
    assert (document["period"], document["recipients"]) == ("2024-03-01", ["admin2", "admin"])
    expected = compute_usage(
        world.app,
        start=datetime(2024, 3, 1, tzinfo=UTC),
        end=datetime(2024, 3, 2, tzinfo=UTC),
        now=clock.now(),
    )
    assert document["usage"] == json.loads(json.dumps(expected.to_json()))
    assert document["usage"]["approvals"]["library"]["granted"] == 1
    assert oct(written.stat().st_mode & 0o777) == "0o600"

    schedule = world.app.get(view.id, ReportSchedule)
    delivery = schedule.last_delivery
    assert schedule.delivered == 1 and delivery is not None
    assert (delivery.recipients, delivery.location) == (("admin2", "admin"), location)
    assert delivery.digest == "sha256:" + hashlib.sha256(content).hexdigest()
    assert run_round(_services(world, clock, tmp_path)) == ()  # delivered once only

    # The next day admin2 is no longer an administrator: the report goes to admin alone.
    world.users.revoke_role("admin", "admin2", Role.ADMINISTRATOR, "moved to another unit")
    clock.advance(days=1)
    (outcome,) = run_round(_services(world, clock, tmp_path))
    assert (outcome.period, outcome.recipients) == ("2024-03-02", ("admin",))
    delivered = world.app.get(view.id, ReportSchedule)
    assert delivered.last_delivery is not None and delivered.last_delivery.recipients == ("admin",)
    assert document_of(tmp_path, view.id, "2024-03-02")["recipients"] == ["admin"]


def document_of(data_dir: Path, schedule_id: object, label: str) -> dict:
    return json.loads((data_dir / "reports" / str(schedule_id) / f"{label}.json").read_text())


def test_A04_a_period_nobody_may_receive_is_withheld_and_no_file_is_written(
    world: World, clock: FixedClock, tmp_path: Path
) -> None:
    """A-04: a period nobody may receive is withheld and no file is written."""
    view = ReportSchedules(world.app, clock).create("admin", "hourly usage", "hourly", ["admin2"])
    world.users.disable("admin", "admin2", "left the force")
    clock.advance(hours=1)
    (outcome,) = run_round(_services(world, clock, tmp_path))
    assert (outcome.period, outcome.delivered, outcome.location) == ("2024-03-01T09", False, None)
    assert not (tmp_path / "reports").exists()
    schedule = world.app.get(view.id, ReportSchedule)
    assert (schedule.delivered, schedule.last_delivery) == (0, None)
    assert schedule.next_period().label == "2024-03-01T10"
    withheld = [
        e
        for e in world.app.repository.event_store.get(view.id)
        if isinstance(e, ReportSchedule.DeliveryWithheld)
    ]
    assert [(e.period_label, e.withheld_from) for e in withheld] == [("2024-03-01T09", ["admin2"])]


def test_A04_file_sink_refuses_names_that_leave_its_folder(tmp_path: Path) -> None:
    """A-04: file sink refuses names that leave its folder."""
    sink = FileReportSink(tmp_path)
    assert sink.write("abc", "2024-03", b"{}") == "reports/abc/2024-03.json"
    for schedule_id, label in [("..", "x"), ("a/b", "x"), ("abc", "../x"), ("abc", "")]:
        try:
            sink.write(schedule_id, label, b"{}")
        except ValueError:
            continue
        raise AssertionError(f"{schedule_id!r}/{label!r} was accepted")
    assert sorted(p.name for p in (tmp_path / "reports" / "abc").iterdir()) == ["2024-03.json"]


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RFR_DATA_DIR": str(data_dir), "RFR_PERSISTENCE": "sqlite"}
    return subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_A04_rfr_worker_once_and_rfr_report_usage_on_a_sqlite_store(tmp_path: Path) -> None:
    """A-04: rfr worker once and rfr report usage on a sqlite store."""
    clock = FixedClock(T0)
    with sqlite_app(tmp_path) as app:
        world = World(app, clock).populate()
        world.approved()
        schedule_id = ReportSchedules(app, clock).create("admin", "monthly usage", "monthly", ["admin2"]).id

    worker = _cli(tmp_path, "worker", "--once")
    assert worker.returncode == 0, worker.stderr
    # The real clock is long past March 2024: every month since is due, at most 48 in one round.
    now = datetime.now(UTC)
    months = min(48, (now.year - 2024) * 12 + now.month - 3)
    # (The same round also reports other work, such as reviews it flagged overdue.)
    lines = [line for line in worker.stdout.splitlines() if line.startswith("delivered")]
    assert len(lines) == months and lines[0].startswith(
        f"delivered 2024-03 of schedule {schedule_id} to admin2"
    )
    files = sorted(p.name for p in (tmp_path / "reports" / str(schedule_id)).iterdir())
    # Each period's JSON document, its CSV and its HTML report with charts.
    assert len(files) == 3 * months and files[:3] == ["2024-03.csv", "2024-03.html", "2024-03.json"]
    assert document_of(tmp_path, schedule_id, "2024-03")["usage"]["approvals"]["library"]["applied"] == 1
    assert document_of(tmp_path, schedule_id, "2024-04")["usage"]["approvals"]["library"]["applied"] == 0
    with sqlite_app(tmp_path) as app:
        assert app.get(schedule_id, ReportSchedule).delivered == months
    again = _cli(tmp_path, "worker", "--once")
    assert (again.returncode, again.stdout) == (0, "")

    report = _cli(tmp_path, "report", "usage", "--user", "auditor", "--format", "csv", "--to", "2024-03-02")
    assert report.returncode == 0, report.stderr
    rows = {
        (r["section"], r["measure"], r["key"]): r["value"] for r in csv.DictReader(io.StringIO(report.stdout))
    }
    assert rows["approvals", "library", "granted"] == "1"
    assert rows["period", "to", ""] == "2024-03-02T00:00:00+00:00"

    page = _cli(tmp_path, "report", "usage", "--user", "auditor", "--format", "html", "--to", "2024-03-02")
    assert page.returncode == 0 and page.stdout.startswith("<!DOCTYPE html>") and "<svg" in page.stdout

    refused = _cli(tmp_path, "report", "usage", "--user", "analyst")
    assert refused.returncode == 3 and "A-05" in refused.stderr
    bad = _cli(tmp_path, "report", "usage", "--user", "admin2", "--from", "2024-03-02", "--to", "2024-03-01")
    assert bad.returncode == 2
    with sqlite_app(tmp_path) as app:
        usage = compute_usage(app, start=None, end=datetime.now(UTC), now=datetime.now(UTC))
    assert usage.sections["reports"] == {
        "run_on_demand": 2,
        "delivered": months,
        "delivery_attempts_failed": 0,
    }
    assert usage.sections["refusals"]["by_command"] == {"run usage report": 1}


def test_A04_a_folder_that_cannot_be_written_is_a_failed_attempt_tried_again(
    world: World, clock: FixedClock, tmp_path: Path
) -> None:
    """A-04: the folder delivery failing (here a file where the schedule's folder goes) is
    recorded as a failed attempt with the reason, and the period is delivered on the retry
    once it can be written."""
    view = ReportSchedules(world.app, clock).create("admin", "daily usage", "daily", ["admin2"])
    folder = tmp_path / "reports" / str(view.id)
    folder.parent.mkdir(parents=True)
    folder.write_text("in the way")
    clock.advance(days=1)
    (outcome,) = run_round(_services(world, clock, tmp_path))
    assert (outcome.status, outcome.attempt) == ("failed", 1)
    assert "could not be written under reports/: FileExistsError" in (outcome.error or "")
    folder.unlink()
    clock.advance(hours=1)
    (outcome,) = run_round(_services(world, clock, tmp_path))
    assert (outcome.status, outcome.attempt, outcome.period) == ("delivered", 2, "2024-03-01")
    assert (folder / "2024-03-01.html").read_bytes().startswith(b"<!DOCTYPE html>")
