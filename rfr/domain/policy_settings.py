"""The PolicyConfig in force, each change an event, so any past configuration can be replayed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import attrs
from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import combine
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import Actor, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, stated

SETTINGS_ID: UUID = uuid5(NAMESPACE_URL, "urn:rfr:policy-settings")


@attrs.frozen
class ConfigChange:
    at: datetime
    by: str
    config: PolicyConfig


class PolicySettings(GovernedAggregate):
    """One per deployment (fixed id). Only the SRO changes policy values."""

    class Established(GovernedAggregate.Event, Aggregate.Created):
        config: dict[str, Any]

        def apply(self, agg: PolicySettings) -> None:
            agg.history = [
                ConfigChange(self.timestamp, self.acting.user_id, PolicyConfig.from_data(self.config))
            ]

    class Changed(GovernedAggregate.Event):
        config: dict[str, Any]

        def apply(self, agg: PolicySettings) -> None:
            agg.history.append(
                ConfigChange(self.timestamp, self.acting.user_id, PolicyConfig.from_data(self.config))
            )

    @classmethod
    def establish(cls, actor: Actor, at: datetime, config: PolicyConfig, reason: str) -> PolicySettings:
        decision = combine(authorised(actor, Role.SRO), stated(reason, "A-01", "the reason"))
        enforce_new("establish policy settings", "PolicySettings", actor, at, decision)
        return cls._create(
            cls.Established,
            id=SETTINGS_ID,
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=reason,
            config=config.to_data(),
        )

    def change(self, actor: Actor, at: datetime, config: PolicyConfig, reason: str) -> None:
        self._enforce(
            "change policy settings",
            actor,
            at,
            combine(authorised(actor, Role.SRO), stated(reason, "A-01", "the reason for the change")),
        )
        self._record(self.Changed, actor, at, reason, config=config.to_data())

    @property
    def config(self) -> PolicyConfig:
        return self.history[-1].config

    def config_at(self, t: datetime) -> PolicyConfig | None:
        """The configuration in force at ``t`` (None before it was established)."""
        current = None
        for change in self.history:
            if change.at <= t:
                current = change.config
        return current
