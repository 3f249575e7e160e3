"""Every route says who may call it; one guard enforces it (A-05). Routes declare, never check.

Declaring a route's access (spread the mapping into the route decorator):

    @get("/users", **allow(Role.ADMINISTRATOR, Role.SRO))
    def list_users(principal: Principal, ...) -> ...

    @get("/health", **public())                         # no token needed, say so explicitly

    @post("/tokens/exchange", **allow(*EVERY_ROLE, one_time_token=True))

``allow`` puts a ``RouteAccess`` under ``opt["rfr_access"]`` (read by the guard) and the
bearer security requirement into the OpenAPI operation; the operation also states the roles
(``access_extension``: ``x-rfr-roles`` and a sentence, written by ``openapi_contract``). A route
with no declaration is refused by ``create_app`` at start-up (``undeclared_routes``), and the
guard would answer it with 500 rather than let it through: access is denied unless declared.

What the guard does for a non-public route, in this order:
1. ``Authorization: Bearer <token>`` must be present and authenticate (else 401);
2. a one-time token is accepted only where ``one_time_token=True``, and only it is (else 401);
3. the user must be enabled and hold one of the route's roles (else 403, and the refusal is
   recorded as a ``RefusedAttempt`` event, A-01);
4. the ``Principal`` is put on the request; handlers take it as the ``principal`` parameter.

The guard checks roles only; rank, training, teams and every policy rule stay with the use
case and the domain, which record their own refusals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from anyio import to_thread
from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi.spec import SecurityRequirement

from rfr.application.services.access import AuthenticationFailed, Principal
from rfr.application.services.base import act_for_request
from rfr.domain.access_token import TokenKind
from rfr.domain.people import Role
from rfr.entrypoints.http.context import context_of

ACCESS_KEY = "rfr_access"
SECURITY_SCHEME = "bearerToken"
EVERY_ROLE: tuple[Role, ...] = tuple(Role)


class UndeclaredAccess(RuntimeError):
    """A route handler declares neither roles nor public access: a programming error."""


@attrs.frozen
class RouteAccess:
    """``rule``: the policy rule that limits the route to ``roles`` (A-05 unless the policy names
    another, e.g. A-03 for the audit trail), so a refusal at the gate cites it."""

    roles: frozenset[Role] = frozenset()
    public: bool = False
    one_time_token: bool = False
    rule: str = "A-05"

    def __attrs_post_init__(self) -> None:
        if self.public and (self.roles or self.one_time_token):
            raise ValueError("a public route takes no roles and no token")
        if not self.public and not self.roles:
            raise ValueError("name at least one role, or declare the route public()")


def allow(*roles: Role, one_time_token: bool = False, rule: str = "A-05") -> dict[str, Any]:
    """Route decorator keywords: callers holding any of ``roles`` (see the module docstring);
    ``rule`` is the policy rule a refusal at the gate names."""
    access = RouteAccess(roles=frozenset(Role(r) for r in roles), one_time_token=one_time_token, rule=rule)
    security: list[SecurityRequirement] = [{SECURITY_SCHEME: []}]
    return {"opt": {ACCESS_KEY: access}, "security": security}


def public() -> dict[str, Any]:
    """Route decorator keywords: anyone, without a token (health, schema, problem types)."""
    return {"opt": {ACCESS_KEY: RouteAccess(public=True)}}


_PUBLIC = RouteAccess(public=True)

ROLES_EXTENSION = "x-rfr-roles"
PUBLIC_EXTENSION = "x-rfr-public"
ONE_TIME_TOKEN_EXTENSION = "x-rfr-one-time-token"
RULE_EXTENSION = "x-rfr-rule"


def access_extension(access: RouteAccess) -> tuple[dict[str, Any], str]:
    """How the OpenAPI operation states ``access``: its ``x-rfr-*`` fields and a sentence.

    ``x-rfr-roles`` lists the roles in name order (empty for a public route); ``x-rfr-public``
    and ``x-rfr-one-time-token`` say whether a token is needed, and which kind; ``x-rfr-rule``
    names the rule a refusal at the gate cites (guarded routes only).
    """
    roles = sorted(r.value for r in access.roles)
    extension: dict[str, Any] = {
        ROLES_EXTENSION: roles,
        PUBLIC_EXTENSION: access.public,
        ONE_TIME_TOKEN_EXTENSION: access.one_time_token,
    }
    if access.public:
        return extension, "Access: public, no token needed."
    extension[RULE_EXTENSION] = access.rule
    token = "a one-time token only (not a bearer token)" if access.one_time_token else "a bearer token"
    return extension, (
        f"Access: roles {', '.join(roles)} (any one of them), with {token}; "
        f"anyone else is refused under {access.rule}."
    )


def is_automatic_options(handler: BaseRouteHandler) -> bool:
    """Litestar's own OPTIONS handler of each path (only the ``Allow`` header: public)."""
    fn = getattr(handler, "fn", None)
    return getattr(fn, "__qualname__", "").startswith("HTTPRoute.create_options_handler.")


def route_access(handler: BaseRouteHandler) -> RouteAccess:
    access = handler.opt.get(ACCESS_KEY)
    if access is None and is_automatic_options(handler):
        return _PUBLIC
    if not isinstance(access, RouteAccess):
        raise UndeclaredAccess(
            f"route handler {handler.handler_name!r} declares no access (use allow() or public())"
        )
    return access


def http_handlers(app: Litestar) -> Iterable[tuple[str, HTTPRouteHandler]]:
    """(path, handler) for every HTTP route handler the application serves."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler):
                yield route.path, handler


def undeclared_routes(app: Litestar) -> list[str]:
    """``"METHODS /path"`` of each route handler that declares no access."""
    missing = []
    for path, handler in http_handlers(app):
        try:
            route_access(handler)
        except UndeclaredAccess:
            missing.append(f"{','.join(sorted(handler.http_methods))} {path}")
    return missing


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization")
    if not header:
        raise AuthenticationFailed("this route needs a bearer token (Authorization: Bearer <token>)")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("the Authorization header must read 'Bearer <token>'")
    return token.strip()


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    access = route_access(handler)
    if access.public:
        return
    secret = bearer_token(connection)
    ctx = context_of(connection.app)
    service = ctx.services.access()
    # Blocking store reads: off the event loop, like every handler that touches the store.
    principal = await to_thread.run_sync(service.authenticate, secret)
    one_time = principal.token_kind == TokenKind.ONE_TIME.value
    if one_time and not access.one_time_token:
        raise AuthenticationFailed("a one-time token only buys a bearer token (POST /tokens/exchange)")
    if access.one_time_token and not one_time:
        raise AuthenticationFailed("this route takes a one-time token, not a bearer token")
    route = f"{connection.scope['method']} {connection.scope.get('path_template') or connection.url.path}"
    await to_thread.run_sync(service.admit, principal, route, sorted(access.roles), access.rule)
    # Set here, in the request's own context, which the handler's thread inherits.
    act_for_request(principal.user)
    connection.state.principal = principal


def current_principal(request: Request[Any, Any, Any]) -> Principal:
    """The ``principal`` dependency: who the guard let in."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        # Only a public route asking for a principal gets here: a wiring error, not the caller's.
        raise UndeclaredAccess("a public route cannot take the principal parameter")
    return principal
