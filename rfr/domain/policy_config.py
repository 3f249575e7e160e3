"""Every value the catalogue calls configurable, in one frozen value with the catalogue's defaults.

Changes are recorded by the ``PolicySettings`` aggregate, so the config in force at any
time can be replayed. Choices the catalogue leaves open are marked "project default".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from rfr.domain.codec import from_data, to_data
from rfr.domain.images import ImageLevel, MopiGroup, PerceivedAgeBand
from rfr.domain.offences import CrimeTier
from rfr.domain.people import DEFAULT_STAFF_GRADE_EQUIVALENTS, Rank

A, M = PerceivedAgeBand, MopiGroup

DEFAULT_RETENTION_YEARS: Mapping[tuple[PerceivedAgeBand, MopiGroup], int | None] = {
    # R-01; None means "not enrolled".
    (A.UNDER_13, M.GROUP_3): None,
    (A.UNDER_13, M.GROUP_2): None,
    (A.UNDER_13, M.GROUP_1): None,
    (A.AGE_13_15, M.GROUP_3): None,
    (A.AGE_13_15, M.GROUP_2): 10,
    (A.AGE_13_15, M.GROUP_1): 10,
    (A.AGE_16_17, M.GROUP_3): 3,
    (A.AGE_16_17, M.GROUP_2): 10,
    (A.AGE_16_17, M.GROUP_1): 10,
    (A.ADULT, M.GROUP_3): 6,
    (A.ADULT, M.GROUP_2): 10,
    (A.ADULT, M.GROUP_1): 10,
    # Project default: age at capture unknown is treated like 13-15, the most cautious row
    # that still enrols (Annex A para 2).
    (A.UNKNOWN, M.GROUP_3): None,
    (A.UNKNOWN, M.GROUP_2): 10,
    (A.UNKNOWN, M.GROUP_1): 10,
}


@attrs.frozen
class PolicyConfig:
    # L-06: review periods of library approvals.
    substantive_review_max_months: int = 12
    temporary_first_review_max_days: int = 31
    temporary_later_review_max_months: int = 6
    # L-06: an overdue review blocks new searches after this grace (configurable).
    overdue_review_blocks_search: bool = True
    overdue_review_grace_days: int = 14
    # L-09: project default for "as soon as reasonably practical".
    urgent_written_rationale_due_days: int = 3
    # P-08: probe or library levels that need individual approval by an Inspector or above.
    inspector_approval_levels: frozenset[ImageLevel] = attrs.field(
        converter=frozenset,
        default=frozenset({ImageLevel.ELEVATED_PRIVACY, ImageLevel.NOT_EXPECTED_BY_PUBLIC}),
    )
    ucc_addition_needs_inspector: bool = True
    # U-03: months between UCC reviews, per Crime Tier.
    ucc_review_months: dict[CrimeTier, int] = attrs.field(
        factory=lambda: {CrimeTier.TIER_1: 9, CrimeTier.TIER_2: 6, CrimeTier.TIER_3: 3}
    )
    # years of retention from capture; None = not enrolled.
    retention_years: dict[tuple[PerceivedAgeBand, MopiGroup], int | None] = attrs.field(
        factory=lambda: dict(DEFAULT_RETENTION_YEARS)
    )
    # L-12, R-01..R-04, U-04: deletion deadline once data must go.
    deletion_within_days: int = 31
    # R-03a, project default for the force to confirm: the catalogue deletes a probe only from
    # its search or its removal from the cache (U-04), so a probe submitted and
    # never searched would be kept for ever; it goes this many days after its submission.
    never_searched_probe_days: int = 31
    # days without activity before a user is flagged for removal.
    inactivity_days: int = 90
    staff_grade_equivalents: dict[str, Rank] = attrs.field(
        factory=lambda: dict(DEFAULT_STAFF_GRADE_EQUIVALENTS)
    )

    def to_data(self) -> dict[str, Any]:
        return to_data(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PolicyConfig:
        return from_data(cls, dict(data))
