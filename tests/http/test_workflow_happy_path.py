"""The whole process through a real `rfr serve`, with real photographs (issue 4).

Form 1 -> approval -> library -> enrolment by upload and from a server folder -> probe with
Form 3 -> face selection -> search -> candidates by rank and score -> adjudication -> match
report (JSON and printable, 8.27 caveat verbatim) -> dissemination -> close; then the
Unresolved Crime Cache. The right identity must come back at rank 1, and the audit trail the
server wrote must verify with `rfr audit verify`. All of it runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterator
from urllib.parse import quote

from workflow_builders import (
    approved_library,
    audit_cli,
    audit_verify,
    enrol,
    import_root,
    ok,
    open_search,
    ready_probe,
    stored_rows,
    wait_for_job,
)

from rfr.domain.match_report import DISSEMINATION_CAVEAT, PERFORMANCE_DOCUMENT_URL

# Each test runs on both event stores (tests/http/conftest.py).
STORES = ("sqlite", "postgres")

# Four identities: two photos of each enrolled, the third is the probe.
IDENTITIES = ("adam_sandler", "andy_roddick", "anne_mclellan", "bill_simon")
JPEG_MAGIC = b"\xff\xd8\xff"


def test_from_form_1_to_a_disseminated_match_report_with_the_right_identity_at_rank_1(server, people, photos):
    library = approved_library(people)
    gallery = [(who, p) for who in IDENTITIES for p in photos[who][:2]]
    report = enrol(people, library["id"], gallery)
    assert report["enrolled"] == len(gallery), report["results"]
    assert all(r["enrolled"] for r in report["results"])

    # L-13: the team lists what the library holds.
    contents = ok(people.analyst.client.get(f"/libraries/{library['id']}/images"))
    assert len(contents["images"]) == len(gallery)
    assert contents["library"]["searchable_with"], "enrolled images are templated (T-02)"

    target = IDENTITIES[1]
    probe = ready_probe(people, photos[target][2])
    selected = [f for f in probe["faces"] if f["selected"]]
    assert len(selected) == 1 and selected[0]["templated"]
    thumb = people.analyst.client.get(f"/probes/{probe['probe_id']}/faces/{selected[0]['face_id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content.startswith(JPEG_MAGIC)

    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    assert search["status"] == "open" and not search["awaiting_approval"]
    run = ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    assert run["library_id"] == library["id"]
    assert run["candidates"][0]["subject"] == target, run["candidates"][:3]
    assert [c["rank"] for c in run["candidates"]] == list(range(1, len(run["candidates"]) + 1))

    # S-04: by rank, or by score descending; thumbnails for the entitled.
    by_rank = ok(people.analyst.client.get(f"/searches/{search['id']}/candidates"))["candidates"]
    by_score = ok(
        people.analyst.client.get(f"/searches/{search['id']}/candidates", params={"order": "score"})
    )
    scores = [c["score"] for c in by_score["candidates"]]
    assert by_score["order"] == "score" and scores == sorted(scores, reverse=True)
    assert [c["rank"] for c in by_rank] == sorted(c["rank"] for c in by_rank)
    best = by_rank[0]
    assert best["subject"] == target and best["thumbnail_url"]
    assert best["thumbnail_url"] == (
        f"/searches/{search['id']}/candidates/{quote(best['candidate_id'], safe='')}/thumbnail"
    )
    picture = people.colleague.client.get(best["thumbnail_url"])
    assert picture.status_code == 200 and picture.content.startswith(JPEG_MAGIC)
    # A second library search of the same request is refused: every library is searched (409).
    assert people.analyst.client.post(f"/searches/{search['id']}/runs", json={}).status_code == 409

    adjudicated = ok(
        people.analyst.client.post(
            f"/searches/{search['id']}/adjudications",
            json={
                "candidate_id": best["candidate_id"],
                "viable": True,
                "rationale": "Same face shape, eyebrows and hairline",
                "identity_known": True,
            },
        )
    )
    assert adjudicated["has_viable_match"] is True
    issued = ok(
        people.analyst.client.post(
            f"/searches/{search['id']}/reports", json={"candidate_id": best["candidate_id"]}
        ),
        201,
    )
    assert issued["caveat"] == DISSEMINATION_CAVEAT
    assert issued["performance_document_url"] == PERFORMANCE_DOCUMENT_URL

    document = ok(people.inspector.client.get(f"/searches/{search['id']}/reports/{issued['report_id']}"))
    assert document["case_reference"] == "OP-LANTERN/2025/0142"
    assert document["candidate"]["candidate_id"] == best["candidate_id"]
    assert document["candidate"]["adjudication"]["viable"] is True
    page = people.analyst.client.get(f"/searches/{search['id']}/reports/{issued['report_id']}/printable")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert DISSEMINATION_CAVEAT in page.text, "S-06: the 8.27 caveat verbatim"
    assert f'href="{PERFORMANCE_DOCUMENT_URL}"' in page.text
    assert "<script" not in page.text.lower()
    assert "default-src 'none'" in page.headers["content-security-policy"]

    shared = ok(
        people.analyst.client.post(
            f"/searches/{search['id']}/disseminations",
            json={
                "report_id": issued["report_id"],
                "recipient": "DC Smith, Burglary Squad",
                "legal_basis": "Common law policing purpose",
                "safeguards_acknowledged": True,
            },
        ),
        201,
    )
    assert shared["disseminations"][0]["recipient"] == "DC Smith, Burglary Squad"
    closed = ok(
        people.analyst.client.post(f"/searches/{search['id']}/close", json={"reason": "Suspect charged"})
    )
    assert closed["status"] == "closed"

    verified = audit_verify(server)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the head an operator publishes anchors the chain; a forged one is caught.
    head = audit_cli(server, "head")
    assert head.returncode == 0, head.stderr
    assert audit_cli(server, "verify", "--anchor", head.stdout.strip()).returncode == 0
    count = head.stdout.strip().partition(":")[0]
    assert audit_cli(server, "verify", "--anchor", f"{count}:{'f' * 64}").returncode == 1
    assert_no_biometric_data_in_events(stored_rows(server), photos[target][2].read_bytes())


def _numeric_runs(value: object) -> Iterator[int]:
    """Lengths of every list of numbers anywhere inside a decoded event."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _numeric_runs(item)
    elif isinstance(value, list):
        if value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            yield len(value)
        for item in value:
            yield from _numeric_runs(item)


