"""Reading the audit trail is itself audited (A-03): one record per query, naming what was seen.

Each audit query creates its own ``AuditAccess`` aggregate (the query and its parameters,
the items shown, who asked and why). It is saved before the answer leaves the system, so
there is no way to see audit data without leaving a trace. A refused query (not an
Auditor, or disabled, or untrained) leaves a ``RefusedAttempt`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from uuid import uuid4

from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import Decision, combine
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import Actor, Role
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, stated


def may_query_audit(actor: Actor, query: str, reason: str) -> Decision:
    """A-03: only an enabled, trained Auditor queries the audit trail, and says why."""
    return combine(
        authorised(actor),
        Decision.check(actor.has(Role.AUDITOR), "A-03", "only an Auditor reads the audit trail"),
        stated(query, "A-03", "the audit query"),
        stated(reason, "A-03", "the reason for the audit query"),
    )


class AuditAccess(GovernedAggregate):
    class Queried(GovernedAggregate.Event, Aggregate.Created):
        query: str
        parameters: dict[str, str]
        items: list[str]

        def apply(self, agg: AuditAccess) -> None:
            agg.query = self.query
            agg.parameters = dict(self.parameters)
            agg.items = tuple(self.items)
            agg.by = self.acting.user_id

    @classmethod
    def record(
        cls,
        actor: Actor,
        at: datetime,
        query: str,
        *,
        parameters: Mapping[str, str],
        items: Iterable[str],
        reason: str,
    ) -> AuditAccess:
        """A-03: only an Auditor queries the audit trail; ``items`` names every item shown."""
        decision = may_query_audit(actor, query, reason)
        enforce_new(f"audit query {query}", "AuditAccess", actor, at, decision)
        return cls._create(
            cls.Queried,
            id=uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=reason,
            query=query,
            parameters={str(k): str(v) for k, v in parameters.items()},
            items=[str(i) for i in items],
        )
