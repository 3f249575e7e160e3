"""The published offence codes of Annex C (C-01, C-02), read by those who read the policy."""

from __future__ import annotations

import pytest
from app_world import World

from rfr.application.services.base import list_ids
from rfr.application.services.offences import OffenceCodes
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.offences import OFFENCE_CODES, OTHER_CODE
from rfr.domain.refused_attempt import RefusedAttempt


def _refused(call, rule_ids: tuple[str, ...]) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as caught:
        call()
    assert caught.value.rule_ids == rule_ids, caught.value
    return caught.value


def test_C01_C02_the_offence_codes_are_read_by_those_who_read_policy(world: World) -> None:
    """C-01, C-02: the table as published; an Auditor is refused and the refusal recorded (A-05)."""
    codes = OffenceCodes(world.app, world.clock)
    table = codes.list("analyst")
    assert tuple(o.code for o in table) == OFFENCE_CODES
    other = table[-1]
    assert (other.code, other.tier, other.recordable, other.mopi_group_1_public_protection, other.listed) == (
        OTHER_CODE,
        3,
        False,
        False,
        False,
    )
    murder = next(o for o in table if o.code == "murder")
    assert (murder.tier, murder.recordable, murder.mopi_group_1_public_protection) == (1, True, True)
    assert codes.list("admin2") == table
    before = len(list_ids(world.app, RefusedAttempt.AttemptRefused, limit=500)[0])
    _refused(lambda: codes.list("auditor"), ("A-05",))
    assert len(list_ids(world.app, RefusedAttempt.AttemptRefused, limit=500)[0]) == before + 1
