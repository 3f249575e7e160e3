"""Every JSON route refuses what its own OpenAPI document forbids, naming the field (issue 8).

The walk starts from the app's own document (``GET /schema/openapi.json``), not from the code:
for each operation whose request body is ``application/json`` it builds a minimal body of the
documented shape (``$ref`` resolved, every required property filled, ``oneOf`` with null read
as "optional value") and sends it spoiled in exactly one place:

- **too-long string**: each string with a ``maxLength``, at any depth (nested objects, list
  items, optional fields included), made ``maxLength + 1`` long;
- **too-long list**: each array with ``maxItems`` given ``maxItems + 1`` items (and each object
  with ``maxProperties`` one property too many);
- **wrong type**: each property and list item given a JSON value of another type, never one a
  lax reader would coerce (``7`` for a string, ``"1"`` for an integer, ``"true"`` for a boolean,
  ``"x"`` for a list or object);
- **deep**: the first property nested 1,000 levels deep (a bare 1,000-deep body is sent to
  every route by ``test_hostile_bodies``).

Each answer must be a 400 ``application/problem+json`` whose first error names the field
spoiled, by its full path (``libraries[2].relevance``, ``teams[2]``, ``teams``; ``body`` for
the deep one), and the store may grow by at most one event (a refusal) per request. So that
the named field is the only thing wrong, each probe's unspoiled twin (a valid value in its
place) must pass the server's own strict body check (``strict_input.decode_json``, called in
process, nothing sent): a document that describes a body the server refuses fails there.

The caller holds every role (and a rank), so no role check comes first; path parameters are
random UUIDs or a short name of the documented shape, since bodies are checked before any
lookup. The walk reads whatever the document declares: as it declares more limits, more is
probed; the coverage test lists what the document still leaves unbounded. A case where the
server's limit differs from the document's is marked in ``MISMATCHES`` (strict xfail) until
one of them is fixed.
"""

from __future__ import annotations

import functools
import json
import math
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar import Litestar
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.testing import TestClient

from rfr.domain.people import Role
from rfr.entrypoints.http.access_control import http_handlers
from rfr.entrypoints.http.app import OPENAPI_JSON_PATH, create_app
from rfr.entrypoints.http.context import context_of
from rfr.entrypoints.http.problems import PROBLEM_JSON
from rfr.entrypoints.http.strict_input import decode_json
from rfr.infrastructure.settings import Settings

JSON = "application/json"
DEPTH = 1000
EVERY_ROLE_USER = "every-role-prober"
TOO_LONG_STRING = "too-long string"
TOO_LONG_LIST = "too-long list"
WRONG_TYPE = "wrong type"
DEEP = "deep"
KINDS = (TOO_LONG_STRING, TOO_LONG_LIST, WRONG_TYPE, DEEP)

# (operation, kind, field) -> why the server answers otherwise than the document says; the twin
# test of an operation is (operation, "twin", "").
MISMATCHES: dict[tuple[str, str, str], str] = {}

# -- the document ----------------------------------------------------------------------------


@functools.cache
def document() -> dict[str, Any]:
    """The app's own OpenAPI document, read once at collection from a throwaway app."""
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings(Path(data_dir), persistence="memory"))
        with TestClient(app) as client:
            response = client.get(OPENAPI_JSON_PATH)
            assert response.status_code == 200, response.text
            return response.json()


