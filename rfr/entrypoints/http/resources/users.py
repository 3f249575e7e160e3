"""Users and their access (A-05): administrators register and change others; everyone reads themselves."""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

import attrs
import msgspec
from litestar import Router, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.params import JSONBody, Parameter, PathParameter

from rfr.application.errors import UnknownUser
from rfr.application.services.access import Principal
from rfr.application.services.users import ADMINISTRATOR, USER_READERS, UserAdministration, UserView
from rfr.domain.people import Rank, Role
from rfr.entrypoints.http.access_control import EVERY_ROLE, allow
from rfr.entrypoints.http.body_rules import exactly_one_of
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.resources._workflow import Choices, Cursor, Names

RankName = enum.StrEnum("RankName", {r.name: r.name.lower() for r in Rank})  # type: ignore[misc]

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
UserId = Annotated[str, PathParameter(min_length=1, max_length=200)]


class Registration(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A person to register; they stay untrained, so refused every governed action, until
    training is recorded.

    Attributes:
        user_id: The person's name in the force's directory, as they log in; unique.
        roles: The roles to grant, at least one in practice.
        rank: Their police rank, if any (a staff grade is set later through PUT .../rank).
        teams: The teams they belong to; library approvals can grant access by team.
    """

    user_id: Name
    roles: Annotated[list[Role], Choices]
    rank: RankName | None = None  # type: ignore[valid-type]
    teams: Names = msgspec.field(default_factory=list)


class RoleChange(msgspec.Struct, forbid_unknown_fields=True):
    """One role to grant or revoke.

    Attributes:
        role: The role.
        reason: Why, in the administrator's words; recorded with the change.
    """

    role: Role
    reason: Text


class RankChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Give ``rank`` (a police rank) or ``staff_grade`` (mapped by the configured equivalents).

    Attributes:
        reason: Why, in the administrator's words; recorded with the change.
        rank: The police rank.
        staff_grade: A police staff grade, mapped to a rank by the policy settings' staff-grade
            equivalents; refused if the settings do not name it.
    """

    fields_rule: ClassVar = exactly_one_of("rank", "staff_grade")

    reason: Text
    rank: RankName | msgspec.UnsetType = msgspec.UNSET  # type: ignore[valid-type]
    staff_grade: Name | msgspec.UnsetType = msgspec.UNSET


class TeamsChange(msgspec.Struct, forbid_unknown_fields=True):
    """The user's teams, all of them: the list replaces the current one.

    Attributes:
        teams: Every team the user belongs to (empty: none).
        reason: Why, in the administrator's words; recorded with the change.
    """

    teams: Names
    reason: Text


class EmailChange(msgspec.Struct, forbid_unknown_fields=True):
    """Where the user's scheduled usage reports are sent (A-04).

    Attributes:
        email: One address, like ``name@force.police.uk``; null removes it.
        reason: Why, in the administrator's words; recorded with the change.
    """

    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)] | None
    reason: Text


class TrainingChange(msgspec.Struct, forbid_unknown_fields=True):
    """Whether the user has completed RFR training (A-05).

    Attributes:
        trained: True once trained; false withdraws it, and the user is refused governed
            actions again.
        reason: Why, in the administrator's words (e.g. the course and date); recorded.
    """

    trained: bool
    reason: Text


class Reason(msgspec.Struct, forbid_unknown_fields=True):
    """Why a user is disabled or enabled.

    Attributes:
        reason: Why, in the administrator's words; recorded with the change.
    """

    reason: Text


@attrs.frozen
class UserPage:
    """One page of users; pass ``next_after`` as ``after`` for the next (null: last page).

    Attributes:
        items: The users on this page, in registration order.
        next_after: The cursor of the next page (pass it as ``after``), or null on the last page.
    """

    items: list[UserView]
    next_after: int | None


def _rank(name: str | None) -> Rank | None:
    return Rank[name.upper()] if name is not None else None


def _users(ctx: HttpContext) -> UserAdministration:
    return ctx.services.users


ADMIN = ADMINISTRATOR.roles


@post("/users", summary="Register a user", sync_to_thread=True, **allow(*ADMIN))
def register_user(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    data: JSONBody[Registration],
) -> UserView:
    """Register a person with their roles (untrained until training is recorded)."""
    try:
        users.user(data.user_id)
    except UnknownUser:
        pass
    else:
        # The same answer as two registrations racing, where the store refuses the second.
        raise ClientException(f"user {data.user_id!r} is already registered", status_code=409)
    return users.register(
        principal.user_id, data.user_id, data.roles, rank=_rank(data.rank), teams=data.teams
    )


