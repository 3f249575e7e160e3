"""Every route declares who may call it, and the one guard holds to it (A-05).

The route table is read from the application itself, so a route added later without a
declaration, or with the wrong roles, fails here without anyone writing a new test.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from litestar import get
from litestar.testing import TestClient

from rfr.application.services.base import list_ids
from rfr.domain.people import Role
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.entrypoints.http.access_control import (
    UndeclaredAccess,
    allow,
    http_handlers,
    is_automatic_options,
    route_access,
)
from rfr.entrypoints.http.app import create_app
from rfr.entrypoints.http.context import context_of
from rfr.infrastructure.settings import Settings

# The only routes anyone may call without a token; a new public route must be added here on purpose.
PUBLIC_ROUTES = {
    "GET /console-assets/{file_path:path}",
    "HEAD /console-assets/{file_path:path}",
    "GET /health",
    "GET /problems",
    "GET /problems/{slug:str}",
    "GET /schema",
    "GET /schema/oauth2-redirect.html",
    "GET /schema/openapi.json",
    "GET /schema/swagger",
    "GET /schema/{path:str}",
    # The web client (rfr/entrypoints/web): its sign-in form and the post that begins a session
    # (checked against the form's own CSRF cookie), signing out (public so that a disabled user,
    # or one whose token was revoked, can still end their session; the session's CSRF token is
    # checked before it runs), and its CSS and JS.
    "GET /app/sign-in",
    "POST /app/sign-in",
    "POST /app/sign-out",
    "GET /app/static/{file_path:path}",
    "HEAD /app/static/{file_path:path}",
}
# The web client's pages authenticate by session, never by a bearer header; their gate is checked
# for every role by tests/web/test_web_route_access.py.
WEB_PREFIX = "/app"


def _app(tmp_path: Path, **kw):
    return create_app(Settings(tmp_path, persistence="memory"), **kw)


def _fill(path: str) -> str:
    """A concrete URL for a route template: any value of the right type will do for the guard."""
    return re.sub(
        r"\{(\w+):(\w+)\}", lambda m: str(uuid.uuid4()) if m.group(2) == "uuid" else "someone", path
    )


def _guarded_routes(tmp_path: Path) -> list[tuple[str, str, frozenset[Role], str]]:
    app = _app(tmp_path)
    routes = []
    for path, handler in http_handlers(app):
        access = route_access(handler)
        if access.public or path == WEB_PREFIX or path.startswith(f"{WEB_PREFIX}/"):
            continue
        for method in sorted(handler.http_methods):
            routes.append((method, path, access.roles, access.rule))
    return routes


def test_every_route_declares_its_access_and_only_the_listed_ones_are_public(tmp_path):
    app = _app(tmp_path)
    public = set()
    for path, handler in http_handlers(app):
        access = route_access(handler)  # raises for an undeclared route
        if access.public and not is_automatic_options(handler):
            public |= {f"{m} {path}" for m in handler.http_methods}
    assert public == PUBLIC_ROUTES


def test_a_route_without_a_declaration_stops_the_app_from_starting(tmp_path):
    @get("/forgotten", sync_to_thread=False)
    def forgotten() -> str:
        return "should never be served"

    with pytest.raises(UndeclaredAccess, match="/forgotten"):
        _app(tmp_path, extra_routes=[forgotten])


def test_allow_refuses_an_empty_role_set():
    with pytest.raises(ValueError, match="at least one role"):
        allow()


def test_every_guarded_route_answers_401_without_a_token_and_403_to_every_other_role(tmp_path, live_server):
    """A-05: for every route and every role it does not allow, the holder of only that role is refused,
    under A-05 or the rule the route declares (A-03 for the audit trail)."""
    routes = _guarded_routes(tmp_path)
    assert len(routes) >= 15
    holders = {role: live_server.user([role.value], prefix=f"rbac-{role.value}") for role in Role}
    anonymous = live_server.anonymous()
    checked = 0
    for method, path, roles, rule in routes:
        url = _fill(path)
        response = anonymous.request(method, url)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["type"] == "/problems/unauthenticated"
        for role in set(Role) - roles:
            # No body is sent: the guard answers before the request is even parsed.
            response = holders[role].client.request(method, url)
            assert response.status_code == 403, (method, path, role, response.text)
            problem = response.json()
            assert problem["type"] == "/problems/forbidden"
            assert problem["rule_ids"] == [rule]
            assert problem["recorded"] is True
            checked += 1
    assert checked > 50
    assert {rule for *_, rule in routes} == {"A-05", "A-03"}
    assert all(rule == "A-03" for _, path, _, rule in routes if path.startswith("/audit"))


def test_a_refusal_at_the_gate_is_recorded_as_an_event(tmp_path):
    """A-01/A-03: the refused call leaves a RefusedAttempt naming the caller, the route and the rule."""
    app = _app(tmp_path)
    store = context_of(app).app
    token = (tmp_path / "bootstrap-admin.token").read_text().strip()
    with TestClient(app) as client:
        bearer = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {token}"})
        headers = {"Authorization": f"Bearer {bearer.json()['secret']}"}
        assert client.get("/audit/head", params={"reason": "curious"}, headers=headers).status_code == 403
    ids, _ = list_ids(store, RefusedAttempt.AttemptRefused, limit=50)
    attempts = [store.get(i, RefusedAttempt) for i in ids]
    gate = [a for a in attempts if a.command == "call GET /audit/head"]
    assert len(gate) == 1
    (refusal,) = gate[0].refusals
    assert refusal.actor.user_id == "admin"
    assert refusal.rule_ids == ("A-03",)
    assert "auditor" in refusal.reason


def test_automatic_options_answers_without_a_token(live_server):
    response = live_server.anonymous().options("/users")
    assert response.status_code == 204
    assert "OPTIONS" in response.headers["allow"]
