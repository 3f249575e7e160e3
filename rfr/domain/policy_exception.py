"""A decision outside the policy, with rationale and legal advice, queued for the SRO (A-06, 12.3)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from uuid import uuid4

from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import Decision, combine
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import OPERATIONAL_ROLES, Actor, Role
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, stated


class ExceptionStatus(enum.StrEnum):
    QUEUED_FOR_SRO = "queued_for_sro"
    ENDORSED = "endorsed"
    NOT_ENDORSED = "not_endorsed"


class PolicyException(GovernedAggregate):
    class Recorded(GovernedAggregate.Event, Aggregate.Created):
        decision: str
        legal_advice: str
        related_ids: list[str]

        def apply(self, agg: PolicyException) -> None:
            agg.decision = self.decision
            agg.rationale = self.reason
            agg.legal_advice = self.legal_advice
            agg.related_ids = tuple(self.related_ids)
            agg.recorded_by = self.acting.user_id
            agg.status = ExceptionStatus.QUEUED_FOR_SRO
            agg.sro_notes = None

    class ReviewedBySro(GovernedAggregate.Event):
        endorsed: bool

        def apply(self, agg: PolicyException) -> None:
            agg.status = ExceptionStatus.ENDORSED if self.endorsed else ExceptionStatus.NOT_ENDORSED
            agg.sro_notes = self.reason

    @classmethod
    def record(
        cls,
        actor: Actor,
        at: datetime,
        decision: str,
        rationale: str,
        legal_advice: str,
        *,
        related_ids: Sequence[str] = (),
    ) -> PolicyException:
        checks = combine(
            authorised(actor, *OPERATIONAL_ROLES),
            stated(decision, "A-06", "the decision taken"),
            stated(rationale, "A-06", "a detailed rationale"),
            stated(legal_advice, "A-06", "the legal advice"),
        )
        enforce_new("record policy exception", "PolicyException", actor, at, checks)
        return cls._create(
            cls.Recorded,
            id=uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=rationale,
            decision=decision,
            legal_advice=legal_advice,
            related_ids=list(related_ids),
        )

    def review(self, actor: Actor, at: datetime, endorsed: bool, notes: str) -> None:
        self._enforce(
            "SRO review of policy exception",
            actor,
            at,
            combine(
                authorised(actor, Role.SRO),
                Decision.check(actor.has(Role.SRO), "A-06", "policy exceptions are reviewed by the SRO"),
                Decision.check(self.status is ExceptionStatus.QUEUED_FOR_SRO, "A-06", "already reviewed"),
                stated(notes, "A-06", "the SRO's notes"),
            ),
        )
        self._record(self.ReviewedBySro, actor, at, notes, endorsed=endorsed)

    @property
    def awaiting_sro(self) -> bool:
        return self.status is ExceptionStatus.QUEUED_FOR_SRO
