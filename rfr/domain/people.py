"""Who acts: roles, ranks and the ``Actor`` every command takes (A-01, A-05)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from rfr.domain.codec import from_data, to_data


class Role(enum.StrEnum):
    RFR_USER = "rfr_user"
    APPROVING_OFFICER = "approving_officer"
    SRO = "sro"
    OPERATIONAL_LEAD = "operational_lead"
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"
    # Reads the live metrics and nothing else (ADR 0024): a scraper's token needs no more.
    OPERATIONS = "operations"


class Rank(enum.IntEnum):
    """Police ranks the policy names, ordered so that ``rank >= Rank.INSPECTOR`` reads as policy."""

    SERGEANT = 1
    INSPECTOR = 2
    CHIEF_INSPECTOR = 3
    SUPERINTENDENT = 4
    CHIEF_SUPERINTENDENT = 5


DEFAULT_STAFF_GRADE_EQUIVALENTS: Mapping[str, Rank] = {
    # "Or equivalent" police staff grades; a force replaces this table in PolicyConfig.
    "band d": Rank.SERGEANT,
    "band c": Rank.INSPECTOR,
    "band b": Rank.CHIEF_INSPECTOR,
    "band a": Rank.SUPERINTENDENT,
    "senior civil service": Rank.CHIEF_SUPERINTENDENT,
}


def rank_for_staff_grade(
    grade: str, equivalents: Mapping[str, Rank] = DEFAULT_STAFF_GRADE_EQUIVALENTS
) -> Rank:
    """The rank a staff grade counts as; an unknown grade is an error rather than a guess."""
    try:
        return equivalents[grade.strip().lower()]
    except KeyError:
        raise ValueError(f"no rank equivalent is configured for staff grade {grade!r}") from None


def _roles(value: Iterable[Role | str]) -> frozenset[Role]:
    return frozenset(Role(v) for v in value)


@attrs.frozen
class Actor:
    """The person behind a command, as the User aggregate knew them at that moment.

    ``trained`` and ``active`` come from the User record so the domain can refuse an
    untrained or disabled person (A-05) without reaching for the User aggregate itself.
    """

    user_id: str
    roles: frozenset[Role] = attrs.field(converter=_roles, factory=frozenset)
    rank: Rank | None = None
    teams: frozenset[str] = attrs.field(converter=frozenset, factory=frozenset)
    trained: bool = True
    active: bool = True

    def has(self, role: Role) -> bool:
        return role in self.roles

    def at_least(self, rank: Rank) -> bool:
        return self.rank is not None and self.rank >= rank

    def describe(self) -> str:
        rank = f", {self.rank.name.replace('_', ' ').title()}" if self.rank else ""
        return f"{self.user_id} ({', '.join(sorted(self.roles)) or 'no role'}{rank})"

    def to_data(self) -> dict[str, Any]:
        return to_data(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Actor:
        return from_data(cls, dict(data))


# The people who work cases and govern them. Auditors are left out on purpose: what they
# read goes through the audit service, which records every read.
OPERATIONAL_ROLES = (Role.RFR_USER, Role.APPROVING_OFFICER, Role.OPERATIONAL_LEAD, Role.SRO)
GOVERNANCE_ROLES = (Role.APPROVING_OFFICER, Role.OPERATIONAL_LEAD, Role.SRO)


def rank_of(actor: Actor) -> int | None:
    """The actor's rank as plain event data (P-12 records the approver's rank)."""
    return int(actor.rank) if actor.rank is not None else None
