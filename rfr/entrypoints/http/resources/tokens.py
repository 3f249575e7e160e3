"""Bearer tokens: issued by administrators, exchanged from one-time tokens, revoked (A-05).

A token's secret is in the response that issues it and nowhere else, ever.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter

from rfr.application.services.access import AccessService, IssuedToken, Principal, TokenView
from rfr.domain.access_token import TokenKind
from rfr.domain.people import Role
from rfr.entrypoints.http.access_control import EVERY_ROLE, allow
from rfr.entrypoints.http.context import HttpContext, use_case

MAX_TTL_DAYS = 366


class IssueToken(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A token to issue to a user.

    Attributes:
        kind: ``bearer`` (default) or ``one_time``, which its holder exchanges for a bearer
            token of their own (POST /tokens/exchange).
        label: Free text to recognise the token by later, e.g. the device it is for.
        ttl_days: Days until the token expires; default: the server's bearer lifetime
            (``RFR_TOKEN_TTL_DAYS``, 30) or 7 days for a one-time token.
    """

    kind: TokenKind = TokenKind.BEARER
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""
    ttl_days: Annotated[int, msgspec.Meta(ge=1, le=MAX_TTL_DAYS)] | None = None


class ExchangeToken(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The bearer token wanted in exchange for the one-time token presented.

    Attributes:
        label: Free text to recognise the new token by later, e.g. the device it is for.
        ttl_days: Days until the new token expires; default: the server's bearer lifetime
            (``RFR_TOKEN_TTL_DAYS``, 30).
    """

    label: Annotated[str, msgspec.Meta(max_length=200)] = ""
    ttl_days: Annotated[int, msgspec.Meta(ge=1, le=MAX_TTL_DAYS)] | None = None


class Reason(msgspec.Struct, forbid_unknown_fields=True):
    """Why the token is revoked.

    Attributes:
        reason: Why, in the caller's words; recorded with the revocation.
    """

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


def _access(ctx: HttpContext) -> AccessService:
    return ctx.services.access(bearer_ttl=ctx.http.token_ttl)


def _ttl(days: int | None) -> timedelta | None:
    return timedelta(days=days) if days is not None else None


UserId = Annotated[str, PathParameter(min_length=1, max_length=200)]


@post(
    "/users/{user_id:str}/tokens",
    summary="Issue a token to a user",
    sync_to_thread=True,
    **allow(Role.ADMINISTRATOR),
)
def issue_token(
    principal: NamedDependency[Principal],
    tokens: NamedDependency[AccessService],
    user_id: UserId,
    data: JSONBody[IssueToken],
) -> IssuedToken:
    """Issue a token to another user; the secret is shown in this response only.

    Prefer ``kind: one_time``: the user exchanges it, so nobody else ever sees their bearer token.
    """
    return tokens.issue(principal.user_id, user_id, kind=data.kind, ttl=_ttl(data.ttl_days), label=data.label)


@get("/users/{user_id:str}/tokens", summary="List a user's tokens", sync_to_thread=True, **allow(*EVERY_ROLE))
def list_tokens(
    principal: NamedDependency[Principal], tokens: NamedDependency[AccessService], user_id: UserId
) -> list[TokenView]:
    """A user's tokens (never secrets); for administrators, or the user themselves."""
    return tokens.tokens_of(principal.user_id, user_id)


@post(
    "/tokens/exchange",
    summary="Exchange a one-time token",
    sync_to_thread=True,
    **allow(*EVERY_ROLE, one_time_token=True),
)
def exchange_token(
    principal: NamedDependency[Principal],
    tokens: NamedDependency[AccessService],
    data: JSONBody[ExchangeToken],
) -> IssuedToken:
    """Trade the one-time token in the Authorization header for a bearer token of your own.

    The bootstrap administrator's token (``$RFR_DATA_DIR/bootstrap-admin.token``) is one.
    """
    return tokens.exchange(principal, ttl=_ttl(data.ttl_days), label=data.label)


@post("/tokens/{token_id:uuid}/revoke", summary="Revoke a token", sync_to_thread=True, **allow(*EVERY_ROLE))
def revoke_token(
    principal: NamedDependency[Principal],
    tokens: NamedDependency[AccessService],
    token_id: FromPath[UUID],
    data: JSONBody[Reason],
) -> TokenView:
    """Administrators revoke any token; anyone revokes their own."""
    return tokens.revoke(principal.user_id, str(token_id), data.reason)


ROUTES = [
    Router(
        path="/",
        route_handlers=[issue_token, list_tokens, exchange_token, revoke_token],
        dependencies={"tokens": use_case(_access)},
        tags=["tokens"],
    )
]
