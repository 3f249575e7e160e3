"""Every string and list a JSON body may carry has a limit, enforced before anything is recorded.

Request bodies are the msgspec structs of the resources that refuse unknown fields; each is
walked with ``msgspec.inspect``, nested structs and optional values included. A too-long list
is then refused over HTTP with a 400 naming the field, and the store does not grow.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import msgspec
import msgspec.inspect as mi
from litestar.testing import TestClient

from rfr.entrypoints.http import resources
from rfr.entrypoints.http.app import create_app
from rfr.entrypoints.http.context import context_of
from rfr.infrastructure.settings import Settings


def request_bodies() -> list[type[msgspec.Struct]]:
    found = []
    for info in pkgutil.iter_modules(resources.__path__):
        module = importlib.import_module(f"{resources.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, msgspec.Struct)
                and value.__module__ == module.__name__
                and value.__struct_config__.forbid_unknown_fields
            ):
                found.append(value)
    return found


def unbounded(t: mi.Type, where: str, seen: set[type]) -> list[str]:
    if isinstance(t, mi.StructType):
        if t.cls in seen:
            return []
        seen.add(t.cls)
        return [p for f in t.fields for p in unbounded(f.type, f"{t.cls.__name__}.{f.name}", seen)]
    if isinstance(t, mi.UnionType):
        return [p for member in t.types for p in unbounded(member, where, seen)]
    if isinstance(t, mi.StrType):
        return [] if t.max_length is not None else [where]
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        mine = [] if t.max_length is not None else [f"{where} (list)"]
        return mine + unbounded(t.item_type, f"{where}[]", seen)
    if isinstance(t, mi.DictType):
        return [] if t.max_length is not None else [f"{where} (dict)"]
    return []  # numbers, booleans, enums, dates, UUIDs: fixed size


def test_every_string_and_list_of_a_request_body_has_a_limit():
    bodies = request_bodies()
    assert len(bodies) >= 40
    missing = [p for body in bodies for p in unbounded(mi.type_info(body), body.__name__, set())]
    assert missing == [], missing


def test_a_too_long_list_is_refused_naming_the_field_and_nothing_is_stored(tmp_path: Path):
    app = create_app(Settings(tmp_path, persistence="memory"))
    store = context_of(app).app
    with TestClient(app) as client:
        token = (tmp_path / "bootstrap-admin.token").read_text().strip()
        bearer = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {token}"})
        client.headers["Authorization"] = f"Bearer {bearer.json()['secret']}"
        before = len(store.recorder.select_notifications(start=1, limit=100_000))
        for body, field in [
            (
                {"user_id": "teams", "roles": ["rfr_user"], "teams": [f"t{n}" for n in range(501)]},
                "teams",
            ),
            ({"user_id": "many-roles", "roles": ["rfr_user"] * 21}, "roles"),
            ({"user_id": "x" * 201, "roles": ["rfr_user"]}, "user_id"),
        ]:
            response = client.post("/users", json=body)
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["field"] == field
        assert len(store.recorder.select_notifications(start=1, limit=100_000)) == before
