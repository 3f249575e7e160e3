"""The configurable policy values in force, changed only by the SRO, every change kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
from eventsourcing.application import AggregateNotFoundError

from rfr.application.services.base import Need, UseCase
from rfr.domain.people import OPERATIONAL_ROLES, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.policy_settings import SETTINGS_ID, PolicySettings

SRO = Need((Role.SRO,))
# Administrators read the values too: inactivity and staff grades are theirs to apply.
SETTINGS_READERS = Need((*OPERATIONAL_ROLES, Role.ADMINISTRATOR))


@attrs.frozen
class ConfigChangeView:
    """One change of the policy values.

    Attributes:
        at: When the values were changed.
        by: The user id of the SRO who changed them.
    """

    at: datetime
    by: str


@attrs.frozen
class PolicySettingsView:
    """``config`` is ``PolicyConfig.to_data()``; ``established`` is false while defaults apply.

    Attributes:
        established: Whether the SRO has set the values; false while the defaults apply.
        config: Every policy value in force, by name (review periods, retention, the levels
            that need an Inspector, staff-grade equivalents...).
        changes: Every change of the values, oldest first.
    """

    established: bool
    config: dict[str, Any]
    changes: tuple[ConfigChangeView, ...]


class PolicySettingsService(UseCase):
    def change(self, acting_user: str, config: PolicyConfig, reason: str) -> PolicySettingsView:
        """Sets the values in force; the first change establishes the settings."""
        try:
            settings = self.app.get(SETTINGS_ID, PolicySettings)
        except AggregateNotFoundError:
            self._act(
                acting_user,
                "establish policy settings",
                [],
                lambda a: a.new(PolicySettings.establish(a.actor, a.at, config, reason)),
                target_name="PolicySettings",
            )
        else:
            self._act(
                acting_user,
                "change policy settings",
                [settings],
                lambda a: settings.change(a.actor, a.at, config, reason),
            )
        return self._view()

    def current(self, acting_user: str) -> PolicySettingsView:
        self._read(acting_user, "read policy settings", SETTINGS_READERS)
        return self._view()

    def _view(self) -> PolicySettingsView:
        try:
            settings = self.app.get(SETTINGS_ID, PolicySettings)
        except AggregateNotFoundError:
            return PolicySettingsView(False, PolicyConfig().to_data(), ())
        return PolicySettingsView(
            True,
            settings.config.to_data(),
            tuple(ConfigChangeView(c.at, c.by) for c in settings.history),
        )
