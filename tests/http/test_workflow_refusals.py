"""The main refusals of the workflow through the API: each a 403 problem naming its rule, recorded (A-01).

Each refusal is checked in the store too: the events the server wrote for the request are
a refusal record and nothing else.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from workflow_builders import (
    application,
    approval_record,
    approved_library,
    blob_count,
    enrol,
    form3,
    form3_part,
    image_part,
    ok,
    open_search,
    problem,
    ready_probe,
    stored_events,
    submitted_probe,
)

# Each test runs on both event stores (tests/http/conftest.py).
STORES = ("sqlite", "postgres")

IDENTITIES = ("barbara_walters", "benjamin_netanyahu", "billy_crystal")


@pytest.fixture(scope="module")
def searchable(people, photos) -> dict:
    """A library of the team holding two photos of each identity, and a probe ready to search it."""
    library = approved_library(people, name="LFW refusals")
    enrol(people, library["id"], [(who, p) for who in IDENTITIES for p in photos[who][:2]])
    probe = ready_probe(people, photos[IDENTITIES[0]][2])
    return {"library": library, "probe": probe}


def refused(response, rule_id: str) -> dict:
    body = problem(response, 403, "policy-refusal")
    assert rule_id in body["rule_ids"], body
    assert body["recorded"] is True
    return body


def only_a_refusal_was_stored(server, before: list[str]) -> None:
    after = stored_events(server)
    assert after[: len(before)] == before
    added = after[len(before) :]
    assert len(added) == 1 and added[0].endswith(("Refused", "RefusedAttempt.Recorded")), added


def test_L01_a_library_needs_an_approval_in_force(server, people):
    applied = ok(people.analyst.client.post("/library-approvals", json=application()), 201)
    before = stored_events(server)
    response = people.lead.client.post("/libraries", json={"name": "too early", "approval_id": applied["id"]})
    refused(response, "L-01")
    only_a_refusal_was_stored(server, before)


def test_L12_a_stopped_approval_makes_its_library_unsearchable(server, people, photos):
    """L-12: a stopped approval makes its library unsearchable."""
    library = approved_library(people, name="LFW to stop")
    enrol(people, library["id"], [(IDENTITIES[0], photos[IDENTITIES[0]][0])])
    ok(
        people.sro.client.post(
            f"/library-approvals/{library['approval_id']}/stop", json={"reason": "Purpose achieved"}
        )
    )
    probe = ready_probe(people, photos[IDENTITIES[1]][2])
    body = refused(open_search(people, probe["probe_id"], library["id"]), "L-01")
    assert "L-01" in body["rule_ids"]


def test_P03_a_subject_perceived_under_13_is_not_searched(server, people, photos):
    before, blobs = stored_events(server), blob_count(server)
    response = people.analyst.client.post(
        "/probes", files=[image_part(photos[IDENTITIES[0]][2]), form3_part(form3(perceived_age="under_13"))]
    )
    refused(response, "P-03")
    only_a_refusal_was_stored(server, before)
    assert blob_count(server) == blobs, "no image kept of a refused probe"


def test_P02_pre_rfr_checks_are_needed_unless_urgency_is_declared(server, people, photos):
    before = stored_events(server)
    response = people.analyst.client.post(
        "/probes", files=[image_part(photos[IDENTITIES[0]][2]), form3_part(form3(pre_rfr_checks=None))]
    )
    refused(response, "P-02")
    only_a_refusal_was_stored(server, before)
    urgent = submitted_probe(
        people,
        photos[IDENTITIES[0]][2],
        pre_rfr_checks=None,
        urgency={"basis": "risk_to_life_or_harm", "rationale": "Threats made to a witness"},
    )
    assert urgent["faces"]


def test_L04_an_incomplete_form_1_is_refused_naming_what_is_missing(server, people):
    response = people.analyst.client.post("/library-approvals", json=application(legal_basis=" "))
    body = refused(response, "L-04")
    assert "legal_basis" in body["reason"] or "legal basis" in body["reason"]


def test_S02_progressive_order_cannot_be_skipped(server, people, photos, searchable):
    higher = approved_library(people, level=3, name="LFW level 3")
    enrol(people, higher["id"], [(IDENTITIES[2], photos[IDENTITIES[2]][0])])
    lower = searchable["library"]
    search = ok(open_search(people, searchable["probe"]["probe_id"], higher["id"], lower["id"]), 201)
    before = stored_events(server)
    skipped = people.analyst.client.post(f"/searches/{search['id']}/runs", json={"library_id": higher["id"]})
    refused(skipped, "S-02")
    only_a_refusal_was_stored(server, before)
    first = ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    assert first["library_id"] == lower["id"], "run next takes the lowest level first"
    second = ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    assert second["library_id"] == higher["id"], "no viable match below: the next level may be searched"


def test_L13_a_user_outside_the_access_restrictions_cannot_list_search_or_see_candidates(
    server, people, searchable
):
    library, probe = searchable["library"], searchable["probe"]
    before = stored_events(server)
    refused(people.outsider.client.get(f"/libraries/{library['id']}/images"), "L-13")
    only_a_refusal_was_stored(server, before)

    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    run = ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    candidate = quote(run["candidates"][0]["candidate_id"], safe="")
    thumbnail = f"/searches/{search['id']}/candidates/{candidate}/thumbnail"
    refused(people.outsider.client.get(thumbnail), "L-13")
    refused(people.outsider.client.get(f"/searches/{search['id']}/candidates"), "L-13")
    # The SRO oversees every request, but sees a candidate's subject and face only within L-13.
    listed = ok(people.sro.client.get(f"/searches/{search['id']}/candidates"))["candidates"]
    assert listed and all(c["thumbnail_url"] is None and c["subject"] is None for c in listed), (
        "the SRO oversees the request but is outside the library's access (L-13)"
    )
    refused(people.sro.client.get(thumbnail), "L-13")


def test_a_probe_face_is_shown_to_its_submitter_only(server, people, searchable):
    probe = searchable["probe"]
    face = probe["faces"][0]["face_id"]
    url = f"/probes/{probe['probe_id']}/faces/{face}/thumbnail"
    assert people.analyst.client.get(url).status_code == 200
    body = problem(people.colleague.client.get(url), 403, "policy-refusal")
    assert body["recorded"] is True


def test_A05_wrong_roles_are_refused_at_the_gate_and_recorded(server, people, photos):
    attempts = [
        people.auditor.client.post(
            "/probes", files=[image_part(photos[IDENTITIES[0]][2]), form3_part(form3())]
        ),
        people.analyst.client.post("/libraries", json={"name": "x", "approval_id": str(people.team)}),
        people.lead.client.post("/searches", json={}),
    ]
    for response in attempts:
        body = problem(response, 403, "forbidden")
        assert body["rule_ids"] == ["A-05"] and body["recorded"] is True
    # An RFR User may not decide an approval at all (the gate); an Inspector may decide, but
    # not a substantive library (the domain, L-02).
    applied = ok(people.analyst.client.post("/library-approvals", json=application()), 201)
    forbidden = people.analyst.client.post(
        f"/library-approvals/{applied['id']}/approval", json={"record": approval_record(people.team)}
    )
    problem(forbidden, 403, "forbidden")
    by_inspector = people.inspector.client.post(
        f"/library-approvals/{applied['id']}/approval", json={"record": approval_record(people.team)}
    )
    refused(by_inspector, "L-02")


def test_P08_a_search_of_a_level_4_library_waits_for_an_inspectors_approval(
    server, people, photos, searchable
):
    high = approved_library(people, level=4, name="LFW level 4")
    enrol(people, high["id"], [(IDENTITIES[1], photos[IDENTITIES[1]][0])])
    search = ok(open_search(people, searchable["probe"]["probe_id"], high["id"]), 201)
    assert search["awaiting_approval"] and "P-08" in search["required_approvals"]
    refused(people.analyst.client.post(f"/searches/{search['id']}/runs"), "P-08")
    approved = ok(
        people.inspector.client.post(
            f"/searches/{search['id']}/approval", json={"rationale": "Risk of further offences"}
        )
    )
    assert not approved["awaiting_approval"] and approved["approval"]["by"] == people.inspector.user_id
    assert ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))["library_id"] == high["id"]

    # A rejected request is searched no further.
    other = ok(open_search(people, searchable["probe"]["probe_id"], high["id"]), 201)
    rejected = ok(
        people.inspector.client.post(
            f"/searches/{other['id']}/rejection", json={"rationale": "Not proportionate"}
        )
    )
    assert rejected["status"] == "rejected"
    refused(people.analyst.client.post(f"/searches/{other['id']}/runs"), "S-01")


def test_S07_templates_are_never_disseminated(server, people, searchable):
    library, probe = searchable["library"], searchable["probe"]
    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    run = ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    best = run["candidates"][0]["candidate_id"]
    ok(
        people.analyst.client.post(
            f"/searches/{search['id']}/adjudications",
            json={"candidate_id": best, "viable": True, "rationale": "Same person", "identity_known": True},
        )
    )
    report = ok(
        people.analyst.client.post(f"/searches/{search['id']}/reports", json={"candidate_id": best}), 201
    )
    response = people.analyst.client.post(
        f"/searches/{search['id']}/disseminations",
        json={
            "report_id": report["report_id"],
            "recipient": "Another force",
            "legal_basis": "DPA 2018 s.35",
            "safeguards_acknowledged": True,
            "items": ["match_report", "template"],
        },
    )
    refused(response, "S-07")
