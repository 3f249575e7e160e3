"""The base of every aggregate: events that name who acted and why, and recorded refusals (A-01).

Every event carries ``actor`` (the Actor as plain data: user id, roles, rank, teams) and
``reason``; its ``timestamp`` is the time the caller's Clock gave the command (``at``), so
tests and replays are deterministic.

Refusals: a command first evaluates its rules into a ``Decision``. If refused, it triggers
``Refused`` (command, actor, rule ids, readable reason) on the aggregate and then raises
``PolicyRefusal``. ``Refused`` changes nothing but the aggregate's ``refusals`` list, so the
application saves the aggregate (persisting only the refusal) and re-raises.

Schema evolution: every event class is at ``class_version = 1`` (set on the base). A change
of an event's attributes bumps ``class_version`` on that class and adds a static
``upcast_v1_v2(state)`` that edits the stored dict; events hold plain data for that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, register_topic

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import Decision, PolicyRefusal
from rfr.domain.people import Actor


@attrs.frozen
class RefusalRecord:
    command: str
    actor: Actor
    rule_ids: tuple[str, ...]
    reason: str
    at: datetime


class GovernedAggregate(Aggregate):
    class_version: ClassVar[int] = 1

    class Event(Aggregate.Event):
        class_version: ClassVar[int] = 1
        actor: dict[str, Any]
        reason: str

        @property
        def acting(self) -> Actor:
            return Actor.from_data(self.actor)

    class Refused(Event):
        command: str
        rule_ids: list[str]

        def apply(self, aggregate: GovernedAggregate) -> None:
            aggregate._refusals.append(
                RefusalRecord(self.command, self.acting, tuple(self.rule_ids), self.reason, self.timestamp)
            )

    def __base_init__(self, originator_id: Any, originator_version: int, timestamp: datetime) -> None:
        # Runs before any "created" event's apply(), so every aggregate starts with a refusal list.
        super().__base_init__(originator_id, originator_version, timestamp)
        self._refusals: list[RefusalRecord] = []

    @property
    def refusals(self) -> tuple[RefusalRecord, ...]:
        return tuple(self._refusals)

    def _record(
        self, event_class: type[Event], actor: Actor, at: datetime, reason: str, **facts: Any
    ) -> None:
        self.trigger_event(
            event_class, timestamp=require_aware(at), actor=actor.to_data(), reason=reason, **facts
        )

    def _enforce(self, command: str, actor: Actor, at: datetime, decision: Decision) -> None:
        """Record and raise a refusal; return quietly when the decision allows the command."""
        if decision.allowed:
            return
        self._record(
            self.Refused, actor, at, decision.reason, command=command, rule_ids=list(decision.rule_ids)
        )
        raise PolicyRefusal(decision.rule_ids, decision.reason)

    def state(self) -> Mapping[str, Any]:
        """Everything but the bookkeeping eventsourcing keeps, for comparing states in tests and replays."""
        skip = {"_pending_events", "_version", "_modified_on", "_refusals"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


# Topics a class was stored under before it was renamed (the audit trail never changes, so
# old events keep their topics): each resolves to the class, and queries by topic ask for all.
_FORMER_TOPICS: dict[type, list[str]] = {}


def formerly(cls: type, *old_topics: str) -> None:
    """Declare the topics ``cls`` was stored under before a rename, so old events still load."""
    for topic in old_topics:
        register_topic(topic, cls)
        _FORMER_TOPICS.setdefault(cls, []).append(topic)


def stored_topics(cls: type) -> list[str]:
    """Every topic an event of ``cls`` may be stored under: its own, then any former ones."""
    return [get_topic(cls), *_FORMER_TOPICS.get(cls, ())]
