"""Builders of the workflow API tests: a real server with bulk import enabled, a cast of users, and
the steps every scenario repeats (an approved library, enrolled photos, a probe ready to search).

Each test module starts its own server (``start_workflow_server``) because the shared
``live_server`` has no import root and a 64 KiB body limit, too small for photographs. Every
scenario makes its own team name, so libraries of one test never open to users of another.

What the server stored is read straight from its store and files (``stored_events``,
``blob_count``): a rejected request must leave nothing, and only they can show that. The store is
the one the server was started on (``LiveServer.store_env``): its SQLite file, or its PostgreSQL
schema when the module runs on both stores (``STORES`` in tests/http/conftest.py).
"""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx
from http_harness import REPO_ROOT, ApiUser, LiveServer, start_with_admin, unique_id

from rfr.infrastructure.settings import Settings

MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_IMAGE_PIXELS = 4_000_000


def start_workflow_server(root: Path, *, env: Mapping[str, str] | None = None) -> tuple[LiveServer, Path]:
    """A server under ``root`` with bulk import from ``root/imports``; returns it and that folder.

    ``env`` adds to its environment, e.g. RFR_PERSISTENCE=postgres and the schema to use.
    """
    imports = root / "imports"
    imports.mkdir(parents=True, exist_ok=True)
    server = start_with_admin(
        root / "data",
        env={
            "RFR_IMPORT_ROOT": str(imports),
            "RFR_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
            "RFR_MAX_IMAGE_PIXELS": str(MAX_IMAGE_PIXELS),
            **(env or {}),
        },
    )
    return server, imports


def import_root(server: LiveServer) -> Path:
    """The folder a workflow server bulk-imports from (RFR_IMPORT_ROOT)."""
    return Path(server.env["RFR_IMPORT_ROOT"])


def lfw_photos(shared_faces: Path, minimum: int = 3) -> dict[str, list[Path]]:
    """Single-face LFW photos of identities with at least ``minimum`` of them, in file order."""
    with (shared_faces / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    found: dict[str, list[Path]] = {}
    for row in rows:
        if row["source"] == "lfw" and row["faces_in_image"] == "1":
            found.setdefault(row["identity"], []).append(shared_faces / row["path"])
    return {k: sorted(v) for k, v in sorted(found.items()) if len(v) >= minimum}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: {response.text}"
    )
    return response.json()


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["type"] == f"/problems/{slug}", body
    return body


def later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def application(kind: str = "substantive", **parts: str) -> dict[str, str]:
    body = {
        "kind": kind,
        "library_name": "LFW custody images",
        "legal_basis": "Common law policing purpose; DPA 2018 Part 3",
        "how_obtained_and_privacy_expectations": "Custody photographs taken on arrest",
        "composition_quality_and_suitability": "Frontal photographs, adequate resolution",
        "elevated_privacy_or_human_rights": "None beyond Article 8",
        "necessity_and_proportionality": "Only practical way to identify suspects",
        "monitoring_and_assurance": "Monthly audit by the FR team",
    }
    body.update(parts)
    return body


def approval_record(team: str, level: int = 2, **changes: Any) -> dict[str, Any]:
    body = {
        "rationale": "Needed to identify suspects of recordable offences",
        "access": {"teams": [team]},
        "image_level": level,
        "conditions": f"{team} only",
        "purposes": ["a_identify", "b_place_at_location", "c_association", "d_confirm_conduct"],
        "review_due": later(90),
    }
    body.update(changes)
    return body


def form3(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_reference": "OP-LANTERN/2025/0142",
        "purposes": ["a_identify"],
        "grounds": ["b_offence"],
        "offence_code": "burglary",
        "image_level": 1,
        "necessity_and_proportionality": "Burglary suspect unidentified after a CCTV trawl",
        "image_source": "Shop CCTV",
        "source_sensitivity": "None",
        "most_current_image_confirmed": True,
        "perceived_age": "18_plus",
        "pre_rfr_checks": {"tried": ["local_enquiries"], "why_insufficient": "Nobody recognised him"},
    }
    body.update(changes)
    return body


