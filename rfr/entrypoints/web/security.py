"""What stands in front of every page under ``/app/``: the session, and the CSRF check of every form.

``session_middleware`` runs on each request to a page (a route of the web router), before the
access guard:

1. An ``Authorization`` header sent to a page is dropped: pages authenticate by session only, so
   every credential they act on is one a CSRF token protects.
2. The session cookie is opened (``sessions.SessionStore``). A live session's bearer token is put
   in the request as ``Authorization: Bearer ...``, so the one access guard of the API
   (``rfr.entrypoints.http.access_control``) authenticates it and checks the route's roles exactly
   as over the API, recording its refusals (A-01, A-05). What the request opened is kept in
   ``scope["state"]`` (``web_state``).
3. Every unsafe request (POST...) must carry the form field ``csrf_token``, equal (compared in
   constant time) to the session's CSRF token, or, on the sign-in form, to the sign-in cookie set
   with that form. Otherwise ``CsrfRefused`` (403) is raised before the guard or the handler runs,
   so nothing is done or recorded. An unsafe request with no live session is sent to sign in
   (``SignInRequired``), equally before anything runs.

Reading pages (GET) changes no governed state. The audit pages' queries are recorded (A-03), as
over the API; the session cookie is ``SameSite=Strict``, so another site cannot make a signed-in
browser run them.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import attrs
from anyio import to_thread
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Empty, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from rfr.entrypoints.web.sessions import Session

log = logging.getLogger("rfr.web")

WEB_PATH = "/app"
SIGN_IN_PATH = f"{WEB_PATH}/sign-in"
SIGN_OUT_PATH = f"{WEB_PATH}/sign-out"
STATIC_PATH = f"{WEB_PATH}/static"
SESSION_COOKIE = "rfr_session"
# The sign-in form's own CSRF secret (no session exists yet): a random value in this cookie and in
# the form, which must match.
SIGN_IN_COOKIE = "rfr_sign_in"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_STATE_KEY = "rfr_web"

# Sent with every page: nothing is loaded from anywhere but this server, no page can be framed,
# forms post only here, and pages (which show personal data) are not cached.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


class CsrfRefused(HTTPException):
    """A form posted without its CSRF token, or with another one: refused before anything ran."""

    status_code = 403


class SignInRequired(HTTPException):
    """An unsafe request with no live session: sent to sign in before anything ran."""

    status_code = 401


@attrs.define
class WebState:
    """What the session middleware found for this request."""

    session: Session | None = None
    # The cookie named a session that is now past its idle or absolute limit (and was deleted).
    expired: bool = False
    # The session cookie was sent (live or not): a response that ends the session clears it.
    had_cookie: bool = False


def web_state(connection: ASGIConnection[Any, Any, Any, Any]) -> WebState:
    state = connection.scope.get("state", {}).get(_STATE_KEY)
    return state if isinstance(state, WebState) else WebState()


def secure(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    from rfr.entrypoints.web.client import web_client_of

    return web_client_of(connection.app).settings.secure_cookie(connection.scope.get("scheme", "http"))


def session_cookie(connection: ASGIConnection[Any, Any, Any, Any], value: str) -> Cookie:
    """The session cookie: HttpOnly, SameSite=Strict, Secure over TLS (or always, if configured),
    for the pages only, and without an expiry (it ends with the browser; the server ends it sooner)."""
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path=WEB_PATH,
        httponly=True,
        samesite="strict",
        secure=secure(connection),
    )


def cleared_cookie(connection: ASGIConnection[Any, Any, Any, Any], key: str, path: str) -> Cookie:
    return Cookie(
        key=key, value="", path=path, max_age=0, httponly=True, samesite="strict", secure=secure(connection)
    )


def _same(sent: Any, expected: str | None) -> bool:
    if not expected or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode("ascii"))


def _with_security_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in SECURITY_HEADERS.items()
                if name.lower().encode("latin-1") not in present
            ]
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return sending


def session_middleware(app: ASGIApp) -> ASGIApp:
    """The web router's middleware; see the module docstring."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        from rfr.entrypoints.web.client import web_client_of

        client = web_client_of(scope["app"])
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        cookie = connection.cookies.get(SESSION_COOKIE)
        lookup = await to_thread.run_sync(client.sessions.open, cookie)
        state = WebState(lookup.session, lookup.expired, had_cookie=cookie is not None)
        scope.setdefault("state", {})[_STATE_KEY] = state
        headers = [(name, value) for name, value in scope["headers"] if name != b"authorization"]
        if lookup.session is not None:
            headers.append((b"authorization", f"Bearer {lookup.session.bearer_token}".encode("latin-1")))
        scope["headers"] = headers
        # Litestar caches the parsed headers per request: read them again from the new list.
        ScopeState.from_scope(scope).headers = Empty
        send = _with_security_headers(send)
        if scope["method"] not in SAFE_METHODS:
            _check_form(scope, state, await Request(scope, receive).form(), connection)
        await app(scope, receive, send)

    return middleware


def _check_form(
    scope: Scope, state: WebState, form: Any, connection: ASGIConnection[Any, Any, Any, Any]
) -> None:
    sent = form.get(CSRF_FIELD)
    path = scope.get("path", "")
    if path == SIGN_IN_PATH:
        expected = connection.cookies.get(SIGN_IN_COOKIE)
    elif state.session is not None:
        expected = state.session.csrf_token
    else:
        raise SignInRequired("sign in to continue")
    if not _same(sent, expected):
        who = state.session.user_id if state.session is not None else "(not signed in)"
        # Never the tokens themselves: only that they did not match, where and for whom.
        log.warning(
            "CSRF token %s on %s %s for %s", "missing" if not sent else "wrong", scope["method"], path, who
        )
        raise CsrfRefused("this form's security token is missing or out of date")
