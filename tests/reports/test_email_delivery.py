"""A-04: scheduled usage reports e-mailed to their named administrators through a real SMTP
server on loopback (aiosmtpd), every attempt and failure recorded, retried with back-off, and
a period never sent twice (ADR 0027)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from app_world import FixedClock, World, sqlite_app
from smtp_server import Login, RecordingHandler, free_port, self_signed, smtp_server

from rfr.adapters.report_delivery.smtp import SmtpReportSink
from rfr.adapters.reporting.html_report import render_html
from rfr.application.services.usage_reports import ReportSchedules, ScheduledReportDelivery
from rfr.domain.report_schedule import (
    ATTEMPT_LEASE,
    RETRY_CAP,
    RETRY_FIRST,
    ReportSchedule,
    message_id_for,
    retry_delay,
)
from rfr.infrastructure.smtp_settings import SmtpSettings

SENDER = "rfr-reports@force.example"
REPO_ROOT = Path(__file__).resolve().parents[2]


def smtp(port: int, **kw: object) -> SmtpReportSink:
    settings = {"host": "127.0.0.1", "port": port, "sender": SENDER, "starttls": False, "timeout_seconds": 10}
    return SmtpReportSink(SmtpSettings(**{**settings, **kw}))  # type: ignore[arg-type]


def delivery(world: World, clock: FixedClock, sink: SmtpReportSink) -> ScheduledReportDelivery:
    return ScheduledReportDelivery(world.app, clock, sink, render_html)


def addressed(world: World, *who: str) -> None:
    """Each administrator's address, set by another administrator (nobody sets their own, A-05)."""
    for user_id in who:
        by = "admin2" if user_id == "admin" else "admin"
        world.users.set_email(by, user_id, f"{user_id}@force.example", "where usage reports go")


def events_of(world: World, schedule_id: object, kind: type) -> list:
    return [e for e in world.app.repository.event_store.get(schedule_id) if isinstance(e, kind)]


def message_id_of(message) -> str:
    # A long header is folded onto a second line; unfolded, it keeps the line's leading space.
    return str(message["Message-ID"]).strip()


def attachments(message) -> dict[str, tuple[str, bytes]]:
    return {
        part.get_filename(): (part.get_content_type(), part.get_payload(decode=True))
        for part in message.iter_attachments()
    }


def test_A04_a_scheduled_report_arrives_by_email_with_its_csv_and_html_report(
    world: World, clock: FixedClock
) -> None:
    """A-04: the due period is e-mailed to its named administrators with the CSV, the HTML
    report (charts as inline SVG) and the JSON attached; the delivery and its attempt are events."""
    addressed(world, "admin", "admin2")
    # A name with a line break in it cannot add a mail header: the subject is one line.
    view = ReportSchedules(world.app, clock).create(
        "admin", "daily usage\r\nBcc: eve@evil.example", "daily", ["admin2", "admin"]
    )
    world.approved()
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        clock.advance(hours=16)  # 2024-03-01 has ended
        (outcome,) = delivery(world, clock, smtp(port)).run_due()
        assert delivery(world, clock, smtp(port)).run_due() == ()  # delivered once only

    message_id = message_id_for(view.id, "2024-03-01", "force.example")
    assert (outcome.status, outcome.period, outcome.recipients, outcome.attempt) == (
        "delivered",
        "2024-03-01",
        ("admin2", "admin"),
        1,
    )
    assert outcome.location == f"smtp 127.0.0.1:{port} {message_id}"
    (received,) = handler.received
    assert received.mail_from == SENDER
    assert sorted(received.rcpt_tos) == ["admin2@force.example", "admin@force.example"]
    assert message_id_of(received.message) == message_id
    assert received.message["Subject"] == "RFR usage report 2024-03-01 (daily usage Bcc: eve@evil.example)"
    assert received.message["Bcc"] is None and "eve@evil.example" not in received.rcpt_tos
    files = attachments(received.message)
    assert sorted(files) == [
        "usage-report-2024-03-01.csv",
        "usage-report-2024-03-01.html",
        "usage-report-2024-03-01.json",
    ]
    media, csv_bytes = files["usage-report-2024-03-01.csv"]
    rows = {
        (r["section"], r["measure"], r["key"]): r["value"]
        for r in csv.DictReader(io.StringIO(csv_bytes.decode()))
    }
    assert media == "text/csv" and rows["approvals", "library", "granted"] == "1"
    media, html = files["usage-report-2024-03-01.html"]
    assert media == "text/html" and b"<svg" in html and b"<script" not in html
    assert b"daily usage\r\nBcc: eve@evil.example: usage report for 2024-03-01" in html

    (attempted,) = events_of(world, view.id, ReportSchedule.DeliveryAttempted)
    (delivered,) = events_of(world, view.id, ReportSchedule.ReportDelivered)
    assert (attempted.attempt, attempted.message_id, attempted.channel) == (1, message_id, "smtp")
    assert (delivered.message_id, delivered.attempt, delivered.recipients) == (
        message_id,
        1,
        ["admin2", "admin"],
    )
    assert attempted.acting.user_id == delivered.acting.user_id == "rfr:report-worker"


