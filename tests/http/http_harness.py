"""A real `rfr serve` process to test the API against, and helpers to act as users through it.

Reuse from another test folder (``--import-mode=importlib`` puts no folder on sys.path):

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http"))
    from http_harness import LiveServer, start_server

or, inside tests/http, just use the fixtures of ``conftest.py``:

- ``live_server`` (session): one server process on a free loopback port with its own
  RFR_DATA_DIR (sqlite), started once; ``live_server.admin`` is an ``ApiUser`` holding the
  bootstrap administrator's bearer token (already exchanged).
- ``live_server.user(roles, rank=..., teams=...)`` registers a new trained user with a
  unique id through the API and returns an ``ApiUser`` with their own bearer token.
- ``ApiUser.client`` is an ``httpx.Client`` bound to the server with their Authorization.
- ``live_server.anonymous()`` is a client without a token.
- ``live_server.store_env`` names the server's event store (RFR_DATA_DIR, RFR_PERSISTENCE and,
  on PostgreSQL, RFR_POSTGRES_DSN and RFR_POSTGRES_SCHEMA), for tools that open it beside it.

Tests share one store, so every user id is unique (``unique_id``); never assume an empty store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs
import httpx

from rfr.entrypoints.demo.server import LocalServer, start

REPO_ROOT = Path(__file__).resolve().parents[2]
# Small on purpose: the 413 test sends a little more than this.
TEST_MAX_REQUEST_BYTES = 64 * 1024


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@attrs.define
class ApiUser:
    user_id: str
    token: str
    client: httpx.Client


@attrs.define
class LiveServer(LocalServer):
    bootstrap_token: str
    admin: ApiUser | None = None
    _clients: list[httpx.Client] = attrs.field(factory=list)

    def anonymous(self) -> httpx.Client:
        return self._client({})

    def as_token(self, token: str) -> httpx.Client:
        return self._client({"Authorization": f"Bearer {token}"})

    def _client(self, headers: Mapping[str, str]) -> httpx.Client:
        client = httpx.Client(base_url=self.base_url, headers=dict(headers), timeout=30.0)
        self._clients.append(client)
        return client

    def exchange(self, one_time_token: str) -> str:
        """The bearer token bought with a one-time token."""
        response = self.as_token(one_time_token).post("/tokens/exchange", json={})
        response.raise_for_status()
        return response.json()["secret"]

    def user(
        self,
        roles: Iterable[str],
        *,
        rank: str | None = None,
        teams: Iterable[str] = (),
        trained: bool = True,
        prefix: str = "user",
    ) -> ApiUser:
        """Registers a new user through the API (as the administrator) with their own token."""
        assert self.admin is not None
        admin = self.admin.client
        user_id = unique_id(prefix)
        body: dict[str, object] = {"user_id": user_id, "roles": list(roles), "teams": list(teams)}
        if rank is not None:
            body["rank"] = rank
        _ok(admin.post("/users", json=body))
        if trained:
            _ok(admin.put(f"/users/{user_id}/training", json={"trained": True, "reason": "course passed"}))
        one_time = _ok(admin.post(f"/users/{user_id}/tokens", json={"kind": "one_time"})).json()["secret"]
        token = self.exchange(one_time)
        return ApiUser(user_id, token, self.as_token(token))

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        super().stop()


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise AssertionError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    return response


def start_server(data_dir: Path, *, env: Mapping[str, str] | None = None) -> LiveServer:
    """Starts ``rfr serve`` (the demo's launcher) on a free loopback port and waits for health."""
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    local = start(
        data_dir, log_path, env={"RFR_MAX_REQUEST_BYTES": str(TEST_MAX_REQUEST_BYTES), **(env or {})}
    )
    return LiveServer(
        local.base_url,
        local.data_dir,
        local.log_path,
        local.process,
        local.bootstrap_token_file.read_text().strip(),
        env=local.env,
    )


def start_with_admin(data_dir: Path, *, env: Mapping[str, str] | None = None) -> LiveServer:
    """``start_server``, then the bootstrap token exchanged for the administrator's bearer token."""
    server = start_server(data_dir, env=env)
    try:
        token = server.exchange(server.bootstrap_token)
        server.admin = ApiUser("admin", token, server.as_token(token))
    except Exception:
        server.stop()
        raise
    return server
