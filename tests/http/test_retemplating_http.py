"""Re-templating a library over HTTP (T-02, T-01, R-05), killed half-way and resumed.

A real `rfr serve` on dlib (the default), real LFW photos: a library of ten photos of five people
is searched with dlib. It is re-templated with SFace one image per batch; half-way the server is
killed with SIGKILL (the event store held locked first, so the kill lands mid-job however fast the
machine). Restarted, the job reads as not running with its progress kept, and the library is still
searched with dlib only (T-02). Asked again, the job resumes from where it stopped, switches the
library to SFace once every image has an SFace template, and erases dlib's templates from the
store and the index (R-05). A search then compares SFace templates only (T-01), the probe having
been templated with SFace from its stored image for it; the chain verifies.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from typing import Any

import httpx
from http_harness import start_server
from workflow_builders import (
    approved_library,
    audit_verify,
    cast,
    enrol,
    ok,
    open_search,
    problem,
    rfr_cli,
    start_workflow_server,
    stored_rows,
    submitted_probe,
)

from rfr.adapters.biometric_store.encrypted_files import EncryptedFileStore
from rfr.adapters.embedding.sface import ALGORITHM_ID as SFACE_ID
from rfr.adapters.indexes.registry import IndexRegistry
from rfr.application.ports import RecordKind

IDENTITIES = ("adam_sandler", "andy_roddick", "anne_mclellan", "bill_simon", "david_nalbandian")
TARGET = "bill_simon"


def _wait(client: httpx.Client, url: str, until: Any, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        view = ok(client.get(url))
        if until(view):
            return view
        assert time.monotonic() < deadline, f"timed out waiting on {url}: {view}"
        time.sleep(0.02)


def _search(people, probe_id: str, library_id: str) -> dict[str, Any]:
    search = ok(open_search(people, probe_id, library_id), 201)
    return ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))


def _searchable_with(people, library_id: str) -> list[str]:
    return ok(people.analyst.client.get(f"/libraries/{library_id}/images"))["library"]["searchable_with"]


def test_T02_R05_T01_a_library_retemplated_over_http_resumes_after_sigkill_and_switches_only_when_complete(
    tmp_path, photos
):
    root = tmp_path / "retemplate"
    server, _ = start_workflow_server(root, env={"RFR_PERSISTENCE": "sqlite", "RFR_ALGORITHM": "dlib"})
    restarted = None
    try:
        people = cast(server)
        library = approved_library(people, name="Custody images to re-template")
        library_id = library["id"]
        gallery = [(who, p) for who in IDENTITIES for p in photos[who][:2]]
        report = enrol(people, library_id, gallery)
        assert report["enrolled"] == len(gallery), report["results"]
        dlib_algorithm = report["algorithm_id"]
        assert "dlib" in dlib_algorithm

        probe = submitted_probe(people, photos[TARGET][2])
        probe_id = probe["probe_id"]
        choice = {"face_ids": [probe["faces"][0]["face_id"]], "reason": "the suspect"}
        selected = ok(people.analyst.client.post(f"/probes/{probe_id}/selection", json=choice))
        if selected["quality_flags"]:
            ok(
                people.analyst.client.post(
                    f"/probes/{probe_id}/quality-decision", json={"proceed": True, "reason": "clear"}
                )
            )
        before = _search(people, probe_id, library_id)
        assert {c["algorithm_id"] for c in before["candidates"]} == {dlib_algorithm}
        assert before["candidates"][0]["subject"] == TARGET

        url = f"/libraries/{library_id}/retemplating"
        lead = people.lead.client
        # Only a library manager may re-template; an unknown algorithm is named in a 422.
        problem(people.analyst.client.post(url, json={"algorithm": "sface", "reason": "x"}), 403, "forbidden")
        unknown = problem(
            lead.post(url, json={"algorithm": "arcface-x", "reason": "x"}), 422, "unprocessable"
        )
        assert "arcface-x" in json.dumps(unknown)

        body = {"algorithm": "sface", "reason": "the force adopts SFace (decision 14)", "batch_size": 1}
        started = ok(lead.post(url, json=body), 202)
        assert started["status"] == "templating" and started["replaced"] == [dlib_algorithm]
        assert SFACE_ID in started["algorithm_id"]

        # Half-way: hold the event store's write lock, so the runner blocks on its next save,
        # then kill the server outright and let the lock go.
        _wait(lead, url, lambda v: v["templated_now"] >= 2)
        events_file = root / "data" / "events.sqlite3"
        blocker = sqlite3.connect(events_file, timeout=30, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        time.sleep(0.3)
        server.process.kill()
        server.process.wait(timeout=30)
        blocker.execute("ROLLBACK")
        blocker.close()

        restarted = start_server(root / "data", env=server.env)
        lead = restarted.as_token(people.lead.token)
        analyst = restarted.as_token(people.analyst.token)
        people.analyst.client = analyst
        stopped = ok(lead.get(url))
        assert stopped["status"] == "templating" and stopped["running"] is False, stopped
        assert 2 <= stopped["templated_now"] < stopped["searchable"] == len(gallery), stopped
        # T-02: not complete, so not searchable with SFace; still searched with dlib alone.
        assert _searchable_with(people, library_id) == [dlib_algorithm]
        meanwhile = _search(people, probe_id, library_id)
        assert {c["algorithm_id"] for c in meanwhile["candidates"]} == {dlib_algorithm}

        resumed = ok(lead.post(url, json=body), 202)
        assert resumed["job_id"] == started["job_id"] and resumed["templated_now"] >= stopped["templated_now"]
        done = _wait(lead, url, lambda v: v["status"] in ("completed", "incomplete"))
        assert done["status"] == "completed", done
        assert done["templated_now"] == done["searchable"] == len(gallery) and not done["not_templated"]
        assert done["erased"] == len(gallery), done
        sface_algorithm = done["algorithm_id"]
        assert _searchable_with(people, library_id) == [sface_algorithm]

        after = _search(people, probe_id, library_id)
        assert {c["algorithm_id"] for c in after["candidates"]} == {sface_algorithm}
        assert after["candidates"][0]["subject"] == TARGET, after["candidates"]
        # Asked again, the library is already SFace's only: refused under T-02, recorded.
        again = problem(lead.post(url, json=body), 403, "policy-refusal")
        assert "T-02" in again["rule_ids"]

        verified = audit_verify(restarted)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        kinds: dict[str, int] = {}
        for topic, state in stored_rows(restarted):
            kind = topic.rsplit(".", 1)[-1]
            if topic.endswith("EnrolmentBatch.TemplatesErased"):
                assert json.loads(state)["algorithm_id"] == dlib_algorithm
                kinds[kind] = kinds.get(kind, 0) + len(json.loads(state)["template_ids"])
            if (
                topic.endswith("EnrolmentBatch.TemplatesBuilt")
                and json.loads(state)["algorithm_id"] != dlib_algorithm
            ):
                # Resumed, not redone: each image was templated with SFace once.
                kinds["sface"] = kinds.get("sface", 0) + len(json.loads(state)["templates"])
            if kind == "TemplatesExtracted":
                kinds.setdefault("probe", 0)
                kinds["probe"] += 1
        assert kinds == {"TemplatesErased": len(gallery), "sface": len(gallery), "probe": 2}, kinds
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()

    # dlib's templates are gone from the store and the library's dlib index with them. (The
    # batch cut short by the kill may have left an SFace template no event names; reconciliation
    # erases it, ADR 0015.)
    data = root / "data"
    store = EncryptedFileStore.in_data_dir(data)
    templates = store.records(library_id, RecordKind.TEMPLATE)
    assert {t.algorithm_id for t in templates} == {sface_algorithm}
    registry = IndexRegistry(data / "indexes", lambda *a: None, store=store)
    assert not registry.folder(library_id, dlib_algorithm).exists()
    assert registry.folder(library_id, sface_algorithm).exists()


def _retemplate_cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    """``rfr retemplate ARGS`` on the server's data folder, as an operator on the server runs it."""
    return rfr_cli(server, "retemplate", *args, timeout=600)


