"""Policy exceptions (A-06): a decision outside the policy, recorded and queued for the SRO."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import attrs

from rfr.application.services.base import Need, Page, UseCase, list_ids
from rfr.domain.people import OPERATIONAL_ROLES, Role
from rfr.domain.policy_exception import PolicyException

RECORDERS = Need(OPERATIONAL_ROLES)
SRO = Need((Role.SRO,))
EXCEPTION_READERS = Need(OPERATIONAL_ROLES)


@attrs.frozen
class PolicyExceptionView:
    """A decision outside the policy, recorded and cited to the SRO (A-06, policy 12.3).

    Attributes:
        id: The exception's id.
        decision: The decision taken outside the policy.
        rationale: Its detailed rationale.
        legal_advice: The legal advice it rests on.
        related_ids: The ids of the records it concerns.
        recorded_by: The user id of whoever recorded it.
        recorded_at: When it was recorded.
        status: ``queued_for_sro``, ``endorsed`` or ``not_endorsed``.
        awaiting_sro: Whether it still awaits the SRO's review.
        sro_notes: The SRO's notes, once reviewed; else null.
    """

    id: UUID
    decision: str
    rationale: str
    legal_advice: str
    related_ids: tuple[str, ...]
    recorded_by: str
    recorded_at: datetime
    status: str
    awaiting_sro: bool
    sro_notes: str | None

    @classmethod
    def of(cls, exception: PolicyException) -> PolicyExceptionView:
        return cls(
            id=exception.id,
            decision=exception.decision,
            rationale=exception.rationale,
            legal_advice=exception.legal_advice,
            related_ids=tuple(exception.related_ids),
            recorded_by=exception.recorded_by,
            recorded_at=exception.created_on,
            status=exception.status.value,
            awaiting_sro=exception.awaiting_sro,
            sro_notes=exception.sro_notes,
        )


class PolicyExceptions(UseCase):
    def record(
        self,
        acting_user: str,
        decision: str,
        rationale: str,
        legal_advice: str,
        *,
        related_ids: Iterable[str] = (),
    ) -> PolicyExceptionView:
        related = tuple(related_ids)
        exception = self._act(
            acting_user,
            "record policy exception",
            [],
            lambda a: a.new(
                PolicyException.record(a.actor, a.at, decision, rationale, legal_advice, related_ids=related)
            ),
            target_name="PolicyException",
        )
        return PolicyExceptionView.of(exception)

    def review(
        self, acting_user: str, exception_id: UUID | str, endorsed: bool, notes: str
    ) -> PolicyExceptionView:
        """The SRO endorses the exception or not, with notes."""
        exception = self.load(exception_id, PolicyException)
        self._act(
            acting_user,
            "SRO review of policy exception",
            [exception],
            lambda a: exception.review(a.actor, a.at, endorsed, notes),
        )
        return PolicyExceptionView.of(exception)

    def get(self, acting_user: str, exception_id: UUID | str) -> PolicyExceptionView:
        self._read(
            acting_user, "read policy exception", EXCEPTION_READERS, target=f"PolicyException {exception_id}"
        )
        return PolicyExceptionView.of(self.load(exception_id, PolicyException))

    def list(
        self, acting_user: str, *, after: int = 0, limit: int = 50, awaiting_sro: bool | None = None
    ) -> Page[PolicyExceptionView]:
        """In order of recording; ``awaiting_sro=True`` is the SRO's queue (filtered per page)."""
        self._read(acting_user, "list policy exceptions", EXCEPTION_READERS)
        ids, next_after = list_ids(self.app, PolicyException.Recorded, after=after, limit=limit)
        views = (PolicyExceptionView.of(self.load(i, PolicyException)) for i in ids)
        return Page(
            tuple(v for v in views if awaiting_sro is None or v.awaiting_sro == awaiting_sro), next_after
        )
