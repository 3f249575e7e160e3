"""Managing who may use the system (A-05): registration, roles, rank, teams, training, status."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from uuid import UUID

import attrs

from rfr.application.errors import NotFound, UnknownUser
from rfr.application.services.base import Act, Need, Page, UseCase, list_ids
from rfr.domain.decisions import Decision
from rfr.domain.people import Actor, Rank, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.user import User

ADMINISTRATOR = Need((Role.ADMINISTRATOR,))
# Who may see other people's access records: those who grant it and those who oversee it.
USER_READERS = Need((Role.ADMINISTRATOR, Role.OPERATIONAL_LEAD, Role.SRO))


@attrs.frozen
class UserView:
    """A user's access record (A-05).

    Attributes:
        id: The record's id.
        user_id: The user's name in the force's directory, as they log in.
        roles: The roles held, in name order.
        rank: The police rank (``sergeant`` to ``chief_superintendent``) or the rank a staff grade
            maps to, or null if none is recorded.
        teams: The teams the user belongs to; library approvals can grant access by team.
        email: Where scheduled usage reports for the user are sent (A-04), or null.
        trained: Whether the user's RFR training is recorded: untrained users are refused
            every governed action (A-05).
        disabled: Whether the account is disabled: a disabled user is refused everything.
        last_activity: When the user last did something recorded.
        inactive: Flagged for removal: no activity for the configured period (A-05).
        registered_at: When the user was registered.
    """

    id: UUID
    user_id: str
    roles: tuple[str, ...]
    rank: str | None
    teams: tuple[str, ...]
    email: str | None
    trained: bool
    disabled: bool
    last_activity: datetime
    inactive: bool  # flagged for removal after the configured period without activity
    registered_at: datetime

    @classmethod
    def of(cls, user: User, now: datetime, config: PolicyConfig) -> UserView:
        return cls(
            id=user.id,
            user_id=user.user_id,
            roles=tuple(sorted(r.value for r in user.roles)),
            rank=user.rank.name.lower() if user.rank is not None else None,
            teams=tuple(sorted(user.teams)),
            email=user.email,
            trained=user.trained,
            disabled=user.disabled,
            last_activity=user.last_activity,
            inactive=user.inactive_since(now, config),
            registered_at=user.created_on,
        )


class UserAdministration(UseCase):
    """Administrators manage other people's access; nobody changes their own (A-05)."""

    def register(
        self,
        acting_user: str,
        user_id: str,
        roles: Iterable[Role],
        *,
        rank: Rank | None = None,
        teams: Iterable[str] = (),
    ) -> UserView:
        roles, teams = tuple(roles), tuple(teams)
        if self._exists(user_id):
            # The store would refuse the duplicate id anyway; saying so is clearer than a conflict.
            raise ValueError(f"user {user_id!r} is already registered")
        user = self._act(
            acting_user,
            "register user",
            [],
            lambda a: a.new(User.register(a.actor, a.at, user_id, roles, rank=rank, teams=teams)),
            target_name=f"User {user_id}",
        )
        return self._view(user)

    def grant_role(self, acting_user: str, user_id: str, role: Role, reason: str) -> UserView:
        return self._on(
            acting_user, "grant role", user_id, lambda u, a: u.grant_role(a.actor, a.at, role, reason)
        )

    def revoke_role(self, acting_user: str, user_id: str, role: Role, reason: str) -> UserView:
        return self._on(
            acting_user, "revoke role", user_id, lambda u, a: u.revoke_role(a.actor, a.at, role, reason)
        )

    def set_rank(
        self,
        acting_user: str,
        user_id: str,
        reason: str,
        *,
        rank: Rank | None = None,
        staff_grade: str | None = None,
    ) -> UserView:
        """A police rank, or a staff grade that counts as one under the configured equivalents."""
        return self._on(
            acting_user,
            "set rank",
            user_id,
            lambda u, a: u.set_rank(
                a.actor, a.at, reason, rank=rank, staff_grade=staff_grade, config=a.config
            ),
        )

    def set_teams(self, acting_user: str, user_id: str, teams: Iterable[str], reason: str) -> UserView:
        teams = tuple(teams)
        return self._on(
            acting_user, "set teams", user_id, lambda u, a: u.set_teams(a.actor, a.at, teams, reason)
        )

    def set_email(self, acting_user: str, user_id: str, email: str | None, reason: str) -> UserView:
        return self._on(
            acting_user, "set e-mail address", user_id, lambda u, a: u.set_email(a.actor, a.at, email, reason)
        )

    def record_training(self, acting_user: str, user_id: str, trained: bool, reason: str) -> UserView:
        return self._on(
            acting_user,
            "record training",
            user_id,
            lambda u, a: u.record_training(a.actor, a.at, trained, reason),
        )

    def disable(self, acting_user: str, user_id: str, reason: str) -> UserView:
        return self._on(acting_user, "disable user", user_id, lambda u, a: u.disable(a.actor, a.at, reason))

    def enable(self, acting_user: str, user_id: str, reason: str) -> UserView:
        return self._on(acting_user, "enable user", user_id, lambda u, a: u.enable(a.actor, a.at, reason))

    # -- queries -----------------------------------------------------------------------------

    def get(self, acting_user: str, user_id: str) -> UserView:
        """Anyone may read their own record; other people's are for administrators and overseers."""
        self._read(
            acting_user,
            "read user",
            Need(),
            target=f"User {user_id}",
            decide=lambda actor: _self_or(actor, user_id),
        )
        return self._view(self._subject(user_id))

    def list(self, acting_user: str, *, after: int = 0, limit: int = 50) -> Page[UserView]:
        self._read(acting_user, "list users", USER_READERS)
        now, config = self.clock.now(), self.config()
        return self.page(
            User.Registered,
            lambda i: UserView.of(self.load(i, User), now, config),
            after=after,
            limit=limit,
        )

    def inactive(self, acting_user: str) -> tuple[UserView, ...]:
        """A-05: enabled users with no activity for the configured period, flagged for removal."""
        self._read(acting_user, "list inactive users", USER_READERS)
        now, config = self.clock.now(), self.config()
        flagged: list[UserView] = []
        after: int | None = 0
        while after is not None:
            ids, after = list_ids(self.app, User.Registered, after=after, limit=200)
            views = (UserView.of(self.load(i, User), now, config) for i in ids)
            flagged.extend(v for v in views if v.inactive)
        return tuple(flagged)

    # -- helpers -----------------------------------------------------------------------------

    def _on(
        self, acting_user: str, command: str, user_id: str, change: Callable[[User, Act], None]
    ) -> UserView:
        subject = self._subject(user_id)
        self._act(acting_user, command, [subject], lambda a: change(subject, a))
        return self._view(subject)

    def _subject(self, user_id: str) -> User:
        try:
            return self.user(user_id)
        except UnknownUser:
            raise NotFound("User", user_id) from None

    def _exists(self, user_id: str) -> bool:
        try:
            self.user(user_id)
        except UnknownUser:
            return False
        return True

    def _view(self, user: User) -> UserView:
        return UserView.of(user, self.clock.now(), self.config())


def _self_or(actor: Actor, user_id: str) -> Decision:
    return Decision.check(
        actor.user_id == user_id or any(actor.has(r) for r in USER_READERS.roles),
        "A-05",
        f"{actor.user_id} may not read another user's access record",
    )
