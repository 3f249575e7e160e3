"""Bulk enrolment jobs are stored (issue 10, item 2; ADR 0017), through real `rfr serve` processes.

Two servers share one data folder and one event store, as processes behind one port do: a job
started through one is polled through the other while it runs, and after both are stopped a
new server reads it with its final results. A server killed with SIGKILL in the middle of an
import leaves its job interrupted, never running: through the other live server at once, and
through a restarted one; importing the folder again enrols nothing twice. Each test runs on
SQLite and on PostgreSQL (a schema of the session's private cluster; skipped where none can be
had, failed so under CI=true).
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from http_harness import ApiUser, LiveServer, start_server, start_with_admin
from workflow_builders import (
    MAX_IMAGE_PIXELS,
    MAX_REQUEST_BYTES,
    Cast,
    approved_library,
    cast,
    lfw_photos,
    ok,
    wait_for_job,
)

from rfr.application.app import RfrApplication
from rfr.infrastructure.audit import verify
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

ENDED = ("finished", "failed")


@attrs.define
class Site:
    """One data folder (SQLite store, biometric store, import root) and the servers started on it."""

    data: Path
    imports: Path
    env: dict[str, str]
    servers: list[LiveServer] = attrs.field(factory=list)

    def first(self) -> LiveServer:
        server = start_with_admin(self.data, env=self.env)
        self.servers.append(server)
        return server

    def another(self) -> LiveServer:
        """One more server on the same store: beside those running, or after they stopped."""
        server = start_server(self.data, env=self.env)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()

    def store(self) -> RfrApplication:
        """The servers' event store, opened beside them without changing it."""
        settings = Settings.from_env({**self.env, "RFR_DATA_DIR": str(self.data)})
        return RfrApplication(application_env(settings, create_tables=False))

    def job_events(self, job_id: str) -> list[str]:
        """The names of a job's stored events, in order."""
        with self.store() as app:
            return [e.topic.rsplit(".", 1)[-1] for e in app.recorder.select_events(uuid.UUID(job_id))]


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    imports = tmp_path / "imports"
    imports.mkdir()
    env = {
        "RFR_PERSISTENCE": request.param,
        "RFR_IMPORT_ROOT": str(imports),
        "RFR_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        "RFR_MAX_IMAGE_PIXELS": str(MAX_IMAGE_PIXELS),
    }
    if request.param == "postgres":
        import psycopg

        dsn = request.getfixturevalue("postgres_server")
        schema = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        env.update({"RFR_POSTGRES_DSN": dsn, "RFR_POSTGRES_SCHEMA": schema})
    built = Site(tmp_path / "data", imports, env)
    try:
        yield built
    finally:
        built.stop_all()
    # the chain every server wrote, the killed one's included, verifies.
    with built.store() as app:
        verified = verify(app.recorder)
    assert verified.ok, verified.reason


@pytest.fixture(scope="module")
def all_photos(shared_faces: Path) -> list[Path]:
    """Every single-face LFW photo, one identity after another."""
    return [p for photos in lfw_photos(shared_faces, minimum=1).values() for p in photos]


def _manifest(folder: Path, photos: list[Path], name: str = "manifest.csv") -> None:
    folder.mkdir(exist_ok=True)
    with (folder / name).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "capture_date", "age_band", "mopi_group", "subject"])
        writer.writeheader()
        for photo in photos:
            target = folder / photo.name
            if not target.exists():
                target.write_bytes(photo.read_bytes())
            row = {"file": photo.name, "capture_date": "2021-03-04", "age_band": "18_plus", "mopi_group": "2"}
            writer.writerow({**row, "subject": photo.parent.name})


def _as(server: LiveServer, people: Cast) -> httpx.Client:
    """The Operational Lead's requests, sent to ``server``."""
    return server.as_token(people.lead.token)


