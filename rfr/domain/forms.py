"""The policy's forms as values: Form 1/2 applications, approval records (L-04, L-05), Form 3 (P-01).

Forms may be built incomplete (an officer's draft); the rules in ``rules_*`` modules say
what is missing, and an incomplete form submitted is refused naming L-04 or P-01.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import attrs

from rfr.domain.images import ImageLevel, PerceivedAgeBand, VulnerabilityFlags
from rfr.domain.search_terms import PreRfrChecks, SearchGround, SearchPurpose, Urgency


class LibraryKind(enum.StrEnum):
    SUBSTANTIVE = "substantive"
    TEMPORARY = "temporary"

    @property
    def form(self) -> str:
        return "Form 1" if self is LibraryKind.SUBSTANTIVE else "Form 2"


@attrs.frozen
class LibraryApplication:
    """Form 1 (substantive) or Form 2 (temporary): the parts of policy 5.7(a)-(e), all required (L-04)."""

    kind: LibraryKind
    library_name: str
    legal_basis: str
    how_obtained_and_privacy_expectations: str
    composition_quality_and_suitability: str
    elevated_privacy_or_human_rights: str
    necessity_and_proportionality: str
    monitoring_and_assurance: str

    REQUIRED_PARTS = (
        "library_name",
        "legal_basis",
        "how_obtained_and_privacy_expectations",
        "composition_quality_and_suitability",
        "elevated_privacy_or_human_rights",
        "necessity_and_proportionality",
        "monitoring_and_assurance",
    )

    def missing_parts(self) -> tuple[str, ...]:
        return tuple(p for p in self.REQUIRED_PARTS if not str(getattr(self, p)).strip())


@attrs.frozen
class AccessRestriction:
    """Who may search (and list) a library (L-05 security/access, enforced by L-13).

    Empty ``teams`` and ``users`` mean every authorised RFR User: that must be said
    explicitly with ``all_rfr_users`` so an approval never grants open access by omission.
    """

    teams: frozenset[str] = attrs.field(converter=frozenset, factory=frozenset)
    users: frozenset[str] = attrs.field(converter=frozenset, factory=frozenset)
    all_rfr_users: bool = False

    @property
    def stated(self) -> bool:
        return self.all_rfr_users or bool(self.teams) or bool(self.users)


@attrs.frozen
class ApprovalRecord:
    """What an approval records (policy 5.7(f), L-05)."""

    rationale: str
    access: AccessRestriction
    image_level: ImageLevel
    conditions: str
    purposes: frozenset[SearchPurpose] = attrs.field(converter=frozenset)
    review_due: datetime
    expires_at: datetime | None = None

    def missing_parts(self, *, rationale_required: bool = True) -> tuple[str, ...]:
        missing = []
        if rationale_required and not self.rationale.strip():
            missing.append("rationale")
        if not self.access.stated:
            missing.append("access")
        if not self.conditions.strip():
            missing.append("conditions")
        if not self.purposes:
            missing.append("purposes")
        return tuple(missing)


class ReviewOutcome(enum.StrEnum):
    """Outcome of a review of a library approval, UCC entry or urgent approval (L-07, L-10)."""

    CONTINUE = "continue"
    VARY = "vary"
    STOP = "stop"


@attrs.frozen
class GroundGRationale:
    """Extra case for a victim, witness or associate (8.11, 8.12), required by P-07."""

    why_necessary: str
    how_match_advances_investigation: str
    less_intrusive_methods: str
    importance_against_threat_harm_risk: str
    privacy_expectations: str

    def missing_parts(self) -> tuple[str, ...]:
        return tuple(f.name for f in attrs.fields(type(self)) if not getattr(self, f.name).strip())


@attrs.frozen
class Form3:
    """The search request form for one probe image (P-01), with P-02, P-06, P-07 content.

    ``offence_code`` is a code of ``offences.OFFENCES`` (C-01); ``other`` names an offence not
    listed in Annex C, which ``offence_description`` then describes. The description is for
    people: no rule reads a tier, "recordable" or MOPI group from it (C-02).
    """

    case_reference: str
    purposes: frozenset[SearchPurpose] = attrs.field(converter=frozenset)
    grounds: frozenset[SearchGround] = attrs.field(converter=frozenset)
    image_level: ImageLevel
    necessity_and_proportionality: str
    image_source: str
    source_sensitivity: str
    most_current_image_confirmed: bool
    perceived_age: PerceivedAgeBand
    offence_code: str | None = None
    offence_description: str | None = None
    vulnerability: VulnerabilityFlags = attrs.field(factory=VulnerabilityFlags)
    pre_rfr_checks: PreRfrChecks | None = None
    urgency: Urgency | None = None
    ground_g_rationale: GroundGRationale | None = None
    collection_id: str | None = None


@attrs.frozen
class Dissemination:
    """A record of sharing a match report (S-07). ``items`` name what was shared."""

    recipient: str
    legal_basis: str
    safeguards_acknowledged: bool
    items: tuple[str, ...] = attrs.field(converter=tuple, default=("match_report",))


NEVER_DISSEMINATED = frozenset({"template", "templates", "biometric_template"})


@attrs.frozen
class LegalHold:
    """A hold that suspends deletion until lifted (R-04)."""

    reason: str
    kind: str
    placed_on: date | None = None