def test_A04_a_refused_delivery_is_recorded_retried_after_the_back_off_and_sent_once(
    world: World, clock: FixedClock
) -> None:
    """A-04: the server refuses (451, then 554): each failed attempt is a DeliveryFailed event
    with the period, the attempt, the server's reply and when to try again; nothing is tried
    before then; the third attempt is delivered, once, with the period's one Message-ID."""
    addressed(world, "admin2")
    view = ReportSchedules(world.app, clock).create("admin", "hourly usage", "hourly", ["admin2"])
    handler = RecordingHandler()
    handler.refuse("451 4.3.0 mailbox busy, try again later", "554 5.7.1 rejected by policy")
    with smtp_server(handler) as port:
        clock.advance(hours=1)  # 2024-03-01T09 has ended
        (first,) = delivery(world, clock, smtp(port)).run_due()
        assert (first.status, first.attempt) == ("failed", 1)
        assert first.next_attempt_at == clock.now() + RETRY_FIRST
        assert "451" in (first.error or "")

        clock.advance(hours=RETRY_FIRST / timedelta(hours=1) / 2)
        assert delivery(world, clock, smtp(port)).run_due() == ()  # not before the back-off
        clock.advance(hours=RETRY_FIRST / timedelta(hours=1) / 2)
        (second,) = delivery(world, clock, smtp(port)).run_due()
        assert (second.status, second.attempt) == ("failed", 2)
        waiting = ReportSchedules(world.app, clock).get("admin", view.id)
        assert (waiting.failed_attempts, waiting.retry_at) == (2, second.next_attempt_at)
        # The back-off doubles.
        assert second.next_attempt_at == clock.now() + 2 * RETRY_FIRST

        clock.advance(hours=2 * RETRY_FIRST / timedelta(hours=1))
        outcomes = delivery(world, clock, smtp(port)).run_due()
    # The retried period, then the hours that ended meanwhile (in order).
    assert (outcomes[0].period, outcomes[0].status, outcomes[0].attempt) == ("2024-03-01T09", "delivered", 3)
    message_id = message_id_for(view.id, "2024-03-01T09", "force.example")
    assert [message_id_of(r.message) for r in handler.received].count(message_id) == 1

    failed = events_of(world, view.id, ReportSchedule.DeliveryFailed)
    assert [(e.period_label, e.attempt) for e in failed] == [("2024-03-01T09", 1), ("2024-03-01T09", 2)]
    shown = ReportSchedules(world.app, clock).get("admin", view.id)
    assert (shown.failed_attempts, shown.retry_at, shown.deliveries) == (0, None, len(outcomes))
    assert "451 4.3.0 mailbox busy" in failed[0].error and "554 5.7.1" in failed[1].error
    assert failed[1].next_attempt_at - failed[1].timestamp == 2 * RETRY_FIRST
    attempts = [
        e
        for e in events_of(world, view.id, ReportSchedule.DeliveryAttempted)
        if e.period_label == "2024-03-01T09"
    ]
    assert [(e.attempt, e.message_id) for e in attempts] == [
        (1, message_id),
        (2, message_id),
        (3, message_id),
    ]
    delivered = events_of(world, view.id, ReportSchedule.ReportDelivered)[0]
    assert (delivered.period_label, delivered.attempt) == ("2024-03-01T09", 3)


