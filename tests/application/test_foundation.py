"""The use-case foundation: the first administrator, who may act at all (A-05), refusals kept (A-01)."""

from __future__ import annotations

from pathlib import Path

import domain_builders as b
import pytest
from app_world import STAFF, FixedClock, World, memory_app, sqlite_app

from rfr.application.errors import AccessDenied, AlreadyBootstrapped, NotFound, UnknownUser
from rfr.application.services.base import list_ids
from rfr.application.services.bootstrap import INSTALLATION_ID, Installation, bootstrap_administrator
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.people import Role
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.user import User


def refused_attempts(world: World) -> list[RefusedAttempt]:
    ids, _ = list_ids(world.app, RefusedAttempt.AttemptRefused, limit=500)
    return [world.app.get(i, RefusedAttempt) for i in ids]


def test_A05_first_administrator_is_created_only_while_no_user_exists(clock: FixedClock) -> None:
    """A-05: first administrator is created only while no user exists."""
    app = memory_app()
    user_id = bootstrap_administrator(app, clock, "admin")
    admin = app.get(user_id, User)
    assert admin.roles == {Role.ADMINISTRATOR}
    assert admin.trained and not admin.disabled
    assert app.get(INSTALLATION_ID, Installation).administrator == "admin"
    with pytest.raises(AlreadyBootstrapped):
        bootstrap_administrator(app, clock, "someone-else")
    with pytest.raises(UnknownUser):
        app_users = World(app, clock).users
        app_users.get("someone-else", "someone-else")


def test_A05_bootstrap_is_shut_once_users_exist_even_without_the_marker(clock: FixedClock) -> None:
    """A-05: bootstrap is shut once users exist even without the marker."""
    world = World(memory_app(), clock).populate()
    with pytest.raises(AlreadyBootstrapped):
        bootstrap_administrator(world.app, clock, "intruder")


def test_two_processes_racing_to_bootstrap_make_one_administrator(tmp_path: Path, clock: FixedClock) -> None:
    first, second = sqlite_app(tmp_path), sqlite_app(tmp_path)
    # The second process checks for users before the first has saved, then tries to save.
    clock.before_next = lambda: bootstrap_administrator(first, FixedClock(), "admin-a")
    with pytest.raises(AlreadyBootstrapped):
        bootstrap_administrator(second, clock, "admin-b")
    ids, _ = list_ids(second, User.Registered)
    assert [second.get(i, User).user_id for i in ids] == ["admin-a"]


def test_the_first_administrator_can_register_people(clock: FixedClock) -> None:
    world = World(memory_app(), clock).populate()
    assert world.users.get("admin", "analyst").roles == ("rfr_user",)
    assert len(world.users.list("admin").items) == len(STAFF) + 1


def test_an_unknown_user_is_not_served() -> None:
    world = World(memory_app(), FixedClock())
    with pytest.raises(UnknownUser):
        world.approvals.list("nobody")


def test_A05_A01_a_disabled_user_is_refused_and_the_attempt_recorded(world: World) -> None:
    """A-01: a disabled user is refused and the attempt recorded."""
    world.users.disable("admin", "analyst", "left the unit")
    with pytest.raises(AccessDenied) as caught:
        world.approvals.list("analyst")
    assert caught.value.rule_ids == ("A-05",) and caught.value.recorded
    attempt = refused_attempts(world)[-1]
    assert attempt.refusals[0].actor.user_id == "analyst"
    assert attempt.refusals[0].rule_ids == ("A-05",)


def test_A01_a_wrong_role_for_a_factory_command_is_recorded_as_a_refused_attempt(world: World) -> None:
    """A-01: a wrong role for a factory command is recorded as a refused attempt."""
    before = len(refused_attempts(world))
    with pytest.raises(PolicyRefusal) as caught:
        world.users.register("analyst", "new-person", {Role.RFR_USER})
    assert "A-05" in caught.value.rule_ids
    assert caught.value.record is not None
    stored = world.app.get(caught.value.record.id, RefusedAttempt)
    assert stored.command == "register user"
    assert len(refused_attempts(world)) == before + 1


def test_A05_activity_is_recorded_when_a_user_acts_at_most_hourly(world: World) -> None:
    """A-05: activity is recorded when a user acts at most hourly."""
    first = world.app.get(User.id_for("analyst"), User)
    world.clock.advance(hours=2)
    world.approvals.apply("analyst", b.application())
    after_one = world.app.get(User.id_for("analyst"), User)
    assert after_one.last_activity == world.clock.now()
    assert after_one.version == first.version + 1
    world.approvals.apply("analyst", b.application())
    assert world.app.get(User.id_for("analyst"), User).version == after_one.version


def test_a_read_records_no_activity_and_writes_nothing(world: World) -> None:
    head = world.app.recorder.max_notification_id()
    world.clock.advance(days=1)
    world.approvals.list("analyst")
    world.users.get("analyst", "analyst")
    assert world.app.recorder.max_notification_id() == head


def test_listing_pages_by_notification_cursor(world: World) -> None:
    first = world.users.list("admin", limit=5)
    assert len(first.items) == 5 and first.next_after is not None
    rest = world.users.list("admin", after=first.next_after, limit=500)
    assert rest.next_after is None
    names = [u.user_id for u in first.items + rest.items]
    assert names == ["admin", *STAFF]
    with pytest.raises(ValueError):
        world.users.list("admin", limit=0)


def test_an_id_of_another_kind_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.approvals.get("analyst", User.id_for("analyst"))
    with pytest.raises(NotFound):
        world.approvals.get("analyst", "not-a-uuid")
