"""Policy settings changed by the SRO only, and policy exceptions queued for the SRO (A-06)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from app_world import World

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.policy_exception import PolicyException
from rfr.domain.policy_settings import SETTINGS_ID, PolicySettings


def test_defaults_apply_until_the_sro_establishes_then_changes_the_settings(world: World) -> None:
    view = world.policy.current("analyst")
    assert not view.established and view.config == PolicyConfig().to_data()
    view = world.policy.change("sro", PolicyConfig(inactivity_days=60), "force policy")
    assert view.established and [c.by for c in view.changes] == ["sro"]
    world.clock.advance(days=1)
    view = world.policy.change("sro", PolicyConfig(inactivity_days=45), "tightened")
    assert PolicyConfig.from_data(view.config).inactivity_days == 45
    assert [c.at for c in view.changes] == [world.clock.now() - timedelta(days=1), world.clock.now()]


def test_A01_only_the_sro_changes_settings_and_the_refusal_is_kept(world: World) -> None:
    """A-01: only the sro changes settings and the refusal is kept."""
    with pytest.raises(PolicyRefusal) as caught:
        world.policy.change("supt", PolicyConfig(inactivity_days=1), "mine now")
    assert caught.value.rule_ids == ("A-05",)
    assert caught.value.record is not None
    world.policy.change("sro", PolicyConfig(), "established")
    with pytest.raises(PolicyRefusal):
        world.policy.change("admin", PolicyConfig(inactivity_days=1), "mine now")
    settings = world.app.get(SETTINGS_ID, PolicySettings)
    assert settings.config == PolicyConfig() and settings.refusals[-1].actor.user_id == "admin"


def test_A06_a_policy_exception_is_recorded_and_queued_for_the_sro(world: World) -> None:
    """A-06: a policy exception is recorded and queued for the sro."""
    view = world.exceptions.record(
        "supt",
        "searched a level 5 library without the usual wait",
        "imminent risk to life",
        "force solicitor advised on 1 March",
        related_ids=["search-1"],
    )
    assert view.awaiting_sro and view.status == "queued_for_sro" and view.recorded_by == "supt"
    assert world.exceptions.list("sro", awaiting_sro=True).items == (view,)
    reviewed = world.exceptions.review("sro", view.id, True, "justified in the circumstances")
    assert reviewed.status == "endorsed" and reviewed.sro_notes == "justified in the circumstances"
    assert world.exceptions.list("sro", awaiting_sro=True).items == ()
    assert world.exceptions.get("analyst", view.id) == reviewed


def test_A06_an_exception_without_legal_advice_is_refused(world: World) -> None:
    with pytest.raises(PolicyRefusal) as caught:
        world.exceptions.record("supt", "decision", "rationale", " ")
    assert caught.value.rule_ids == ("A-06",)
    assert world.app.get(caught.value.record.id).command == "record policy exception"


def test_A06_A01_only_the_sro_reviews_an_exception_refusal_kept(world: World) -> None:
    """A-06, A-01: only the sro reviews an exception refusal kept."""
    view = world.exceptions.record("supt", "decision", "rationale", "advice")
    with pytest.raises(PolicyRefusal):
        world.exceptions.review("supt", view.id, True, "self-endorsed")
    assert world.app.get(view.id, PolicyException).refusals[-1].actor.user_id == "supt"
