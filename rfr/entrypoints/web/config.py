"""Settings of the web client, read from the environment like the rest.

| variable | default | meaning |
|---|---|---|
| RFR_WEB_SESSION_IDLE_MINUTES | 30 | a session unused this long ends (signed out) |
| RFR_WEB_SESSION_MAX_HOURS | 12 | a session ends this long after sign-in, however much used (a shift) |
| RFR_WEB_COOKIE_SECURE | auto | ``auto``: the cookie is ``Secure`` when the request came over TLS; |
| | | ``always``: always (behind a proxy that ends TLS and does not pass the scheme on) |

A session never outlives the bearer token it was opened with: the token is checked on every request
(expired, revoked, or its user disabled: signed out).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

import attrs

from rfr.infrastructure.settings import positive_int_from_env

COOKIE_SECURE_CHOICES = ("auto", "always")


@attrs.frozen
class WebSettings:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    cookie_secure: str = "auto"

    def __attrs_post_init__(self) -> None:
        if self.cookie_secure not in COOKIE_SECURE_CHOICES:
            raise ValueError(f"RFR_WEB_COOKIE_SECURE must be one of {', '.join(COOKIE_SECURE_CHOICES)}")
        if self.idle <= timedelta(0) or self.absolute <= timedelta(0):
            raise ValueError("session limits must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebSettings:
        env = os.environ if environ is None else environ
        return cls(
            idle=timedelta(minutes=positive_int_from_env(env, "RFR_WEB_SESSION_IDLE_MINUTES", 30)),
            absolute=timedelta(hours=positive_int_from_env(env, "RFR_WEB_SESSION_MAX_HOURS", 12)),
            cookie_secure=env.get("RFR_WEB_COOKIE_SECURE", "auto").strip().lower() or "auto",
        )

    def secure_cookie(self, scheme: str) -> bool:
        """Whether the cookie is ``Secure`` for a request that came over ``scheme``."""
        return self.cookie_secure == "always" or scheme in ("https", "wss")