def test_A04_a_server_that_is_down_is_a_failed_attempt_and_the_back_off_has_a_cap(
    world: World, clock: FixedClock
) -> None:
    """A-04: nothing listens on the port: the attempt fails with the network error recorded,
    and the wait between attempts doubles up to its cap."""
    addressed(world, "admin2")
    view = ReportSchedules(world.app, clock).create("admin", "daily usage", "daily", ["admin2"])
    clock.advance(days=1)
    (outcome,) = delivery(world, clock, smtp(free_port())).run_due()
    assert outcome.status == "failed" and "ConnectionRefusedError" in (outcome.error or "")
    (failed,) = events_of(world, view.id, ReportSchedule.DeliveryFailed)
    assert (failed.period_label, failed.attempt) == ("2024-03-01", 1)
    assert [retry_delay(n) for n in (1, 2, 3, 4, 5, 6, 50)] == [
        RETRY_FIRST,
        2 * RETRY_FIRST,
        4 * RETRY_FIRST,
        8 * RETRY_FIRST,
        RETRY_CAP,
        RETRY_CAP,
        RETRY_CAP,
    ]


def test_A04_a_worker_that_dies_after_sending_leaves_the_period_to_its_lease_and_the_same_message_id(
    world: World, clock: FixedClock
) -> None:
    """A-04, ADR 0027: a worker saved its attempt and died (before or after the server took the
    message). No worker tries the period while the attempt's lease runs; then it is tried again
    with the same Message-ID, so a copy the server took before the crash is the same message."""
    addressed(world, "admin2")
    view = ReportSchedules(world.app, clock).create("admin", "daily usage", "daily", ["admin2"])
    clock.advance(days=1)
    schedule = world.app.get(view.id, ReportSchedule)
    (period,) = schedule.due_periods(clock.now())
    message_id = message_id_for(view.id, period.label, "force.example")
    schedule.begin_delivery(clock.now(), period, message_id=message_id, channel="smtp")
    world.app.save(schedule)  # ... and the worker is killed here

    handler = RecordingHandler()
    with smtp_server(handler) as port:
        assert delivery(world, clock, smtp(port)).run_due() == ()
        clock.advance(hours=ATTEMPT_LEASE / timedelta(hours=1))
        (outcome,) = delivery(world, clock, smtp(port)).run_due()
    assert (outcome.status, outcome.attempt) == ("delivered", 2)
    (received,) = handler.received
    assert message_id_of(received.message) == message_id


def test_A04_two_workers_deliver_each_period_once(tmp_path: Path, clock: FixedClock) -> None:
    """A-04: two workers (two processes' applications over one store) run the same rounds at
    once: each period reaches the server once, and is recorded once."""
    with sqlite_app(tmp_path) as app:
        world = World(app, clock).populate()
        addressed(world, "admin2")
        view = ReportSchedules(app, clock).create("admin", "hourly usage", "hourly", ["admin2"])
    clock.advance(hours=6)  # six hours due
    handler = RecordingHandler()
    with smtp_server(handler) as port, sqlite_app(tmp_path) as one, sqlite_app(tmp_path) as two:
        workers = [ScheduledReportDelivery(app, clock, smtp(port), render_html) for app in (one, two)]
        start = threading.Barrier(2)
        outcomes: list = []

        def run(worker: ScheduledReportDelivery) -> None:
            start.wait(timeout=30)
            outcomes.extend(worker.run_due())

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        # Whatever one left (it stops at a period the other took), a later round finishes.
        outcomes.extend(workers[0].run_due())
        outcomes.extend(workers[1].run_due())
        ids = [message_id_of(r.message) for r in handler.received]
        delivered = [
            e.period_label for e in one.events.get(view.id) if isinstance(e, ReportSchedule.ReportDelivered)
        ]
    labels = [f"2024-03-01T{h:02d}" for h in range(9, 15)]
    assert sorted(ids) == sorted(message_id_for(view.id, label, "force.example") for label in labels)
    assert sorted(o.period for o in outcomes if o.status == "delivered") == labels
    assert delivered == labels


