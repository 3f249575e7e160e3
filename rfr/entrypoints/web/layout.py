"""One layout for every page: ``page(request, template, title=..., **context)``.

Every template extends ``base.html``, which takes from the context this module adds:

- ``title``: the page's title (also the ``<h1>`` unless the template says otherwise);
- ``principal``: who is signed in (or None), ``roles``: their roles as people say them;
- ``nav``: the links their roles admit (``navigation``), ``current`` marked;
- ``csrf_field`` / ``csrf_token``: the hidden field every form that posts must carry
  (``security``); a form is ``{{ csrf_field }}`` plus its own controls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template
from markupsafe import Markup, escape

from rfr.application.services.access import Principal
from rfr.domain.people import Role
from rfr.entrypoints.web.navigation import navigation, role_names
from rfr.entrypoints.web.security import CSRF_FIELD, SECURITY_HEADERS, SIGN_OUT_PATH, WEB_PATH, web_state


def principal_of(request: Request[Any, Any, Any]) -> Principal | None:
    principal = getattr(request.state, "principal", None)
    return principal if isinstance(principal, Principal) else None


def csrf_token_of(request: Request[Any, Any, Any]) -> str:
    session = web_state(request).session
    return session.csrf_token if session is not None else ""


def hidden_csrf(token: str) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(token))


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    title: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    csrf_token: str | None = None,
    cookies: Sequence[Cookie] = (),
    **context: Any,
) -> Template:
    from rfr.entrypoints.web.client import web_client_of

    principal = principal_of(request)
    session = web_state(request).session
    roles = sorted(principal.roles) if principal is not None else []
    token = csrf_token if csrf_token is not None else csrf_token_of(request)
    all_links = web_client_of(request.app).nav_links
    if principal is None and session is not None:
        # Refused at the gate (the principal is set only once admitted): the links open to everyone.
        all_links = [link for link in all_links if link.admits_everyone]
        roles = [role.value for role in Role]
    links = navigation(all_links, roles, request.url.path, WEB_PATH)
    return Template(
        template_name=template,
        context={
            "title": title,
            "principal": principal,
            "signed_in_as": principal.user_id
            if principal is not None
            else (session.user_id if session else None),
            "roles": role_names(principal.roles) if principal is not None else [],
            "nav": links,
            "csrf_token": token,
            "csrf_field": hidden_csrf(token),
            "sign_out_path": SIGN_OUT_PATH,
            "web_path": WEB_PATH,
            **context,
        },
        status_code=status,
        headers={**SECURITY_HEADERS, **(headers or {})},
        cookies=list(cookies),
    )


def see_other(path: str, *, cookies: Sequence[Cookie] = ()) -> Redirect:
    """A 303 to ``path`` with the pages' security headers: the answer to a post that worked."""
    return Redirect(path=path, status_code=303, cookies=list(cookies), headers=SECURITY_HEADERS)
