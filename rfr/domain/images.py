"""Facts about images: privacy level (Annex A), perceived age, MOPI group, vulnerability."""

from __future__ import annotations

import enum

import attrs


class ImageLevel(enum.IntEnum):
    """Annex A Image Matrix: 1 is least intrusive, 5 most."""

    COMPLIANT_POLICE = 1
    NON_COMPLIANT_POLICE = 2
    PUBLIC_WOULD_EXPECT = 3
    ELEVATED_PRIVACY = 4
    NOT_EXPECTED_BY_PUBLIC = 5


def effective_level(approved: ImageLevel, proposed: ImageLevel | None) -> ImageLevel:
    """A user may raise a level for one search, never lower it; in doubt the higher applies (L-11)."""
    if proposed is None:
        return approved
    return max(approved, proposed)


class PerceivedAgeBand(enum.StrEnum):
    """Perceived age of a subject (probe: at the time of search; library image: at capture).

    ``UNKNOWN`` exists because library images and some probes come without a usable age;
    rules treat it cautiously (Annex A para 2): a probe of unknown age is handled like the
    13-15 band, a library image of unknown age uses its own configurable retention row.
    """

    UNDER_13 = "under_13"
    AGE_13_15 = "13_15"
    AGE_16_17 = "16_17"
    ADULT = "18_plus"
    UNKNOWN = "unknown"


class MopiGroup(enum.IntEnum):
    """MOPI retention group; 1 is public protection matters, 3 the least serious."""

    GROUP_1 = 1
    GROUP_2 = 2
    GROUP_3 = 3


@attrs.frozen
class VulnerabilityFlags:
    """Policy 4.7 safeguards beyond age (P-06)."""

    suspected_relevant_disability: bool = False
    suspected_predates_gender_reassignment: bool = False

    @property
    def any(self) -> bool:
        return self.suspected_relevant_disability or self.suspected_predates_gender_reassignment
