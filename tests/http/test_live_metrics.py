"""Live metrics (issue 13, item 3; ADR 0024) through real `rfr serve` processes on loopback.

A workflow server started with ``PROMETHEUS_MULTIPROC_DIR`` (shared with an ``rfr worker
--once`` run beside it) and ``RFR_METRICS_PORT``: after a scripted run (an approved library,
an enrolment, a probe, a search run, a refusal, a worker round), ``GET /metrics`` read with an
Operations token shows each counter moved by exactly what was done, the worker's round
included, with no identifier in any label; the loopback port serves the same figures without a
token. The shared ``live_server`` (one process, no shared folder) shows that only the
Operations role reads ``/metrics``: anyone else is refused (and the refusal recorded, A-05).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_harness import REPO_ROOT, LiveServer
from prometheus_client.parser import text_string_to_metric_families
from workflow_builders import (
    application,
    approved_library,
    audit_verify,
    cast,
    enrol,
    ok,
    open_search,
    problem,
    ready_probe,
    start_workflow_server,
    stored_events,
)

from rfr.entrypoints.demo.server import free_port

IDENTITIES = ("adam_sandler", "andy_roddick")
UUID_LIKE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels, read with prometheus_client's parser."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def label_values(found: Samples) -> set[str]:
    return {v for _, labels in found for _, v in labels}


@pytest.fixture(scope="module")
def metrics_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Empty before the processes start, as the README asks of an operator.
    return tmp_path_factory.mktemp("prometheus-multiproc")


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def metrics_server(
    tmp_path_factory: pytest.TempPathFactory, metrics_folder: Path, metrics_port: int
) -> Iterator[LiveServer]:
    live, _ = start_workflow_server(
        tmp_path_factory.mktemp("metrics"),
        env={"RFR_METRICS_PORT": str(metrics_port), "PROMETHEUS_MULTIPROC_DIR": str(metrics_folder)},
    )
    try:
        yield live
        verified = audit_verify(live)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        live.stop()


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return samples(response.text)


def run_worker_once(server: LiveServer, metrics_folder: Path) -> None:
    """``rfr worker --once`` over the server's store, sharing its metrics folder."""
    env = {**server.store_env, "PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(metrics_folder)}
    done = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "worker", "--once"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_metrics_after_a_workflow_count_requests_searches_enrolments_refusals_and_worker_rounds(
    metrics_server: LiveServer, metrics_folder: Path, metrics_port: int, photos: dict[str, list[Path]]
) -> None:
    server = metrics_server
    people = cast(server)
    operations = server.user(["operations"], prefix="scraper")
    before = scrape(operations.client)

    library = approved_library(people, name="Metrics custody images")
    gallery = [(who, p) for who in IDENTITIES for p in photos[who][:2]]
    assert ok_enrolled(enrol(people, library["id"], gallery)) == len(gallery)
    probe = ready_probe(people, photos[IDENTITIES[0]][2])
    probe_id = probe["probe_id"]
    ok(people.analyst.client.get(f"/probes/{probe_id}"))
    ok(people.analyst.client.get(f"/probes/{probe_id}"))
    search = ok(open_search(people, probe_id, library["id"]), 201)
    ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    # L-01: no library under an approval not yet given; refused and recorded.
    applied = ok(people.analyst.client.post("/library-approvals", json=application()), 201)
    refused = people.lead.client.post("/libraries", json={"name": "too early", "approval_id": applied["id"]})
    assert "L-01" in problem(refused, 403, "policy-refusal")["rule_ids"]
    missing = people.analyst.client.get("/no/such/path/" + probe_id)
    assert missing.status_code == 404
    run_worker_once(server, metrics_folder)

    after = scrape(operations.client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("rfr_enrolments_total") == 1
    assert moved("rfr_enrolment_images_total", outcome="enrolled") == len(gallery)
    assert moved("rfr_search_requests_opened_total") == 1
    assert moved("rfr_library_searches_total") == 1
    assert moved("rfr_refusals_total", rule="L-01") == 1
    # Requests by route template and status: the ids asked for never show.
    assert moved("rfr_http_requests_total", method="GET", route="/probes/{probe_id}", status="200") == 2
    assert (
        moved("rfr_http_requests_total", method="POST", route="/searches/{request_id}/runs", status="200")
        == 1
    )
    assert moved("rfr_http_requests_total", method="POST", route="/libraries", status="403") == 1
    assert moved("rfr_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert moved("rfr_http_request_duration_seconds_count", method="GET", route="/probes/{probe_id}") == 2
    # The worker's round, counted in its own process and read through the shared folder.
    for job in ("report_delivery", "retention", "reconciliation"):
        assert moved("rfr_worker_jobs_total", job=job, outcome="ok") == 1, job
        assert value(after, "rfr_worker_job_last_success_timestamp_seconds", job=job) > time.time() - 600

    # No identifier and no personal data in any label.
    values = label_values(after)
    assert not [v for v in values if UUID_LIKE.search(v)], sorted(values)
    named = {
        library["id"],
        library["approval_id"],
        library["name"],
        probe_id,
        search["id"],
        applied["id"],
        people.team,
        *(u.user_id for u in (people.analyst, people.lead, people.sro, operations)),
    }
    assert not [v for v in values if any(n in v for n in named)], sorted(values)
    routes = {labels for (name, labels) in after if name == "rfr_http_requests_total"}
    for labels in routes:
        route = dict(labels)["route"]
        assert route == "unmatched" or route.startswith("/"), route

    # The loopback port serves the same figures with no token.
    with httpx.Client(base_url=f"http://127.0.0.1:{metrics_port}") as anonymous:
        port = scrape(anonymous)
    for name, labels in (
        ("rfr_enrolments_total", {}),
        ("rfr_library_searches_total", {}),
        ("rfr_refusals_total", {"rule": "L-01"}),
        ("rfr_worker_jobs_total", {"job": "retention", "outcome": "ok"}),
    ):
        assert value(port, name, **labels) == value(after, name, **labels), name


def ok_enrolled(report: dict) -> int:
    assert all(r["enrolled"] for r in report["results"]), report["results"]
    return report["enrolled"]


def test_only_the_operations_role_reads_the_metrics(live_server: LiveServer) -> None:
    """A-05 at the gate: no token is 401; every other role is refused with 403, recorded."""
    anonymous = httpx.get(f"{live_server.base_url}/metrics")
    assert anonymous.status_code == 401, anonymous.text
    operations = live_server.user(["operations"], prefix="scraper")
    for role in ("administrator", "auditor", "rfr_user", "sro", "operational_lead", "approving_officer"):
        someone = live_server.user([role], prefix=f"not-ops-{role}", rank="superintendent")
        before = stored_events(live_server)
        body = problem(someone.client.get("/metrics"), 403, "forbidden")
        assert body["rule_ids"] == ["A-05"] and body["recorded"] is True, body
        added = stored_events(live_server)[len(before) :]
        assert any("RefusedAttempt" in topic for topic in added), added
    found = scrape(operations.client)
    # One process, no shared folder: the request counted before this one is this process's own.
    assert value(found, "rfr_http_requests_total", method="GET", route="/metrics", status="403") >= 6


def test_metrics_port_is_refused_for_several_processes_without_a_shared_folder(tmp_path: Path) -> None:
    """``--workers 2`` with RFR_METRICS_PORT and no PROMETHEUS_MULTIPROC_DIR would serve figures
    of a process that answers no request: ``rfr serve`` refuses to start, and says why."""
    env = {key: v for key, v in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"} | {
        "RFR_DATA_DIR": str(tmp_path / "data"),
        "RFR_METRICS_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "serve", "--port", str(free_port()), "--workers", "2"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stderr


def test_several_api_processes_are_read_as_one_through_the_shared_folder(tmp_path: Path) -> None:
    """``rfr serve --workers 2`` with PROMETHEUS_MULTIPROC_DIR: the supervising process serves the
    loopback port and answers no request itself, yet it reads every request its API processes
    answered, summed, from the shared folder."""
    folder = tmp_path / "multiproc"
    folder.mkdir()
    api_port, metrics_port = free_port(), free_port()
    env = os.environ | {
        "RFR_DATA_DIR": str(tmp_path / "data"),
        "RFR_PERSISTENCE": "sqlite",
        "RFR_METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rfr.entrypoints.cli", "serve", "--port", str(api_port), "--workers", "2"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30.0) as client:
            deadline = time.monotonic() + 90
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
            # Each answered by whichever API process accepts it; none by the supervisor.
            for _ in range(20):
                assert client.get("/problems").status_code == 200
        # Counted before its last byte is sent: the scrape right after the last answer sees it.
        counted = ("rfr_http_requests_total", {"method": "GET", "route": "/problems", "status": "200"})
        timed = ("rfr_http_request_duration_seconds_count", {"method": "GET", "route": "/problems"})
        with httpx.Client(base_url=f"http://127.0.0.1:{metrics_port}") as anonymous:
            found = scrape(anonymous)
        assert value(found, counted[0], **counted[1]) == 20
        assert value(found, timed[0], **timed[1]) == 20
    finally:
        process.terminate()
        process.wait(timeout=30)
