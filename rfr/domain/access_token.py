"""Bearer tokens of the API: who a presented secret belongs to, until when, and who issued it (A-05).

Only the SHA-256 of a token's secret is ever known here; the secret itself is shown once to
whoever asked for it and kept nowhere. The aggregate id is derived from that hash
(``AccessToken.id_for``), so authenticating a request is one direct lookup, with no table of
tokens to scan and nothing in the store from which a usable secret could be recovered.

Two kinds:
- ``bearer``: authenticates requests until it expires or is revoked.
- ``one_time``: authenticates nothing but its own exchange for a bearer token of the same
  user (``redeem``), once. The bootstrap administrator's token is one, and an administrator
  hands one to a new user so that the user's working token is seen by nobody else.
"""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import Decision, combine
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import Actor, Role
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, stated

_TOKENS = uuid5(NAMESPACE_URL, "urn:rfr:access-tokens")
_SHA256_HEX_LENGTH = 64


class TokenKind(enum.StrEnum):
    BEARER = "bearer"
    ONE_TIME = "one_time"


def _is_sha256_hex(text: str) -> bool:
    return len(text) == _SHA256_HEX_LENGTH and all(c in "0123456789abcdef" for c in text)


class AccessToken(GovernedAggregate):
    class Issued(GovernedAggregate.Event, Aggregate.Created):
        token_hash: str
        user_id: str
        kind: str
        label: str
        expires_at: datetime

        def apply(self, agg: AccessToken) -> None:
            agg.token_hash = self.token_hash
            agg.user_id = self.user_id
            agg.kind = TokenKind(self.kind)
            agg.label = self.label
            agg.expires_at = self.expires_at
            agg.issued_at = self.timestamp
            agg.issued_by = self.acting.user_id
            agg.revoked_at = None
            agg.redeemed_at = None

    class Revoked(GovernedAggregate.Event):
        def apply(self, agg: AccessToken) -> None:
            agg.revoked_at = self.timestamp

    class Redeemed(GovernedAggregate.Event):
        bearer_token_id: UUID

        def apply(self, agg: AccessToken) -> None:
            agg.redeemed_at = self.timestamp

    @staticmethod
    def id_for(token_hash: str) -> UUID:
        """The aggregate id of the token whose secret hashes to ``token_hash`` (lower-case hex)."""
        return uuid5(_TOKENS, token_hash)

    @classmethod
    def issue(
        cls,
        actor: Actor,
        at: datetime,
        *,
        token_hash: str,
        user_id: str,
        kind: TokenKind,
        expires_at: datetime,
        label: str,
        redeeming: AccessToken | None = None,
    ) -> AccessToken:
        """A-05: an administrator issues tokens to other users; a user issues their own only by
        redeeming a one-time token of theirs (``redeeming``), which must then be ``redeem``-ed
        in the same save.
        """
        if redeeming is not None:
            entitled = combine(
                Decision.check(actor.active, "A-05", f"{actor.user_id} is disabled"),
                Decision.check(
                    redeeming.user_id == actor.user_id == user_id,
                    "A-05",
                    "a one-time token is exchanged only for a token of its own user",
                ),
                redeeming.usable_for_exchange(at),
                Decision.check(kind is TokenKind.BEARER, "A-05", "a one-time token buys a bearer token"),
            )
        else:
            entitled = combine(
                authorised(actor, Role.ADMINISTRATOR),
                Decision.check(
                    actor.user_id != user_id,
                    "A-05",
                    "an administrator does not issue tokens to themselves; redeem a one-time token",
                ),
            )
        decision = combine(
            entitled,
            stated(user_id, "A-05", "the token's user"),
            Decision.check(_is_sha256_hex(token_hash), "A-05", "a token is stored as its SHA-256 hex digest"),
            Decision.check(require_aware(expires_at) > at, "A-05", "a token must expire after it is issued"),
        )
        enforce_new("issue access token", "AccessToken", actor, at, decision)
        return cls._create(
            cls.Issued,
            id=cls.id_for(token_hash),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=label or f"{kind.value} token",
            token_hash=token_hash,
            user_id=user_id,
            kind=kind.value,
            label=label,
            expires_at=expires_at,
        )

    def revoke(self, actor: Actor, at: datetime, reason: str) -> None:
        """A-05: administrators revoke anyone's token; anyone may give up their own.

        Giving up one's own token needs no role or training: it only ever reduces access.
        """
        own = actor.user_id == self.user_id
        self._enforce(
            "revoke access token",
            actor,
            at,
            combine(
                Decision.allow("A-05") if own else authorised(actor, Role.ADMINISTRATOR),
                stated(reason, "A-05", "the reason"),
                Decision.check(self.revoked_at is None, "A-05", "the token is already revoked"),
            ),
        )
        self._record(self.Revoked, actor, at, reason)

    def redeem(self, actor: Actor, at: datetime, bearer_token_id: UUID) -> None:
        """Marks this one-time token used by the exchange that issued ``bearer_token_id``."""
        self._enforce(
            "redeem one-time token",
            actor,
            at,
            combine(
                Decision.check(actor.user_id == self.user_id, "A-05", "only its user redeems a token"),
                self.usable_for_exchange(at),
            ),
        )
        self._record(
            self.Redeemed, actor, at, "exchanged for a bearer token", bearer_token_id=bearer_token_id
        )

    def usable_for_exchange(self, t: datetime) -> Decision:
        return combine(
            Decision.check(self.kind is TokenKind.ONE_TIME, "A-05", "only a one-time token is exchanged"),
            Decision.check(self.redeemed_at is None, "A-05", "the one-time token was already used"),
            Decision.check(self.revoked_at is None, "A-05", "the token is revoked"),
            Decision.check(t < self.expires_at, "A-05", "the token has expired"),
        )

    def valid_at(self, t: datetime) -> bool:
        """Whether the token authenticates at ``t``: not revoked, not used up, not expired."""
        return self.revoked_at is None and self.redeemed_at is None and t < self.expires_at
