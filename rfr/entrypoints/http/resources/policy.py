"""The policy values in force (PolicyConfig): read by the roles that apply them, changed by the SRO;
and the Annex C offence codes a Form 3 names (C-01, C-02), read by the same roles."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import attrs
import msgspec
from litestar import Router, get, put
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import JSONBody

from rfr.application.services.access import Principal
from rfr.application.services.offences import OFFENCE_READERS, OffenceCodes, OffenceView
from rfr.application.services.policy import SETTINGS_READERS, SRO, PolicySettingsService, PolicySettingsView
from rfr.domain.policy_config import PolicyConfig
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case

CONFIG_NAMES = tuple(f.name for f in attrs.fields(PolicyConfig))
ConfigName = Literal[CONFIG_NAMES]  # type: ignore[valid-type]


class SettingsChange(msgspec.Struct, forbid_unknown_fields=True):
    """``config`` names only the values to change, in the form ``GET`` shows them.

    Attributes:
        config: The policy values to change, by name, as GET /policy/settings shows them
            under ``config``; every other value keeps its setting. An unknown name is refused.
        reason: Why the values change, in the SRO's words; recorded.
    """

    # Only the names of the policy's values, each at most once (PolicyConfig checks each value).
    config: Annotated[dict[ConfigName, Any], msgspec.Meta(max_length=len(CONFIG_NAMES))]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


def _policy(ctx: HttpContext) -> PolicySettingsService:
    return ctx.services.policy_settings


@get(
    "/policy/settings",
    summary="Policy values in force",
    sync_to_thread=True,
    **allow(*SETTINGS_READERS.roles),
)
def read_settings(
    principal: NamedDependency[Principal], policy: NamedDependency[PolicySettingsService]
) -> PolicySettingsView:
    """The values in force and who changed them when (defaults until the SRO establishes them)."""
    return policy.current(principal.user_id)


@put("/policy/settings", summary="Change policy values (SRO)", sync_to_thread=True, **allow(*SRO.roles))
def change_settings(
    principal: NamedDependency[Principal],
    policy: NamedDependency[PolicySettingsService],
    data: JSONBody[SettingsChange],
) -> PolicySettingsView:
    """Change some policy values; every other value keeps its current setting."""
    current = policy.current(principal.user_id).config
    try:
        config = PolicyConfig.from_data({**current, **data.config})
    except (KeyError, TypeError, ValueError) as e:
        raise _invalid([f"config.{k}" for k in sorted(data.config)], f"invalid value: {e}") from None
    return policy.change(principal.user_id, config, data.reason)


@get(
    "/policy/offences",
    summary="Offence codes of Annex C (C-01, C-02)",
    sync_to_thread=True,
    **allow(*OFFENCE_READERS.roles),
)
def list_offences(
    principal: NamedDependency[Principal], offences: NamedDependency[OffenceCodes]
) -> list[OffenceView]:
    """Every code a Form 3 may give as ``offence_code``: code, label, Crime Tier, recordable,
    MOPI Group 1. ``other`` names an offence not listed, described in ``offence_description``:
    Tier 3, not recordable, not MOPI Group 1, whatever the description says (C-02). Any other
    code is refused under C-01."""
    return list(offences.list(principal.user_id))


def _offences(ctx: HttpContext) -> OffenceCodes:
    return ctx.services.offences


def _invalid(fields: list[str], message: str) -> ValidationException:
    return ValidationException(
        message, extra=[{"key": f, "source": "body", "message": message} for f in fields]
    )


ROUTES = [
    Router(
        path="/",
        route_handlers=[read_settings, change_settings, list_offences],
        dependencies={"policy": use_case(_policy), "offences": use_case(_offences)},
        tags=["policy"],
    )
]
