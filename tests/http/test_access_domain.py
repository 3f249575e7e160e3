"""The AccessToken and AuditAccess aggregates alone: who may issue, redeem, revoke, query (A-03, A-05)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from rfr.domain.access_token import AccessToken, TokenKind
from rfr.domain.audit_access import AuditAccess
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.people import Actor, Role
from rfr.domain.refused_attempt import RefusedAttempt

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
ADMIN = Actor("admin", {Role.ADMINISTRATOR})
ANALYST = Actor("analyst", {Role.RFR_USER})
AUDITOR = Actor("auditor", {Role.AUDITOR})


def _hash(n: int) -> str:
    return hashlib.sha256(n.to_bytes(32, "big")).hexdigest()


def _issue(actor=ADMIN, *, user_id="analyst", kind=TokenKind.BEARER, digest=None, days=1, redeeming=None):
    return AccessToken.issue(
        actor,
        T0,
        token_hash=digest or _hash(1),
        user_id=user_id,
        kind=kind,
        expires_at=T0 + timedelta(days=days),
        label="test",
        redeeming=redeeming,
    )


def test_the_id_is_the_hash_so_a_presented_secret_finds_its_token():
    token = _issue(digest=_hash(7))
    assert token.id == AccessToken.id_for(_hash(7)) != AccessToken.id_for(_hash(8))
    assert token.valid_at(T0) and not token.valid_at(T0 + timedelta(days=1))


@pytest.mark.parametrize(
    ("actor", "overrides", "reason"),
    [
        (ANALYST, {}, "does not hold administrator"),
        (ADMIN, {"user_id": "admin"}, "does not issue tokens to themselves"),
        (ADMIN, {"digest": "not-a-digest"}, "SHA-256"),
        (ADMIN, {"days": 0}, "expire after"),
        (Actor("admin", {Role.ADMINISTRATOR}, active=False), {}, "disabled"),
    ],
)
def test_A05_issuing_is_refused_and_recorded_under(actor, overrides, reason):
    with pytest.raises(PolicyRefusal) as refused:
        _issue(actor, **overrides)
    assert refused.value.rule_ids == ("A-05",) and reason in refused.value.reason
    assert isinstance(refused.value.record, RefusedAttempt)
    assert refused.value.record.refusals[0].command == "issue access token"


def test_a_one_time_token_buys_one_bearer_token_for_its_own_user_only():
    """A-05: self-service only through a one-time token issued by an administrator or the installation."""
    one_time = _issue(kind=TokenKind.ONE_TIME, digest=_hash(2))
    with pytest.raises(PolicyRefusal, match="its own user"):
        _issue(
            Actor("someone-else", {Role.RFR_USER}),
            user_id="someone-else",
            digest=_hash(3),
            redeeming=one_time,
        )
    with pytest.raises(PolicyRefusal, match="buys a bearer token"):
        _issue(ANALYST, kind=TokenKind.ONE_TIME, digest=_hash(3), redeeming=one_time)
    bearer = _issue(ANALYST, digest=_hash(3), redeeming=one_time)
    one_time.redeem(ANALYST, T0, bearer.id)
    assert not one_time.valid_at(T0)
    with pytest.raises(PolicyRefusal, match="already used"):
        _issue(ANALYST, digest=_hash(4), redeeming=one_time)
    with pytest.raises(PolicyRefusal, match="already used"):
        one_time.redeem(ANALYST, T0, bearer.id)
    assert one_time.refusals[-1].rule_ids == ("A-05",)


def test_a_bearer_token_is_never_exchanged():
    bearer = _issue(digest=_hash(5))
    with pytest.raises(PolicyRefusal, match="only a one-time token"):
        _issue(ANALYST, digest=_hash(6), redeeming=bearer)


def test_its_user_or_an_administrator_revokes_and_nobody_else():
    token = _issue()
    with pytest.raises(PolicyRefusal) as refused:
        token.revoke(Actor("other", {Role.RFR_USER}), T0, "not mine")
    assert refused.value.rule_ids == ("A-05",)
    assert token.refusals[-1].command == "revoke access token"
    # An untrained user may still give up their own token: it only reduces access.
    token.revoke(Actor("analyst", {Role.RFR_USER}, trained=False), T0, "lost laptop")
    assert not token.valid_at(T0)
    with pytest.raises(PolicyRefusal, match="already revoked"):
        token.revoke(ADMIN, T0, "again")


def test_only_an_auditor_queries_the_audit_trail_and_the_record_names_what_was_seen():
    """A-03: AuditAccess records the query, its parameters, the items shown and why."""
    access = AuditAccess.record(
        AUDITOR, T0, "history", parameters={"aggregate_id": "x"}, items=["x@1", "x@2"], reason="review"
    )
    assert (access.query, access.items, access.by) == ("history", ("x@1", "x@2"), "auditor")
    for actor, reason in (
        (ADMIN, "review"),
        (AUDITOR, " "),
        (Actor("auditor", {Role.AUDITOR}, trained=False), "r"),
    ):
        with pytest.raises(PolicyRefusal) as refused:
            AuditAccess.record(actor, T0, "head", parameters={}, items=[], reason=reason)
        assert {"A-03", "A-05"} & set(refused.value.rule_ids)
        assert isinstance(refused.value.record, RefusedAttempt)
