"""Why a search is made: purposes (8.2), grounds (8.3), urgency and pre-RFR checks (8.15, 8.16)."""

from __future__ import annotations

import enum

import attrs


class SearchPurpose(enum.StrEnum):
    """Policy 8.2 (a)-(d)."""

    IDENTIFY = "a_identify"
    PLACE_AT_LOCATION = "b_place_at_location"
    ASSOCIATION = "c_association"
    CONFIRM_CONDUCT = "d_confirm_conduct"


class SearchGround(enum.StrEnum):
    """Policy 8.3 (a)-(g)."""

    WANTED_BY_COURTS = "a_wanted_by_courts"
    OFFENCE = "b_offence"
    BREACH_OF_CONDITIONS = "c_breach_of_conditions"
    MISSING_INCREASED_RISK = "d_missing_increased_risk"
    RISK_OF_HARM = "e_risk_of_harm"
    DECEASED_OR_INJURED = "f_deceased_or_injured"
    VICTIM_WITNESS_ASSOCIATE = "g_victim_witness_associate"


class UrgencyBasis(enum.StrEnum):
    """The two limbs of the policy's definition of Urgency (3.1)."""

    RISK_TO_LIFE_OR_HARM = "risk_to_life_or_harm"
    OPPORTUNITY_LOST = "opportunity_lost"


@attrs.frozen
class Urgency:
    """A recorded Urgency; ``search_all`` asks to skip the progressive order (S-02, 5.17)."""

    basis: UrgencyBasis
    rationale: str
    search_all: bool = False

    @property
    def stated(self) -> bool:
        return bool(self.rationale.strip())


class PreRfrOption(enum.StrEnum):
    """Less intrusive options of 8.16."""

    OTHER_LINES_OF_INVESTIGATION = "other_lines_of_investigation"
    LOCAL_ENQUIRIES = "local_enquiries"
    OPEN_SOURCE_CHECKS = "open_source_checks"
    OTHER = "other"


@attrs.frozen
class PreRfrChecks:
    """Which less intrusive options were tried and why they did not suffice (P-02)."""

    tried: frozenset[PreRfrOption] = attrs.field(converter=frozenset)
    why_insufficient: str

    @property
    def stated(self) -> bool:
        return bool(self.tried) and bool(self.why_insufficient.strip())
