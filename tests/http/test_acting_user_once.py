"""A request establishes who acts once: the gate reads the caller's ``User`` and every use case
of the request reuses it (A-05), instead of rebuilding the aggregate three or four times.

Counted, not timed: the number of times the application reads the caller's User stream
while serving one request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from rfr.domain.user import User
from rfr.entrypoints.http.app import create_app
from rfr.entrypoints.http.context import context_of
from rfr.infrastructure.settings import Settings


@pytest.fixture
def admin_client(tmp_path) -> Iterator[tuple[TestClient, Counter]]:
    app = create_app(Settings(tmp_path, persistence="memory"))
    application = context_of(app).app
    reads: Counter = Counter()
    original = application.get

    def counting_get(aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        reads[aggregate_id] += 1
        return original(aggregate_id, *args, **kwargs)

    application.get = counting_get  # type: ignore[method-assign]
    with TestClient(app) as client:
        token = (tmp_path / "bootstrap-admin.token").read_text().strip()
        bearer = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {token}"})
        client.headers["Authorization"] = f"Bearer {bearer.json()['secret']}"
        yield client, reads


def test_A05_one_read_of_the_callers_user_per_request(admin_client):
    """A-05: one read of the callers user per request."""
    client, reads = admin_client
    admin = User.id_for("admin")
    for method, path, body in [
        ("GET", "/me", None),  # a query of the caller's own record
        ("GET", "/policy/settings", None),  # a query guarded by role
        ("POST", "/users", {"user_id": "newcomer", "roles": ["rfr_user"]}),  # a command
    ]:
        reads.clear()
        response = client.request(method, path, json=body)
        assert response.status_code in (200, 201), response.text
        assert reads[admin] == 1, f"{method} {path} read the caller's User {reads[admin]} times"


def test_A05_a_request_does_not_see_another_requests_user(admin_client):
    """A-05: The acting user is scoped to its request: a second caller is read afresh, as themselves."""
    client, _ = admin_client
    client.post("/users", json={"user_id": "other-admin", "roles": ["administrator"]})
    client.put("/users/other-admin/training", json={"trained": True, "reason": "done"})
    issued = client.post("/users/other-admin/tokens", json={"kind": "bearer"})
    assert issued.status_code == 201, issued.text
    issued = issued.json()["secret"]
    me = client.get("/me", headers={"Authorization": f"Bearer {issued}"})
    assert me.status_code == 200 and me.json()["user_id"] == "other-admin"
    assert client.get("/me").json()["user_id"] == "admin"
