"""Approval lifecycles and probe safeguards through the API: urgency (L-09, L-10), reviews (L-07),
variation, stop and expiry (L-12), endorsements (P-04, P-06), a drawn face (P-11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from workflow_builders import (
    Cast,
    application,
    approval_record,
    later,
    lfw_photos,
    ok,
    problem,
    submitted_probe,
)

# Each test runs on both event stores (tests/http/conftest.py).
STORES = ("sqlite", "postgres")

URGENCY = {"basis": "risk_to_life_or_harm", "rationale": "A missing person at risk"}


@pytest.fixture(scope="module")
def photo(shared_faces: Path) -> Path:
    return lfw_photos(shared_faces)["david_nalbandian"][2]


def flags(people: Cast, approval_id: str) -> set[str]:
    flagged = ok(people.lead.client.get("/library-approvals/flagged"))
    return {f["rule_id"] for a in flagged if a["id"] == approval_id for f in a["flags"]}


def applied(people: Cast, kind: str = "temporary") -> str:
    return ok(people.analyst.client.post("/library-approvals", json=application(kind)), 201)["id"]


def test_L10_an_inspectors_urgent_approval_is_flagged_until_a_superintendent_ratifies_it(people):
    approval = applied(people)
    body = {"record": approval_record(people.team, review_due=later(20)), "urgency": URGENCY}
    urgent = ok(people.inspector.client.post(f"/library-approvals/{approval}/urgent-approval", json=body))
    assert urgent["in_force"] and urgent["awaiting_superintendent"] and urgent["urgent"]
    assert "L-10" in flags(people, approval)
    rationale = {"rationale": "Risk continues; keep it"}
    by_inspector = people.inspector.client.post(f"/library-approvals/{approval}/ratification", json=rationale)
    assert "L-10" in problem(by_inspector, 403, "policy-refusal")["rule_ids"]
    ratified = ok(
        people.superintendent.client.post(f"/library-approvals/{approval}/ratification", json=rationale)
    )
    assert not ratified["awaiting_superintendent"]
    assert "L-10" not in flags(people, approval)


def test_L09_a_verbal_approval_awaits_its_written_rationale(people):
    approval = applied(people)
    body = {"record": approval_record(people.team, rationale="", review_due=later(20)), "urgency": URGENCY}
    verbal = ok(people.superintendent.client.post(f"/library-approvals/{approval}/approval", json=body))
    assert verbal["written_rationale_due"] is not None and "L-09" in flags(people, approval)
    written = ok(
        people.superintendent.client.post(
            f"/library-approvals/{approval}/written-rationale", json={"rationale": "Written up in full"}
        )
    )
    assert written["written_rationale_due"] is None and "L-09" not in flags(people, approval)


def test_L07_L08_L12_review_variation_stop_and_expiry(people):
    """L-07, L-08: review variation stop and expiry."""
    approval = applied(people, "substantive")
    record = approval_record(people.team, purposes=["a_identify"])
    ok(people.sro.client.post(f"/library-approvals/{approval}/approval", json={"record": record}))
    next_due = (datetime.now(UTC) + timedelta(days=180)).isoformat()
    reviewed = ok(
        people.lead.client.post(
            f"/library-approvals/{approval}/reviews",
            json={"outcome": "continue", "rationale": "Still needed", "next_review_due": next_due},
        )
    )
    assert reviewed["reviews"][0]["outcome"] == "continue"
    assert reviewed["review_due"].startswith(next_due[:10])
    varied = ok(
        people.sro.client.post(
            f"/library-approvals/{approval}/variation",
            json={
                "record": approval_record(people.team, purposes=["a_identify", "b_place_at_location"]),
                "rationale": "Purpose (b) added",
            },
        )
    )
    assert varied["purposes"] == ["a_identify", "b_place_at_location"]
    early = people.lead.client.post(f"/library-approvals/{approval}/expiry")
    assert "L-12" in problem(early, 403, "policy-refusal")["rule_ids"]
    stopped = ok(people.sro.client.post(f"/library-approvals/{approval}/stop", json={"reason": "Done"}))
    assert stopped["status"] == "stopped" and not stopped["in_force"] and stopped["deletion_due"]
    listed = ok(people.analyst.client.get("/library-approvals", params={"status": "stopped", "limit": 500}))
    assert approval in {a["id"] for a in listed["items"]}
    assert ok(people.analyst.client.get(f"/library-approvals/{approval}"))["status"] == "stopped"
    far = approval_record(people.team, review_due="9999-12-31T00:00:00Z")
    response = people.sro.client.post(
        f"/library-approvals/{applied(people, 'substantive')}/approval", json={"record": far}
    )
    assert {e["field"] for e in problem(response, 400, "validation")["errors"]} == {"record.review_due"}


def test_a_rejected_application_cannot_be_approved_after_all(people):
    approval = applied(people, "substantive")
    url = f"/library-approvals/{approval}"
    rejected = ok(people.sro.client.post(f"{url}/rejection", json={"rationale": "Not necessary"}))
    assert rejected["status"] == "rejected" and not rejected["in_force"]
    again = people.sro.client.post(f"{url}/approval", json={"record": approval_record(people.team)})
    assert problem(again, 403, "policy-refusal")["recorded"] is True


def test_P04_a_subject_aged_13_to_15_needs_an_inspectors_endorsement(people, photo):
    probe = submitted_probe(people, photo, perceived_age="13_15")
    assert probe["missing_endorsements"] == ["P-04"] and not probe["ready_for_search"]
    governance = ok(people.analyst.client.get(f"/probes/{probe['probe_id']}/governance"))
    assert governance["required_endorsements"] == ["P-04"]
    # The Inspector finds it in the queue of probes awaiting an endorsement.
    assert probe["probe_id"] in _awaiting_endorsement(people)
    rationale = {"kind": "P-04", "rationale": "Serious burglary series; recordable"}
    endorsed = ok(
        people.inspector.client.post(f"/probes/{probe['probe_id']}/endorsements", json=rationale), 201
    )
    assert (
        endorsed["missing_endorsements"] == []
        and endorsed["endorsements"][0]["by"] == people.inspector.user_id
    )
    assert probe["probe_id"] not in _awaiting_endorsement(people)


def test_P04_L11_P08_a_probes_age_is_reassessed_and_its_level_raised_never_lowered(people, photo):
    probe = submitted_probe(people, photo)
    url = f"/probes/{probe['probe_id']}"
    reassessed = ok(
        people.analyst.client.post(
            f"{url}/perceived-age", json={"perceived_age": "13_15", "reason": "A clearer frame shows a child"}
        )
    )
    assert reassessed["perceived_age"] == "13_15" and reassessed["missing_endorsements"] == ["P-04"]
    lowered = people.analyst.client.post(f"{url}/level", json={"level": 1, "reason": "lower, please"})
    assert problem(lowered, 403, "policy-refusal")["rule_ids"] == ["L-11"]
    raised = ok(people.analyst.client.post(f"{url}/level", json={"level": 5, "reason": "Taken in a home"}))
    assert raised["image_level"] == 5 and raised["missing_endorsements"] == ["P-04", "P-08"]
    assert probe["probe_id"] in _awaiting_endorsement(people)
    # Only a level the matrix has, and nothing but the two fields.
    for body in ({"level": 6, "reason": "x"}, {"level": 5, "reason": "x", "by": "me"}):
        problem(people.analyst.client.post(f"{url}/level", json=body), 400, "validation")


def _awaiting_endorsement(people) -> dict[str, list[str]]:
    """Every page of GET /probes/awaiting-endorsement, as probe id: missing endorsements."""
    listed, after = {}, 0
    while after is not None:
        page = ok(
            people.inspector.client.get("/probes/awaiting-endorsement", params={"after": after, "limit": 2})
        )
        listed.update({p["id"]: p["missing_endorsements"] for p in page["items"]})
        after = page["next_after"]
    return listed


def test_P06_a_vulnerability_endorsement_needs_technical_advice_first(people, photo):
    vulnerable = {"suspected_relevant_disability": True, "suspected_predates_gender_reassignment": False}
    probe = submitted_probe(people, photo, vulnerability=vulnerable)
    url = f"/probes/{probe['probe_id']}"
    body = {"kind": "P-06", "rationale": "Necessary despite the risk"}
    assert (
        "P-06"
        in problem(people.inspector.client.post(f"{url}/endorsements", json=body), 403, "policy-refusal")[
            "rule_ids"
        ]
    )
    advice = {"advice": "Accuracy may be lower; adjudicate with care"}
    ok(people.analyst.client.post(f"{url}/technical-advice", json=advice))
    endorsed = ok(people.inspector.client.post(f"{url}/endorsements", json=body), 201)
    assert endorsed["technical_advice"] == advice["advice"] and endorsed["missing_endorsements"] == []


def test_P11_a_face_the_detector_missed_can_be_drawn_and_is_then_templated(people, photo):
    probe = submitted_probe(people, photo)
    face = probe["faces"][0]
    box = {k: face[k] for k in ("left", "top", "right", "bottom")}
    drawn = ok(
        people.analyst.client.post(
            f"/probes/{probe['probe_id']}/drawn-faces",
            json={**box, "reason": "Tighter box around the suspect"},
        )
    )
    mine = [f for f in drawn["faces"] if f["drawn"]]
    assert len(mine) == 1 and mine[0]["selected"] and mine[0]["templated"] and mine[0]["score"] is None
    assert not any(f["templated"] for f in drawn["faces"] if not f["drawn"]), "P-11: only chosen faces"
