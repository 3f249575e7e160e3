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

Tests share one store, so every user id is unique (``unique_id``); never assume an empty store.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs
import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0
# Small on purpose: the 413 test sends a little more than this.
TEST_MAX_REQUEST_BYTES = 64 * 1024


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@attrs.define
class ApiUser:
    user_id: str
    token: str
    client: httpx.Client


@attrs.define
class LiveServer:
    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
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
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise AssertionError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    return response


def start_server(data_dir: Path, *, env: Mapping[str, str] | None = None) -> LiveServer:
    """Starts `python -m rfr.entrypoints.cli serve` on a free loopback port and waits for health."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    process_env = {
        **os.environ,
        "RFR_DATA_DIR": str(data_dir),
        "RFR_PERSISTENCE": "sqlite",
        "RFR_MAX_REQUEST_BYTES": str(TEST_MAX_REQUEST_BYTES),
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rfr.entrypoints.cli",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=REPO_ROOT,
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"rfr serve exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2.0).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"rfr serve did not become healthy:\n{log_path.read_text()}")
        time.sleep(0.1)
    token_file = data_dir / "bootstrap-admin.token"
    server = LiveServer(base_url, data_dir, process, log_path, token_file.read_text().strip())
    return server


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
