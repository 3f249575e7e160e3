"""Several API processes over one PostgreSQL store and one data folder (issue 10, ADR 0016).

Two real `rfr serve` processes, A and B, on their own loopback ports, share a PostgreSQL schema
(events, chain, projections) and the data folder (encrypted biometric store, index files), as
processes behind one port would; the people act through either. What one process enrols the
other finds, what one purges neither returns, two adjudications of one candidate through both
at once leave exactly one decision, and the chain both wrote verifies.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg
import pytest
from http_harness import ApiUser, LiveServer, start_server, start_with_admin
from workflow_builders import (
    MAX_IMAGE_PIXELS,
    MAX_REQUEST_BYTES,
    Cast,
    approved_library,
    blob_count,
    cast,
    enrol,
    ok,
    open_search,
    problem,
    ready_probe,
)

from rfr.application.app import RfrApplication
from rfr.entrypoints.demo.server import free_port
from rfr.infrastructure.audit import verify
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

TARGET, OTHER = "andy_roddick", "bill_simon"


@attrs.frozen
class Pair:
    a: LiveServer
    b: LiveServer
    env: dict[str, str]


@pytest.fixture(scope="module")
def pair(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    env = {
        "RFR_PERSISTENCE": "postgres",
        "RFR_POSTGRES_DSN": postgres_server,
        "RFR_POSTGRES_SCHEMA": schema,
        "RFR_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        "RFR_MAX_IMAGE_PIXELS": str(MAX_IMAGE_PIXELS),
    }
    data = tmp_path_factory.mktemp("several") / "data"
    a = start_with_admin(data, env=env)
    try:
        b = start_server(data, env=env)
        try:
            yield Pair(a, b, env)
        finally:
            b.stop()
    finally:
        a.stop()
    with RfrApplication(application_env(Settings.from_env({**env, "RFR_DATA_DIR": str(data)}))) as app:
        result = verify(app.recorder)
    assert result.ok, result.reason


@pytest.fixture(scope="module")
def people(pair: Pair) -> Cast:
    return cast(pair.a)


def through(server: LiveServer, people: Cast) -> Cast:
    """The same people, their requests sent to ``server``."""

    def moved(user: ApiUser) -> ApiUser:
        return ApiUser(user.user_id, user.token, server.as_token(user.token))

    return Cast(
        people.team,
        *(moved(getattr(people, f.name)) for f in attrs.fields(Cast) if f.name != "team"),
    )


def _search(people: Cast, probe_id: str, library_id: str) -> tuple[str, list[dict[str, Any]]]:
    search = ok(open_search(people, probe_id, library_id), 201)
    return search["id"], ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))["candidates"]


def test_R05_enrolled_through_one_process_found_through_the_other_and_purged_from_both(
    pair: Pair, people: Cast, photos: dict[str, list[Path]]
) -> None:
    """R-05, issue 10: images enrolled through A are found by a search through B; after B purges
    them, neither process returns them or serves their thumbnails, and no file under the data
    folder nor any row of the database holds the purged photos' bytes."""
    on_a, on_b = people, through(pair.b, people)
    library = approved_library(on_a, name="LFW two processes")
    gallery = [(who, p) for who in (TARGET, OTHER) for p in photos[who][:2]]
    assert enrol(on_a, library["id"], gallery)["enrolled"] == len(gallery)

    probe = ready_probe(on_b, photos[TARGET][2])
    request, candidates = _search(on_b, probe["probe_id"], library["id"])
    assert candidates[0]["subject"] == TARGET
    purged = [c["image_id"] for c in candidates if c["subject"] == TARGET]
    assert len(purged) == 2
    thumbnail = ok(on_a.analyst.client.get(f"/searches/{request}/candidates"))["candidates"][0][
        "thumbnail_url"
    ]
    assert on_a.analyst.client.get(thumbnail).status_code == 200

    blobs = blob_count(pair.a)
    erased = ok(
        on_b.lead.client.post(
            f"/libraries/{library['id']}/images/purge",
            json={"image_ids": purged, "reason": "subject acquitted"},
        )
    )
    assert erased["image_ids"] == purged and erased["templates_erased"] == 2
    assert blob_count(pair.a) < blobs

    for side in (on_a, on_b):
        _, again = _search(side, probe["probe_id"], library["id"])
        assert again and {c["image_id"] for c in again}.isdisjoint(purged)
        problem(side.analyst.client.get(thumbnail), 404, "not-found")

    photo_bytes = [p.read_bytes() for p in photos[TARGET][:2]]
    for path in pair.a.data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(photo[200:264] in content for photo in photo_bytes), path
    with psycopg.connect(pair.env["RFR_POSTGRES_DSN"]) as conn:
        conn.execute(f"SET search_path TO {pair.env['RFR_POSTGRES_SCHEMA']}")
        tables = [
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ]
        for table in tables:
            for (row,) in conn.execute(f"SELECT {table}::text FROM {table}"):
                assert not any(photo[200:264].hex() in row for photo in photo_bytes), table


