"""Web sessions: an opaque random id in the cookie, the bearer token sealed in a small table.

The cookie holds 32 random bytes (``secrets``), base64url. Everything the server keeps is derived
from them with HMAC-SHA-256 under fixed labels, so the table alone is worth nothing:

- the row's key is ``HMAC(id, "row")``: the cookie's value is stored nowhere;
- the bearer token the user signed in with is sealed with AES-256-GCM under ``HMAC(id, "token-key")``,
  bound to the row's key: only a request carrying the cookie can unseal it;
- the session's CSRF token is ``HMAC(id, "csrf")``: nothing to store, the same for the whole session.

The table is a SQLite file in the data folder (``$RFR_DATA_DIR/web-sessions.sqlite3``, mode 0600),
so every API process behind the port (``rfr serve --workers N``, ADR 0016) shares the sessions, as
they share the biometric store's key table. A row holds the user id, the sealed token and two times:
when the session began (the absolute limit counts from it) and when it was last used (the idle
limit). A session past either limit is deleted when next presented; expired rows are also swept
whenever a session begins. Signing out deletes the row: the cookie then opens nothing.

No secret (cookie, token, CSRF token) is ever logged, put in an event or in an error message.
See docs/adr/0023-web-client-sessions.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SESSIONS_FILE = "web-sessions.sqlite3"
ID_BYTES = 32
NONCE_BYTES = 12
_LABEL = b"rfr-web-session/1:"
# Last use is written at most this often (and at least ten times per idle period), so reading
# pages does not write on every request.
TOUCH_INTERVAL = timedelta(seconds=60)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS web_sessions (
    row_key TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    sealed_token BLOB NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL
)
"""


def _derive(raw: bytes, purpose: str) -> bytes:
    return hmac.new(raw, _LABEL + purpose.encode("ascii"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes | None:
    if not text or len(text) > 64:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


@attrs.frozen
class SessionKeys:
    """What a cookie's value stands for: its row, the key of its token and its CSRF token."""

    row_key: str
    token_key: bytes = attrs.field(repr=False)
    csrf_token: str = attrs.field(repr=False)

    @classmethod
    def of(cls, cookie: str) -> SessionKeys | None:
        """The keys of ``cookie``, or None unless it is exactly what ``begin`` hands out (32 bytes in
        unpadded base64url, written the one canonical way: one session, one cookie value)."""
        raw = _unb64(cookie)
        if raw is None or len(raw) != ID_BYTES or _b64(raw) != cookie:
            return None
        return cls(
            row_key=_derive(raw, "row").hex(),
            token_key=_derive(raw, "token-key"),
            csrf_token=_b64(_derive(raw, "csrf")),
        )


@attrs.frozen
class Session:
    """A live session, as presented by one request."""

    keys: SessionKeys
    user_id: str
    bearer_token: str = attrs.field(repr=False)
    created_at: datetime
    last_seen: datetime

    @property
    def csrf_token(self) -> str:
        return self.keys.csrf_token


@attrs.frozen
class Lookup:
    """What a presented cookie opened: a live ``session``, or none; ``expired`` when it had been a
    session that is now past its idle or absolute limit (and has just been deleted)."""

    session: Session | None
    expired: bool = False


@attrs.frozen
class NewSession:
    """A session just begun: ``cookie`` is the value to set (shown nowhere else)."""

    cookie: str = attrs.field(repr=False)
    keys: SessionKeys


class SessionStore:
    """The sessions of one deployment (see the module docstring). Thread-safe: one SQLite
    connection per operation."""

    def __init__(
        self, path: Path, *, now: Callable[[], datetime], idle: timedelta, absolute: timedelta
    ) -> None:
        self.path = Path(path)
        self._now = now
        self.idle = idle
        self.absolute = absolute
        self._touch = min(TOUCH_INTERVAL, idle / 10)
        self._ready = False

    @classmethod
    def in_data_dir(
        cls, data_dir: Path, *, now: Callable[[], datetime], idle: timedelta, absolute: timedelta
    ) -> SessionStore:
        return cls(Path(data_dir) / SESSIONS_FILE, now=now, idle=idle, absolute=absolute)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self._create()
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Created 0600 from the start; SQLite gives its journal files the same mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
        finally:
            conn.close()
        self._ready = True

    def _time(self) -> float:
        return self._now().timestamp()

    def begin(self, user_id: str, bearer_token: str) -> NewSession:
        """A new session for ``user_id`` holding ``bearer_token``; expired sessions are swept."""
        cookie = _b64(secrets.token_bytes(ID_BYTES))
        keys = SessionKeys.of(cookie)
        assert keys is not None
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = nonce + AESGCM(keys.token_key).encrypt(
            nonce, bearer_token.encode("utf-8"), keys.row_key.encode("ascii")
        )
        now = self._time()
        with self._connection() as conn:
            conn.execute(
                "DELETE FROM web_sessions WHERE last_seen < ? OR created_at < ?",
                (now - self.idle.total_seconds(), now - self.absolute.total_seconds()),
            )
            conn.execute(
                "INSERT INTO web_sessions (row_key, user_id, sealed_token, created_at, last_seen) "
                "VALUES (?, ?, ?, ?, ?)",
                (keys.row_key, user_id, sealed, now, now),
            )
        return NewSession(cookie, keys)

    def open(self, cookie: str | None) -> Lookup:
        """The live session ``cookie`` names, its last use moved to now (see ``Lookup``)."""
        keys = SessionKeys.of(cookie) if cookie else None
        if keys is None:
            return Lookup(None)
        now = self._time()
        with self._connection() as conn:
            row = conn.execute(
                "SELECT user_id, sealed_token, created_at, last_seen FROM web_sessions WHERE row_key = ?",
                (keys.row_key,),
            ).fetchone()
            if row is None:
                return Lookup(None)
            user_id, sealed, created_at, last_seen = row
            if (
                now - last_seen > self.idle.total_seconds()
                or now - created_at > self.absolute.total_seconds()
            ):
                conn.execute("DELETE FROM web_sessions WHERE row_key = ?", (keys.row_key,))
                return Lookup(None, expired=True)
            try:
                nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
                token = AESGCM(keys.token_key).decrypt(nonce, body, keys.row_key.encode("ascii"))
            except (InvalidTag, ValueError):
                conn.execute("DELETE FROM web_sessions WHERE row_key = ?", (keys.row_key,))
                return Lookup(None)
            if now - last_seen >= self._touch.total_seconds():
                conn.execute("UPDATE web_sessions SET last_seen = ? WHERE row_key = ?", (now, keys.row_key))
                last_seen = now
        return Lookup(
            Session(
                keys,
                user_id,
                token.decode("utf-8"),
                datetime.fromtimestamp(created_at, UTC),
                datetime.fromtimestamp(last_seen, UTC),
            )
        )

    def end(self, keys: SessionKeys) -> None:
        """Signs the session out: its row is deleted, so its cookie opens nothing any more."""
        with self._connection() as conn:
            conn.execute("DELETE FROM web_sessions WHERE row_key = ?", (keys.row_key,))

    def count(self) -> int:
        """How many sessions are stored (live or not yet swept)."""
        with self._connection() as conn:
            return int(conn.execute("SELECT count(*) FROM web_sessions").fetchone()[0])
