"""Signing in with a bearer token, and out; a session begins and ends here (see ``sessions``)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import QueryParameter

from rfr.application.errors import AccessDenied
from rfr.application.services.access import AuthenticationFailed
from rfr.domain.access_token import TokenKind
from rfr.entrypoints.http.access_control import EVERY_ROLE, public
from rfr.entrypoints.http.context import context_of
from rfr.entrypoints.web.client import web_client_of
from rfr.entrypoints.web.forms import FormData, home_path, safe_next
from rfr.entrypoints.web.layout import page, see_other
from rfr.entrypoints.web.security import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_PATH,
    WEB_PATH,
    cleared_cookie,
    session_cookie,
    web_state,
)

NOTICES = {
    "expired": "Your session ended because it was idle or too long. Sign in again to go on.",
    "token": "The token your session used is no longer valid (revoked or expired). "
    "Sign in with a current one.",
    "signed-out": "You are signed out.",
}


def _sign_in_cookie(request: Request[Any, Any, Any], value: str) -> Cookie:
    from rfr.entrypoints.web.security import secure

    return Cookie(
        key=SIGN_IN_COOKIE,
        value=value,
        path=SIGN_IN_PATH,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def _form(
    request: Request[Any, Any, Any],
    *,
    next_path: str | None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response[Any]:
    # The form's CSRF secret: the one this browser already holds, else a new one set with the page.
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    return page(
        request,
        "sign_in.html",
        title="Sign in",
        status=status,
        csrf_token=token,
        next_path=next_path or "",
        error=error,
        notice=notice,
        cookies=[_sign_in_cookie(request, token)],
    )


@get("/sign-in", summary="Sign-in page", sync_to_thread=False, **public())
def sign_in_page(
    request: Request[Any, Any, Any],
    next_path: Annotated[str, QueryParameter(name="next", max_length=2000)] = "",
    why: Annotated[str, QueryParameter(max_length=50)] = "",
) -> Response[Any]:
    """The sign-in form: a bearer token, exchanged for a session."""
    if web_state(request).session is not None:
        return see_other(safe_next(next_path) or home_path())
    return _form(request, next_path=safe_next(next_path), notice=NOTICES.get(why))


@post("/sign-in", summary="Sign in", sync_to_thread=True, status_code=303, **public())
def sign_in(request: Request[Any, Any, Any], data: FormData) -> Response[Any]:
    """Checks the token as the API does (and records a disabled user's refusal), then begins a session."""
    token = str(data.get("token", "")).strip()
    next_path = safe_next(str(data.get("next", "")))
    if not token:
        return _form(request, next_path=next_path, error="Enter your bearer token.", status=400)
    access = context_of(request.app).services.access()
    try:
        principal = access.authenticate(token)
    except AuthenticationFailed as e:
        return _form(request, next_path=next_path, error=f"This token was not accepted: {e}.", status=401)
    if principal.token_kind != TokenKind.BEARER.value:
        return _form(
            request,
            next_path=next_path,
            error="This is a one-time token. Exchange it for a bearer token first (POST /tokens/exchange), "
            "then sign in with that.",
            status=401,
        )
    try:
        # The gate every route passes: a disabled user is refused, and the refusal recorded.
        access.admit(principal, f"POST {SIGN_IN_PATH}", EVERY_ROLE)
    except AccessDenied as e:
        return _form(request, next_path=next_path, error=f"Signing in was refused: {e.reason}.", status=403)
    sessions = web_client_of(request.app).sessions
    previous = web_state(request).session
    if previous is not None:
        sessions.end(previous.keys)  # a new session id at every sign-in: none is ever reused
    begun = sessions.begin(principal.user_id, token)
    return see_other(
        next_path or home_path(),
        cookies=[
            session_cookie(request, begun.cookie),
            cleared_cookie(request, SIGN_IN_COOKIE, SIGN_IN_PATH),
        ],
    )


# Public, so that a user whose token was revoked, or who was disabled, can still end their session;
# the session middleware has checked the form's CSRF token against the session before this runs.
@post("/sign-out", summary="Sign out", sync_to_thread=True, status_code=303, **public())
def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    """Ends the session on the server (its cookie then opens nothing) and clears the cookie."""
    session = web_state(request).session
    if session is not None:
        web_client_of(request.app).sessions.end(session.keys)
    return see_other(
        f"{SIGN_IN_PATH}?why=signed-out", cookies=[cleared_cookie(request, SESSION_COOKIE, WEB_PATH)]
    )


ROUTES = [sign_in_page, sign_in, sign_out]
