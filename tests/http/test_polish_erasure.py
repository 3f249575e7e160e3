"""Erasure (R-05) and legal holds (R-04) through a real `rfr serve`, with real photographs.

A hold refuses every purge (403 policy-refusal naming R-04, recorded) until it is lifted;
then a purged probe's faces answer 404, a search no longer returns a purged library image,
and the audit trail keeps the fact of the deletion, with no biometric data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

from workflow_builders import (
    Cast,
    approved_library,
    blob_count,
    enrol,
    ok,
    open_search,
    problem,
    ready_probe,
    stored_events,
)

# Each test runs on both event stores (tests/http/conftest.py).
STORES = ("sqlite", "postgres")

TARGET, OTHER = "andy_roddick", "bill_simon"
HOLD = {"kind": "disclosure", "reason": "Disclosure schedule of R v Smith (CPIA 1996)"}


def _best(people: Cast, probe_id: str, library_id: str) -> tuple[str, list[dict]]:
    search = ok(open_search(people, probe_id, library_id), 201)
    return search["id"], ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))["candidates"]


def _events(people: Cast, aggregate_id: str) -> list[dict]:
    answer = ok(
        people.auditor.client.get(
            f"/audit/aggregates/{aggregate_id}/events", params={"reason": "R-05 erasure check"}
        )
    )
    return answer["result"]


def _refused_by_hold(response) -> None:
    body = problem(response, 403, "policy-refusal")
    assert body["rule_ids"] == ["R-04"] and body["recorded"] is True


def test_R04_R05_a_held_library_keeps_its_images_until_lifted_then_a_search_no_longer_finds_a_purged_one(
    server, people, photos
):
    """R-04: a held library keeps its images until lifted then a search no longer finds a purged one."""
    library = approved_library(people, name="LFW erasure")
    gallery = [(who, p) for who in (TARGET, OTHER) for p in photos[who][:2]]
    assert enrol(people, library["id"], gallery)["enrolled"] == len(gallery)
    probe = ready_probe(people, photos[TARGET][2])
    first, candidates = _best(people, probe["probe_id"], library["id"])
    purged = [c["image_id"] for c in candidates if c["subject"] == TARGET]
    assert candidates[0]["subject"] == TARGET and len(purged) == 2
    listed = ok(people.analyst.client.get(f"/searches/{first}/candidates"))["candidates"]
    thumbnail = listed[0]["thumbnail_url"]
    assert people.analyst.client.get(thumbnail).status_code == 200

    lead = people.lead.client
    hold_url = f"/libraries/{library['id']}/legal-hold"
    assert ok(lead.post(hold_url, json=HOLD))["held"] is True
    assert ok(people.analyst.client.get(hold_url))["kind"] == "disclosure"
    events, blobs = len(stored_events(server)), blob_count(server)
    purge_url = f"/libraries/{library['id']}/images/purge"
    _refused_by_hold(lead.post(purge_url, json={"image_ids": purged, "reason": "subject acquitted"}))
    assert blob_count(server) == blobs, "nothing erased while held"
    assert len(stored_events(server)) == events + 1, "only the refusal is recorded (A-01)"

    assert ok(people.sro.client.post(f"{hold_url}/lift", json={"reason": "trial concluded"}))["held"] is False
    erased = ok(lead.post(purge_url, json={"image_ids": purged, "reason": "subject acquitted"}))
    assert erased["image_ids"] == purged and erased["templates_erased"] == 2
    assert blob_count(server) < blobs

    _, candidates = _best(people, probe["probe_id"], library["id"])
    assert {c["image_id"] for c in candidates}.isdisjoint(purged)
    assert all(c["subject"] == OTHER for c in candidates)
    gone = [
        i
        for i in ok(people.analyst.client.get(f"/libraries/{library['id']}/images"))["images"]
        if i["image_id"] in purged
    ]
    assert all(i["purged_at"] and not i["searchable"] and not i["templates"] for i in gone) and len(gone) == 2
    problem(people.analyst.client.get(thumbnail), 404, "not-found")
    again = lead.post(purge_url, json={"image_ids": purged[:1], "reason": "twice"})
    assert problem(again, 403, "policy-refusal")["rule_ids"] == ["R-05"]

    # The fact is on the enrolment batch that holds the images (ADR 0013).
    (batch_id,) = {i["batch_id"] for i in gone}
    (fact,) = [e for e in _events(people, batch_id) if e["topic"].endswith("ImagesPurged")]
    assert fact["attributes"]["image_ids"] == purged
    assert_only_the_fact(fact, people.lead.user_id, "subject acquitted")


def test_R04_R05_a_held_probe_is_kept_until_lifted_then_its_faces_are_gone(server, people, photos):
    """R-04, R-05: a held probe is kept until lifted then its faces are gone."""
    probe = ready_probe(people, photos[OTHER][2])
    probe_id = probe["probe_id"]
    face_url = f"/probes/{probe_id}/faces/{quote(probe['faces'][0]['face_id'], safe='')}/thumbnail"
    assert people.analyst.client.get(face_url).status_code == 200

    hold_url = f"/probes/{probe_id}/legal-hold"
    refused = people.analyst.client.post(hold_url, json=HOLD)
    assert problem(refused, 403, "forbidden")["rule_ids"] == ["A-05"], "only the Operational Lead or SRO hold"
    assert ok(people.sro.client.post(hold_url, json={**HOLD, "kind": "complaint"}))["kind"] == "complaint"
    blobs = blob_count(server)
    _refused_by_hold(people.lead.client.post(f"/probes/{probe_id}/purge", json={"reason": "purpose met"}))
    assert blob_count(server) == blobs
    assert people.analyst.client.get(face_url).status_code == 200

    ok(people.lead.client.post(f"{hold_url}/lift", json={"reason": "complaint closed"}))
    erased = ok(people.lead.client.post(f"/probes/{probe_id}/purge", json={"reason": "purpose met"}))
    assert erased["probe_id"] == probe_id and erased["records_erased"] >= 3  # image, faces, template
    assert blob_count(server) == blobs - erased["records_erased"]
    problem(people.analyst.client.get(face_url), 404, "not-found")

    (fact,) = [e for e in _events(people, probe_id) if e["topic"].endswith("ProbeImage.Purged")]
    assert_only_the_fact(fact, people.lead.user_id, "purpose met")


def assert_only_the_fact(event: dict, who: str, why: str) -> None:
    """R-05: who, when, why and which ids stay in the trail; no image bytes, no vector of numbers."""
    assert event["attributes"]["actor"]["user_id"] == who and event["attributes"]["reason"] == why
    assert event["timestamp"]
    vectors = [
        v for v in _values(event) if isinstance(v, list) and v and all(isinstance(x, float) for x in v)
    ]
    assert not vectors, "a template vector in the audit trail"
    assert len(json.dumps(event)) < 4000, "the fact of a deletion holds no image"


def _values(value: object) -> Iterator[object]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _values(item)
