"""Where a refusal goes when the command had no aggregate to act on (A-01).

An invalid Form 1/2 application, a Form 3 that cannot be accepted, a search request that
cannot be opened, a registration by a non-administrator: none of these has a target
aggregate yet, so the refusal is recorded by creating a ``RefusedAttempt`` aggregate of its
own (one per attempt). ``refuse_new`` creates it and raises ``PolicyRefusal`` carrying it
in ``record``; the application saves ``record`` and re-raises.
"""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn
from uuid import uuid4

from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import Decision, PolicyRefusal
from rfr.domain.governed import GovernedAggregate, RefusalRecord
from rfr.domain.people import Actor


class RefusedAttempt(GovernedAggregate):
    class AttemptRefused(GovernedAggregate.Event, Aggregate.Created):
        command: str
        target: str
        rule_ids: list[str]

        def apply(self, aggregate: RefusedAttempt) -> None:
            aggregate.command = self.command
            aggregate.target = self.target
            aggregate._refusals.append(
                RefusalRecord(self.command, self.acting, tuple(self.rule_ids), self.reason, self.timestamp)
            )

    @classmethod
    def record(
        cls, command: str, target: str, actor: Actor, at: datetime, decision: Decision
    ) -> RefusedAttempt:
        return cls._create(
            cls.AttemptRefused,
            id=uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=decision.reason,
            command=command,
            target=target,
            rule_ids=list(decision.rule_ids),
        )


def refuse_new(command: str, target: str, actor: Actor, at: datetime, decision: Decision) -> NoReturn:
    attempt = RefusedAttempt.record(command, target, actor, at, decision)
    raise PolicyRefusal(decision.rule_ids, decision.reason, record=attempt)


def enforce_new(command: str, target: str, actor: Actor, at: datetime, decision: Decision) -> None:
    if not decision.allowed:
        refuse_new(command, target, actor, at, decision)
