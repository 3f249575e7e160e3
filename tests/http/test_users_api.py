"""Users, roles and policy settings through the API (A-05, and the SRO's settings)."""

from __future__ import annotations

from datetime import timedelta

from http_harness import unique_id
from litestar.testing import TestClient

from rfr.domain.people import Role
from rfr.entrypoints.http.app import create_app
from rfr.infrastructure.settings import Settings


def test_an_administrator_manages_a_users_access_from_registration_to_disabling(live_server):
    admin = live_server.admin.client
    user_id = unique_id("officer")
    registered = admin.post("/users", json={"user_id": user_id, "roles": ["rfr_user"], "teams": ["team-a"]})
    assert registered.status_code == 201
    view = registered.json()
    assert view["roles"] == ["rfr_user"] and view["trained"] is False and view["teams"] == ["team-a"]
    assert admin.post("/users", json={"user_id": user_id, "roles": ["rfr_user"]}).status_code == 409

    steps = [
        ("post", "roles", {"role": "approving_officer", "reason": "promoted"}),
        ("put", "rank", {"rank": "inspector", "reason": "promoted"}),
        ("put", "teams", {"teams": ["team-a", "team-b"], "reason": "moved"}),
        ("put", "training", {"trained": True, "reason": "course passed"}),
        ("post", "roles/revoke", {"role": "rfr_user", "reason": "now approves only"}),
    ]
    for method, path, body in steps:
        response = admin.request(method.upper(), f"/users/{user_id}/{path}", json=body)
        assert response.status_code in (200, 201), (path, response.text)
    view = admin.get(f"/users/{user_id}").json()
    assert view["roles"] == ["approving_officer"]
    assert view["rank"] == "inspector" and view["teams"] == ["team-a", "team-b"] and view["trained"] is True

    graded = admin.put(f"/users/{user_id}/rank", json={"staff_grade": "Band B", "reason": "staff post"})
    assert graded.json()["rank"] == "chief_inspector"
    both = admin.put(
        f"/users/{user_id}/rank", json={"rank": "inspector", "staff_grade": "Band B", "reason": "x"}
    )
    assert both.status_code == 400
    unknown = admin.put(f"/users/{user_id}/rank", json={"staff_grade": "Band Z", "reason": "x"})
    assert unknown.status_code == 403 and unknown.json()["rule_ids"] == ["A-05"]

    assert admin.post(f"/users/{user_id}/disable", json={"reason": "left"}).json()["disabled"] is True
    assert admin.post(f"/users/{user_id}/enable", json={"reason": "returned"}).json()["disabled"] is False


def test_everyone_reads_themselves_and_only_overseers_read_others(live_server):
    user = live_server.user([Role.RFR_USER.value])
    other = live_server.user([Role.RFR_USER.value])
    assert user.client.get("/me").json()["user_id"] == user.user_id
    assert user.client.get(f"/users/{user.user_id}").status_code == 200
    refused = user.client.get(f"/users/{other.user_id}")
    assert refused.status_code == 403 and refused.json()["rule_ids"] == ["A-05"]
    lead = live_server.user([Role.OPERATIONAL_LEAD.value])
    assert lead.client.get(f"/users/{other.user_id}").status_code == 200


def test_users_are_listed_in_pages(live_server):
    admin = live_server.admin.client
    for _ in range(3):
        live_server.user([Role.RFR_USER.value], prefix="paged")
    seen, after = [], 0
    while after is not None:
        page = admin.get("/users", params={"after": after, "limit": 2}).json()
        assert len(page["items"]) <= 2
        seen += [u["user_id"] for u in page["items"]]
        after = page["next_after"]
    assert len(seen) == len(set(seen)) >= 4 and "admin" in seen
    assert admin.get("/users", params={"limit": 0}).status_code == 400


def test_inactive_users_are_flagged_after_the_configured_period(tmp_path, clock):
    """A-05: no activity for 90 days (the default) flags a user for removal."""
    app = create_app(Settings(tmp_path, persistence="memory"), clock=clock)
    with TestClient(app) as client:
        token = (tmp_path / "bootstrap-admin.token").read_text().strip()
        bearer = client.post(
            "/tokens/exchange", json={"ttl_days": 120}, headers={"Authorization": f"Bearer {token}"}
        )
        client.headers["Authorization"] = f"Bearer {bearer.json()['secret']}"
        client.post("/users", json={"user_id": "dormant", "roles": ["rfr_user"]})
        assert client.get("/users/inactive").json() == []
        clock.advance(timedelta(days=50))
        client.post("/users", json={"user_id": "recent", "roles": ["rfr_user"]})
        clock.advance(timedelta(days=41))
        flagged = client.get("/users/inactive").json()
        # The administrator last acted on day 50 and "recent" was registered then: 41 days ago.
        assert [u["user_id"] for u in flagged] == ["dormant"] and flagged[0]["inactive"] is True


def test_only_the_sro_changes_policy_settings_and_every_change_is_kept(live_server):
    sro = live_server.user([Role.SRO.value], rank="chief_superintendent")
    analyst = live_server.user([Role.RFR_USER.value])
    before = analyst.client.get("/policy/settings").json()
    assert before["config"]["inactivity_days"] == 90

    changed = sro.client.put(
        "/policy/settings", json={"config": {"inactivity_days": 60}, "reason": "force policy"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["established"] is True and changed.json()["config"]["inactivity_days"] == 60
    assert changed.json()["changes"][-1]["by"] == sro.user_id
    assert analyst.client.get("/policy/settings").json()["config"]["inactivity_days"] == 60

    unknown = sro.client.put("/policy/settings", json={"config": {"no_such_value": 1}, "reason": "x"})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "config.no_such_value"
    assert unknown.json()["errors"][0]["message"] == "not a name this object takes"
    assert analyst.client.put("/policy/settings", json={"config": {}, "reason": "x"}).status_code == 403


def test_A05_an_administrator_sets_where_a_users_reports_go_and_a_header_breaking_address_is_refused(
    live_server,
):
    """A-05/A-04: a user's e-mail address (where scheduled reports go) is set by an administrator,
    recorded, and only a single plain address is taken: nothing that could add a mail header."""
    admin = live_server.admin.client
    other = live_server.user([Role.ADMINISTRATOR.value])
    path = f"/users/{other.user_id}/email"
    assert admin.get(f"/users/{other.user_id}").json()["email"] is None
    set_ = admin.put(path, json={"email": "reports@force.example", "reason": "for the monthly report"})
    assert set_.status_code == 200 and set_.json()["email"] == "reports@force.example"
    for hostile in ("a@b.example\r\nBcc: eve@evil.example", "a@b.example, eve@evil.example", "nobody"):
        refused = admin.put(path, json={"email": hostile, "reason": "x"})
        assert refused.status_code == 403 and refused.json()["rule_ids"] == ["A-05"], hostile
    assert admin.get(f"/users/{other.user_id}").json()["email"] == "reports@force.example"
    # Nobody sets their own: the address decides where usage reports about them go.
    own = other.client.put(path, json={"email": "me@elsewhere.example", "reason": "mine"})
    assert own.status_code == 403
    cleared = admin.put(path, json={"email": None, "reason": "left the office"})
    assert cleared.json()["email"] is None