def test_S05_one_candidate_adjudicated_through_both_processes_at_once_is_decided_once(
    pair: Pair, people: Cast, photos: dict[str, list[Path]]
) -> None:
    """S-05, issue 10: the same candidate adjudicated through A and B at the same moment is
    decided once: one succeeds, the other is refused (403 naming S-05, as one after the other
    would be; ADR 0011 retries the loser on the state now stored), never both."""
    on_a, on_b = people, through(pair.b, people)
    library = approved_library(on_a, name="LFW adjudicated twice")
    assert (
        enrol(on_a, library["id"], [(TARGET, photos[TARGET][0]), (OTHER, photos[OTHER][0])])["enrolled"] == 2
    )
    probe = ready_probe(on_a, photos[TARGET][1])
    request, candidates = _search(on_a, probe["probe_id"], library["id"])
    candidate = candidates[0]["candidate_id"]
    start = threading.Barrier(2)
    answers: list[Any] = []

    def adjudicate(side: Cast, viable: bool) -> None:
        start.wait()
        answers.append(
            side.analyst.client.post(
                f"/searches/{request}/adjudications",
                json={
                    "candidate_id": candidate,
                    "viable": viable,
                    "rationale": "compared side by side",
                    "identity_known": True,
                },
            )
        )

    threads = [threading.Thread(target=adjudicate, args=(s, v)) for s, v in ((on_a, True), (on_b, False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 403], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 403)
    assert problem(refused, 403, "policy-refusal")["rule_ids"] == ["S-05"]
    listed = ok(on_b.analyst.client.get(f"/searches/{request}/candidates"))["candidates"]
    (decided,) = [c for c in listed if c["candidate_id"] == candidate]
    winner = next(r for r in answers if r.status_code == 200).json()
    assert decided["adjudication"] is not None
    assert decided["adjudication"]["viable"] is winner["has_viable_match"]


def test_rfr_serve_with_two_workers_serves_one_port_from_two_processes(pair: Pair, people: Cast) -> None:
    """Issue 10: `rfr serve --workers 2` over the same store starts two API processes behind one
    port; both answer, and a user registered through the pair signs in through it."""
    port = free_port()
    log_path = pair.a.data_dir.parent / "workers.log"
    env = {**os.environ, **pair.env, "RFR_DATA_DIR": str(pair.a.data_dir)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rfr.entrypoints.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        workers: set[str] = set()
        while len(workers) < 2:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            workers = set(re.findall(r"Started server process \[(\d+)\]", log_path.read_text()))
            time.sleep(0.2)
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {people.analyst.token}"}
        ) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    answers = [client.get("/me") for _ in range(10)]
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
        assert {r.status_code for r in answers} == {200}
        assert {r.json()["user_id"] for r in answers} == {people.analyst.user_id}
    finally:
        process.terminate()
        process.wait(timeout=30)


def _details(server: LiveServer, admin: ApiUser) -> dict[str, Any]:
    """``GET /health/details`` of ``server``, as the administrator."""
    return ok(server.as_token(admin.token).get("/health/details"))


def _index_of(details: dict[str, Any], library_id: str) -> dict[str, Any]:
    (entry,) = [i for i in details["indexes"] if i["library_id"] == library_id]
    return entry


def test_health_details_of_each_process_report_its_own_indexes_and_their_lag(
    pair: Pair, people: Cast, photos: dict[str, list[Path]]
) -> None:
    """Issue 10, item 4: each process answers for itself over the one PostgreSQL store. A holds the
    index it enrolled into (no position saved by an enrolment: its next catch-up reads the whole
    log); B, right after its search, has read the log up to where that search began storing its
    own events, so only those are left to read (ADR 0014); neither shows the connection string."""
    admin = pair.a.admin
    assert admin is not None
    on_a, on_b = people, through(pair.b, people)
    library = approved_library(on_a, name="LFW health details")
    assert (
        enrol(on_a, library["id"], [(TARGET, photos[TARGET][0]), (OTHER, photos[OTHER][0])])["enrolled"] == 2
    )
    probe = ready_probe(on_b, photos[TARGET][1])
    request = ok(open_search(on_b, probe["probe_id"], library["id"]), 201)

    before = _details(pair.b, admin)
    assert not [i for i in before["indexes"] if i["library_id"] == library["id"]]  # none opened in B yet
    ok(on_b.analyst.client.post(f"/searches/{request['id']}/runs"))
    on_b_after = _details(pair.b, admin)
    on_a_after = _details(pair.a, admin)

    for details in (on_b_after, on_a_after):
        assert details["status"] == "ok" and details["store"] == "postgres" and details["store_answers"]
        assert all(p["behind"] == 0 for p in details["projections"]), details["projections"]
        text = str(details)
        assert pair.env["RFR_POSTGRES_DSN"] not in text and "postgresql://" not in text
    assert on_a_after["process_id"] != on_b_after["process_id"]
    # One store: the same log and chain, whichever process reads them (nothing was written between).
    assert on_a_after["log_head"] == on_b_after["log_head"]
    assert on_a_after["chain_head"] == on_b_after["chain_head"]

    searched = _index_of(on_b_after, library["id"])
    assert searched["saved_position"] is not None  # an index's first catch-up saves its position
    assert searched["reached_position"] >= before["log_head"]
    stored_by_the_search = on_b_after["log_head"] - before["log_head"]
    assert (
        1 <= searched["lag"] == on_b_after["log_head"] - searched["reached_position"] <= stored_by_the_search
    )

    enrolled = _index_of(on_a_after, library["id"])
    assert enrolled["algorithm_id"] == searched["algorithm_id"]
    assert enrolled["saved_position"] is None and enrolled["reached_position"] == 0
    assert enrolled["lag"] == on_a_after["log_head"]