@get("/users", summary="List users", sync_to_thread=True, **allow(*USER_READERS.roles))
def list_users(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    after: Cursor = 0,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> UserPage:
    page = users.list(principal.user_id, after=after, limit=limit)
    return UserPage(list(page.items), page.next_after)


@get(
    "/users/inactive",
    summary="Users inactive too long (A-05)",
    sync_to_thread=True,
    **allow(*USER_READERS.roles),
)
def inactive_users(
    principal: NamedDependency[Principal], users: NamedDependency[UserAdministration]
) -> list[UserView]:
    """Enabled users with no activity for the configured period: flagged for removal (A-05)."""
    return list(users.inactive(principal.user_id))


@get("/me", summary="Your own access record", sync_to_thread=True, **allow(*EVERY_ROLE))
def me(principal: NamedDependency[Principal], users: NamedDependency[UserAdministration]) -> UserView:
    """The caller's own access record."""
    return users.get(principal.user_id, principal.user_id)


@get("/users/{user_id:str}", summary="Read a user", sync_to_thread=True, **allow(*EVERY_ROLE))
def get_user(
    principal: NamedDependency[Principal], users: NamedDependency[UserAdministration], user_id: UserId
) -> UserView:
    """Anyone reads their own record; administrators and overseers read anyone's."""
    return users.get(principal.user_id, user_id)


@post("/users/{user_id:str}/roles", summary="Grant a role", sync_to_thread=True, **allow(*ADMIN))
def grant_role(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    user_id: UserId,
    data: JSONBody[RoleChange],
) -> UserView:
    return users.grant_role(principal.user_id, user_id, data.role, data.reason)


@post("/users/{user_id:str}/roles/revoke", summary="Revoke a role", sync_to_thread=True, **allow(*ADMIN))
def revoke_role(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    user_id: UserId,
    data: JSONBody[RoleChange],
) -> UserView:
    return users.revoke_role(principal.user_id, user_id, data.role, data.reason)


@put("/users/{user_id:str}/rank", summary="Set a rank or staff grade", sync_to_thread=True, **allow(*ADMIN))
def set_rank(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    user_id: UserId,
    data: JSONBody[RankChange],
) -> UserView:
    rank = _rank(data.rank) if data.rank is not msgspec.UNSET else None
    grade = data.staff_grade if data.staff_grade is not msgspec.UNSET else None
    return users.set_rank(principal.user_id, user_id, data.reason, rank=rank, staff_grade=grade)


@put("/users/{user_id:str}/teams", summary="Set a user's teams", sync_to_thread=True, **allow(*ADMIN))
def set_teams(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    user_id: UserId,
    data: JSONBody[TeamsChange],
) -> UserView:
    return users.set_teams(principal.user_id, user_id, data.teams, data.reason)


@put(
    "/users/{user_id:str}/email", summary="Set a user's e-mail address", sync_to_thread=True, **allow(*ADMIN)
)
def set_email(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    user_id: UserId,
    data: JSONBody[EmailChange],
) -> UserView:
    return users.set_email(principal.user_id, user_id, data.email, data.reason)


@put("/users/{user_id:str}/training", summary="Record training (A-05)", sync_to_thread=True, **allow(*ADMIN))
def record_training(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    user_id: UserId,
    data: JSONBody[TrainingChange],
) -> UserView:
    return users.record_training(principal.user_id, user_id, data.trained, data.reason)


@post("/users/{user_id:str}/disable", summary="Disable a user (A-05)", sync_to_thread=True, **allow(*ADMIN))
def disable_user(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    user_id: UserId,
    data: JSONBody[Reason],
) -> UserView:
    return users.disable(principal.user_id, user_id, data.reason)


@post("/users/{user_id:str}/enable", summary="Enable a user", sync_to_thread=True, **allow(*ADMIN))
def enable_user(
    principal: NamedDependency[Principal],
    users: NamedDependency[UserAdministration],
    user_id: UserId,
    data: JSONBody[Reason],
) -> UserView:
    return users.enable(principal.user_id, user_id, data.reason)


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            register_user,
            list_users,
            inactive_users,
            me,
            get_user,
            grant_role,
            revoke_role,
            set_rank,
            set_teams,
            set_email,
            record_training,
            disable_user,
            enable_user,
        ],
        dependencies={"users": use_case(_users)},
        tags=["users"],
    )
]