def image_part(path: Path, name: str = "image") -> tuple[str, tuple[str, bytes, str]]:
    return (name, (path.name, path.read_bytes(), "image/jpeg"))


def form3_part(form: dict[str, Any] | str) -> tuple[str, tuple[None, str, str]]:
    import json

    text = form if isinstance(form, str) else json.dumps(form)
    return ("form3", (None, text, "application/json"))


@attrs.define
class Cast:
    """The people of a scenario; ``team`` is theirs alone."""

    team: str
    analyst: ApiUser  # RFR User in the team: submits probes, searches
    colleague: ApiUser  # another RFR User in the team
    outsider: ApiUser  # RFR User outside the team (L-13)
    inspector: ApiUser  # Approving Officer, Inspector, in the team
    superintendent: ApiUser  # Approving Officer, Superintendent: approves Form 2
    sro: ApiUser  # approves Form 1
    lead: ApiUser  # Operational Lead: creates libraries and enrols
    auditor: ApiUser


def cast(server: LiveServer) -> Cast:
    team = unique_id("team")
    return Cast(
        team=team,
        analyst=server.user(["rfr_user"], teams=[team], prefix="analyst"),
        colleague=server.user(["rfr_user"], teams=[team], prefix="colleague"),
        outsider=server.user(["rfr_user"], teams=[unique_id("elsewhere")], prefix="outsider"),
        inspector=server.user(["approving_officer"], rank="inspector", teams=[team], prefix="inspector"),
        superintendent=server.user(["approving_officer"], rank="superintendent", prefix="supt"),
        sro=server.user(["sro"], rank="chief_superintendent", prefix="sro"),
        lead=server.user(["operational_lead"], prefix="lead"),
        auditor=server.user(["auditor"], prefix="auditor"),
    )


def approved_library(people: Cast, *, level: int = 2, name: str = "LFW custody images") -> dict[str, Any]:
    """A substantive approval for the team, approved by the SRO, and a library under it."""
    applied = ok(people.analyst.client.post("/library-approvals", json=application(library_name=name)), 201)
    ok(
        people.sro.client.post(
            f"/library-approvals/{applied['id']}/approval",
            json={"record": approval_record(people.team, level)},
        )
    )
    return ok(people.lead.client.post("/libraries", json={"name": name, "approval_id": applied["id"]}), 201)


def enrol(
    people: Cast, library_id: str, photos: Iterable[tuple[str, Path]], *, capture_date: str = "2022-05-01"
) -> dict[str, Any]:
    """Uploads (subject, photo) pairs in one request, the facts given once for all files."""
    pairs = list(photos)
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for _, p in pairs]
    data = {
        "capture_date": capture_date,
        "age_band": "18_plus",
        "mopi_group": "2",
        "subject": [s for s, _ in pairs],
    }
    return ok(people.lead.client.post(f"/libraries/{library_id}/images", files=files, data=data))


def submitted_probe(people: Cast, photo: Path, **form_changes: Any) -> dict[str, Any]:
    return ok(
        people.analyst.client.post("/probes", files=[image_part(photo), form3_part(form3(**form_changes))]),
        201,
    )


def ready_probe(people: Cast, photo: Path, **form_changes: Any) -> dict[str, Any]:
    """A submitted probe with its largest face selected and any quality flag accepted (P-10, P-11)."""
    probe = submitted_probe(people, photo, **form_changes)
    assert probe["faces"], "no face detected in the probe photo"
    face = max(probe["faces"], key=lambda f: (f["right"] - f["left"]) * (f["bottom"] - f["top"]))
    client = people.analyst.client
    probe = ok(
        client.post(
            f"/probes/{probe['probe_id']}/selection",
            json={"face_ids": [face["face_id"]], "reason": "the suspect"},
        )
    )
    if probe["quality_flags"]:
        probe = ok(
            client.post(
                f"/probes/{probe['probe_id']}/quality-decision",
                json={"proceed": True, "reason": "features still clear"},
            )
        )
    assert probe["ready_for_search"], probe["not_ready_because"]
    return probe


