"""Errors on pages: the same decisions as the API's problems, shown as pages.

Each of the API's exception handlers (``rfr.entrypoints.http.problems``) is reused: it decides
the status and the problem (type, title, detail, rule ids, whether the refusal was recorded,
an incident id for a 500), and the page shows that problem. So a refusal reads the same, and
has the same status, on a page and over the API. Three cases differ:

- no live session (``AuthenticationFailed`` from the guard, ``SignInRequired``): a redirect (303)
  to the sign-in page, back to this page afterwards; a session whose token has been revoked or
  has expired is ended;
- ``CsrfRefused``: 403, saying that nothing was done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from rfr.application.services.access import AuthenticationFailed
from rfr.entrypoints.http.problems import EXCEPTION_HANDLERS
from rfr.entrypoints.web.security import (
    SECURITY_HEADERS,
    SESSION_COOKIE,
    SIGN_IN_PATH,
    WEB_PATH,
    CsrfRefused,
    SignInRequired,
    cleared_cookie,
    web_state,
)

log = logging.getLogger("rfr.web")

# Headers of a problem worth keeping on its page.
_KEPT_HEADERS = ("Retry-After",)


def sign_in_url(next_path: str | None, why: str | None = None) -> str:
    query = {}
    if next_path and next_path != SIGN_IN_PATH:
        query["next"] = next_path
    if why:
        query["why"] = why
    return SIGN_IN_PATH + (f"?{urlencode(query)}" if query else "")


def _sign_in_again(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    from rfr.entrypoints.web.client import web_client_of

    state = web_state(request)
    why = "expired" if state.expired else None
    if state.session is not None and isinstance(exc, AuthenticationFailed):
        # The guard refused the session's own token: revoked, expired or its user unknown.
        web_client_of(request.app).sessions.end(state.session.keys)
        why = "token"
    next_path = request.url.path if request.method == "GET" else None
    if next_path and request.url.query:
        next_path += f"?{request.url.query}"
    cookies = [cleared_cookie(request, SESSION_COOKIE, WEB_PATH)] if state.had_cookie else []
    return Redirect(
        path=sign_in_url(next_path, why), status_code=303, cookies=cookies, headers=SECURITY_HEADERS
    )


def _csrf_refused(request: Request[Any, Any, Any], exc: CsrfRefused) -> Response[Any]:
    from rfr.entrypoints.web.layout import page

    return page(
        request,
        "error.html",
        title="This form was not accepted",
        status=403,
        problem={
            "title": "This form was not accepted",
            "status": 403,
            "detail": (
                "Its security token was missing or out of date, so nothing was done and nothing was "
                "recorded. Go back, reload the page and send the form again."
            ),
        },
    )


def _as_page(problem_handler: Callable[[Request[Any, Any, Any], Any], Response[Any]]) -> Callable[..., Any]:
    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        from rfr.entrypoints.web.layout import page

        answer = problem_handler(request, exc)
        problem = answer.content if isinstance(answer.content, dict) else {}
        headers = {k: v for k, v in (answer.headers or {}).items() if k in _KEPT_HEADERS}
        try:
            return page(
                request,
                "error.html",
                title=str(problem.get("title") or "Error"),
                status=answer.status_code,
                headers=headers,
                problem=problem,
            )
        except Exception:  # the error page itself failed: a plain answer, never a second traceback page
            log.exception("the error page could not be drawn")
            return Response(
                content=str(problem.get("title") or "Error"),
                status_code=answer.status_code,
                media_type="text/plain",
                headers=SECURITY_HEADERS,
            )

    return handler


WEB_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    **{key: _as_page(handler) for key, handler in EXCEPTION_HANDLERS.items()},
    AuthenticationFailed: _sign_in_again,
    SignInRequired: _sign_in_again,
    CsrfRefused: _csrf_refused,
}
