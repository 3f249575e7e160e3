"""Rules at search time (S-01..S-07 with L-01, L-06, L-08, L-12, L-13). Pure functions over plain facts."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

import attrs

from rfr.domain.decisions import Decision, combine
from rfr.domain.forms import NEVER_DISSEMINATED, Dissemination
from rfr.domain.images import ImageLevel
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Actor, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.search_terms import SearchPurpose, Urgency


@attrs.frozen
class Candidate:
    """One potential match (S-04): rank 1 is the most similar; higher score means more similar."""

    rank: int
    score: float
    library_id: str
    algorithm_id: str
    image_id: str
    template_id: str
    # The expected chance that at least one non-mate in the library, of its size when searched,
    # reaches this score, from the algorithm's calibration in force (ADR 0020); None while the
    # algorithm is uncalibrated, and in candidates recorded before calibrations existed.
    non_mate_chance: float | None = None

    @property
    def candidate_id(self) -> str:
        return f"{self.library_id}#{self.rank}"


def approval_in_force(approval: LibraryApproval, at: datetime) -> Decision:
    """L-01: an approval in force at ``at``. Once it was stopped or has expired, L-12 makes the
    library unavailable from that moment; where a Superintendent stopped an Inspector's urgent
    approval, that stop was the L-10 decision, so the refusal names L-10 too."""
    if approval.in_force_at(at):
        return Decision.allow("L-01")
    if not approval.ended_by(at):
        return Decision.refuse("L-01", "the library has no approval in force")
    rules = ("L-01", "L-12", "L-10") if approval.stopped_under_l10 else ("L-01", "L-12")
    return Decision(
        False, rules, (f"the library's approval {approval.ended_by(at)}: it is unavailable for searching",)
    )


def approval_covers(
    approval: LibraryApproval, purposes: Iterable[SearchPurpose], at: datetime, config: PolicyConfig
) -> Decision:
    """L-01/L-12 in force, L-06 not blocked by an overdue review, L-08 every purpose in scope."""
    in_force = approval_in_force(approval, at)
    outside = sorted(p.value for p in purposes if not approval.permits(p))
    return combine(
        in_force,
        Decision.check(
            not in_force.allowed or not approval.blocks_search(at, config),
            "L-06",
            "the library's review is overdue beyond the grace period",
        ),
        Decision.check(not outside, "L-08", f"purposes outside the library's approved scope: {outside}"),
    )


def within_access(approval: LibraryApproval | None, actor: Actor) -> Decision:
    """L-13, decided here only: the person is within the approval's access restrictions (named
    users, members of named teams, or every RFR User where the approval says so).

    ``None`` (no approval known for the library) admits nobody.
    """
    access = approval.record.access if approval is not None and approval.record is not None else None
    inside = access is not None and (
        (access.all_rfr_users and actor.has(Role.RFR_USER))
        or actor.user_id in access.users
        or bool(access.teams & actor.teams)
    )
    return Decision.check(inside, "L-13", "the user is outside the library's access restrictions")


def library_searchable(
    approval: LibraryApproval,
    actor: Actor,
    purposes: Iterable[SearchPurpose],
    at: datetime,
    config: PolicyConfig,
) -> Decision:
    """``approval_covers`` the purposes now, and the person searching is ``within_access`` (L-13)."""
    return combine(approval_covers(approval, purposes, at, config), within_access(approval, actor))


def progressive_order(
    target_level: ImageLevel,
    levels: Sequence[tuple[str, ImageLevel]],
    searched: Collection[str],
    with_viable_match: Collection[str],
    urgency: Urgency | None,
) -> Decision:
    """S-02: lower levels first, and higher only while they gave no viable match, unless urgent "search all".

    ``levels`` pairs every library of the request with its effective level; ``searched`` and
    ``with_viable_match`` name libraries by id.
    """
    if urgency is not None and urgency.search_all and urgency.stated:
        return Decision.allow("S-02")
    lower = [lib for lib, level in levels if level < target_level]
    pending = sorted(lib for lib in lower if lib not in searched)
    matched = sorted(lib for lib in lower if lib in with_viable_match)
    return combine(
        Decision.check(not pending, "S-02", f"search the lower-level libraries first: {pending}"),
        Decision.check(
            not matched,
            "S-02",
            f"a viable match was found at a lower level ({matched}); higher levels are not searched",
        ),
    )


def candidates_valid(
    candidates: Sequence[Candidate], library_id: str, algorithm_id: str, searchable_templates: Collection[str]
) -> Decision:
    """S-04 shape, T-01 one algorithm, and only templates the library may still search (R-01, L-12)."""
    ranks = sorted(c.rank for c in candidates)
    return combine(
        Decision.check(
            ranks == list(range(1, len(ranks) + 1)), "S-04", "candidate ranks must run 1, 2, 3 ..."
        ),
        Decision.check(
            all(c.library_id == library_id for c in candidates), "S-04", "candidates of another library"
        ),
        Decision.check(
            all(c.algorithm_id == algorithm_id for c in candidates),
            "T-01",
            "templates of different algorithms are never compared",
        ),
        Decision.check(
            all(c.template_id in searchable_templates for c in candidates),
            "R-01",
            "a candidate is not (or no longer) searchable in this library",
        ),
    )


def dissemination_allowed(dissemination: Dissemination) -> Decision:
    """S-07: recipient, legal basis and equivalent safeguards recorded; templates never leave."""
    templates = sorted(set(dissemination.items) & NEVER_DISSEMINATED)
    return combine(
        Decision.check(bool(dissemination.recipient.strip()), "S-07", "the recipient is required"),
        Decision.check(bool(dissemination.legal_basis.strip()), "S-07", "the legal basis is required"),
        Decision.check(
            dissemination.safeguards_acknowledged,
            "S-07",
            "the recipient must apply equivalent safeguards, including retention",
        ),
        Decision.check(bool(dissemination.items), "S-07", "name what is disseminated"),
        Decision.check(not templates, "S-07", "biometric templates are never disseminated"),
    )
