"""The Adjudication (S-05): a person's decision on one potential match.

One shape for both places a potential match is decided: a search request's candidate, and a
match the Unresolved Crime Cache's re-search found in new library material (U-02). Only an
adjudication makes a viable match (S-05, 3.1).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import attrs

from rfr.domain.decisions import Decision, combine
from rfr.domain.people import Actor, Role
from rfr.domain.rules_access import authorised, stated


@attrs.frozen
class Adjudication:
    """``match_id`` names the potential match decided: a search's candidate (``<library>#<rank>``)
    or a queued UCC match (``<library>#<image>``). ``identity_known`` says, for a viable match
    only, whether the person matched is known (U-01: a viable match of an unknown person leaves
    the purpose unmet); for a non-viable one the question does not arise and it is None."""

    match_id: str
    viable: bool
    rationale: str
    identity_known: bool | None
    by: str
    at: datetime


def may_adjudicate(
    actor: Actor,
    match_id: str,
    rationale: str,
    *,
    known: Collection[str],
    decided: Collection[str],
    within_access: Decision,
) -> Decision:
    """S-05: an RFR User decides a potential match once, with a rationale, and only within the
    access restrictions of its library (L-13, decided by the caller's ``within_access``)."""
    return combine(
        authorised(actor, Role.RFR_USER),
        Decision.check(match_id in known, "S-05", "no such potential match"),
        within_access,
        Decision.check(match_id not in decided, "S-05", "already adjudicated"),
        stated(rationale, "S-05", "the adjudication rationale"),
    )


def identity_recorded(viable: bool, identity_known: bool | None) -> bool | None:
    """What an adjudication records of the identity: the answer for a viable match, else None."""
    return identity_known if viable else None
