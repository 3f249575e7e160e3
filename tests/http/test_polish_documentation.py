"""One standard for every route: a human summary, the problems it can send documented as
``application/problem+json``, and validation errors that name the field by its full path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from rfr.entrypoints.http.access_control import http_handlers, is_automatic_options, route_access
from rfr.entrypoints.http.app import SCHEMA_PATH, create_app
from rfr.entrypoints.http.problems import PROBLEM_JSON
from rfr.infrastructure.settings import Settings


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    return create_app(Settings(tmp_path_factory.mktemp("polish-doc"), persistence="memory"))


@pytest.fixture(scope="module")
def document(app) -> dict:
    return app.openapi_schema.to_schema()


def _operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in sorted(document["paths"].items()):
        if path.startswith(SCHEMA_PATH):
            continue  # Litestar's own schema routes
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_route_declares_a_human_summary(app, document):
    # Undeclared, Litestar's summary is the handler's name in CamelCase ("VerifyChain").
    for path, handler in http_handlers(app):
        if (
            path.startswith(SCHEMA_PATH)
            or is_automatic_options(handler)
            or not handler.resolve_include_in_schema()
        ):
            continue
        assert handler.summary, (path, handler.handler_name)
    assert document["paths"]["/audit/verify"]["get"]["summary"] == "Verify the hash chain (A-02)"


def test_every_error_an_operation_documents_is_a_problem(document):
    checked = 0
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400 and status != "503":
                assert list(response["content"]) == [PROBLEM_JSON], (method, path, status)
                schema = response["content"][PROBLEM_JSON]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
                checked += 1
    assert checked > 300


def test_guarded_operations_document_401_and_403_and_named_resources_404(app, document):
    guarded = {
        (method, re.sub(r":\w+\}", "}", path))
        for path, handler in http_handlers(app)
        if not route_access(handler).public
        for method in handler.http_methods
    }
    for method, path, operation in _operations(document):
        responses = set(operation["responses"])
        if (method, path) in guarded:
            assert {"401", "403"} <= responses, (method, path)
            assert operation.get("security"), (method, path)
        else:
            assert not {"401", "403"} & responses, f"{method} {path} is public"
        if "{" in path:
            assert "404" in responses, (method, path)
        if method != "GET" and (method, path) in guarded:
            assert "409" in responses, (method, path)


def test_the_foundation_operations_now_document_their_problems(document):
    paths = document["paths"]
    for path, method, statuses in [
        ("/users", "post", {"400", "401", "403", "409"}),
        ("/users/{user_id}/roles", "post", {"400", "401", "403", "404", "409"}),
        ("/me", "get", {"401", "403"}),
        ("/tokens/exchange", "post", {"400", "401", "403"}),
        ("/audit/verify", "get", {"400", "401", "403"}),
        ("/policy/settings", "put", {"400", "401", "403", "409"}),
        ("/reports/schedules/{schedule_id}", "patch", {"400", "401", "403", "404", "409"}),
        ("/problems/{slug}", "get", {"404"}),
    ]:
        assert statuses <= set(paths[path][method]["responses"]), (method, path)
    health = paths["/health"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert health == {"$ref": "#/components/schemas/Health"}


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(tmp_path, persistence="memory"))
    token = (tmp_path / "bootstrap-admin.token").read_text().strip()
    with TestClient(app) as client:
        bearer = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {token}"})
        client.headers["Authorization"] = f"Bearer {bearer.json()['secret']}"
        yield client


def _fields(response) -> set[str]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["type"] == "/problems/validation"
    return {e["field"] for e in body["errors"]}


def test_foundation_routes_name_a_missing_or_unknown_field_itself(admin: TestClient):
    # Litestar reported these under "data" (the whole body), naming the field only in the message.
    assert _fields(admin.post("/users", json={"roles": ["rfr_user"]})) == {"user_id"}
    assert _fields(admin.post("/users", json={"user_id": "u1", "roles": [], "admin": True})) == {"admin"}
    assert _fields(admin.post("/users/admin/tokens", json={"kind": "forever"})) == {"kind"}
    assert _fields(admin.post("/reports/schedules", json={"name": "weekly", "frequency": "daily"})) == {
        "recipients"
    }
    # A query parameter is named as before.
    assert _fields(admin.get("/users", params={"limit": 0})) == {"limit"}
