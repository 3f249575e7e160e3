"""The OpenAPI document says exactly what the server accepts (issue 8).

Each JSON body is decoded by msgspec against a struct; msgspec's own JSON Schema of that struct
is therefore what the server enforces. Every limit it holds (lengths, counts, ranges, the
limits of list items and of optional values), ``additionalProperties: false`` and each rule
between fields must be in the published component. The schemathesis run
(``test_schemathesis``) then checks the other direction, request by request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from test_bounded_bodies import request_bodies

from rfr.entrypoints.http.app import create_app
from rfr.entrypoints.http.body_rules import fields_rule
from rfr.entrypoints.http.context import context_of
from rfr.infrastructure.settings import Settings

COMPONENT = "#/components/schemas/"
LIMITS = ("maxLength", "minLength", "maxItems", "minItems", "minimum", "maximum", "pattern")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    return create_app(Settings(tmp_path_factory.mktemp("truth"), persistence="memory"))


@pytest.fixture(scope="module")
def document(app: Litestar) -> dict[str, Any]:
    return app.openapi_schema.to_schema()


def limits(schema: dict[str, Any], where: str) -> Iterator[tuple[str, str, Any]]:
    """(where, keyword, value) for every limit in ``schema``, into items and non-null options;
    ``$ref``s are not followed (each component is compared on its own)."""
    for keyword in LIMITS:
        if keyword in schema:
            yield where, keyword, schema[keyword]
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        if option.get("type") != "null":
            yield from limits(option, where)
    if isinstance(schema.get("items"), dict):
        yield from limits(schema["items"], f"{where}[]")


def published(document: dict[str, Any], kind: type) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    # Several structs may share a class name (``Reason``, written ``users_Reason``): the
    # component of this one has its name and its fields.
    fields = {f.encode_name for f in msgspec.structs.fields(kind)}
    same = [
        name
        for name, schema in schemas.items()
        if (name == kind.__name__ or name.endswith(f"_{kind.__name__}"))
        and set(schema.get("properties", {})) == fields
    ]
    assert same, f"no component of {kind.__name__} has its fields {sorted(fields)}"
    return schemas[same[0]]


def test_every_limit_the_server_enforces_is_published(document: dict[str, Any]) -> None:
    missing = []
    compared = 0
    for kind in request_bodies():
        (ref,), components = msgspec.json.schema_components([kind])
        enforced = components[ref["$ref"].rpartition("/")[2]]
        shown = published(document, kind)
        for name, prop in enforced["properties"].items():
            want = set(limits(prop, f"{kind.__name__}.{name}"))
            have = set(limits(shown["properties"].get(name, {}), f"{kind.__name__}.{name}"))
            missing += sorted(str(m) for m in want - have)
            compared += len(want)
    assert missing == [], "limits the server enforces but the document does not state:\n" + "\n".join(missing)
    assert compared > 120, "the comparison lost the bodies' limits"


def test_every_body_that_refuses_unknown_fields_says_so(document: dict[str, Any]) -> None:
    bodies = request_bodies()
    open_ = [k.__name__ for k in bodies if published(document, k).get("additionalProperties") is not False]
    assert open_ == []


def test_rules_between_fields_are_published_and_enforced(document: dict[str, Any], app: Litestar) -> None:
    ruled = [k for k in request_bodies() if fields_rule(k) is not None]
    assert {k.__name__ for k in ruled} >= {"RankChange", "ScheduleChange"}
    for kind in ruled:
        rule = fields_rule(kind)
        assert rule is not None
        keyword = "oneOf" if rule.exactly else "anyOf"
        assert published(document, kind)[keyword] == [{"required": [f]} for f in rule.fields]


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    app = create_app(Settings(tmp_path, persistence="memory"))
    with TestClient(app) as client:
        token = (tmp_path / "bootstrap-admin.token").read_text().strip()
        bearer = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {token}"})
        client.headers["Authorization"] = f"Bearer {bearer.json()['secret']}"
        yield client, context_of(app).app.recorder


def _events(recorder: Any) -> int:
    return recorder.max_notification_id() or 0


def test_A05_a_rank_or_a_staff_grade_not_both_nor_neither(admin: tuple[TestClient, Any]) -> None:
    client, recorder = admin
    assert client.post("/users", json={"user_id": "ranked", "roles": ["rfr_user"]}).status_code == 201
    before = _events(recorder)
    for body in ({"reason": "x"}, {"reason": "x", "rank": "inspector", "staff_grade": "Band B"}):
        refused = client.put("/users/ranked/rank", json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"] == [
            {"field": "rank", "source": "body", "message": "give exactly one of rank, staff_grade"}
        ]
    # null is not a value of either: the schema's ``required`` and the server agree.
    assert client.put("/users/ranked/rank", json={"reason": "x", "rank": None}).status_code == 400
    assert _events(recorder) == before
    assert client.put("/users/ranked/rank", json={"reason": "x", "rank": "inspector"}).status_code == 200


def test_an_integer_may_be_written_with_a_zero_fraction_and_nothing_else(
    admin: tuple[TestClient, Any],
) -> None:
    # JSON Schema calls 30.0 an integer; "30" and 30.5 are not.
    client, _ = admin
    assert client.post("/users", json={"user_id": "holder", "roles": ["rfr_user"]}).status_code == 201
    url = "/users/holder/tokens"
    issued = client.post(url, json={"label": "thirty", "ttl_days": 30.0})
    assert issued.status_code == 201, issued.text
    for wrong in ("30", 30.5, True):
        refused = client.post(url, json={"label": "wrong", "ttl_days": wrong})
        assert refused.status_code == 400, (wrong, refused.text)
        assert refused.json()["errors"][0]["field"] == "ttl_days"


def test_every_operation_documents_the_problems_it_can_answer(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            name = f"{method.upper()} {path}"
            assert "500" in statuses, name
            if not operation.get("x-rfr-public"):
                assert {"401", "403"} <= statuses, name
            if "{" in path:
                assert "404" in statuses, name
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= statuses, name
            for status, response in operation["responses"].items():
                if (name, status) == ("GET /health", "503"):
                    continue  # the health report itself, saying what is down
                if status.startswith(("4", "5")) and "content" in response:
                    assert list(response["content"]) == ["application/problem+json"], (name, status)
                    schema = response["content"]["application/problem+json"]["schema"]
                    assert schema == {"$ref": f"{COMPONENT}Problem"}, (name, status)
