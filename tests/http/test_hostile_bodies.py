"""A hostile client's bodies and queries get 4xx problems, never a 500, and store nothing (issue 8).

Deep JSON, coerced types, wrong media types, oversized and over-parted bodies: each is refused
before any use case runs (``rfr.entrypoints.http.strict_input``), so the store grows by at most
the refusal the access guard records.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from http_harness import TEST_MAX_REQUEST_BYTES
from litestar import Litestar
from litestar.testing import TestClient

from rfr.domain.people import Role
from rfr.entrypoints.http.access_control import http_handlers, route_access
from rfr.entrypoints.http.app import create_app
from rfr.entrypoints.http.context import context_of
from rfr.entrypoints.http.strict_input import MAX_JSON_DEPTH, json_too_deep, query_value_problem
from rfr.infrastructure.settings import Settings

PROBLEM = "application/problem+json"
DEEP = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000
# Each a separate user: one holding every role would be refused by the separation of duties.
ROLE_RANKS = {Role.SRO: "chief_superintendent", Role.APPROVING_OFFICER: "superintendent"}
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


@attrs.define
class InProcess:
    app: Litestar
    client: TestClient[Litestar]
    tokens: dict[Role, str]

    def as_role(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def events(self) -> int:
        return context_of(self.app).services.app.recorder.max_notification_id() or 0

    def one_time(self) -> str:
        """A fresh one-time token of a user (for the route that takes one)."""
        issued = self.client.post(
            "/users/holder-auditor/tokens",
            json={"kind": "one_time"},
            headers=self.as_role(Role.ADMINISTRATOR),
        )
        assert issued.status_code == 201, issued.text
        return issued.json()["secret"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    data_dir = tmp_path_factory.mktemp("hostile")
    app = create_app(Settings(data_dir, persistence="memory"))
    with TestClient(app, raise_server_exceptions=False) as client:
        bootstrap = (data_dir / "bootstrap-admin.token").read_text().strip()
        exchanged = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {bootstrap}"})
        admin = {"Authorization": f"Bearer {exchanged.json()['secret']}"}
        tokens = {Role.ADMINISTRATOR: exchanged.json()["secret"]}
        for role in Role:
            if role is Role.ADMINISTRATOR:
                continue
            user_id = f"holder-{role.value}"
            body: dict[str, Any] = {"user_id": user_id, "roles": [role.value], "teams": ["team-a"]}
            if role in ROLE_RANKS:
                body["rank"] = ROLE_RANKS[role]
            assert client.post("/users", json=body, headers=admin).status_code == 201
            trained = {"trained": True, "reason": "course passed"}
            assert client.put(f"/users/{user_id}/training", json=trained, headers=admin).status_code == 200
            one_time = client.post(f"/users/{user_id}/tokens", json={"kind": "one_time"}, headers=admin)
            bearer = client.post(
                "/tokens/exchange", json={}, headers={"Authorization": f"Bearer {one_time.json()['secret']}"}
            )
            tokens[role] = bearer.json()["secret"]
        yield InProcess(app, client, tokens)


def _fill(path: str) -> str:
    values = {"uuid": str(uuid.uuid4()), "int": "1", "str": "x", "path": "x"}
    return _PARAM.sub(lambda m: values.get(m.group(2), "x"), path)


def json_routes(app: Litestar) -> list[tuple[str, str, Any]]:
    """(method, path, access) of every route that reads a JSON body."""
    found = []
    for path, handler in http_handlers(app):
        data = handler.parsed_fn_signature.parameters.get("data")
        media = getattr(getattr(data, "kwarg_definition", None), "media_type", None)
        if data is None or (media is not None and getattr(media, "value", media) != "application/json"):
            continue
        found += [(method, path, route_access(handler)) for method in sorted(handler.http_methods)]
    return found


def _headers(api: InProcess, access: Any) -> dict[str, str]:
    if access.public:
        return {}
    if access.one_time_token:
        return {"Authorization": f"Bearer {api.one_time()}"}
    return api.as_role(sorted(access.roles, key=lambda r: r.value)[0])


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def test_the_depth_check_counts_brackets_outside_strings_only():
    assert json_too_deep(DEEP) and json_too_deep(DEEP_OBJECT)
    assert not json_too_deep(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert json_too_deep(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert not json_too_deep(b'["' + b"[" * 5000 + b'\\"[", [[]]]')
    # Many brackets, none deep: counted in one pass, not refused.
    assert not json_too_deep(b"[" + b"[]," * 100_000 + b"[]]")


def test_every_json_route_refuses_a_body_nested_1000_deep_and_stores_nothing(api: InProcess):
    routes = json_routes(api.app)
    assert len(routes) > 20
    for method, path, access in routes:
        for body in (DEEP, DEEP_OBJECT):
            headers = {**_headers(api, access), "content-type": "application/json"}
            before = api.events()
            response = api.client.request(method, _fill(path), content=body, headers=headers)
            problem = _problem(response, 400)
            assert problem["type"] == "/problems/validation", (method, path)
            assert problem["errors"][0]["field"] == "body", (method, path, problem)
            assert "64" in problem["errors"][0]["message"]
            assert api.events() <= before + 1, (method, path)


def test_a_large_body_is_checked_the_same_way(api: InProcess):
    """Bodies over 256 KiB are checked in a worker thread: the same answers."""
    headers = {**api.as_role(Role.ADMINISTRATOR), "content-type": "application/json"}
    deep = b'{"user_id": "u-big", "roles": [' + b"[]," * 100_000 + b"[" * 100 + b"]" * 100 + b"]}"
    problem = _problem(api.client.post("/users", content=deep, headers=headers), 400)
    assert problem["errors"][0]["field"] == "body"
    wide = b'{"user_id": "u-big", "roles": ["rfr_user"], "teams": [' + b'"t",' * 100_000 + b"7]}"
    problem = _problem(api.client.post("/users", content=wide, headers=headers), 400)
    assert problem["errors"][0]["field"] == "teams[100000]"


def test_a_deep_json_form_part_is_refused_too(api: InProcess):
    files = {"image": ("probe.jpg", b"not read", "image/jpeg")}
    form3 = "[" * 1000 + "]" * 1000
    response = api.client.post(
        "/probes", files=files, data={"form3": form3}, headers=api.as_role(Role.RFR_USER)
    )
    problem = _problem(response, 400)
    assert problem["errors"][0]["field"] == "form3"


STRICT_BODIES = [
    ("PUT", "/users/holder-rfr_user/training", {"trained": 0, "reason": "x"}, "trained"),
    ("PUT", "/users/holder-rfr_user/training", {"trained": "true", "reason": "x"}, "trained"),
    ("POST", "/users", {"user_id": 7, "roles": ["rfr_user"]}, "user_id"),
    ("POST", "/users", {"user_id": "u-strict", "roles": "rfr_user"}, "roles"),
    ("POST", "/users/holder-auditor/tokens", {"ttl_days": "5"}, "ttl_days"),
    ("POST", "/users/holder-auditor/tokens", {"ttl_days": 5.5}, "ttl_days"),
    ("POST", "/users/holder-auditor/tokens", {"kind": 1}, "kind"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), STRICT_BODIES)
def test_json_bodies_are_not_coerced(api: InProcess, method: str, path: str, body: dict, field: str):
    headers = api.as_role(Role.ADMINISTRATOR)
    before = api.events()
    problem = _problem(api.client.request(method, path, json=body, headers=headers), 400)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert api.events() == before


NESTED = [
    ("/probes/{id}/drawn-faces", {"left": "10", "top": 0, "right": 5, "bottom": 5, "reason": "x"}, "left"),
    ("/searches/{id}/runs", {"top_k": "5"}, "top_k"),
    ("/library-approvals/{id}/approval", {"record": {"image_level": "1"}}, "record.image_level"),
]
NESTED_ROLES = {"probes": Role.RFR_USER, "searches": Role.RFR_USER, "library-approvals": Role.SRO}


@pytest.mark.parametrize(("path", "body", "field"), NESTED)
def test_numbers_and_levels_are_not_taken_from_text(api: InProcess, path: str, body: dict, field: str):
    """The fields the hostile test tried: refused by name before the (unknown) resource is looked up."""
    role = NESTED_ROLES[path.split("/")[1]]
    before = api.events()
    response = api.client.post(path.format(id=uuid.uuid4()), json=body, headers=api.as_role(role))
    problem = _problem(response, 400)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert api.events() == before


STRICT_QUERIES = [
    (f"/audit/aggregates/{uuid.uuid4()}/events", {"reason": "check", "until": "0.5"}, "until", Role.AUDITOR),
    ("/reports/usage", {"to": "0.5"}, "to", Role.AUDITOR),
    ("/reports/usage", {"from": "1700000000"}, "from", Role.AUDITOR),
    ("/reports/usage", {"format": "1"}, "format", Role.AUDITOR),
    ("/users", {"limit": "2.0"}, "limit", Role.ADMINISTRATOR),
    ("/users", {"limit": "two"}, "limit", Role.ADMINISTRATOR),
]


@pytest.mark.parametrize(("path", "params", "field", "role"), STRICT_QUERIES)
def test_query_parameters_are_read_strictly(api: InProcess, path: str, params: dict, field: str, role: Role):
    before = api.events()
    problem = _problem(api.client.get(path, params=params, headers=api.as_role(role)), 400)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert problem["errors"][0]["source"] == "query"
    assert api.events() == before


def test_query_values_as_written():
    from datetime import datetime

    assert query_value_problem("0.5", datetime | None)
    assert query_value_problem("2026-01-01T00:00:00Z", datetime | None) is None
    assert query_value_problem("1", bool | None) and query_value_problem("true", bool | None) is None
    assert query_value_problem("True", bool) is None
    assert query_value_problem("5", int) is None and query_value_problem("5.0", int)


def test_a_body_of_another_media_type_is_415(api: InProcess):
    headers = api.as_role(Role.ADMINISTRATOR)
    before = api.events()
    for content_type in ("text/plain", "application/xml", "multipart/form-data; boundary=x"):
        sent = api.client.post(
            "/users",
            content=b'{"user_id": "u-415", "roles": ["rfr_user"]}',
            headers={**headers, "content-type": content_type},
        )
        assert _problem(sent, 415)["type"] == "/problems/unsupported-media-type"
    library = str(uuid.uuid4())
    upload = api.client.post(f"/libraries/{library}/images", json={"files": []}, headers=headers)
    assert _problem(upload, 415)["type"] == "/problems/unsupported-media-type"
    assert api.events() == before


def _parts(count: int) -> bytes:
    part = b'--XX\r\nContent-Disposition: form-data; name="p%d"\r\n\r\nv\r\n'
    return b"".join(part % i for i in range(count)) + b"--XX--\r\n"


def test_more_than_1000_multipart_parts_is_413(api: InProcess):
    before = api.events()
    response = api.client.post(
        "/probes",
        content=_parts(1001),
        headers={**api.as_role(Role.RFR_USER), "content-type": "multipart/form-data; boundary=XX"},
    )
    problem = _problem(response, 413)
    assert problem["type"] == "/problems/request-too-large" and problem["max_parts"] == 1000
    assert api.events() == before


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), 8192):
        yield data[start : start + 8192]


def test_streamed_bodies_over_the_limit_are_413_on_a_real_server(live_server):
    client = live_server.admin.client
    oversized = b"[" * (TEST_MAX_REQUEST_BYTES + 1024)
    library = str(uuid.uuid4())
    multipart = (
        b'--XX\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + oversized + b"\r\n--XX--\r\n"
    )
    cases = [
        ("POST", "/users", oversized, "application/json"),
        ("POST", f"/libraries/{library}/images", multipart, "multipart/form-data; boundary=XX"),
    ]
    for method, path, body, content_type in cases:
        response = client.request(method, path, content=_chunks(body), headers={"content-type": content_type})
        problem = _problem(response, 413)
        assert problem["type"] == "/problems/request-too-large"
        assert problem["max_bytes"] == TEST_MAX_REQUEST_BYTES, path
    parts = client.post(
        f"/libraries/{library}/images",
        content=_chunks(_parts(1001)),
        headers={"content-type": "multipart/form-data; boundary=XX"},
    )
    assert _problem(parts, 413)["max_parts"] == 1000


def test_every_route_is_screened_by_the_one_hook(api: InProcess):
    """A router or route with a before_request of its own would skip the checks: none has one."""
    from rfr.entrypoints.http.strict_input import screen_request

    for path, handler in http_handlers(api.app):
        assert handler.resolve_before_request() is screen_request, path