def effective(
    schema: dict[str, Any],
    components: dict[str, Any],
    seen: frozenset[str] = frozenset(),
    prefer: str | None = None,
) -> tuple[dict[str, Any], set[str], frozenset[str]]:
    """(``schema`` resolved, the JSON types it accepts, the ``$ref`` names passed through).

    ``$ref`` and ``allOf`` are merged in; of a ``oneOf``/``anyOf`` the first branch that is not
    null is merged with the keywords beside it (``maxLength`` beside ``str | None``; an object's
    properties beside a rule such as ``anyOf: [{required: [a]}, {required: [b]}]``), preferring
    a branch that requires the property ``prefer``. A ``$ref`` cycle resolves to ``{}``.
    """
    schema = dict(schema)
    while "$ref" in schema:
        name = schema.pop("$ref").rsplit("/", 1)[-1]
        if name in seen:
            return {}, set(), seen
        seen = seen | {name}
        schema = _merge(components[name], schema)
    for part in schema.pop("allOf", None) or []:
        resolved, _, seen = effective(part, components, seen)
        schema = _merge(resolved, schema)
    accepted: set[str] | None = None
    for keyword in ("oneOf", "anyOf"):
        branches = schema.pop(keyword, None)
        if not branches:
            continue
        own = _types(schema)
        resolved = [effective(b, components, seen) for b in branches]
        types = [t or own for _, t, _ in resolved]
        accepted = set().union(*types) if accepted is None else accepted & set().union(*types)
        values = [(r, s) for (r, _, s), t in zip(resolved, types, strict=True) if t != {"null"}]
        if values:
            preferred = [v for v in values if prefer is not None and prefer in v[0].get("required", [])]
            branch, seen = (preferred or values)[0]
            schema = _merge(branch, schema)
    return schema, _types(schema) if accepted is None else accepted, seen


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over``'s keywords on ``base``'s; both's required properties, both's properties."""
    merged = {**base, **over}
    if "required" in base or "required" in over:
        merged["required"] = list(dict.fromkeys([*base.get("required", []), *over.get("required", [])]))
    if "properties" in base and "properties" in over:
        merged["properties"] = {**base["properties"], **over["properties"]}
    return merged


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, list):
        return set(declared)
    if declared:
        return {declared} | ({"number"} if declared == "integer" else set())
    values = schema.get("enum") or ([schema["const"]] if "const" in schema else [])
    return set().union(*(_json_types(v) for v in values)) if values else set()


def _type(schema: dict[str, Any]) -> str | None:
    """The one non-null JSON type of a resolved schema; None when it declares none."""
    kinds = sorted(_types(schema) - {"null"})
    if "integer" in kinds:
        return "integer"
    return kinds[0] if kinds else None


def _json_types(value: Any) -> set[str]:
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"number"}
    if isinstance(value, str):
        return {"string"}
    if isinstance(value, list):
        return {"array"}
    if isinstance(value, dict):
        return {"object"}
    return {"null"}


FORMATS = {
    "uuid": lambda: str(uuid.uuid4()),
    "date-time": lambda: "2030-01-01T12:00:00Z",
    "date": lambda: "2030-01-01",
    "time": lambda: "12:00:00Z",
    "email": lambda: "someone@example.org",
    "uri": lambda: "https://example.org/x",
}


def minimal(schema: dict[str, Any], components: dict[str, Any], seen: frozenset[str] = frozenset()) -> Any:
    """The smallest value of ``schema``: its required properties, its least list, its lowest number."""
    schema, _, seen = effective(schema, components, seen)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return next(v for v in schema["enum"] if v is not None)
    kind = _type(schema)
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: minimal(properties[name], components, seen) for name in schema.get("required", [])}
    if kind == "array":
        if "prefixItems" in schema:
            return [minimal(p, components, seen) for p in schema["prefixItems"]]
        return [minimal(schema.get("items", {}), components, seen) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        if schema.get("format") in FORMATS:
            return FORMATS[schema["format"]]()
        if "pattern" in schema and schema.get("examples"):
            return schema["examples"][0]
        return "x" * max(schema.get("minLength", 1), 1)
    if kind in ("integer", "number"):
        low = schema.get("minimum", -math.inf)
        if "exclusiveMinimum" in schema:
            low = max(low, math.floor(schema["exclusiveMinimum"]) + 1)
        high = schema.get("maximum", math.inf)
        number = min(max(1, math.ceil(low)), math.floor(high))
        return number if kind == "integer" else float(number)
    if kind == "boolean":
        return False
    return None  # any value, or null


# -- probes -----------------------------------------------------------------------------------

Step = tuple  # ("property", name) | ("item", index, length) | ("value",)


def field_name(steps: tuple[Step, ...]) -> str:
    """A field's path as the API's problems name it: ``record.access.teams``, ``teams[2]``."""
    name = ""
    for step in steps:
        if step[0] == "property":
            name += f".{step[1]}" if name else step[1]
        elif step[0] == "item":
            name += f"[{step[1]}]"
        else:
            name += "[...]"  # a dictionary's value, as msgspec names it
    return name


def place(schema: dict[str, Any], components: dict[str, Any], steps: tuple[Step, ...], leaf: Any) -> Any:
    """A minimal value of ``schema`` with ``leaf`` at ``steps``, parents created as needed."""
    if not steps:
        return leaf
    step, rest = steps[0], steps[1:]
    prefer = step[1] if step[0] == "property" else None
    resolved, _, _ = effective(schema, components, prefer=prefer)
    if step[0] == "property":
        value = minimal(resolved, components)
        value[step[1]] = place(resolved["properties"][step[1]], components, rest, leaf)
        return value
    if step[0] == "item":
        _, index, length = step
        prefix = resolved.get("prefixItems")
        schemas = prefix if prefix else [resolved.get("items", {})] * length
        value = [minimal(s, components) for s in schemas]
        value[index] = place(schemas[index], components, rest, leaf)
        return value
    return {"k": place(resolved["additionalProperties"], components, rest, leaf)}


@attrs.frozen
class Probe:
    kind: str
    field: str  # the errors[0].field expected
    steps: tuple[Step, ...]
    bad: Any  # the value put at steps; for DEEP, None (a 1,000-deep array replaces it)
    twin: Any  # the valid value the twin carries there


@attrs.frozen
class Operation:
    method: str
    path: str
    schema: dict[str, Any]
    path_parameters: dict[str, dict[str, Any]]
    one_time_token: bool
    public: bool

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def json_operations(doc: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if JSON not in content:
                continue
            parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    schema=content[JSON].get("schema", {}),
                    path_parameters={p["name"]: p.get("schema", {}) for p in parameters if p["in"] == "path"},
                    one_time_token=bool(operation.get("x-rfr-one-time-token")),
                    public=bool(operation.get("x-rfr-public")),
                )
            )
    return found


WRONG_VALUES = {
    "string": [7, True],
    "integer": ["1", 1.5],
    "number": ["1", True],
    "boolean": ["true", 1],
    "array": ["x", {}],
    "object": ["x", []],
}


def wrong_value(kind: str | None, accepted: set[str]) -> Any:
    """A value of another JSON type than any ``accepted``, none a lax reader would coerce."""
    for value in [*WRONG_VALUES.get(kind or "", []), 7, "x", [], {}]:
        if not _json_types(value) & accepted:
            return value
    return None


def _list_length(schema: dict[str, Any]) -> int:
    """How many items a list probed inside holds (the probed one last): 3 when allowed."""
    return min(max(schema.get("minItems", 0), 3), schema.get("maxItems", 3))


def nodes(schema: dict[str, Any], components: dict[str, Any]) -> Iterator[tuple[tuple[Step, ...], Any, set]]:
    """(steps, resolved schema, JSON types accepted) of the body and every value inside it: each
    property (optional ones too), a list's item (the last of three, or fewer if fewer are
    allowed), a dictionary's value."""

    def walk(schema: dict[str, Any], steps: tuple[Step, ...], seen: frozenset[str]) -> Iterator[Any]:
        resolved, accepted, seen = effective(schema, components, seen)
        yield steps, resolved, accepted
        if len(steps) > 12:
            return
        kind = _type(resolved)
        if kind == "array" and resolved.get("prefixItems"):
            count = len(resolved["prefixItems"])
            for index, item in enumerate(resolved["prefixItems"]):
                yield from walk(item, (*steps, ("item", index, count)), seen)
        elif kind == "array" and "items" in resolved and resolved.get("maxItems", 1) >= 1:
            length = _list_length(resolved)
            yield from walk(resolved["items"], (*steps, ("item", length - 1, length)), seen)
        if kind == "object":
            for name, child in resolved.get("properties", {}).items():
                yield from walk(child, (*steps, ("property", name)), seen)
            extra = resolved.get("additionalProperties")
            if isinstance(extra, dict) and extra and not resolved.get("properties"):
                yield from walk(extra, (*steps, ("value",)), seen)

    yield from walk(schema, (), frozenset())


