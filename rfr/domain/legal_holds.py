"""R-04: a recorded legal hold suspends deletion until it is lifted, with the reason.

Probes and library images are held the same way, so both aggregates take this base. The
event classes declared here are re-declared by eventsourcing on each concrete aggregate, so
their stored topics name the aggregate (``ProbeImage.LegalHoldPlaced``).
"""

from __future__ import annotations

from datetime import datetime

from rfr.domain.codec import from_data, to_data
from rfr.domain.decisions import Decision, combine
from rfr.domain.forms import LegalHold
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import Actor, Role
from rfr.domain.rules_access import authorised, stated

# the Operational Lead or the SRO place and lift legal holds (the policy leaves it open; see
# the closing notes of issue 2 for the force to confirm).
HOLDER_ROLES = (Role.OPERATIONAL_LEAD, Role.SRO)


class LegallyHoldable(GovernedAggregate):
    # Subclasses set ``self.legal_hold = None`` when created; no class-level annotation, since
    # eventsourcing would take it for a constructor argument.

    class LegalHoldPlaced(GovernedAggregate.Event):
        hold: dict

        def apply(self, agg: LegallyHoldable) -> None:
            agg.legal_hold = from_data(LegalHold, self.hold)

    class LegalHoldLifted(GovernedAggregate.Event):
        def apply(self, agg: LegallyHoldable) -> None:
            agg.legal_hold = None

    def place_legal_hold(self, actor: Actor, at: datetime, hold: LegalHold) -> None:
        """R-04: disclosure, complaint or conduct matters suspend deletion until lifted."""
        self._enforce(
            "place legal hold",
            actor,
            at,
            combine(
                authorised(actor, *HOLDER_ROLES),
                Decision.check(self.legal_hold is None, "R-04", "a legal hold is already in place"),
                Decision.check(not self._erased(), "R-04", "nothing is left to hold: already deleted"),
                stated(hold.reason, "R-04", "the reason for the hold"),
                stated(hold.kind, "R-04", "the kind of hold"),
            ),
        )
        self._record(self.LegalHoldPlaced, actor, at, hold.reason, hold=to_data(hold))

    def lift_legal_hold(self, actor: Actor, at: datetime, reason: str) -> None:
        self._enforce(
            "lift legal hold",
            actor,
            at,
            combine(
                authorised(actor, *HOLDER_ROLES),
                Decision.check(self.legal_hold is not None, "R-04", "no legal hold to lift"),
                stated(reason, "R-04", "the reason for lifting"),
            ),
        )
        self._record(self.LegalHoldLifted, actor, at, reason)

    def _erased(self) -> bool:
        """True once everything a hold could keep is gone; aggregates that erase say when."""
        return False

    def _not_held(self) -> Decision:
        return Decision.check(self.legal_hold is None, "R-04", "a legal hold suspends deletion")
