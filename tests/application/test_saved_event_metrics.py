"""Live metrics count what a save stored, once, where it is stored (ADR 0024).

The application tells its observers the events of each save only after the store took them, so
a refusal (A-01) is counted once for each rule it names whichever path recorded it, a save that
lost a race counts nothing, and an observer that fails cannot undo or fail the save.
"""

from __future__ import annotations

from typing import Any

import pytest
from app_world import World

from rfr.application.app import ConcurrentModification
from rfr.application.services.base import record_refusal
from rfr.domain.decisions import Decision, PolicyRefusal
from rfr.domain.user import User
from rfr.infrastructure.metrics import REGISTRY, count_stored_events, rule_label


def refusals(rule: str) -> float:
    return REGISTRY.get_sample_value("rfr_refusals_total", {"rule": rule}) or 0.0


def test_A01_a_refusal_is_counted_once_for_each_rule_it_names_when_it_is_stored(world: World) -> None:
    world.app.observe(count_stored_events)
    world.app.observe(count_stored_events)  # asked twice (two Services over one app): counted once
    before = refusals("A-05")
    with pytest.raises(PolicyRefusal) as refused:
        world.users.disable("analyst", "analyst-2", "not theirs to do")
    assert refused.value.rule_ids == ("A-05",)
    assert refusals("A-05") == before + 1


def test_a_save_that_lost_a_race_counts_nothing(world: World) -> None:
    seen: list[Any] = []
    world.app.observe(seen.extend)
    first = world.app.get(User.id_for("analyst"), User)
    second = world.app.get(User.id_for("analyst"), User)
    actor = world.actor("admin")
    for copy in (first, second):
        record_refusal(copy, "test", actor, world.clock.now(), Decision.refuse("A-05", "a test refusal"))
    world.app.save(first)
    assert [type(e) for e in seen] == [User.Refused]
    with pytest.raises(ConcurrentModification):
        world.app.save(second)
    assert len(seen) == 1


def test_an_observer_that_fails_does_not_fail_the_save(world: World) -> None:
    def broken(events: Any) -> None:
        raise RuntimeError("observer broke")

    world.app.observe(broken)
    user = world.app.get(User.id_for("analyst"), User)
    record_refusal(user, "test", world.actor("admin"), world.clock.now(), Decision.refuse("A-05", "test"))
    world.app.save(user)
    assert len(world.app.get(User.id_for("analyst"), User).refusals) == len(user.refusals)


def test_a_rule_label_is_a_rule_id_or_other() -> None:
    assert rule_label("L-13") == "L-13"
    assert rule_label("R-03a") == "R-03a"
    assert rule_label("R-03 and more") == "other"
    assert rule_label("550e8400-e29b-41d4-a716-446655440000") == "other"
