"""Settings of the HTTP API, read from the environment like the rest (``rfr.infrastructure.settings``).

| variable | default | meaning |
|---|---|---|
| RFR_MAX_REQUEST_BYTES | 20971520 (20 MiB) | largest request body accepted; more is refused with 413 |
| RFR_TOKEN_TTL_DAYS | 30 | lifetime of a bearer token when the issuer names none |
| RFR_BOOTSTRAP_ADMIN | admin | user id of the first administrator of an empty store |
| RFR_BOOTSTRAP_TOKEN_TTL_HOURS | 72 | lifetime of the bootstrap administrator's one-time token |
| RFR_METRICS_PORT | (none: off) | live metrics also on 127.0.0.1 at this port, no token (ADR 0024) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

import attrs

from rfr.infrastructure.settings import positive_int_from_env

BOOTSTRAP_TOKEN_FILE = "bootstrap-admin.token"
DEFAULT_MAX_REQUEST_BYTES = 20 * 1024 * 1024


@attrs.frozen
class HttpSettings:
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    token_ttl: timedelta = timedelta(days=30)
    bootstrap_admin: str = "admin"
    bootstrap_token_ttl: timedelta = timedelta(hours=72)
    # A loopback port for the live metrics, without a token; None: only GET /metrics (Operations).
    metrics_port: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpSettings:
        env = os.environ if environ is None else environ
        admin = env.get("RFR_BOOTSTRAP_ADMIN", "admin").strip()
        if not admin:
            raise ValueError("RFR_BOOTSTRAP_ADMIN must not be empty")
        return cls(
            max_request_bytes=positive_int_from_env(env, "RFR_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES),
            token_ttl=timedelta(days=positive_int_from_env(env, "RFR_TOKEN_TTL_DAYS", 30)),
            bootstrap_admin=admin,
            bootstrap_token_ttl=timedelta(
                hours=positive_int_from_env(env, "RFR_BOOTSTRAP_TOKEN_TTL_HOURS", 72)
            ),
            metrics_port=_port(env, "RFR_METRICS_PORT"),
        )


def _port(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a TCP port number, not {raw!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{name} must be a TCP port number between 1 and 65535, not {port}")
    return port
