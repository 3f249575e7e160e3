"""Who is calling, and what they may read of the audit trail: tokens (A-05) and audit queries (A-03).

``AccessService``
- ``authenticate(secret)``: the presented secret is hashed (SHA-256 of its 32 random bytes)
  and the ``AccessToken`` is fetched directly by the id derived from that hash; a token that
  is unknown, expired, revoked or used up, or whose user is unknown, is ``AuthenticationFailed``.
  The secret never leaves this function: not in events, logs or errors.
- ``issue`` (administrators, for others), ``exchange`` (a user trades their own one-time
  token for a bearer token; the bootstrap administrator's token is one), ``revoke``,
  ``tokens_of``, and ``bootstrap`` of a new installation.
- ``admit``: the gate every non-public HTTP route passes: the user must be enabled and hold
  one of the route's roles; a refusal is recorded (A-01) before it is raised.

``AuditService``: verify the chain, read its head, read an aggregate's events. Each query
first checks the Auditor role (a refusal is recorded), then reads, then saves an
``AuditAccess`` naming every item shown, and only then returns the answer (A-03).
Reading the store's chain is infrastructure work, so it comes through the ``AuditTrail``
port defined here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError

from rfr.application.app import RfrApplication
from rfr.application.errors import AccessDenied, AlreadyBootstrapped, NotFound, RfrError, UnknownUser
from rfr.application.ports import AuditTrail, Clock
from rfr.application.services.base import ACTIVITY_RESOLUTION, Act, Need, UseCase, list_ids
from rfr.application.services.bootstrap import INSTALLER, bootstrap_administrator
from rfr.domain.access_token import AccessToken, TokenKind
from rfr.domain.audit_access import AuditAccess, may_query_audit
from rfr.domain.decisions import Decision, PolicyRefusal
from rfr.domain.people import Actor, Role
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.user import User

# A recognisable prefix lets secret scanners and people spot a leaked token; the version
# digit leaves room for another format without ambiguity.
TOKEN_PREFIX = "rfr1_"
SECRET_BYTES = 32

DEFAULT_BEARER_TTL = timedelta(days=30)
DEFAULT_ONE_TIME_TTL = timedelta(days=7)


class AuthenticationFailed(RfrError):
    """No usable token was presented. The message is safe to show; it never holds the secret."""


def new_secret() -> tuple[str, str]:
    """A fresh token: (the text to hand to its user once, the SHA-256 hex digest to store)."""
    raw = secrets.token_bytes(SECRET_BYTES)
    text = TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    return text, hashlib.sha256(raw).hexdigest()


def token_digest(presented: str) -> str:
    """The stored form of a presented token, or ``AuthenticationFailed`` if it is malformed."""
    if not presented.startswith(TOKEN_PREFIX):
        raise AuthenticationFailed("not an rfr access token")
    body = presented[len(TOKEN_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("malformed access token") from None
    if len(raw) != SECRET_BYTES:
        raise AuthenticationFailed("malformed access token")
    return hashlib.sha256(raw).hexdigest()


@attrs.frozen
class Principal:
    """The caller of one request, as their token and User record say at that moment."""

    user_id: str
    roles: frozenset[str]
    disabled: bool
    token_id: str
    token_kind: str
    token_expires_at: datetime
    # The User record as read for this request, so the gate and the use cases need not read it again.
    user: User = attrs.field(eq=False, repr=False)


@attrs.frozen
class TokenView:
    """A token as anyone may see it: never the secret, never its hash.

    Attributes:
        token_id: The token's id (not its secret): name it to revoke the token.
        user_id: The user the token authenticates.
        kind: ``bearer`` (used on every request) or ``one_time`` (only exchanged for a bearer token).
        label: The free text given when the token was issued, e.g. the device it is for.
        issued_at: When the token was issued.
        issued_by: The user id of whoever issued it (the user themself for an exchanged token).
        expires_at: When the token stops being accepted.
        revoked_at: When it was revoked, or null.
        redeemed_at: When a one-time token was exchanged for a bearer token, or null.
        status: ``valid``, ``expired``, ``revoked`` or ``redeemed``, as of the answer.
    """

    token_id: str
    user_id: str
    kind: str
    label: str
    issued_at: datetime
    issued_by: str
    expires_at: datetime
    revoked_at: datetime | None
    redeemed_at: datetime | None
    status: str

    @classmethod
    def of(cls, token: AccessToken, now: datetime) -> TokenView:
        if token.revoked_at is not None:
            status = "revoked"
        elif token.redeemed_at is not None:
            status = "redeemed"
        elif now >= token.expires_at:
            status = "expired"
        else:
            status = "valid"
        return cls(
            token_id=str(token.id),
            user_id=token.user_id,
            kind=token.kind.value,
            label=token.label,
            issued_at=token.issued_at,
            issued_by=token.issued_by,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            redeemed_at=token.redeemed_at,
            status=status,
        )


@attrs.frozen
class IssuedToken:
    """A token just issued: ``secret`` is shown this once and stored nowhere.

    Attributes:
        secret: The token itself, for ``Authorization: Bearer <secret>``; shown only in this
            answer (the server keeps a hash).
        token: The token's public record.
    """

    secret: str
    token: TokenView


class AccessService(UseCase):
    def __init__(
        self, app: RfrApplication, clock: Clock, *, bearer_ttl: timedelta = DEFAULT_BEARER_TTL
    ) -> None:
        super().__init__(app, clock)
        self.bearer_ttl = bearer_ttl

    def authenticate(self, presented: str) -> Principal:
        digest = token_digest(presented)
        try:
            token = self.app.get(AccessToken.id_for(digest), AccessToken)
        except (AggregateNotFoundError, TypeError):
            raise AuthenticationFailed("unknown access token") from None
        # The id already implies the hash; comparing in constant time costs nothing and
        # guards against any id collision.
        if not hmac.compare_digest(token.token_hash, digest):
            raise AuthenticationFailed("unknown access token")
        now = self.clock.now()
        if not token.valid_at(now):
            raise AuthenticationFailed(f"access token is {TokenView.of(token, now).status}")
        try:
            user = self.user(token.user_id)
        except UnknownUser:
            raise AuthenticationFailed("the token's user is not registered") from None
        return Principal(
            user_id=user.user_id,
            roles=frozenset(r.value for r in user.roles),
            disabled=user.disabled,
            token_id=str(token.id),
            token_kind=token.kind.value,
            token_expires_at=token.expires_at,
            user=user,
        )

    def admit(self, principal: Principal, route: str, roles: Sequence[Role], rule: str = "A-05") -> Actor:
        """The gate of an HTTP route: enabled, and holding any of ``roles`` (A-05, or the ``rule``
        the route is limited by, such as A-03 for the audit trail).

        Training is left to each use case (the domain checks it per command), so an untrained
        user can still see their own record and redeem their token.
        """
        at = self.clock.now()
        user = self._enabled(principal.user, f"call {route}", route, at)
        actor = user.actor()
        if not any(actor.has(r) for r in roles):
            names = " or ".join(r.value for r in roles)
            decision = Decision.refuse(rule, f"{principal.user_id} does not hold {names}, needed for {route}")
            self.app.save(RefusedAttempt.record(f"call {route}", route, actor, at, decision))
            raise AccessDenied(principal.user_id, decision.rule_ids, decision.reason, True)
        return actor

    def issue(
        self,
        acting_user: str,
        user_id: str,
        *,
        kind: TokenKind = TokenKind.BEARER,
        ttl: timedelta | None = None,
        label: str = "",
    ) -> IssuedToken:
        """An administrator issues a token to another registered user (A-05)."""
        self.user(user_id)  # UnknownUser names the missing subject before anything is recorded
        secret, digest = new_secret()
        lifetime = ttl or (self.bearer_ttl if kind is TokenKind.BEARER else DEFAULT_ONE_TIME_TTL)

        def action(act: Act) -> AccessToken:
            return act.new(
                AccessToken.issue(
                    act.actor,
                    act.at,
                    token_hash=digest,
                    user_id=user_id,
                    kind=kind,
                    expires_at=act.at + lifetime,
                    label=label,
                )
            )

        token = self._act(acting_user, "issue access token", [], action, target_name="AccessToken")
        return IssuedToken(secret, TokenView.of(token, self.clock.now()))

    def exchange(self, principal: Principal, *, ttl: timedelta | None = None, label: str = "") -> IssuedToken:
        """The caller's one-time token becomes used, and a bearer token of theirs is issued.

        Not through ``_act``: a user exchanges their token before anyone has recorded their
        training, and the domain's rules for the exchange say all that matters here.
        """
        at = self.clock.now()
        one_time = self.load(principal.token_id, AccessToken)
        user = self._acting(principal.user_id, "exchange one-time token", f"AccessToken {one_time.id}", at)
        actor = user.actor()
        secret, digest = new_secret()
        try:
            bearer = AccessToken.issue(
                actor,
                at,
                token_hash=digest,
                user_id=user.user_id,
                kind=TokenKind.BEARER,
                expires_at=at + (ttl or self.bearer_ttl),
                label=label or "exchanged for a one-time token",
                redeeming=one_time,
            )
            one_time.redeem(actor, at, bearer.id)
        except PolicyRefusal as err:
            self.app.save(err.record if err.record is not None else one_time)
            raise
        if at - user.last_activity >= ACTIVITY_RESOLUTION:
            user.record_activity(at, "exchange one-time token")
        self.app.save(one_time, bearer, user)
        return IssuedToken(secret, TokenView.of(bearer, at))

    def revoke(self, acting_user: str, token_id: str, reason: str) -> TokenView:
        """Administrators revoke any token; anyone revokes their own (the domain decides)."""
        token = self.load(token_id, AccessToken)
        self._act(
            acting_user,
            "revoke access token",
            [token],
            lambda act: token.revoke(act.actor, act.at, reason),
        )
        return TokenView.of(token, self.clock.now())

    def tokens_of(self, acting_user: str, user_id: str) -> list[TokenView]:
        """A user's tokens, for an administrator or the user themselves.

        Found by reading every issued token, oldest first: tokens are few (a handful per
        user), so no projection is kept for this.
        """
        at = self.clock.now()
        self._read(
            acting_user,
            "list access tokens",
            Need(),
            target=f"User {user_id}",
            decide=lambda actor: Decision.check(
                actor.user_id == user_id or actor.has(Role.ADMINISTRATOR),
                "A-05",
                f"{actor.user_id} may not see another user's tokens",
            ),
        )
        self.user(user_id)
        views: list[TokenView] = []
        after: int | None = 0
        while after is not None:
            ids, after = list_ids(self.app, AccessToken.Issued, after=after, limit=500)
            for token_id in ids:
                token = self.app.get(token_id, AccessToken)
                if token.user_id == user_id:
                    views.append(TokenView.of(token, at))
        return views

    def bootstrap(self, administrator: str, *, ttl: timedelta = DEFAULT_ONE_TIME_TTL) -> IssuedToken | None:
        """On an empty store: the first administrator and a one-time token for them; else None."""
        try:
            bootstrap_administrator(self.app, self.clock, administrator)
        except AlreadyBootstrapped:
            return None
        at = self.clock.now()
        secret, digest = new_secret()
        # The installation issues it, as it registered the administrator; the administrator
        # then trades it for a bearer token only they have seen.
        token = AccessToken.issue(
            INSTALLER,
            at,
            token_hash=digest,
            user_id=administrator,
            kind=TokenKind.ONE_TIME,
            expires_at=at + ttl,
            label="bootstrap administrator",
        )
        self.app.save(token)
        return IssuedToken(secret, TokenView.of(token, at))


@attrs.frozen
class AuditAnswer:
    """What an audit query returns, with the id of the ``AuditAccess`` that recorded it.

    Attributes:
        access_id: The id of the ``AuditAccess`` record of this query (A-03): the query is
            itself in the audit trail.
        query: The query answered: ``verify``, ``head`` or ``history``.
        result: The answer: the chain's verification report (``verify``), its head
            (``head``) or the aggregate's events, oldest first (``history``).
    """

    access_id: str
    query: str
    result: Any


@attrs.frozen
class _Query:
    name: str
    params: dict[str, str]
    reason: str


class AuditService(UseCase):
    def __init__(self, app: RfrApplication, clock: Clock, trail: AuditTrail) -> None:
        super().__init__(app, clock)
        self.trail = trail

    def verify(self, acting_user: str, reason: str, *, anchor: str | None = None) -> AuditAnswer:
        query = _Query("verify", {"anchor": anchor} if anchor else {}, reason)
        actor = self._admit(acting_user, query)
        result = dict(self.trail.verify(anchor))
        return self._answer(acting_user, actor, query, ["audit-chain"], result)

    def head(self, acting_user: str, reason: str) -> AuditAnswer:
        query = _Query("head", {}, reason)
        actor = self._admit(acting_user, query)
        head = self.trail.head()
        return self._answer(acting_user, actor, query, ["audit-chain-head"], head)

    def history(
        self, acting_user: str, aggregate_id: UUID, reason: str, *, until: datetime | None = None
    ) -> AuditAnswer:
        params = {"aggregate_id": str(aggregate_id)}
        if until is not None:
            params["until"] = until.isoformat()
        query = _Query("history", params, reason)
        actor = self._admit(acting_user, query)
        events = self.trail.history(aggregate_id, until)
        if not events:
            # Recorded all the same: asking about an id is itself an audit query.
            self._answer(acting_user, actor, query, [], [])
            raise NotFound("aggregate", aggregate_id)
        items = [f"{aggregate_id}@{e['originator_version']}" for e in events]
        return self._answer(acting_user, actor, query, items, [dict(e) for e in events])

    def _admit(self, acting_user: str, query: _Query) -> Actor:
        at = self.clock.now()
        command = f"audit query {query.name}"
        actor = self._acting(acting_user, command, "AuditAccess", at).actor()
        decision = may_query_audit(actor, query.name, query.reason)
        if not decision.allowed:
            attempt = RefusedAttempt.record(command, "AuditAccess", actor, at, decision)
            self.app.save(attempt)
            raise PolicyRefusal(decision.rule_ids, decision.reason, record=attempt)
        return actor

    def _answer(
        self, acting_user: str, actor: Actor, query: _Query, items: list[str], result: Any
    ) -> AuditAnswer:
        # Saved before the answer is returned: if the record cannot be written, nothing is shown.
        at = self.clock.now()
        access = AuditAccess.record(
            actor, at, query.name, parameters=query.params, items=items, reason=query.reason
        )
        user = self.user(acting_user)
        touched: list[Any] = [access]
        if at - user.last_activity >= ACTIVITY_RESOLUTION:
            user.record_activity(at, f"audit query {query.name}")
            touched.append(user)
        self.app.save(*touched)
        return AuditAnswer(str(access.id), query.name, result)