def test_T02_rfr_retemplate_on_the_server_moves_a_library_to_sface_and_refuses_what_policy_refuses(
    tmp_path, photos
):
    root = tmp_path / "cli"
    server, _ = start_workflow_server(root, env={"RFR_PERSISTENCE": "sqlite", "RFR_ALGORITHM": "dlib"})
    try:
        people = cast(server)
        library = approved_library(people, name="Re-templated on the server")
        report = enrol(people, library["id"], [(who, photos[who][0]) for who in IDENTITIES[:4]])
        assert report["enrolled"] == 4
    finally:
        server.stop()

    library_id = library["id"]
    unknown = _retemplate_cli(server, library_id, "--algorithm", "nope", "--user", people.lead.user_id)
    assert unknown.returncode == 2 and "nope" in unknown.stderr, unknown
    refused = _retemplate_cli(server, library_id, "--algorithm", "sface", "--user", people.analyst.user_id)
    assert refused.returncode == 3 and "A-05" in refused.stderr, refused

    moved = _retemplate_cli(
        server, library_id, "--algorithm", "sface", "--user", people.lead.user_id, "--batch-size", "2"
    )
    assert moved.returncode == 0, moved.stdout + moved.stderr
    last = moved.stdout.strip().splitlines()[-1]
    assert last.startswith("completed: 4 of 4 searchable images templated with sface"), moved.stdout
    assert "4 old templates erased" in last

    again = _retemplate_cli(server, library_id, "--algorithm", "sface", "--user", people.lead.user_id)
    assert again.returncode == 3 and "T-02" in again.stderr, again
    store = EncryptedFileStore.in_data_dir(root / "data")
    kinds = {t.algorithm_id for t in store.records(library_id, RecordKind.TEMPLATE)}
    assert len(kinds) == 1 and SFACE_ID in next(iter(kinds))
