"""Policy exceptions over HTTP (A-06, policy 12.3): recorded with rationale and legal advice,
queued for the SRO, reviewed once by the SRO; every refusal recorded (A-01)."""

from __future__ import annotations

import uuid

import pytest
from http_harness import ApiUser, LiveServer

EXCEPTION = {
    "decision": "Search a level 4 library before the Form 1 review",
    "rationale": "Threat to life; the board cannot sit within the hour",
    "legal_advice": "Force solicitor: lawful under common law powers",
}


@pytest.fixture(scope="module")
def people(live_server: LiveServer) -> dict[str, ApiUser]:
    return {
        "analyst": live_server.user(["rfr_user"], prefix="exc-analyst"),
        "inspector": live_server.user(["approving_officer"], rank="inspector", prefix="exc-inspector"),
        "sro": live_server.user(["sro"], rank="chief_superintendent", prefix="exc-sro"),
    }


def _queue(user: ApiUser) -> list[str]:
    ids, after = [], 0
    while after is not None:
        page = user.client.get("/policy-exceptions", params={"awaiting_sro": True, "after": after}).json()
        ids += [item["id"] for item in page["items"]]
        after = page["next_after"]
    return ids


def test_A06_an_exception_is_recorded_queued_and_reviewed_once_by_the_sro(people):
    related = str(uuid.uuid4())
    recorded = people["analyst"].client.post(
        "/policy-exceptions", json={**EXCEPTION, "related_ids": [related]}
    )
    assert recorded.status_code == 201, recorded.text
    view = recorded.json()
    assert view["awaiting_sro"] is True and view["status"] == "queued_for_sro"
    assert view["recorded_by"] == people["analyst"].user_id and view["related_ids"] == [related]
    assert view["legal_advice"] == EXCEPTION["legal_advice"]
    assert view["id"] in _queue(people["inspector"])
    assert people["inspector"].client.get(f"/policy-exceptions/{view['id']}").json() == view

    reviewed = people["sro"].client.post(
        f"/policy-exceptions/{view['id']}/review", json={"endorsed": True, "notes": "Proportionate"}
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["awaiting_sro"] is False and reviewed.json()["sro_notes"] == "Proportionate"
    assert view["id"] not in _queue(people["sro"])

    again = people["sro"].client.post(
        f"/policy-exceptions/{view['id']}/review", json={"endorsed": False, "notes": "Changed my mind"}
    )
    assert again.status_code == 403, again.text
    assert again.json()["rule_ids"] == ["A-06"] and again.json()["recorded"] is True


def test_A06_A01_an_exception_without_legal_advice_is_refused_and_the_refusal_recorded(people):
    """A-01: an exception without legal advice is refused and the refusal recorded."""
    response = people["analyst"].client.post("/policy-exceptions", json={**EXCEPTION, "legal_advice": " "})
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["type"] == "/problems/policy-refusal"
    assert problem["rule_ids"] == ["A-06"] and "legal advice" in problem["reason"]
    assert problem["recorded"] is True


def test_A06_A05_only_the_sro_reviews_and_unknown_exceptions_are_not_found(people):
    """A-06, A-05: only the sro reviews and unknown exceptions are not found."""
    view = people["analyst"].client.post("/policy-exceptions", json=EXCEPTION).json()
    refused = people["inspector"].client.post(
        f"/policy-exceptions/{view['id']}/review", json={"endorsed": True, "notes": "fine by me"}
    )
    assert refused.status_code == 403 and refused.json()["type"] == "/problems/forbidden"
    missing = people["sro"].client.get(f"/policy-exceptions/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/not-found"
    unnamed = people["analyst"].client.post("/policy-exceptions", json={"decision": "x", "rationale": "y"})
    assert unnamed.status_code == 400
    assert [e["field"] for e in unnamed.json()["errors"]] == ["legal_advice"]
