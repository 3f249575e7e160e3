"""Every path's ``Allow`` header lists exactly the methods the OpenAPI document gives it.

For each path of the app's own document: ``OPTIONS`` (public, no token) answers 204 with
``Allow`` = the documented methods + ``OPTIONS`` (+ ``HEAD`` only if the path serves it),
and a method the path does not serve is a 405 problem with the same ``Allow`` (RFC 9110),
which is what schemathesis' ``allow_header_conformance`` and ``unsupported_method`` check.
Paths whose methods come from separate handlers (``GET`` and ``POST /users``) used to answer
``OPTIONS`` with one of them only (``allowed_methods``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from rfr.entrypoints.http.app import OPENAPI_JSON_PATH, create_app
from rfr.entrypoints.http.problems import PROBLEM_JSON
from rfr.infrastructure.settings import Settings

HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
# Tried in this order as "a method the path does not serve".
UNSERVED_CANDIDATES = ("DELETE", "PATCH", "PUT", "POST", "GET")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app; the client holds an administrator's bearer token."""
    data = tmp_path_factory.mktemp("allow") / "data"
    app = create_app(Settings(data, persistence="memory"))
    token = (data / "bootstrap-admin.token").read_text().strip()
    with TestClient(app) as client:
        bearer = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {token}"})
        client.headers["Authorization"] = f"Bearer {bearer.json()['secret']}"
        yield client


@pytest.fixture(scope="module")
def document(api: TestClient) -> dict[str, Any]:
    response = api.get(OPENAPI_JSON_PATH)
    assert response.status_code == 200, response.text
    return response.json()


def documented_methods(item: dict[str, Any]) -> set[str]:
    return {key.upper() for key in item if key.upper() in HTTP_METHODS}


def concrete_path(template: str, item: dict[str, Any]) -> str:
    """``template`` with each path parameter replaced by a value of its documented type."""
    path = template
    for key, operation in item.items():
        if key.upper() not in HTTP_METHODS:
            continue
        for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
            if parameter.get("in") != "path":
                continue
            schema = parameter.get("schema", {})
            value = str(uuid.uuid4()) if schema.get("format") == "uuid" else "x"
            path = path.replace("{" + parameter["name"] + "}", value)
    assert "{" not in path, f"{template}: a path parameter is not documented"
    return path


def allowed(header: str | None) -> list[str]:
    return sorted(m.strip().upper() for m in (header or "").split(",") if m.strip())


def expected_allow(client: TestClient, path: str, documented: set[str]) -> list[str]:
    methods = documented | {"OPTIONS"}
    if "HEAD" not in methods and client.head(path).status_code != 405:
        methods.add("HEAD")  # served though not documented: it must be listed anyway
    return sorted(methods)


def test_the_document_has_paths_with_several_methods(document: dict[str, Any]) -> None:
    # The case the fix is about must be in the document, or the test below proves nothing.
    several = [path for path, item in document["paths"].items() if len(documented_methods(item)) > 1]
    assert "/users" in several and len(several) > 5, several


def test_options_and_a_wrong_method_list_every_method_of_the_path(
    api: TestClient, document: dict[str, Any]
) -> None:
    anonymous = TestClient(api.app)  # OPTIONS stays public: no token needed, as before
    wrong: list[str] = []
    for template, item in document["paths"].items():
        documented = documented_methods(item)
        path = concrete_path(template, item)
        want = expected_allow(api, path, documented)

        options = anonymous.options(path)
        if options.status_code != 204 or allowed(options.headers.get("allow")) != want:
            wrong.append(
                f"OPTIONS {template}: {options.status_code}, Allow: {options.headers.get('allow')!r}, "
                f"expected {', '.join(want)}"
            )

        unserved = next(m for m in UNSERVED_CANDIDATES if m not in documented)
        refused = api.request(unserved, path)
        problem = refused.json() if refused.headers.get("content-type") == PROBLEM_JSON else {}
        if (
            refused.status_code != 405
            or allowed(refused.headers.get("allow")) != want
            or problem.get("type") != "/problems/method-not-allowed"
            or problem.get("status") != 405
        ):
            wrong.append(
                f"{unserved} {template}: {refused.status_code} {refused.headers.get('content-type')}, "
                f"Allow: {refused.headers.get('allow')!r}, expected 405 problem with {', '.join(want)}"
            )
    assert not wrong, "\n".join(wrong)
