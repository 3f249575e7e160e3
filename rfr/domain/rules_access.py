"""Who may act at all (A-05) and who may decide (ranks, P-12). Pure functions over ``Actor``."""

from __future__ import annotations

from rfr.domain.decisions import Decision, combine
from rfr.domain.people import Actor, Rank, Role


def authorised(actor: Actor, *roles: Role) -> Decision:
    """A-05: only active, trained users act, and only in a role they hold (any of ``roles``)."""
    checks = [
        Decision.check(actor.active, "A-05", f"{actor.user_id} is disabled"),
        Decision.check(actor.trained, "A-05", f"{actor.user_id} has not completed RFR training"),
    ]
    if roles:
        names = " or ".join(r.value for r in roles)
        checks.append(
            Decision.check(any(actor.has(r) for r in roles), "A-05", f"{actor.user_id} does not hold {names}")
        )
    return combine(*checks)


def inspector_or_above(actor: Actor, rule_id: str, what: str) -> Decision:
    """An approving officer of Inspector rank or above (P-04, P-06, P-08, P-09, U-01)."""
    return combine(
        authorised(actor, Role.APPROVING_OFFICER),
        Decision.check(
            actor.at_least(Rank.INSPECTOR), rule_id, f"{what} needs an officer of Inspector rank or above"
        ),
    )


def different_person(actor: Actor, requester_id: str, what: str) -> Decision:
    """P-12: nobody approves their own request."""
    return Decision.check(
        actor.user_id != requester_id, "P-12", f"{what} must be decided by someone other than the requester"
    )


def stated(text: str | None, rule_id: str, what: str) -> Decision:
    return Decision.check(bool(text and text.strip()), rule_id, f"{what} is required")
