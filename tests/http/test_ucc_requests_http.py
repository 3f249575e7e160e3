"""Through a real `rfr serve`: an RFR User asks for a probe's addition to the Unresolved Crime
Cache and an Inspector approves or declines it (U-01, P-08, P-12).

Every refusal is a 403 problem naming exactly its rules, recorded (A-01): the store then holds
one refusal event more and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest
from workflow_builders import (
    approved_library,
    enrol,
    ok,
    open_search,
    problem,
    ready_probe,
    stored_events,
)

# Each test runs on both event stores (tests/http/conftest.py).
STORES = ("sqlite", "postgres")

IDENTITIES = ("gordon_brown", "halle_berry", "hans_blix")
PROBE_SUBJECT = "howard_dean"  # not enrolled: the search finds no viable match


@pytest.fixture(scope="module")
def sergeant(server, people):
    return server.user(["approving_officer"], rank="sergeant", teams=[people.team], prefix="sergeant")


def refused_exactly(server, before: list[str], response, status: int, slug: str, rule_ids: list[str]) -> dict:
    """A 403 problem naming exactly ``rule_ids``, recorded, and one refusal event stored (A-01)."""
    body = problem(response, status, slug)
    assert body["rule_ids"] == rule_ids, body
    assert body["recorded"] is True
    after = stored_events(server)
    assert after[: len(before)] == before
    added = after[len(before) :]
    assert len(added) == 1 and added[0].endswith(("Refused", "RefusedAttempt.AttemptRefused")), added
    return body


@pytest.fixture(scope="module")
def unmatched_probe(people, photos) -> dict[str, Any]:
    """A probe searched once, every potential match adjudicated not viable (U-01 holds)."""
    library = approved_library(people, name="LFW cache requests")
    enrol(people, library["id"], [(who, p) for who in IDENTITIES for p in photos[who][:2]])
    probe = ready_probe(people, photos[PROBE_SUBJECT][0])
    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    run = ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    for candidate in run["candidates"]:
        ok(
            people.analyst.client.post(
                f"/searches/{search['id']}/adjudications",
                json={"candidate_id": candidate["candidate_id"], "viable": False, "rationale": "Not him"},
            )
        )
    return probe


def test_U01_P08_an_rfr_users_request_is_declined_then_asked_again_and_approved(
    server, people, unmatched_probe
):
    """U-01, P-08, P-12: the whole flow, each refusal naming exactly its rule and recorded."""
    probe_id = unmatched_probe["probe_id"]
    body = {"probe_id": probe_id, "grounds": ["b_offence"], "rationale": "Burglar still unidentified"}

    # Wrong roles at the gate: an Auditor cannot ask; an RFR User cannot decide.
    before = stored_events(server)
    refused_exactly(
        server, before, people.auditor.client.post("/ucc/requests", json=body), 403, "forbidden", ["A-05"]
    )
    before = stored_events(server)
    approval = f"/ucc/requests/{probe_id}/approval"
    response = people.analyst.client.post(approval, json={"rationale": "my own"})
    refused_exactly(server, before, response, 403, "forbidden", ["A-05"])
    # Only the probe's requester asks (U-01).
    before = stored_events(server)
    response = people.colleague.client.post("/ucc/requests", json=body)
    refused_exactly(server, before, response, 403, "policy-refusal", ["U-01"])

    asked = ok(people.analyst.client.post("/ucc/requests", json=body), 201)
    assert (asked["status"], asked["requested_by"], asked["grounds"]) == (
        "pending",
        people.analyst.user_id,
        ["b_offence"],
    )
    pending = ok(people.inspector.client.get("/ucc/requests", params={"limit": 500}))["items"]
    assert probe_id in {r["probe_id"] for r in pending}

    declined = ok(
        people.inspector.client.post(
            f"/ucc/requests/{probe_id}/decline", json={"rationale": "Not proportionate yet"}
        )
    )
    assert (declined["status"], declined["decided_by"], declined["decider_rank"]) == (
        "declined",
        people.inspector.user_id,
        2,
    )
    assert people.analyst.client.get(f"/ucc/entries/{probe_id}").status_code == 404

    ok(
        people.analyst.client.post("/ucc/requests", json={**body, "rationale": "A second burglary linked"}),
        201,
    )
    assert ok(people.analyst.client.get(f"/ucc/requests/{probe_id}"))["status"] == "pending"


def test_P08_P12_only_an_inspector_who_did_not_ask_approves_and_the_probe_enters_the_cache(
    server, people, sergeant, unmatched_probe
):
    """P-08: a Sergeant is refused; P-12: a rationale is required; U-01: no direct addition meanwhile."""
    probe_id = unmatched_probe["probe_id"]
    approval = f"/ucc/requests/{probe_id}/approval"
    assert ok(people.inspector.client.get(f"/ucc/requests/{probe_id}"))["status"] == "pending"

    before = stored_events(server)
    response = sergeant.client.post(approval, json={"rationale": "Fine by me"})
    refused_exactly(server, before, response, 403, "policy-refusal", ["P-08"])
    before = stored_events(server)
    response = people.inspector.client.post(approval, json={"rationale": ""})
    refused_exactly(server, before, response, 403, "policy-refusal", ["P-12"])
    before = stored_events(server)
    direct = {"probe_id": probe_id, "grounds": ["b_offence"], "rationale": "Adding it myself"}
    response = people.inspector.client.post("/ucc/entries", json=direct)
    refused_exactly(server, before, response, 403, "policy-refusal", ["U-01"])

    approved = ok(people.inspector.client.post(approval, json={"rationale": "Serious series; proportionate"}))
    assert approved["status"] == "approved" and approved["in_ucc"]
    entry = ok(people.analyst.client.get(f"/ucc/entries/{probe_id}"))
    assert entry["approved_by"] == people.inspector.user_id and entry["removed_at"] is None
    listed = ok(people.inspector.client.get("/ucc/requests", params={"limit": 500}))["items"]
    assert probe_id not in {r["probe_id"] for r in listed}, "decided requests leave the pending list"
    everything = ok(
        people.inspector.client.get("/ucc/requests", params={"limit": 500, "include_decided": True})
    )
    assert probe_id in {r["probe_id"] for r in everything["items"]}

    # Decided: nothing left to approve, and the probe is in the cache (U-01).
    before = stored_events(server)
    again = people.inspector.client.post(approval, json={"rationale": "Again"})
    refused_exactly(server, before, again, 403, "policy-refusal", ["U-01"])