def test_A04_a_worker_with_a_stale_schedule_sends_nothing(world: World, clock: FixedClock) -> None:
    """A-04: a worker that read the schedule before another delivered the period cannot save
    its attempt (the schedule's version moved on), and so sends nothing."""
    addressed(world, "admin2")
    view = ReportSchedules(world.app, clock).create("admin", "daily usage", "daily", ["admin2"])
    clock.advance(days=1)
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        late = delivery(world, clock, smtp(port))
        stale = world.app.get(view.id, ReportSchedule)
        (period,) = stale.due_periods(clock.now())
        assert [o.status for o in delivery(world, clock, smtp(port)).run_due()] == ["delivered"]
        assert late._run_period(stale, period) is None
    assert len(handler.received) == 1


def test_A04_with_smtp_a_recipient_without_an_address_is_withheld_and_nobody_addressed_is_a_failure(
    world: World, clock: FixedClock
) -> None:
    """A-04, ADR 0027: by e-mail, a recipient with no address on record cannot receive the
    report: the others do (the event names who did not); if nobody has one, the attempt fails
    and is retried, so the period is not lost while an administrator records an address."""
    view = ReportSchedules(world.app, clock).create("admin", "daily usage", "daily", ["admin2", "admin"])
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        clock.advance(days=1)
        (outcome,) = delivery(world, clock, smtp(port)).run_due()
        assert outcome.status == "failed"
        assert outcome.error == "no e-mail address is recorded for admin2, admin"
        addressed(world, "admin")
        clock.advance(hours=RETRY_FIRST / timedelta(hours=1))
        (outcome,) = delivery(world, clock, smtp(port)).run_due()
    assert (outcome.status, outcome.recipients) == ("delivered", ("admin",))
    (received,) = handler.received
    assert received.rcpt_tos == ["admin@force.example"]
    delivered = events_of(world, view.id, ReportSchedule.ReportDelivered)[-1]
    assert (delivered.recipients, delivered.withheld_from) == (["admin"], ["admin2"])


