"""A real `rfr serve` process on its own loopback port over its own data folder.

The demo starts one when no server is named; the HTTP tests (``tests/http/http_harness.py``)
start theirs through ``start`` too, so there is one launcher to keep right.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import attrs
import httpx

from rfr.entrypoints.http.config import BOOTSTRAP_TOKEN_FILE

STARTUP_TIMEOUT_S = 90.0


class ServerFailed(RuntimeError):
    """The server did not start; the message quotes the end of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The variables that name a server's event store (``Settings.from_env``), for tools that open
# the same store beside it, such as `rfr audit verify`.
STORE_VARIABLES = ("RFR_DATA_DIR", "RFR_PERSISTENCE", "RFR_POSTGRES_DSN", "RFR_POSTGRES_SCHEMA")


@attrs.define
class LocalServer:
    base_url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    # The whole environment the process was started with (not shown: a DSN may hold a password).
    env: Mapping[str, str] = attrs.field(factory=dict, kw_only=True, repr=False)

    @property
    def store_env(self) -> dict[str, str]:
        """The variables of ``env`` that name its event store (sqlite file or PostgreSQL schema)."""
        return {name: self.env[name] for name in STORE_VARIABLES if name in self.env}

    @property
    def bootstrap_token_file(self) -> Path:
        return self.data_dir / BOOTSTRAP_TOKEN_FILE

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def start(data_dir: Path, log_path: Path, *, env: Mapping[str, str] | None = None) -> LocalServer:
    """Starts ``rfr serve`` over ``data_dir`` (sqlite) and waits until ``/health`` answers.

    ``env`` adds to (or overrides) the server's environment, e.g. a smaller request limit, or
    RFR_PERSISTENCE=postgres with RFR_POSTGRES_DSN and RFR_POSTGRES_SCHEMA for another store.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process_env = {**os.environ, "RFR_DATA_DIR": str(data_dir), "RFR_PERSISTENCE": "sqlite", **(env or {})}
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
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LocalServer(f"http://127.0.0.1:{port}", data_dir, log_path, process, env=process_env)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise ServerFailed(f"rfr serve exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=2.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise ServerFailed(
                f"rfr serve did not answer within {STARTUP_TIMEOUT_S:.0f} s:\n{server.log_tail()}"
            )
        time.sleep(0.2)