def probes(operation: Operation, components: dict[str, Any]) -> list[Probe]:
    found: list[Probe] = []
    for steps, resolved, accepted in nodes(operation.schema, components):
        kind = _type(resolved)
        field = field_name(steps)
        valid = minimal(resolved, components)
        if steps and kind is not None:
            bad = wrong_value(kind, accepted)
            if bad is not None:
                found.append(Probe(WRONG_TYPE, field, steps, bad, valid))
        if kind == "string" and "maxLength" in resolved and "enum" not in resolved:
            too_long = "x" * (resolved["maxLength"] + 1)
            found.append(Probe(TOO_LONG_STRING, field, steps, too_long, valid))
        if kind == "array" and "maxItems" in resolved and "items" in resolved:
            many = [minimal(resolved["items"], components) for _ in range(resolved["maxItems"] + 1)]
            found.append(Probe(TOO_LONG_LIST, field, steps, many, valid))
        extra = resolved.get("additionalProperties")
        names = resolved.get("propertyNames", {}).get("enum")
        if kind == "object" and "maxProperties" in resolved and extra is not False:
            value = minimal(extra if isinstance(extra, dict) else {}, components)
            count = resolved["maxProperties"] + 1
            # Names from a closed set cannot be one too many if the set is no larger than the limit.
            if names is None or len(names) >= count:
                keys = names[:count] if names is not None else [f"k{n}" for n in range(count)]
                found.append(Probe(TOO_LONG_LIST, field or "body", steps, dict.fromkeys(keys, value), valid))
    resolved, _, _ = effective(operation.schema, components)
    properties = resolved.get("properties", {})
    first = next((p for p in resolved.get("required", []) if p in properties), next(iter(properties), None))
    steps: tuple[Step, ...] = (("property", first),) if first is not None else ()
    twin = minimal(properties[first] if first is not None else operation.schema, components)
    found.append(Probe(DEEP, "body", steps, None, twin))
    return found