def test_A04_starttls_and_login_and_the_password_stays_out_of_events_and_reprs(
    world: World, clock: FixedClock, tmp_path: Path
) -> None:
    """A-04: STARTTLS against a server whose certificate the test made (trusted through
    RFR_SMTP_CA_FILE) and a login; a wrong password is a failed attempt that names no secret."""
    tls, cert = self_signed(tmp_path)
    password = "s3cret-Pa55word"
    addressed(world, "admin2")
    view = ReportSchedules(world.app, clock).create("admin", "daily usage", "daily", ["admin2"])
    handler = RecordingHandler()
    login = Login("rfr", password)
    with smtp_server(handler, tls=tls, login=login) as port:
        env = {
            "RFR_SMTP_HOST": "127.0.0.1",
            "RFR_SMTP_PORT": str(port),
            "RFR_SMTP_FROM": SENDER,
            "RFR_SMTP_USER": "rfr",
            "RFR_SMTP_CA_FILE": str(cert),
        }
        wrong = SmtpSettings.from_env({**env, "RFR_SMTP_PASSWORD": "not-" + password})
        right = SmtpSettings.from_env({**env, "RFR_SMTP_PASSWORD": password})
        assert wrong is not None and right is not None and right.starttls
        assert password not in repr(right) and password not in repr(SmtpReportSink(right))
        clock.advance(days=1)
        (failed,) = delivery(world, clock, SmtpReportSink(wrong)).run_due()
        assert failed.status == "failed" and "refused the login (535)" in (failed.error or "")
        clock.advance(hours=1)
        (delivered,) = delivery(world, clock, SmtpReportSink(right)).run_due()
    assert delivered.status == "delivered" and len(handler.received) == 1
    for event in world.app.repository.event_store.get(view.id):
        assert password not in repr(event.__dict__)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"RFR_SMTP_HOST": "mail"}, "RFR_SMTP_FROM"),
        ({"RFR_SMTP_HOST": "mail", "RFR_SMTP_FROM": "a@b.example", "RFR_SMTP_PORT": "x"}, "RFR_SMTP_PORT"),
        ({"RFR_SMTP_HOST": "mail", "RFR_SMTP_FROM": "a@b.example", "RFR_SMTP_USER": "u"}, "go together"),
        (
            {
                "RFR_SMTP_HOST": "mail",
                "RFR_SMTP_FROM": "a@b.example",
                "RFR_SMTP_USER": "u",
                "RFR_SMTP_PASSWORD": "p",
                "RFR_SMTP_STARTTLS": "false",
            },
            "not sent in clear",
        ),
    ],
)
def test_A04_smtp_settings_are_checked_at_start(env: dict[str, str], problem: str) -> None:
    """A-04: e-mail settings are checked when read, and a password is never sent without TLS."""
    with pytest.raises(ValueError, match=problem):
        SmtpSettings.from_env(env)
    assert SmtpSettings.from_env({}) is None  # no host: reports go to the folder


def test_A04_rfr_worker_once_emails_through_the_server_its_environment_names(tmp_path: Path) -> None:
    """A-04: `rfr worker --once` with RFR_SMTP_* set sends through that server: a refused first
    period is a FAILED line and waits for its retry (later periods wait behind it); nothing goes
    to the folder."""
    clock = FixedClock()
    with sqlite_app(tmp_path) as app:
        world = World(app, clock).populate()
        addressed(world, "admin2")
        view = ReportSchedules(app, clock).create("admin", "monthly usage", "monthly", ["admin2"])
    handler = RecordingHandler()
    handler.refuse("451 4.7.1 greylisted, try again later")
    with smtp_server(handler) as port:
        env = {
            **os.environ,
            "RFR_DATA_DIR": str(tmp_path),
            "RFR_PERSISTENCE": "sqlite",
            "RFR_SMTP_HOST": "127.0.0.1",
            "RFR_SMTP_PORT": str(port),
            "RFR_SMTP_STARTTLS": "false",
            "RFR_SMTP_FROM": SENDER,
        }

        def worker(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "rfr.entrypoints.cli", "worker", "--once", *args],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        run = worker()
        # The same round as of after the back-off (ADR 0025): the retry, then every month since.
        later = (datetime.now(UTC) + RETRY_FIRST + timedelta(minutes=1)).isoformat()
        retry = worker("--as-of", later, "--allow-future")
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if "2024-03" in line or line.startswith("delivered")]
    assert len(lines) == 1 and lines[0].startswith(
        f"report delivery: FAILED attempt 1 at 2024-03 of schedule {view.id}, tried again from "
    )
    assert "451 4.7.1 greylisted" in lines[0]
    assert retry.returncode == 0, retry.stderr
    delivered = [line for line in retry.stdout.splitlines() if line.startswith("delivered")]
    assert delivered[0].startswith(
        f"delivered 2024-03 of schedule {view.id} to admin2: smtp 127.0.0.1:{port} "
    )
    assert len(handler.received) == len(delivered) >= 2
    assert not (tmp_path / "reports").exists()
    with sqlite_app(tmp_path) as app:
        events = list(app.repository.event_store.get(view.id))
    (failed,) = [e for e in events if isinstance(e, ReportSchedule.DeliveryFailed)]
    assert (failed.period_label, failed.attempt) == ("2024-03", 1)
    first = next(e for e in events if isinstance(e, ReportSchedule.ReportDelivered))
    assert (first.period_label, first.attempt) == ("2024-03", 2)
