"""The OpenAPI document is the whole API contract, and ``/schema`` shows all of it.

Every JSON or form body, request or response, is a named component schema whose every field
is described; every operation states the roles its route declares with ``allow()`` (or that it
is public), in ``x-rfr-*`` fields and in its description; and the offline reference page
renders bodies as tables of their fields, named schemas resolved, instead of "object".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import escape
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from rfr.entrypoints.http.access_control import ACCESS_KEY, http_handlers, route_access
from rfr.entrypoints.http.app import SCHEMA_PATH, create_app
from rfr.entrypoints.http.openapi_contract import FieldDocs
from rfr.entrypoints.http.openapi_page import prose
from rfr.infrastructure.settings import Settings

COMPONENT = "#/components/schemas/"
METHODS = ("get", "put", "post", "delete", "patch")
# Bodies that are documents of fields. Images, HTML pages, CSV and the OpenAPI document itself
# (Litestar's own route) are bytes or text, with no fields to name.
STRUCTURED = ("application/json", "application/problem+json", "multipart/form-data")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    return create_app(Settings(tmp_path_factory.mktemp("contract"), persistence="memory"))


@pytest.fixture(scope="module")
def document(app: Litestar) -> dict[str, Any]:
    return app.openapi_schema.to_schema()


@pytest.fixture(scope="module")
def page(app: Litestar) -> str:
    with TestClient(app) as client:
        response = client.get(SCHEMA_PATH)
    assert response.status_code == 200
    return response.text


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in sorted(document["paths"].items()):
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def bodies(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, media type, schema) of every request and response body."""
    for name, op in operations(document):
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            yield f"{name} request", media, content.get("schema", {})
        for status, response in op.get("responses", {}).items():
            for media, content in response.get("content", {}).items():
                yield f"{name} {status}", media, content.get("schema", {})


def named(schema: dict[str, Any]) -> str | None:
    """The component a body schema names: itself a ``$ref``, or an array of one."""
    ref = schema.get("$ref")
    if ref is None and schema.get("type") == "array":
        ref = schema.get("items", {}).get("$ref")
    return ref.removeprefix(COMPONENT) if isinstance(ref, str) and ref.startswith(COMPONENT) else None


def template(path: str) -> str:
    """A route's path as OpenAPI writes it: ``/probes/{probe_id:uuid}`` is ``/probes/{probe_id}``."""
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