def unbounded(operation: Operation, components: dict[str, Any]) -> list[str]:
    """The values of a body the document sets no size to: free text without ``maxLength``, a
    list without ``maxItems``, a dictionary without ``maxProperties``."""
    found = []
    for steps, resolved, _ in nodes(operation.schema, components):
        kind = _type(resolved)
        fixed = "enum" in resolved or "const" in resolved or resolved.get("format") in FORMATS
        if kind == "string" and "maxLength" not in resolved and not fixed:
            found.append(field_name(steps) or "body")
        elif kind == "array" and "maxItems" not in resolved and "prefixItems" not in resolved:
            found.append(f"{field_name(steps) or 'body'} (list)")
        elif kind == "object" and resolved.get("additionalProperties") not in (None, False):
            if "maxProperties" not in resolved:
                found.append(f"{field_name(steps) or 'body'} (dictionary)")
    return found


def body(operation: Operation, components: dict[str, Any], probe: Probe, *, twin: bool = False) -> bytes:
    if twin:
        return json.dumps(place(operation.schema, components, probe.steps, probe.twin)).encode()
    if probe.kind != DEEP:
        return json.dumps(place(operation.schema, components, probe.steps, probe.bad)).encode()
    marker = "deep-marker-" + uuid.uuid4().hex
    text = json.dumps(place(operation.schema, components, probe.steps, marker)).encode()
    return text.replace(json.dumps(marker).encode(), b"[" * DEPTH + b"]" * DEPTH)


def cases() -> list[Any]:
    doc = document()
    components = doc.get("components", {}).get("schemas", {})
    found = []
    for operation in json_operations(doc):
        for probe in probes(operation, components):
            mismatch = MISMATCHES.get((operation.id, probe.kind, probe.field))
            marks = [pytest.mark.xfail(strict=True, reason=mismatch)] if mismatch else []
            found.append(
                pytest.param(
                    operation, probe, id=f"{operation.id} | {probe.kind}: {probe.field}", marks=marks
                )
            )
    return found


def operation_cases() -> list[Any]:
    found = []
    for operation in json_operations(document()):
        mismatch = MISMATCHES.get((operation.id, "twin", ""))
        marks = [pytest.mark.xfail(strict=True, reason=mismatch)] if mismatch else []
        found.append(pytest.param(operation, id=operation.id, marks=marks))
    return found


# -- the app and its caller -----------------------------------------------------------------


@attrs.define
class Api:
    app: Litestar
    client: TestClient[Litestar]
    admin: dict[str, str]
    caller: dict[str, str]
    handlers: dict[tuple[str, str], HTTPRouteHandler]
    doc: dict[str, Any]

    def events(self) -> int:
        return context_of(self.app).services.app.recorder.max_notification_id() or 0

    def headers(self, operation: Operation) -> dict[str, str]:
        if operation.public:
            return {}
        if not operation.one_time_token:
            return self.caller
        issued = self.client.post(
            f"/users/{EVERY_ROLE_USER}/tokens", json={"kind": "one_time"}, headers=self.admin
        )
        assert issued.status_code == 201, issued.text
        return {"Authorization": f"Bearer {issued.json()['secret']}"}


