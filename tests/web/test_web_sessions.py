"""The session store on its own (``rfr.entrypoints.web.sessions``): what it keeps, how a session
ends, and that several processes share it through its file (ADR 0023)."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from rfr.entrypoints.web.config import WebSettings
from rfr.entrypoints.web.sessions import SESSIONS_FILE, SessionKeys, SessionStore

TOKEN = "rfr1_" + "T" * 43


@attrs.define
class Clock:
    current: datetime = attrs.field(factory=lambda: datetime(2026, 11, 1, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current


def _store(tmp_path: Path, clock: Clock, *, idle: int = 30, absolute: int = 12 * 60) -> SessionStore:
    return SessionStore.in_data_dir(
        tmp_path, now=clock.now, idle=timedelta(minutes=idle), absolute=timedelta(minutes=absolute)
    )


def test_the_table_keeps_no_secret_and_only_the_cookie_opens_the_session(tmp_path: Path):
    clock = Clock()
    store = _store(tmp_path, clock)
    begun = store.begin("analyst-1", TOKEN)
    opened = store.open(begun.cookie).session
    assert opened is not None
    assert opened.user_id == "analyst-1" and opened.bearer_token == TOKEN
    assert opened.csrf_token == begun.keys.csrf_token
    # Neither the token, the cookie nor the CSRF token is anywhere in the file.
    path = tmp_path / SESSIONS_FILE
    stored = b"".join(p.read_bytes() for p in tmp_path.glob(f"{SESSIONS_FILE}*"))
    for secret in (TOKEN, begun.cookie, begun.keys.csrf_token):
        assert secret.encode() not in stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Nothing in the reprs either (they reach logs when something fails).
    assert TOKEN not in repr(opened) and begun.cookie not in repr(begun)
    # Another id, a malformed one, none: nothing.
    other = store.begin("analyst-2", TOKEN)
    assert store.open(other.cookie).session.user_id == "analyst-2"
    for cookie in (None, "", "x", begun.cookie[:-1], "A" * 43, begun.cookie + "=="):
        assert store.open(cookie).session is None, cookie
    assert begun.keys.csrf_token != other.keys.csrf_token


def test_a_sealed_token_opens_only_in_its_own_row(tmp_path: Path):
    clock = Clock()
    store = _store(tmp_path, clock)
    first, second = store.begin("a", TOKEN), store.begin("b", "rfr1_" + "U" * 43)
    db = sqlite3.connect(tmp_path / SESSIONS_FILE)
    with db:
        sealed = db.execute("SELECT sealed_token FROM web_sessions WHERE row_key = ?", (first.keys.row_key,))
        db.execute(
            "UPDATE web_sessions SET sealed_token = ? WHERE row_key = ?",
            (sealed.fetchone()[0], second.keys.row_key),
        )
    db.close()
    assert store.open(second.cookie).session is None
    assert store.open(first.cookie).session is not None


def test_a_session_ends_when_idle_at_its_absolute_limit_and_when_signed_out(tmp_path: Path):
    clock = Clock()
    store = _store(tmp_path, clock, idle=30, absolute=120)
    idle = store.begin("u", TOKEN)
    clock.current += timedelta(minutes=30)
    assert store.open(idle.cookie).session is not None  # at the limit, not past it
    clock.current += timedelta(minutes=30, seconds=1)
    lookup = store.open(idle.cookie)
    assert lookup.session is None and lookup.expired
    assert not store.open(idle.cookie).expired  # deleted: now simply unknown

    kept_busy = store.begin("u", TOKEN)
    for _ in range(4):
        clock.current += timedelta(minutes=29)
        assert store.open(kept_busy.cookie).session is not None
    clock.current += timedelta(minutes=5)  # 121 minutes after signing in
    assert store.open(kept_busy.cookie).expired

    signed_out = store.begin("u", TOKEN)
    store.end(signed_out.keys)
    assert store.open(signed_out.cookie).session is None
    # Sessions past a limit are swept whenever one begins.
    store.begin("stale", TOKEN)
    clock.current += timedelta(hours=1)
    store.begin("fresh", TOKEN)
    assert store.count() == 1


def test_processes_sharing_the_data_folder_share_the_sessions(tmp_path: Path):
    """Each API process behind the port (rfr serve --workers N) has its own store object on the one file."""
    clock = Clock()
    one, two = _store(tmp_path, clock), _store(tmp_path, clock)
    begun = one.begin("u", TOKEN)
    assert two.open(begun.cookie).session is not None
    two.end(begun.keys)
    assert one.open(begun.cookie).session is None


def test_session_keys_need_32_random_bytes():
    assert SessionKeys.of("A" * 43) is not None
    assert SessionKeys.of("A" * 42) is None
    assert SessionKeys.of("!" * 43) is None
    # The same 32 bytes written another way (padding, spare bits set) are not the same cookie.
    assert SessionKeys.of("A" * 43 + "=") is None
    assert SessionKeys.of("A" * 42 + "B") is None


def test_web_settings_from_the_environment():
    assert WebSettings.from_env({}) == WebSettings(timedelta(minutes=30), timedelta(hours=12), "auto")
    custom = WebSettings.from_env(
        {
            "RFR_WEB_SESSION_IDLE_MINUTES": "15",
            "RFR_WEB_SESSION_MAX_HOURS": "8",
            "RFR_WEB_COOKIE_SECURE": "always",
        }
    )
    assert custom == WebSettings(timedelta(minutes=15), timedelta(hours=8), "always")
    assert custom.secure_cookie("http") and WebSettings().secure_cookie("https")
    assert not WebSettings().secure_cookie("http")
    with pytest.raises(ValueError, match="RFR_WEB_COOKIE_SECURE"):
        WebSettings.from_env({"RFR_WEB_COOKIE_SECURE": "sometimes"})
    with pytest.raises(ValueError, match="RFR_WEB_SESSION_IDLE_MINUTES"):
        WebSettings.from_env({"RFR_WEB_SESSION_IDLE_MINUTES": "0"})
