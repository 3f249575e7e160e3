"""User administration through the services (A-05), with refusals kept on the user's record (A-01)."""

from __future__ import annotations

import domain_builders as b
import pytest
from app_world import World

from rfr.application.errors import AccessDenied, NotFound
from rfr.application.services.users import UserAdministration
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.people import Rank, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.user import User


def test_A05_an_administrator_manages_a_user_through_every_command(world: World) -> None:
    """A-05: an administrator manages a user through every command."""
    users = world.users
    view = users.register("admin", "new-analyst", {Role.RFR_USER}, teams={"team-b"})
    assert (view.roles, view.trained, view.disabled, view.teams) == (("rfr_user",), False, False, ("team-b",))
    assert users.record_training("admin", "new-analyst", True, "course passed").trained
    assert users.grant_role("admin", "new-analyst", Role.APPROVING_OFFICER, "promoted").roles == (
        "approving_officer",
        "rfr_user",
    )
    assert users.revoke_role("admin", "new-analyst", Role.RFR_USER, "moved").roles == ("approving_officer",)
    assert users.set_rank("admin", "new-analyst", "promotion", rank=Rank.INSPECTOR).rank == "inspector"
    assert (
        users.set_rank("admin", "new-analyst", "staff post", staff_grade="Band B").rank == "chief_inspector"
    )
    assert users.set_teams("admin", "new-analyst", {"team-c"}, "moved").teams == ("team-c",)
    assert users.disable("admin", "new-analyst", "left").disabled
    assert not users.enable("admin", "new-analyst", "returned").disabled
    reloaded = world.app.get(User.id_for("new-analyst"), User)
    assert reloaded.actor().at_least(Rank.CHIEF_INSPECTOR) and reloaded.teams == {"team-c"}


def test_A05_A01_an_administrator_cannot_change_their_own_access_and_the_refusal_is_kept(
    world: World,
) -> None:
    """A-01: an administrator cannot change their own access and the refusal is kept."""
    with pytest.raises(PolicyRefusal) as caught:
        world.users.grant_role("admin2", "admin2", Role.SRO, "self-service")
    assert "A-05" in caught.value.rule_ids
    stored = world.app.get(User.id_for("admin2"), User)
    assert Role.SRO not in stored.roles
    assert stored.refusals[-1].command == "grant role"
    assert stored.refusals[-1].actor.user_id == "admin2"


def test_A05_an_unmapped_staff_grade_is_refused_on_the_record(world: World) -> None:
    with pytest.raises(PolicyRefusal):
        world.users.set_rank("admin", "analyst", "new post", staff_grade="Band Z")
    assert world.app.get(User.id_for("analyst"), User).refusals[-1].rule_ids == ("A-05",)


def test_registering_an_existing_user_is_an_error(world: World) -> None:
    with pytest.raises(ValueError, match="already registered"):
        world.users.register("admin", "analyst", {Role.RFR_USER})


def test_commands_on_an_unknown_user_are_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.users.disable("admin", "ghost", "never existed")


def test_A05_a_disabled_user_cannot_act_until_enabled(world: World) -> None:
    """A-05: a disabled user cannot act until enabled."""
    world.users.disable("admin", "sro", "suspended")
    with pytest.raises(AccessDenied):
        world.exceptions.list("sro")
    world.users.enable("admin", "sro", "reinstated")
    assert world.exceptions.list("sro").items == ()


def test_A05_inactive_users_are_flagged_after_the_configured_period(world: World) -> None:
    """A-05: inactive users are flagged after the configured period."""
    days = PolicyConfig().inactivity_days
    world.clock.advance(days=days - 1)
    world.approvals.apply("analyst", b.application())
    assert world.users.inactive("admin") == ()
    world.clock.advance(days=2)
    flagged = {u.user_id for u in world.users.inactive("op-lead")}
    # Everyone but the analyst (active a day ago) and the admin (who registered them all just now).
    assert "analyst" not in flagged
    assert {"sro", "inspector", "auditor"} <= flagged
    world.users.disable("admin", "auditor", "inactive")
    assert "auditor" not in {u.user_id for u in world.users.inactive("admin")}


def test_A05_the_inactivity_period_follows_the_policy_settings(world: World) -> None:
    """A-05: the inactivity period follows the policy settings."""
    world.policy.change("sro", PolicyConfig(inactivity_days=10), "shorter inactivity period")
    world.clock.advance(days=11)
    assert "inspector" in {u.user_id for u in world.users.inactive("admin")}


def test_A05_people_read_their_own_record_but_not_others(world: World) -> None:
    assert world.users.get("analyst", "analyst").user_id == "analyst"
    with pytest.raises(PolicyRefusal) as caught:
        world.users.get("analyst", "sro")
    assert caught.value.rule_ids == ("A-05",)
    assert caught.value.record is not None  # the refused read is on the audit trail
    with pytest.raises(PolicyRefusal):
        world.users.list("analyst")
    assert world.users.get("op-lead", "sro").rank == "chief_superintendent"


def test_the_service_class_is_built_from_app_and_clock(world: World) -> None:
    other = UserAdministration(world.app, world.clock)
    assert other.get("admin", "analyst") == world.users.get("admin", "analyst")