def assert_no_biometric_data_in_events(rows: list[tuple[str, bytes]], probe_bytes: bytes) -> None:
    """ADR 0004 / R-05: events carry ids, hashes and boxes, never images, templates or landmarks."""
    topics = {topic for topic, _ in rows}
    assert any("ProbeImage" in t for t in topics) and any("CandidateAdjudicated" in t for t in topics)
    for topic, blob in rows:
        assert probe_bytes[100:164] not in blob, f"{topic} holds image bytes"
        decoded = json.loads(blob)
        assert max(_numeric_runs(decoded), default=0) < 16, f"{topic} holds a vector of numbers"
        # Prose (the 8.27 caveat, rationales) is long but has spaces; encoded images do not.
        for text in re.findall(rb'"([A-Za-z0-9+/=_-]{200,})"', blob):
            raise AssertionError(f"{topic} holds a {len(text)}-character encoded string")


def test_bulk_enrolment_from_a_server_folder_runs_as_a_job_with_progress_and_per_row_outcomes(
    server, people, photos
):
    library = approved_library(people, name="LFW bulk")
    folder = import_root(server) / "bulk-1"
    folder.mkdir()
    rows = []
    for who in IDENTITIES[:3]:
        for photo in photos[who][:2]:
            shutil.copyfile(photo, folder / photo.name)
            rows.append(
                {
                    "file": photo.name,
                    "capture_date": "2021-03-04",
                    "age_band": "18_plus",
                    "mopi_group": "2",
                    "subject": who,
                }
            )
    rows.append(
        {
            "file": "missing.jpg",
            "capture_date": "2021-03-04",
            "age_band": "18_plus",
            "mopi_group": "2",
            "subject": "",
        }
    )
    rows.append(
        {
            "file": rows[0]["file"],
            "capture_date": "yesterday",
            "age_band": "18_plus",
            "mopi_group": "2",
            "subject": "",
        }
    )
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    started = ok(
        people.lead.client.post(
            f"/libraries/{library['id']}/imports", json={"folder": "bulk-1", "batch_size": 2}
        ),
        202,
    )
    assert started["status"] in ("queued", "running", "finished")
    url = f"/libraries/{library['id']}/imports/{started['job_id']}"
    job = wait_for_job(people.lead.client, url)
    assert job["status"] == "finished", job["error"]
    assert job["done"] == job["total"] == len(rows)
    outcomes = {(r["name"], r["enrolled"], r["code"]) for r in job["results"]}
    assert job["enrolled"] == 6 and job["not_enrolled"] == 2
    assert ("missing.jpg", False, "manifest") in outcomes
    assert sum(1 for r in job["results"] if r["code"] == "manifest") == 2

    held = ok(people.lead.client.get(f"/libraries/{library['id']}"))
    assert held["images_enrolled"] == 6

    # The folder must be inside the import root, and the job is the library's own.
    refused = people.lead.client.post(f"/libraries/{library['id']}/imports", json={"folder": "../"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "folder"
    assert refused.json()["type"] == "/problems/unprocessable"
    other = approved_library(people, name="LFW other")
    assert people.lead.client.get(f"/libraries/{other['id']}/imports/{started['job_id']}").status_code == 404


def test_an_unresolved_probe_goes_into_the_cache_with_an_inspectors_approval(server, people, photos):
    library = approved_library(people, name="LFW cache")
    enrol(people, library["id"], [(who, photos[who][0]) for who in IDENTITIES[:2]])
    probe = ready_probe(people, photos["carlos_moya"][2])
    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    run = ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    for candidate in run["candidates"]:
        ok(
            people.analyst.client.post(
                f"/searches/{search['id']}/adjudications",
                json={
                    "candidate_id": candidate["candidate_id"],
                    "viable": False,
                    "rationale": "Different person",
                },
            )
        )
    body = {"probe_id": probe["probe_id"], "grounds": ["b_offence"], "rationale": "Still unidentified"}
    # P-08: an RFR User may not add to the cache; an Inspector may.
    refused = people.analyst.client.post("/ucc/entries", json=body)
    assert refused.status_code == 403 and "P-08" in refused.json()["rule_ids"]
    entry = ok(people.inspector.client.post("/ucc/entries", json=body), 201)
    assert entry["approved_by"] == people.inspector.user_id and entry["removed_at"] is None
    listed = ok(people.analyst.client.get("/ucc/entries"))
    assert probe["probe_id"] in {e["probe_id"] for e in listed["items"]}
    reviewed = ok(
        people.analyst.client.post(
            f"/ucc/entries/{probe['probe_id']}/reviews",
            json={"outcome": "continue", "reason": "Still open"},
        )
    )
    assert reviewed["removed_at"] is None
    assert ok(people.analyst.client.get(f"/ucc/entries/{probe['probe_id']}/matches"))["matches"] == []
    removed = ok(
        people.analyst.client.post(
            f"/ucc/entries/{probe['probe_id']}/removal", json={"reason": "Identified by a witness"}
        )
    )
    assert removed["removed_at"] is not None and removed["deletion_due"] is not None
