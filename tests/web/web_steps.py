"""Steps the browser tests repeat, and what they read beside the running server (its session
table and its event store, read-only except where a test ages a session on purpose)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from http_harness import LiveServer
from workflow_builders import sqlite_events_table, stored_rows

from rfr.entrypoints.web.sessions import SESSIONS_FILE
from rfr.infrastructure.settings import Settings

SESSION_COOKIE = "rfr_session"


def sign_in(page: Any, token: str, *, next_path: str = "/app/") -> None:
    """Signs in through the form, as a person would, and waits for the page it leads to."""
    page.goto(f"/app/sign-in?next={next_path}")
    page.get_by_label("Your bearer token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/app/sign-in" not in url)
    page.get_by_test_id("signed-in-as").wait_for()


def session_cookie(page: Any) -> dict[str, Any] | None:
    for cookie in page.context.cookies():
        if cookie["name"] == SESSION_COOKIE:
            return cookie
    return None


def sessions_file(server: LiveServer) -> Path:
    return server.data_dir / SESSIONS_FILE


def session_rows(server: LiveServer, user_id: str) -> int:
    path = sessions_file(server)
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(
            db.execute("SELECT count(*) FROM web_sessions WHERE user_id = ?", (user_id,)).fetchone()[0]
        )
    finally:
        db.close()


def age_sessions(server: LiveServer, user_id: str, *, seconds: float) -> None:
    """Moves the last use of ``user_id``'s sessions ``seconds`` into the past, as if they had been
    idle that long (the server keeps POSIX times)."""
    db = sqlite3.connect(sessions_file(server), timeout=30)
    try:
        with db:
            db.execute(
                "UPDATE web_sessions SET last_seen = last_seen - ?, created_at = created_at - ? "
                "WHERE user_id = ?",
                (seconds, seconds, user_id),
            )
    finally:
        db.close()


def event_count(server: LiveServer) -> int:
    return len(stored_rows(server))


def refusals_of(server: LiveServer, user_id: str) -> list[str]:
    """Ids of the ``RefusedAttempt`` records naming ``user_id``, oldest first."""
    db = sqlite3.connect(f"file:{Settings.from_env(server.store_env).event_store_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            f"SELECT originator_id, state FROM {sqlite_events_table(db)} WHERE topic = ? ORDER BY rowid",
            ("rfr.domain.refused_attempt:RefusedAttempt.AttemptRefused",),
        ).fetchall()
    finally:
        db.close()
    return [str(oid) for oid, state in rows if f'"{user_id}"'.encode() in bytes(state)]


def focused(page: Any) -> str:
    """What has the keyboard focus: ``tag#id`` or ``tag:text``."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            if (!el || el === document.body) return "body";
            const tag = el.tagName.toLowerCase();
            return el.id ? `${tag}#${el.id}` : `${tag}:${el.textContent.trim()}`;
        }"""
    )