def _template(path: str) -> str:
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("every-json-route")
    app = create_app(Settings(data_dir, persistence="memory"))
    with TestClient(app, raise_server_exceptions=False) as client:
        bootstrap = (data_dir / "bootstrap-admin.token").read_text().strip()
        exchanged = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {bootstrap}"})
        assert exchanged.status_code == 201, exchanged.text
        admin = {"Authorization": f"Bearer {exchanged.json()['secret']}"}
        registration = {
            "user_id": EVERY_ROLE_USER,
            "roles": [r.value for r in Role],
            "rank": "chief_superintendent",
            "teams": ["team-a"],
        }
        registered = client.post("/users", json=registration, headers=admin)
        assert registered.status_code == 201, registered.text
        trained = {"trained": True, "reason": "course passed"}
        training = client.put(f"/users/{EVERY_ROLE_USER}/training", json=trained, headers=admin)
        assert training.status_code == 200, training.text
        issued = client.post(f"/users/{EVERY_ROLE_USER}/tokens", json={"kind": "bearer"}, headers=admin)
        assert issued.status_code == 201, issued.text
        caller = {"Authorization": f"Bearer {issued.json()['secret']}"}
        handlers = {
            (method, _template(path)): handler
            for path, handler in http_handlers(app)
            for method in handler.http_methods
        }
        doc = client.get(OPENAPI_JSON_PATH).json()
        yield Api(app, client, admin, caller, handlers, doc)


def _url(operation: Operation) -> str:
    def value(match: re.Match[str]) -> str:
        schema = operation.path_parameters.get(match.group(1), {})
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        return "x" * max(schema.get("minLength", 1), 1)

    return re.sub(r"\{(\w+)\}", value, operation.path)


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize(("operation", "probe"), cases())
def test_a_spoiled_json_body_is_refused_naming_the_field(api: Api, operation: Operation, probe: Probe):
    components = api.doc.get("components", {}).get("schemas", {})
    headers = {**api.headers(operation), "content-type": JSON}
    before = api.events()
    sent = body(operation, components, probe)
    response = api.client.request(operation.method, _url(operation), content=sent, headers=headers)
    shown = sent[:300].decode(errors="replace")
    assert response.status_code == 400, f"{shown} -> {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem = response.json()
    assert problem["type"] == "/problems/validation", problem
    assert problem["errors"][0]["field"] == probe.field, (shown, problem)
    assert api.events() <= before + 1, f"the store grew by {api.events() - before} events"


@pytest.mark.parametrize("operation", operation_cases())
def test_the_unspoiled_twins_pass_the_servers_own_body_check(api: Api, operation: Operation):
    """Each probe's body, with a valid value where the spoiled one goes, is a body the route takes:
    so the field a probe spoils is the only thing wrong with it, and the document describes the
    bodies the server accepts."""
    components = api.doc.get("components", {}).get("schemas", {})
    handler = api.handlers[(operation.method, operation.path)]
    kind = handler.parsed_fn_signature.parameters["data"].annotation
    refused = []
    for probe in probes(operation, components):
        twin = body(operation, components, probe, twin=True)
        try:
            decode_json(twin, kind)
        except ValidationException as e:
            refused.append(f"{probe.kind} {probe.field}: {twin[:300].decode()} -> {e.extra}")
    assert refused == [], "\n".join(refused)


def test_every_json_operation_is_walked_with_every_kind_of_probe(api: Api):
    assert api.doc == document(), "the document read at collection is the one served"
    components = api.doc.get("components", {}).get("schemas", {})
    operations = json_operations(api.doc)
    walked = {op.id: {p.kind for p in probes(op, components)} for op in operations}
    count = {kind: sum(kind == p.kind for op in operations for p in probes(op, components)) for kind in KINDS}
    no_limit = sorted(op for op, kinds in walked.items() if not kinds & {TOO_LONG_STRING, TOO_LONG_LIST})
    open_ended = {op.id: found for op in operations if (found := unbounded(op, components))}
    note = (
        f"{len(operations)} operations, probes {count}; with no string or list limit probed: "
        f"{no_limit}; values the document sets no size to: {open_ended}"
    )
    assert len(operations) >= 40, note
    missing = {op: kinds for op, kinds in walked.items() if not {WRONG_TYPE, DEEP} <= kinds}
    assert missing == {}, note
    assert set(api.handlers) >= {(op.method, op.path) for op in operations}, note