def open_search(people: Cast, probe_id: str, *library_ids: str, **extra: Any) -> httpx.Response:
    body = {
        "probe_id": probe_id,
        "libraries": [
            {"library_id": i, "relevance": "the suspect may have been arrested before"} for i in library_ids
        ],
        **extra,
    }
    return people.analyst.client.post("/searches", json=body)


# -- what the server stored ------------------------------------------------------------------


def sqlite_events_table(db: sqlite3.Connection) -> str:
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        if name.endswith("snapshots"):
            continue  # its rows have a topic and a state too, but are not events (ADR 0028)
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({name})")}
        if {"topic", "originator_id", "state"} <= columns:
            return name
    raise AssertionError("no events table in the store")


def _sqlite_rows(settings: Settings) -> list[tuple[str, bytes]]:
    db = sqlite3.connect(f"file:{settings.event_store_path}?mode=ro", uri=True)
    try:
        table = sqlite_events_table(db)
        return [(t, bytes(s)) for t, s in db.execute(f"SELECT topic, state FROM {table} ORDER BY rowid")]
    finally:
        db.close()


def _postgres_rows(settings: Settings) -> list[tuple[str, bytes]]:
    import psycopg
    from psycopg.sql import SQL, Identifier

    assert settings.postgres_dsn is not None
    schema = settings.postgres_schema
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = on")
        # The events table is the one numbering what it holds (the chain's links name the
        # numbers but hold no topic; snapshots hold a topic but are not numbered).
        tables = conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = %s "
            "AND column_name IN ('notification_id', 'topic', 'state') "
            "GROUP BY table_name HAVING count(*) = 3",
            (schema,),
        ).fetchall()
        assert len(tables) == 1, f"not one events table in schema {schema}: {tables}"
        query = SQL("SELECT topic, state FROM {0}.{1} ORDER BY notification_id").format(
            Identifier(schema), Identifier(tables[0][0])
        )
        return [(t, bytes(s)) for t, s in conn.execute(query)]


def stored_rows(server: LiveServer) -> list[tuple[str, bytes]]:
    """(topic, state) of every stored event, in the store's order (read-only, beside the running
    server): by rowid in its SQLite file, by notification id in its PostgreSQL schema."""
    settings = Settings.from_env(server.store_env)
    if settings.persistence == "postgres":
        return _postgres_rows(settings)
    assert settings.persistence == "sqlite", settings.persistence
    return _sqlite_rows(settings)


def stored_events(server: LiveServer) -> list[str]:
    """Topics of every stored event, in order (read-only, beside the running server)."""
    return [topic for topic, _ in stored_rows(server)]


def blob_count(server: LiveServer) -> int:
    """Files in the encrypted biometric store."""
    root = server.data_dir / "biometrics" / "blobs"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def rfr_cli(server: LiveServer, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``rfr ARGS`` over the server's own store, as an operator on the server would run it: only
    the variables naming the store (``store_env``) are passed."""
    env = {**server.store_env, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def audit_cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """``rfr audit ARGS`` over the server's own store."""
    return rfr_cli(server, "audit", *args)


def audit_verify(server: LiveServer) -> subprocess.CompletedProcess[str]:
    """``rfr audit verify`` over the server's store (its data folder's file, or its schema)."""
    return audit_cli(server, "verify")


def wait_for_job(client: httpx.Client, url: str, timeout_s: float = 90.0) -> dict[str, Any]:
    """Polls an import job until it finishes; returns every status seen in order and the last view."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = ok(client.get(url))
        if job["status"] in ("finished", "failed"):
            return job
        assert time.monotonic() < deadline, f"import job still {job['status']} after {timeout_s}s"
        time.sleep(0.2)
