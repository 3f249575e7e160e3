"""The audit trail through the API: Auditors only, and every query leaves its own record (A-03)."""

from __future__ import annotations

import uuid

import pytest
from workflow_builders import stored_events

from rfr.domain.people import Role
from rfr.domain.user import User


@pytest.fixture(scope="module")
def auditor(live_server):
    return live_server.user([Role.AUDITOR.value], prefix="auditor")


def _get(auditor, path, **params):
    response = auditor.client.get(path, params={"reason": "quarterly audit", **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_each_audit_query_is_recorded_with_the_items_it_showed(auditor):
    """A-03: the AuditAccess of a query names the query, the reason, the auditor and what was seen."""
    head = _get(auditor, "/audit/head")
    assert head["query"] == "head" and head["result"]["count"] > 0
    access = _get(auditor, f"/audit/aggregates/{head['access_id']}/events")["result"]
    (recorded,) = access
    assert recorded["topic"] == "rfr.domain.audit_access:AuditAccess.Queried"
    attributes = recorded["attributes"]
    assert attributes["query"] == "head"
    assert attributes["items"] == ["audit-chain-head"]
    assert attributes["reason"] == "quarterly audit"
    assert attributes["actor"]["user_id"] == auditor.user_id


def test_viewing_an_aggregate_records_every_version_shown(auditor):
    admin_id = User.id_for("admin")
    answer = _get(auditor, f"/audit/aggregates/{admin_id}/events")
    versions = [e["originator_version"] for e in answer["result"]]
    assert versions == list(range(1, len(versions) + 1))
    record = _get(auditor, f"/audit/aggregates/{answer['access_id']}/events")["result"][0]["attributes"]
    assert record["items"] == [f"{admin_id}@{v}" for v in versions]
    assert record["parameters"] == {"aggregate_id": str(admin_id)}


def test_history_until_a_time_stops_there(auditor, live_server):
    admin_id = User.id_for("admin")
    events = _get(auditor, f"/audit/aggregates/{admin_id}/events")["result"]
    first = events[0]["timestamp"]
    naive = first.replace("+00:00", "")
    until = _get(auditor, f"/audit/aggregates/{admin_id}/events", until=naive)["result"]
    assert [e["timestamp"] for e in until] == [e["timestamp"] for e in events if e["timestamp"] <= first]


def test_asking_about_an_unknown_id_is_404_and_still_recorded(auditor):
    before = _get(auditor, "/audit/head")["result"]["count"]
    missing = auditor.client.get(f"/audit/aggregates/{uuid.uuid4()}/events", params={"reason": "look"})
    assert missing.status_code == 404
    after = _get(auditor, "/audit/head")["result"]["count"]
    # The first head query's record, then the unknown-id query's record.
    assert after == before + 2


def test_verify_passes_and_holds_to_a_published_anchor(auditor):
    """A-02 through the API: the chain verifies, and still passes through a head published earlier."""
    anchor = _get(auditor, "/audit/head")["result"]["text"]
    result = _get(auditor, "/audit/verify", anchor=anchor)["result"]
    assert result["ok"] is True and result["checked"] >= int(anchor.split(":")[0])
    forged = f"{anchor.split(':')[0]}:{'0' * 64}"
    assert _get(auditor, "/audit/verify", anchor=forged)["result"]["ok"] is False
    bad = auditor.client.get("/audit/verify", params={"reason": "x", "anchor": "nonsense"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "anchor"


def test_an_untrained_auditor_is_refused_by_the_domain(live_server):
    """A-03 with A-05: the role alone is not enough; the refusal names the rule."""
    untrained = live_server.user([Role.AUDITOR.value], trained=False, prefix="untrained")
    response = untrained.client.get("/audit/head", params={"reason": "look"})
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/policy-refusal"
    assert "A-05" in response.json()["rule_ids"]


@pytest.mark.parametrize("role", [Role.RFR_USER, Role.SRO, Role.ADMINISTRATOR])
def test_A03_anyone_but_an_auditor_is_refused_under_and_the_refusal_recorded(live_server, auditor, role):
    """A-03: only Auditors read the audit trail; the refusal names A-03 (not the generic A-05)."""
    reader = live_server.user([role.value], prefix=f"not-auditor-{role.value}")
    before = stored_events(live_server)
    for path in ("/audit/head", "/audit/verify", f"/audit/aggregates/{User.id_for('admin')}/events"):
        response = reader.client.get(path, params={"reason": "curious"})
        assert response.status_code == 403, response.text
        assert response.json()["rule_ids"] == ["A-03"] and response.json()["recorded"] is True
    # Each refusal is in the trail as an attempt of its own.
    added = stored_events(live_server)[len(before) :]
    assert added == ["rfr.domain.refused_attempt:RefusedAttempt.AttemptRefused"] * 3, added
