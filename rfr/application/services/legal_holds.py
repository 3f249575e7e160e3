"""Legal holds (R-04): a recorded hold on a probe or a library suspends its deletion until lifted.

Who places and lifts a hold. Policy 7.1(a) keeps RFR data in accordance with the Data
Protection Act 2018, MOPI and the Criminal Procedure and Investigations Act 1996
(disclosure), and with the complaints and conduct investigation policies. A hold keeps
biometric data past the limits 7.1(b) sets and stops the deletions that 7.1(b)(ii)-(iv)
promise within 31 days, so it is a governance decision about retention, not a step of a
search: the Operational Lead for FR, who keeps the records of the libraries' reviews, or
the SRO, accountable for RFR, place and lift holds. The officer who learns of a disclosure
obligation, complaint or conduct matter asks them; an Administrator runs the system and
decides nothing about retention. Every operational role and Administrators read a hold:
Administrators purge library images and must see why a purge is refused.

What a hold blocks: every purge of the held probe, or of any image of the held library, is
refused by the domain under R-04 and the refusal recorded (A-01), until the hold is lifted
with a reason. The retention sweep reports held records as held instead of deleting them.
"""

from __future__ import annotations

import enum
from datetime import date
from uuid import UUID

import attrs

from rfr.application.services.base import Need, UseCase
from rfr.domain.forms import LegalHold
from rfr.domain.legal_holds import LegallyHoldable
from rfr.domain.people import OPERATIONAL_ROLES, Role
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary

HOLDERS = Need((Role.OPERATIONAL_LEAD, Role.SRO))
HOLD_READERS = Need((*OPERATIONAL_ROLES, Role.ADMINISTRATOR))


class HoldSubject(enum.StrEnum):
    """What a hold is placed on: one probe, or a whole library (every image in it)."""

    PROBE = "probe"
    LIBRARY = "library"


class HoldKind(enum.StrEnum):
    """The matters 7.1(a) names that keep data beyond its retention."""

    DISCLOSURE = "disclosure"  # Criminal Procedure and Investigations Act 1996
    COMPLAINT = "complaint"
    CONDUCT_INVESTIGATION = "conduct_investigation"


_AGGREGATES: dict[HoldSubject, type[LegallyHoldable]] = {
    HoldSubject.PROBE: ProbeImage,
    HoldSubject.LIBRARY: ReferenceLibrary,
}


@attrs.frozen
class LegalHoldView:
    """The hold in place on a probe or library; ``held`` false with no other field: none.

    Attributes:
        subject: What is held: ``probe`` or ``library``.
        subject_id: The probe's or library's id.
        held: Whether a legal hold is in place: nothing of it is deleted until lifted (R-04).
        kind: The matter that keeps the data (``disclosure``, ``complaint``,
            ``conduct_investigation``), or null with no hold.
        reason: The case, complaint or investigation named when the hold was placed, or null.
        placed_on: The date the hold was placed, or null.
    """

    subject: str
    subject_id: UUID
    held: bool
    kind: str | None = None
    reason: str | None = None
    placed_on: date | None = None

    @classmethod
    def of(cls, subject: HoldSubject, target: LegallyHoldable) -> LegalHoldView:
        hold: LegalHold | None = target.legal_hold
        if hold is None:
            return cls(subject.value, target.id, False)
        return cls(subject.value, target.id, True, hold.kind, hold.reason, hold.placed_on)


class LegalHolds(UseCase):
    def place(
        self, acting_user: str, subject: HoldSubject, subject_id: UUID | str, kind: HoldKind, reason: str
    ) -> LegalHoldView:
        """R-04: from now on nothing of ``subject_id`` is deleted until the hold is lifted."""
        target = self.load(subject_id, _AGGREGATES[subject])
        self._act(
            acting_user,
            "place legal hold",
            [target],
            lambda a: target.place_legal_hold(
                a.actor, a.at, LegalHold(reason=reason, kind=HoldKind(kind).value, placed_on=a.at.date())
            ),
        )
        return LegalHoldView.of(subject, target)

    def lift(
        self, acting_user: str, subject: HoldSubject, subject_id: UUID | str, reason: str
    ) -> LegalHoldView:
        """R-04: deletion resumes as the retention rules say; the reason is recorded."""
        target = self.load(subject_id, _AGGREGATES[subject])
        self._act(
            acting_user,
            "lift legal hold",
            [target],
            lambda a: target.lift_legal_hold(a.actor, a.at, reason),
        )
        return LegalHoldView.of(subject, target)

    def get(self, acting_user: str, subject: HoldSubject, subject_id: UUID | str) -> LegalHoldView:
        self._read(acting_user, "read legal hold", HOLD_READERS, target=f"{subject.value} {subject_id}")
        return LegalHoldView.of(subject, self.load(subject_id, _AGGREGATES[subject]))