def test_every_request_and_response_body_is_a_named_schema(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    checked, unnamed = 0, []
    for where, media, schema in bodies(document):
        if media not in STRUCTURED:
            continue
        checked += 1
        name = named(schema)
        if name is None or name not in components:
            unnamed.append(f"{where} ({media}): {schema}")
    assert not unnamed, "bodies that are not a named schema:\n" + "\n".join(unnamed)
    assert checked > 400, "the document lost its bodies"


def test_every_field_of_every_named_schema_has_a_description(app: Litestar, document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    fields = [
        (f"{name}.{field}", prop)
        for name, schema in sorted(components.items())
        for field, prop in schema.get("properties", {}).items()
    ]
    undescribed = [where for where, prop in fields if not str(prop.get("description", "")).strip()]
    assert not undescribed, "fields without a description:\n" + "\n".join(undescribed)
    assert len(fields) > 400
    # And no docstring describes a field its type does not have (renamed or removed).
    assert app.plugins.get(FieldDocs).stale == {}


def test_form_3_is_a_named_schema_with_its_enums(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    form3 = schemas["ProbeUpload"]["properties"]["form3"]
    # The JSON part is the object itself: a form sends an object property as application/json.
    assert form3["$ref"] == f"{COMPONENT}Form3Body" and form3["description"]
    properties = schemas["Form3Body"]["properties"]
    assert properties["perceived_age"]["$ref"] == f"{COMPONENT}PerceivedAgeBand"
    assert "under_13" in schemas["PerceivedAgeBand"]["enum"]
    assert properties["purposes"]["items"] == {"$ref": f"{COMPONENT}SearchPurpose"}
    assert "b_offence" in schemas["SearchGround"]["enum"]
    assert named(properties["pre_rfr_checks"]["oneOf"][0]) == "PreRfrChecksBody"
    assert "local_enquiries" in schemas["PreRfrOption"]["enum"]


def test_every_operation_states_the_roles_its_route_declares(app: Litestar, document: dict[str, Any]) -> None:
    declared: dict[tuple[str, str], Any] = {}
    for path, handler in http_handlers(app):
        if not handler.resolve_include_in_schema():
            continue
        # The declaration itself, as allow() or public() left it on the route (or its router).
        access = handler.opt.get(ACCESS_KEY) or route_access(handler)
        for method in handler.http_methods:
            declared[(template(path), method.lower())] = access
    documented = {
        (path, method) for path, item in document["paths"].items() for method in item if method in METHODS
    }
    assert documented == set(declared)
    for (path, method), access in sorted(declared.items()):
        op = document["paths"][path][method]
        where = f"{method.upper()} {path}"
        assert op["x-rfr-roles"] == sorted(role.value for role in access.roles), where
        assert op["x-rfr-public"] is access.public, where
        assert op["x-rfr-one-time-token"] is access.one_time_token, where
        if access.public:
            assert "x-rfr-rule" not in op and "security" not in op, where
            assert op["description"].endswith("Access: public, no token needed."), where
        else:
            assert op["x-rfr-rule"] == access.rule, where
            assert f"Access: roles {', '.join(op['x-rfr-roles'])} (any one of them)" in op["description"], (
                where
            )
    assert len(declared) > 90


def test_known_routes_state_their_roles(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert paths["/audit/head"]["get"]["x-rfr-roles"] == ["auditor"]
    assert paths["/health"]["get"]["x-rfr-public"] is True and paths["/health"]["get"]["x-rfr-roles"] == []
    assert paths["/tokens/exchange"]["post"]["x-rfr-one-time-token"] is True
    assert paths["/searches/{request_id}/adjudications"]["post"]["x-rfr-roles"] == ["rfr_user"]


def _section(page: str, start: str, end: str) -> str:
    begin = page.index(start)
    stop = page.find(end, begin + len(start))
    return page[begin : stop if stop != -1 else len(page)]


def _assert_fields_shown(html: str, schema: dict[str, Any]) -> None:
    required = set(schema.get("required", ()))
    for field, prop in schema["properties"].items():
        row = _section(html, f"<tr><td><code>{escape(field)}</code></td>", "</tr>")
        assert prose(prop["description"]) in row, field
        assert ("<td>yes</td>" in row) is (field in required), field


def test_the_reference_page_shows_the_fields_of_form_3(page: str, document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    form3 = _section(page, "id='schema-Form3Body'", "<div class='schema'")
    _assert_fields_shown(form3, schemas["Form3Body"])
    # Enums are listed beside the field, limits too.
    age = _section(form3, "<tr><td><code>perceived_age</code></td>", "</tr>")
    assert "<a href='#schema-PerceivedAgeBand'>PerceivedAgeBand</a>" in age
    assert all(f"<code>{band}</code>" in age for band in schemas["PerceivedAgeBand"]["enum"])
    assert "max length 8000" in _section(form3, "<tr><td><code>case_reference</code></td>", "</tr>")
    # The probe upload names Form 3 as its part (sent as JSON, like any object part of a form).
    upload = _section(page, "<code>/probes</code>", "<div class='op'>")
    assert "<td><code>form3</code></td><td><a href='#schema-Form3Body'>Form3Body</a></td>" in upload


def test_the_reference_page_states_the_rules_between_fields(page: str) -> None:
    rank = _section(page, "id='schema-RankChange'", "<div class='schema'")
    assert "Give exactly one of <code>rank</code>, <code>staff_grade</code>." in rank
    assert "No other field is accepted." in rank


def test_the_reference_page_shows_the_fields_of_an_adjudication(page: str, document: dict[str, Any]) -> None:
    operation = _section(page, "<code>/searches/{request_id}/adjudications</code>", "<div class='op'>")
    assert "Body (application/json): <a href='#schema-AdjudicationBody'>AdjudicationBody</a>" in operation
    _assert_fields_shown(operation, document["components"]["schemas"]["AdjudicationBody"])
    assert "Roles: rfr_user" in operation


def test_no_body_is_shown_as_a_bare_object(page: str) -> None:
    shown = re.findall(r"<div>Body \(([^)]*)\): (.*?)</div>", page)
    assert len(shown) > 30
    assert all("<a href='#schema-" in body for _, body in shown), [b for b in shown if "#schema-" not in b[1]]
