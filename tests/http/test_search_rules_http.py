"""Search rules through the API, each refusal naming exactly the rules the policy names.

- L-13 binds every route that changes a search request (adjudication, report, dissemination,
  approval, rejection, close) as it binds reading it: a refusal names L-13 alone, is
  recorded, and nothing else is stored.
- P-09 (not P-08) for a Sergeant approving a collection search; L-12 with L-01 for a search
  after a stop, and L-10 too after a Superintendent stopped an Inspector's urgent approval.
- Form 3's urgency "search all" applies to the request (S-02); a request waits for the
  probe's endorsements as for its own approvals.
- Two users adjudicating different candidates of one request at the same moment both land
  (ADR 0011); the same candidate twice at once lands once and is refused once under S-05.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from workflow_builders import (
    Cast,
    application,
    approval_record,
    approved_library,
    enrol,
    later,
    ok,
    open_search,
    problem,
    ready_probe,
    stored_events,
    submitted_probe,
    unique_id,
)

# Each test runs on both event stores (tests/http/conftest.py).
STORES = ("sqlite", "postgres")

IDENTITIES = ("barbara_walters", "benjamin_netanyahu", "billy_crystal")


@pytest.fixture(scope="module")
def library(people, photos) -> dict:
    library = approved_library(people, name="LFW search rules")
    enrol(people, library["id"], [(who, p) for who in IDENTITIES for p in photos[who][:2]])
    return library


def selected_probe(people: Cast, photo: Path, **form: object) -> dict:
    """A submitted probe with its largest face selected and quality accepted, however ready it is."""
    probe = submitted_probe(people, photo, **form)
    face = max(probe["faces"], key=lambda f: (f["right"] - f["left"]) * (f["bottom"] - f["top"]))
    client, path = people.analyst.client, f"/probes/{probe['probe_id']}"
    probe = ok(
        client.post(f"{path}/selection", json={"face_ids": [face["face_id"]], "reason": "the suspect"})
    )
    if probe["quality_flags"]:
        probe = ok(client.post(f"{path}/quality-decision", json={"proceed": True, "reason": "clear enough"}))
    return probe


def refused_exactly(server, before: list[str], response, *rule_ids: str) -> None:
    """A 403 policy refusal naming exactly ``rule_ids``, recorded, and nothing else stored."""
    body = problem(response, 403, "policy-refusal")
    assert sorted(body["rule_ids"]) == sorted(rule_ids), body
    assert body["recorded"] is True
    added = stored_events(server)[len(before) :]
    assert len(added) == 1 and added[0].endswith("Refused"), added


def test_L13_every_route_that_changes_a_search_refuses_a_user_outside_the_library(
    server, people, photos, library
):
    probe = ready_probe(people, photos[IDENTITIES[0]][2])
    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    path = f"/searches/{search['id']}"
    run = ok(people.analyst.client.post(f"{path}/runs"))
    first, second = (c["candidate_id"] for c in run["candidates"][:2])
    verdict = {"viable": True, "rationale": "Same person", "identity_known": True}
    ok(people.analyst.client.post(f"{path}/adjudications", json={"candidate_id": first, **verdict}))
    report = ok(people.analyst.client.post(f"{path}/reports", json={"candidate_id": first}), 201)
    share = {
        "report_id": report["report_id"],
        "recipient": "CPS case unit",
        "legal_basis": "DPA 2018 s.35",
        "safeguards_acknowledged": True,
    }
    outsider = people.outsider.client
    attempts = [
        lambda: outsider.post(f"{path}/adjudications", json={"candidate_id": second, **verdict}),
        lambda: outsider.post(f"{path}/reports", json={"candidate_id": first}),
        lambda: outsider.post(f"{path}/disseminations", json=share),
        lambda: outsider.post(f"{path}/close", json={"reason": "not mine to close"}),
    ]
    for attempt in attempts:
        before = stored_events(server)
        refused_exactly(server, before, attempt(), "L-13")
    # Nothing the outsider tried changed the request.
    after = ok(people.analyst.client.get(path))
    assert [c["candidate_id"] for c in after["candidates"] if c["adjudication"]] == [first]
    assert len(after["reports"]) == 1 and after["disseminations"] == [] and after["status"] == "open"


def test_L13_an_inspector_outside_the_library_cannot_approve_or_reject_its_search(server, people, photos):
    high = approved_library(people, level=4, name="LFW level 4 rules")
    enrol(people, high["id"], [(IDENTITIES[1], photos[IDENTITIES[1]][0])])
    probe = ready_probe(people, photos[IDENTITIES[1]][2])
    search = ok(open_search(people, probe["probe_id"], high["id"]), 201)
    elsewhere = server.user(
        ["approving_officer"], rank="inspector", teams=[unique_id("elsewhere")], prefix="inspector-z"
    )
    for route in ("approval", "rejection"):
        before = stored_events(server)
        response = elsewhere.client.post(f"/searches/{search['id']}/{route}", json={"rationale": "Justified"})
        refused_exactly(server, before, response, "L-13")
    approved = ok(
        people.inspector.client.post(f"/searches/{search['id']}/approval", json={"rationale": "Justified"})
    )
    assert approved["approval"]["by"] == people.inspector.user_id


def test_P09_a_sergeant_approving_a_collection_search_is_refused_under(server, people, photos, library):
    sergeant = server.user(
        ["approving_officer", "rfr_user"], rank="sergeant", teams=[people.team], prefix="sergeant"
    )
    probe = ready_probe(people, photos[IDENTITIES[2]][2], collection_id="COLL-OP-LANTERN-7")
    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    assert search["required_approvals"] == ["P-09"] and search["awaiting"] == ["P-09"]
    before = stored_events(server)
    response = sergeant.client.post(f"/searches/{search['id']}/approval", json={"rationale": "Needed"})
    refused_exactly(server, before, response, "P-09")


def test_L12_L01_a_search_after_the_approval_was_stopped_names_with(server, people, photos):
    stopped = approved_library(people, name="LFW to stop (rules)")
    enrol(people, stopped["id"], [(IDENTITIES[0], photos[IDENTITIES[0]][0])])
    ok(people.sro.client.post(f"/library-approvals/{stopped['approval_id']}/stop", json={"reason": "Done"}))
    probe = ready_probe(people, photos[IDENTITIES[1]][2])
    before = stored_events(server)
    refused_exactly(server, before, open_search(people, probe["probe_id"], stopped["id"]), "L-01", "L-12")


def test_L10_a_search_after_a_superintendent_stopped_an_urgent_inspector_approval_names(
    server, people, photos
):
    applied = ok(
        people.analyst.client.post(
            "/library-approvals", json=application("temporary", library_name="Urgent appeal stills")
        ),
        201,
    )
    record = approval_record(people.team, review_due=later(20))  # temporary: first review within 31 days
    urgency = {"basis": "risk_to_life_or_harm", "rationale": "A child is missing"}
    ok(
        people.inspector.client.post(
            f"/library-approvals/{applied['id']}/urgent-approval", json={"record": record, "urgency": urgency}
        )
    )
    urgent = ok(
        people.lead.client.post(
            "/libraries", json={"name": "Urgent appeal stills", "approval_id": applied["id"]}
        ),
        201,
    )
    enrol(people, urgent["id"], [(IDENTITIES[2], photos[IDENTITIES[2]][0])])
    ok(people.superintendent.client.post(f"/library-approvals/{applied['id']}/stop", json={"reason": "No"}))
    probe = ready_probe(people, photos[IDENTITIES[2]][2])
    before = stored_events(server)
    response = open_search(people, probe["probe_id"], urgent["id"])
    refused_exactly(server, before, response, "L-01", "L-10", "L-12")


def test_P04_a_request_awaits_the_probes_endorsement_until_an_inspector_gives_it(
    server, people, photos, library
):
    probe = selected_probe(people, photos[IDENTITIES[0]][1], perceived_age="13_15")
    assert probe["ready_for_search"] is False, "a 13-15 probe waits for its P-04 endorsement"
    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    assert search["awaiting_approval"] is True and search["awaiting"] == ["P-04"]
    assert search["required_approvals"] == []
    ok(
        people.inspector.client.post(
            f"/probes/{probe['probe_id']}/endorsements", json={"kind": "P-04", "rationale": "Proportionate"}
        ),
        201,
    )
    now = ok(people.analyst.client.get(f"/searches/{search['id']}"))
    assert now["awaiting_approval"] is False and now["awaiting"] == []


def test_S02_form_3_urgency_search_all_applies_without_repeating_it_on_the_request(
    server, people, photos, library
):
    """S-02: form 3 urgency search all applies without repeating it on the request."""
    higher = approved_library(people, level=3, name="LFW level 3 (urgent)")
    enrol(people, higher["id"], [(IDENTITIES[2], photos[IDENTITIES[2]][0])])
    urgency = {"basis": "risk_to_life_or_harm", "rationale": "Armed suspect at large", "search_all": True}
    probe = ready_probe(people, photos[IDENTITIES[2]][1], urgency=urgency, pre_rfr_checks=None)
    search = ok(open_search(people, probe["probe_id"], higher["id"], library["id"]), 201)
    assert search["urgency"]["search_all"] is True
    run = ok(people.analyst.client.post(f"/searches/{search['id']}/runs", json={"library_id": higher["id"]}))
    assert run["library_id"] == higher["id"], "search all: the higher level first is allowed"


def test_L13_a_user_outside_the_library_cannot_adjudicate_a_ucc_match(server, people, photos):
    """U-02 queues a match of new material for a cached probe; L-13 binds its adjudication too."""
    ucc_library = approved_library(people, name="LFW UCC rules")
    enrol(people, ucc_library["id"], [(IDENTITIES[1], photos[IDENTITIES[1]][0])])
    wanted = IDENTITIES[0]
    probe = ready_probe(people, photos[wanted][2])
    search = ok(open_search(people, probe["probe_id"], ucc_library["id"]), 201)
    run = ok(people.analyst.client.post(f"/searches/{search['id']}/runs"))
    for candidate in run["candidates"]:
        verdict = {"candidate_id": candidate["candidate_id"], "viable": False, "rationale": "Different"}
        ok(people.analyst.client.post(f"/searches/{search['id']}/adjudications", json=verdict))
    entry = {"probe_id": probe["probe_id"], "grounds": ["b_offence"], "rationale": "Still unidentified"}
    ok(people.inspector.client.post("/ucc/entries", json=entry), 201)
    # New material of the wanted person: U-02 re-searches the cached probe against it.
    enrol(people, ucc_library["id"], [(wanted, photos[wanted][0])])
    matches = ok(people.analyst.client.get(f"/ucc/entries/{probe['probe_id']}/matches"))["matches"]
    assert matches, "the new photo of the same person is queued for adjudication"
    match_id = quote(matches[0]["match_id"], safe="")
    path = f"/ucc/entries/{probe['probe_id']}/matches/{match_id}/adjudication"
    before = stored_events(server)
    response = people.outsider.client.post(path, json={"viable": True, "rationale": "Looks alike"})
    refused_exactly(server, before, response, "L-13")
    assert ok(people.analyst.client.post(path, json={"viable": True, "rationale": "Same scar"}))


def at_once(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Sends every call from a thread of its own, all released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def send(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(send, calls))


def searched_candidates(people: Cast, probe: dict, library: dict) -> tuple[str, list[str]]:
    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    path = f"/searches/{search['id']}"
    run = ok(people.analyst.client.post(f"{path}/runs"))
    return path, [c["candidate_id"] for c in run["candidates"]]


def test_S05_adjudications_of_different_candidates_at_once_both_land(server, people, photos, library):
    """ADR 0011: no spurious 409 for two people adjudicating two candidates of one request."""
    probe = ready_probe(people, photos[IDENTITIES[0]][2])
    verdict = {"viable": False, "rationale": "Different person"}
    pairs = 0
    for _ in range(2):
        path, candidates = searched_candidates(people, probe, library)
        url = f"{path}/adjudications"
        for first, second in zip(candidates[0::2], candidates[1::2], strict=False):
            responses = at_once(
                partial(people.analyst.client.post, url, json={"candidate_id": first, **verdict}),
                partial(people.colleague.client.post, url, json={"candidate_id": second, **verdict}),
            )
            for response in responses:
                ok(response)
            pairs += 1
        after = ok(people.analyst.client.get(path))
        by = {c["candidate_id"]: c["adjudication"]["by"] for c in after["candidates"] if c["adjudication"]}
        paired = candidates[: len(candidates) // 2 * 2]
        assert by == {
            c: (people.analyst if i % 2 == 0 else people.colleague).user_id for i, c in enumerate(paired)
        }
        assert after["refusals"] == 0
    assert pairs >= 4, "enough concurrent pairs for a spurious 409 to show"


def test_S05_the_same_candidate_adjudicated_twice_at_once_lands_once_and_is_refused_once(
    server, people, photos, library
):
    probe = ready_probe(people, photos[IDENTITIES[1]][2])
    path, candidates = searched_candidates(people, probe, library)
    url = f"{path}/adjudications"
    repeats = candidates[:3]
    for candidate in repeats:
        body = {"candidate_id": candidate, "viable": False, "rationale": "Different person"}
        responses = at_once(
            partial(people.analyst.client.post, url, json=body),
            partial(people.colleague.client.post, url, json=body),
        )
        assert sorted(r.status_code for r in responses) == [200, 403], [r.text for r in responses]
        refused = next(r for r in responses if r.status_code == 403)
        body = problem(refused, 403, "policy-refusal")
        assert body["rule_ids"] == ["S-05"] and body["reason"] == "already adjudicated", body
        assert body["recorded"] is True
    after = ok(people.analyst.client.get(path))
    assert {c["candidate_id"] for c in after["candidates"] if c["adjudication"]} == set(repeats)
    assert after["refusals"] == len(repeats)
