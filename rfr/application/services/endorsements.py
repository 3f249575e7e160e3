"""Individual endorsements of a probe (P-04, P-06, P-08) and the technical advice P-06 needs first."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import attrs

from rfr.application.services.base import Need, Page, UseCase, check_page
from rfr.domain.people import OPERATIONAL_ROLES, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage
from rfr.domain.rules_probe import EndorsementKind

# Advice comes from the facial recognition team: users and the lead who runs them.
ADVISERS = Need((Role.RFR_USER, Role.OPERATIONAL_LEAD))
ENDORSEMENT_READERS = Need(OPERATIONAL_ROLES)


# An approving officer. The rank is the domain's to decide, under the endorsement's own rule:
# P-04 in ``rules_probe.under_16_safeguards`` (which also refuses to endorse a search P-04
# forbids), P-06 and P-08 in ``inspector_or_above``.
ENDORSERS = Need((Role.APPROVING_OFFICER,))


@attrs.frozen
class EndorsementView:
    """An Inspector's endorsement of a probe.

    Attributes:
        kind: The rule it answers: ``P-04``, ``P-06`` or ``P-08``.
        by: The user id of the endorsing officer.
        rank: The officer's rank when endorsing (1 sergeant to 5 chief superintendent), or null.
        rationale: The officer's reasons.
        at: When the endorsement was recorded.
    """

    kind: str
    by: str
    rank: int | None
    rationale: str
    at: datetime


@attrs.frozen
class ProbeGovernanceView:
    """The governance facts of a probe: what it needs before a search, and what it has.

    Attributes:
        id: The probe's id.
        case_reference: The case reference of its Form 3.
        requester_id: The user id of whoever submitted it.
        submitted_at: When it was submitted.
        perceived_age: The perceived age band of the person shown.
        level: Its level in the Annex A Image Matrix (1-5).
        crime_tier: The Annex C crime tier (1, 2 or 3) of its Form 3 offence; no offence, or
            ``other``, is tier 3 (C-01).
        purposes: The search purposes of its Form 3 (policy 8.2), in name order.
        grounds: The grounds of its Form 3 (policy 8.3), in name order.
        required_endorsements: The endorsements it needs: ``P-04``, ``P-06``, ``P-08``.
        missing_endorsements: Those not given yet.
        endorsements: The endorsements given, by rule.
        technical_advice: The technical advice recorded (P-06), or null.
        in_ucc: Whether it is held in the unresolved crime cache.
        purged: Whether the image and its templates were erased.
    """

    id: UUID
    case_reference: str
    requester_id: str
    submitted_at: datetime
    perceived_age: str
    level: int
    crime_tier: int
    purposes: tuple[str, ...]
    grounds: tuple[str, ...]
    required_endorsements: tuple[str, ...]
    missing_endorsements: tuple[str, ...]
    endorsements: tuple[EndorsementView, ...]
    technical_advice: str | None
    in_ucc: bool
    purged: bool

    @classmethod
    def of(cls, probe: ProbeImage, config: PolicyConfig) -> ProbeGovernanceView:
        return cls(
            id=probe.id,
            case_reference=probe.form.case_reference,
            requester_id=probe.requester_id,
            submitted_at=probe.submitted_at,
            perceived_age=probe.perceived_age.value,
            level=int(probe.level),
            crime_tier=int(probe.crime_tier),
            purposes=tuple(sorted(p.value for p in probe.form.purposes)),
            grounds=tuple(sorted(g.value for g in probe.form.grounds)),
            required_endorsements=tuple(sorted(k.value for k in probe.required_endorsements(config))),
            missing_endorsements=tuple(sorted(k.value for k in probe.missing_endorsements(config))),
            endorsements=tuple(
                EndorsementView(e.kind.value, e.by, e.rank, e.rationale, e.at)
                for e in sorted(probe.endorsements.values(), key=lambda e: e.kind)
            ),
            technical_advice=probe.technical_advice,
            in_ucc=probe.ucc is not None and probe.ucc.removed_at is None,
            purged=probe.purged_at is not None,
        )


class ProbeEndorsements(UseCase):
    def endorse(
        self, acting_user: str, probe_id: UUID | str, kind: EndorsementKind, rationale: str
    ) -> ProbeGovernanceView:
        """An Inspector or above, not the requester (P-12), endorses under P-04, P-06 or P-08."""
        probe = self.load(probe_id, ProbeImage)
        self._act(
            acting_user,
            f"endorse ({kind.value})",
            [probe],
            lambda a: probe.endorse(a.actor, a.at, kind, rationale, a.config),
        )
        return ProbeGovernanceView.of(probe, self.config())

    def record_technical_advice(
        self, acting_user: str, probe_id: UUID | str, advice: str
    ) -> ProbeGovernanceView:
        """P-06: the advice that must precede a vulnerability endorsement."""
        probe = self.load(probe_id, ProbeImage)
        self._act(
            acting_user,
            "record technical advice",
            [probe],
            lambda a: probe.record_technical_advice(a.actor, a.at, advice),
        )
        return ProbeGovernanceView.of(probe, self.config())

    def awaiting(self, acting_user: str, *, after: int = 0, limit: int = 50) -> Page[ProbeGovernanceView]:
        """The probes missing an endorsement (P-04, P-06, P-08), oldest first: an approving
        officer's queue. The projection finds them; each is shown as the domain decides it now."""
        self._read(acting_user, "list probes awaiting endorsement", ENDORSEMENT_READERS, target="ProbeImage")
        check_page(after, limit)
        config = self.config()
        ids, next_after = self.app.endorsement_queue.awaiting(
            [int(level) for level in config.inspector_approval_levels], after=after, limit=limit
        )
        views = (ProbeGovernanceView.of(self.load(i, ProbeImage), config) for i in ids)
        return Page(tuple(v for v in views if v.missing_endorsements), next_after)

    def get(self, acting_user: str, probe_id: UUID | str) -> ProbeGovernanceView:
        self._read(acting_user, "read probe governance", ENDORSEMENT_READERS, target=f"ProbeImage {probe_id}")
        return ProbeGovernanceView.of(self.load(probe_id, ProbeImage), self.config())
