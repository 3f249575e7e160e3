"""Every error is an RFC 9457 problem with the status the ADR gives it (0008)."""

from __future__ import annotations

import io
import logging

import pytest
from http_harness import TEST_MAX_REQUEST_BYTES
from litestar import Request, post
from litestar.testing import TestClient
from PIL import Image

from rfr.adapters.image_decoding import decode_image
from rfr.domain.people import Role
from rfr.domain.user import User
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.app import create_app
from rfr.entrypoints.http.context import context_of
from rfr.entrypoints.http.problems import PROBLEM_TYPES
from rfr.infrastructure.settings import Settings

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}


def _assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert PROBLEM_FIELDS <= set(body)
    assert body["status"] == status
    assert body["type"] == f"/problems/{slug}"
    assert body["title"] == PROBLEM_TYPES[slug].title
    return body


def test_validation_names_each_invalid_field(live_server):
    response = live_server.admin.client.post("/users", json={"user_id": "", "roles": ["chief"]})
    body = _assert_problem(response, 400, "validation")
    assert body["instance"] == "/users"
    fields = {e["field"] for e in body["errors"]}
    assert fields & {"user_id", "roles[0]"}
    assert all(e["source"] == "body" for e in body["errors"])


def test_a_missing_query_parameter_is_named(live_server):
    auditor = live_server.user([Role.AUDITOR.value], prefix="auditor")
    body = _assert_problem(auditor.client.get("/audit/head"), 400, "validation")
    assert "reason" in body["detail"]


def test_unknown_route_and_unknown_user_are_404(live_server):
    _assert_problem(live_server.anonymous().get("/no/such/route"), 404, "not-found")
    body = _assert_problem(live_server.admin.client.get("/users/nobody-by-this-name"), 404, "not-found")
    assert "nobody-by-this-name" in body["detail"]


def test_wrong_method_is_405(live_server):
    _assert_problem(live_server.admin.client.delete("/me"), 405, "method-not-allowed")


def test_a_body_over_the_limit_is_413_whether_announced_or_streamed(live_server):
    oversized = b"x" * (TEST_MAX_REQUEST_BYTES + 1024)
    announced = live_server.admin.client.post(
        "/users", content=oversized, headers={"content-type": "application/json"}
    )
    body = _assert_problem(announced, 413, "request-too-large")
    assert body["max_bytes"] == TEST_MAX_REQUEST_BYTES

    def chunks():
        for start in range(0, len(oversized), 8192):
            yield oversized[start : start + 8192]

    streamed = live_server.admin.client.post(
        "/users", content=chunks(), headers={"content-type": "application/json"}
    )
    _assert_problem(streamed, 413, "request-too-large")


def test_policy_refusal_names_its_rules_and_is_recorded(live_server):
    """A-05 (administrators never change their own access) refused in the domain, then saved (A-01)."""
    admin = live_server.admin
    body = _assert_problem(
        admin.client.post("/users/admin/roles", json={"role": "sro", "reason": "promote myself"}),
        403,
        "policy-refusal",
    )
    assert body["rule_ids"] == ["A-05"]
    assert "own access" in body["reason"]
    assert body["recorded"] is True

    auditor = live_server.user([Role.AUDITOR.value], prefix="auditor")
    history = auditor.client.get(
        f"/audit/aggregates/{User.id_for('admin')}/events", params={"reason": "check refusal"}
    ).json()["result"]
    refused = [e for e in history if e["topic"].endswith("Refused")]
    assert refused[-1]["attributes"]["command"] == "grant role"
    assert refused[-1]["attributes"]["rule_ids"] == ["A-05"]


def test_a_disabled_user_is_refused_at_the_gate(live_server):
    """A-05: disabled users do not act; the refusal is recorded."""
    user = live_server.user([Role.RFR_USER.value], prefix="leaver")
    assert user.client.get("/me").status_code == 200
    disabled = live_server.admin.client.post(f"/users/{user.user_id}/disable", json={"reason": "left force"})
    assert disabled.status_code == 201
    body = _assert_problem(user.client.get("/me"), 403, "forbidden")
    assert body["rule_ids"] == ["A-05"]
    assert "disabled" in body["detail"]
    assert body["recorded"] is True


# -- errors no resource can produce yet, through routes mounted only in these tests ----------


@pytest.fixture
def api(tmp_path):
    @post("/test/decode", **allow(Role.ADMINISTRATOR))
    async def decode(request: Request) -> dict:
        height, width, _ = decode_image(await request.body()).shape
        return {"width": width, "height": height}

    @post("/test/conflict", sync_to_thread=True, **allow(Role.ADMINISTRATOR))
    def conflict() -> None:
        store = context_of(app).app
        first = store.get(User.id_for("admin"), User)
        second = store.get(User.id_for("admin"), User)
        first.record_activity(context_of(app).clock.now(), "first writer")
        second.record_activity(context_of(app).clock.now(), "second writer")
        store.save(first)
        store.save(second)

    @post("/test/crash", sync_to_thread=True, **allow(Role.ADMINISTRATOR))
    def crash() -> None:
        raise RuntimeError("database password is hunter2 at /srv/secret/path")

    app = create_app(Settings(tmp_path, persistence="memory"), extra_routes=[decode, conflict, crash])
    token = (tmp_path / "bootstrap-admin.token").read_text().strip()
    with TestClient(app) as client:
        bearer = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {token}"})
        client.headers["Authorization"] = f"Bearer {bearer.json()['secret']}"
        yield client


def _image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format=fmt)
    return buffer.getvalue()


def test_image_rejections_take_the_status_of_their_code(api):
    headers = {"content-type": "application/octet-stream"}
    assert api.post("/test/decode", content=_image("PNG"), headers=headers).json() == {
        "width": 8,
        "height": 8,
    }
    body = _assert_problem(
        api.post("/test/decode", content=_image("GIF"), headers=headers), 415, "image-rejected"
    )
    assert body["code"] == "unsupported_type"
    truncated = _image("PNG")[:40]
    body = _assert_problem(
        api.post("/test/decode", content=truncated, headers=headers), 422, "image-rejected"
    )
    assert body["code"] == "undecodable"


def test_concurrent_modification_is_409(api):
    _assert_problem(api.post("/test/conflict"), 409, "conflict")


def test_a_500_leaks_nothing_but_an_incident_id_that_is_logged(api, caplog):
    with caplog.at_level(logging.ERROR, logger="rfr.http"):
        response = api.post("/test/crash")
    body = _assert_problem(response, 500, "internal")
    assert "hunter2" not in response.text and "/srv/secret" not in response.text
    assert "RuntimeError" not in response.text
    assert body["incident"] in caplog.text
    assert "hunter2" in caplog.text  # the operators see what happened


def test_every_problem_type_is_documented_at_its_uri(live_server):
    client = live_server.anonymous()
    listed = client.get("/problems").json()
    assert {p["type"] for p in listed} == {p.uri for p in PROBLEM_TYPES.values()}
    for kind in PROBLEM_TYPES.values():
        assert client.get(kind.uri).json()["title"] == kind.title
    _assert_problem(client.get("/problems/no-such-type"), 404, "not-found")