def _wait_for(client: httpx.Client, url: str, done: Any, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = ok(client.get(url))
        if done(job):
            return job
        assert job["status"] not in ENDED, job
        assert time.monotonic() < deadline, f"job still {job['status']} at {job['done']}"
        time.sleep(0.02)


def test_a_job_is_polled_through_any_process_and_read_with_its_results_after_a_restart(
    site: Site, all_photos: list[Path]
):
    a = site.first()
    b = site.another()
    people = cast(a)
    library = approved_library(people, name="LFW stored job")
    lead_a, lead_b = _as(a, people), _as(b, people)
    photos = all_photos[:6]
    _manifest(site.imports / "bulk", [*photos, photos[0]])
    started = ok(
        lead_a.post(f"/libraries/{library['id']}/imports", json={"folder": "bulk", "batch_size": 2}),
        202,
    )
    url = f"/libraries/{library['id']}/imports/{started['job_id']}"
    # Polled through the process that does not run it: seen queued or running, then finished.
    seen = []
    while True:
        job = ok(lead_b.get(url))
        seen.append(job["status"])
        if job["status"] in ENDED:
            break
        time.sleep(0.05)
    assert set(seen) <= {"queued", "running", "finished"}, seen
    assert job["status"] == "finished", job["error"]
    assert (job["done"], job["total"], job["enrolled"], job["not_enrolled"]) == (7, 7, 6, 1)
    assert job["results"][-1]["code"] == "duplicate" and job["started_by"] == people.lead.user_id
    assert ok(lead_a.get(url)) == job

    site.stop_all()
    c = site.another()
    lead_c = _as(c, people)
    assert ok(lead_c.get(url)) == job
    # Still the library's own, still for the enrolling roles only.
    other = approved_library(through(c, people), name="LFW elsewhere")
    assert lead_c.get(f"/libraries/{other['id']}/imports/{started['job_id']}").status_code == 404
    assert c.as_token(people.analyst.token).get(url).status_code == 403
    assert site.job_events(started["job_id"]) == [
        "Started",
        "Began",
        "Progressed",
        "Progressed",
        "Progressed",
        "Progressed",
        "RowsReported",
        "Finished",
    ]


def test_a_job_whose_server_was_killed_mid_import_is_interrupted_not_running(
    site: Site, all_photos: list[Path]
):
    a = site.first()
    b = site.another()
    people = cast(a)
    library = approved_library(people, name="LFW killed import")
    lead_a, lead_b = _as(a, people), _as(b, people)
    photos = all_photos[:150]
    _manifest(site.imports / "many", photos)
    started = ok(
        lead_a.post(f"/libraries/{library['id']}/imports", json={"folder": "many", "batch_size": 1}),
        202,
    )
    url = f"/libraries/{library['id']}/imports/{started['job_id']}"
    running = _wait_for(lead_b, url, lambda job: job["status"] == "running" and job["done"] >= 3)
    a.process.kill()  # SIGKILL: nothing of the server runs after this
    a.process.wait(timeout=30)
    assert running["done"] < running["total"] == len(photos)

    # The live process finds the job's process gone at once, and records it so.
    interrupted = ok(lead_b.get(url))
    assert interrupted["status"] == "failed", interrupted
    assert interrupted["error"]["kind"] == "interrupted" and "duplicates" in interrupted["error"]["detail"]
    assert running["done"] <= interrupted["done"] < interrupted["total"] == len(photos)
    assert interrupted["finished_at"] is not None
    assert (interrupted["results"], interrupted["enrolled"]) == ([], None)

    # And after a restart of everything it is still so, recorded once.
    site.stop_all()
    again = site.another()
    lead = _as(again, people)
    assert ok(lead.get(url)) == interrupted
    events = site.job_events(started["job_id"])
    assert events[:2] == ["Started", "Began"] and events[-1] == "Interrupted"
    assert set(events[2:-1]) == {"Progressed"}

    # The batches saved before the kill stay enrolled; importing their rows again enrols none twice.
    held = ok(lead.get(f"/libraries/{library['id']}"))["images_enrolled"]
    _manifest(site.imports / "many", photos[: interrupted["done"]], name="again.csv")
    redo = ok(
        lead.post(f"/libraries/{library['id']}/imports", json={"folder": "many", "manifest": "again.csv"}),
        202,
    )
    redone = wait_for_job(lead, f"/libraries/{library['id']}/imports/{redo['job_id']}")
    assert redone["status"] == "finished" and redone["enrolled"] == 0, redone
    codes = [r["code"] for r in redone["results"]]
    assert len(codes) == interrupted["done"] and set(codes) <= {"duplicate", "no_face", "several_faces"}
    # At most the one batch saved after the last progress recorded is enrolled beyond the rows done.
    assert held - codes.count("duplicate") in (0, 1)
    assert ok(lead.get(f"/libraries/{library['id']}"))["images_enrolled"] == held


def through(server: LiveServer, people: Cast) -> Cast:
    """The same people, their requests sent to ``server``."""

    def moved(user: ApiUser) -> ApiUser:
        return ApiUser(user.user_id, user.token, server.as_token(user.token))

    return Cast(
        people.team, *(moved(getattr(people, f.name)) for f in attrs.fields(Cast) if f.name != "team")
    )
