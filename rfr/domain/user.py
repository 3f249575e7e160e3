"""A person's access to the system (A-05): registered, granted roles, trained, disabled.

A user may have an e-mail address, where scheduled usage reports for them are sent (A-04);
it is set by an administrator like the rest of their record (ADR 0027).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import Decision, combine
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import Actor, Rank, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, stated

_USERS = uuid5(NAMESPACE_URL, "urn:rfr:users")

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path


def email_acceptable(email: str) -> Decision:
    """A-05: one mailbox, local@domain, nothing that could end a mail header (no line breaks,
    spaces, commas or angle brackets), within RFC 5321's length."""
    local, at, domain = email.rpartition("@")
    plain = not any(c.isspace() or c in ',;<>"()[]\\' or ord(c) < 32 for c in email)
    return Decision.check(
        bool(at) and bool(local) and "." in domain.strip(".") and plain and len(email) <= MAX_EMAIL_LENGTH,
        "A-05",
        "give one e-mail address, like name@force.police.uk",
    )


def _administrator(actor: Actor, subject_id: str) -> Decision:
    """A-05: administrators manage access, and never their own."""
    return combine(
        authorised(actor, Role.ADMINISTRATOR),
        Decision.check(
            actor.user_id != subject_id, "A-05", "an administrator does not change their own access"
        ),
    )


SYSTEM_ACTOR_PREFIX = "rfr:"


class User(GovernedAggregate):
    class Registered(GovernedAggregate.Event, Aggregate.Created):
        user_id: str
        roles: list[str]
        rank: int | None
        teams: list[str]

        def apply(self, agg: User) -> None:
            agg.user_id = self.user_id
            agg.roles = {Role(r) for r in self.roles}
            agg.rank = Rank(self.rank) if self.rank is not None else None
            agg.teams = set(self.teams)
            agg.trained = False
            agg.disabled = False
            agg.last_activity = self.timestamp
            agg.email = None

    class RoleGranted(GovernedAggregate.Event):
        role: str

        def apply(self, agg: User) -> None:
            agg.roles.add(Role(self.role))

    class RoleRevoked(GovernedAggregate.Event):
        role: str

        def apply(self, agg: User) -> None:
            agg.roles.discard(Role(self.role))

    class RankSet(GovernedAggregate.Event):
        rank: int | None
        staff_grade: str | None

        def apply(self, agg: User) -> None:
            agg.rank = Rank(self.rank) if self.rank is not None else None

    class TeamsSet(GovernedAggregate.Event):
        teams: list[str]

        def apply(self, agg: User) -> None:
            agg.teams = set(self.teams)

    class EmailSet(GovernedAggregate.Event):
        email: str | None

        def apply(self, agg: User) -> None:
            agg.email = self.email

    class TrainingRecorded(GovernedAggregate.Event):
        trained: bool

        def apply(self, agg: User) -> None:
            agg.trained = self.trained

    class Disabled(GovernedAggregate.Event):
        def apply(self, agg: User) -> None:
            agg.disabled = True

    class Enabled(GovernedAggregate.Event):
        def apply(self, agg: User) -> None:
            agg.disabled = False

    class ActivityRecorded(GovernedAggregate.Event):
        def apply(self, agg: User) -> None:
            agg.last_activity = self.timestamp

    @staticmethod
    def id_for(user_id: str) -> UUID:
        """One aggregate per user id, so a second registration of the same person collides in the store."""
        return uuid5(_USERS, user_id)

    @classmethod
    def register(
        cls,
        actor: Actor,
        at: datetime,
        user_id: str,
        roles: Iterable[Role],
        *,
        rank: Rank | None = None,
        teams: Iterable[str] = (),
    ) -> User:
        decision = combine(
            _administrator(actor, user_id),
            stated(user_id, "A-05", "the user id"),
            # System actors (the report and retention workers, the installer) act by policy, not
            # as people; nobody may be registered under their names and borrow their authority.
            Decision.check(
                not user_id.startswith(SYSTEM_ACTOR_PREFIX), "A-05", "ids starting 'rfr:' are reserved"
            ),
        )
        enforce_new("register user", "User", actor, at, decision)
        return cls._create(
            cls.Registered,
            id=cls.id_for(user_id),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason="registered",
            user_id=user_id,
            roles=sorted(Role(r).value for r in roles),
            rank=int(rank) if rank is not None else None,
            teams=sorted(teams),
        )

    def grant_role(self, actor: Actor, at: datetime, role: Role, reason: str) -> None:
        self._admin("grant role", actor, at, reason)
        self._record(self.RoleGranted, actor, at, reason, role=role.value)

    def revoke_role(self, actor: Actor, at: datetime, role: Role, reason: str) -> None:
        self._admin(
            "revoke role", actor, at, reason, Decision.check(role in self.roles, "A-05", "role not held")
        )
        self._record(self.RoleRevoked, actor, at, reason, role=role.value)

    def set_rank(
        self,
        actor: Actor,
        at: datetime,
        reason: str,
        *,
        rank: Rank | None = None,
        staff_grade: str | None = None,
        config: PolicyConfig | None = None,
    ) -> None:
        """A police rank, or a staff grade mapped onto one through the configured equivalents."""
        equivalents = (config or PolicyConfig()).staff_grade_equivalents
        mapped = equivalents.get(staff_grade.strip().lower()) if staff_grade else None
        self._admin(
            "set rank",
            actor,
            at,
            reason,
            Decision.check(
                (rank is None) != (staff_grade is None), "A-05", "give either a rank or a staff grade"
            ),
            Decision.check(
                staff_grade is None or mapped is not None, "A-05", f"no equivalent for {staff_grade!r}"
            ),
        )
        resolved = rank if rank is not None else mapped
        self._record(
            self.RankSet, actor, at, reason, rank=int(resolved) if resolved else None, staff_grade=staff_grade
        )

    def set_teams(self, actor: Actor, at: datetime, teams: Iterable[str], reason: str) -> None:
        self._admin("set teams", actor, at, reason)
        self._record(self.TeamsSet, actor, at, reason, teams=sorted(teams))

    def set_email(self, actor: Actor, at: datetime, email: str | None, reason: str) -> None:
        """Where this user's scheduled reports are sent; None removes the address."""
        address = email.strip() if email is not None else None
        self._admin(
            "set e-mail address",
            actor,
            at,
            reason,
            email_acceptable(address) if address is not None else Decision.allow("A-05"),
            Decision.check(address != self.email, "A-05", "the address is already that"),
        )
        self._record(self.EmailSet, actor, at, reason, email=address)

    def record_training(self, actor: Actor, at: datetime, trained: bool, reason: str) -> None:
        self._admin("record training", actor, at, reason)
        self._record(self.TrainingRecorded, actor, at, reason, trained=trained)

    def disable(self, actor: Actor, at: datetime, reason: str) -> None:
        self._admin(
            "disable", actor, at, reason, Decision.check(not self.disabled, "A-05", "already disabled")
        )
        self._record(self.Disabled, actor, at, reason)

    def enable(self, actor: Actor, at: datetime, reason: str) -> None:
        self._admin("enable", actor, at, reason, Decision.check(self.disabled, "A-05", "not disabled"))
        self._record(self.Enabled, actor, at, reason)

    def record_activity(self, at: datetime, what: str) -> None:
        """Called by the application when this user acts, so inactivity can be measured (A-05)."""
        self._record(self.ActivityRecorded, self.actor(), at, what)

    def actor(self) -> Actor:
        """This user as the Actor their commands carry."""
        return Actor(
            self.user_id, self.roles, self.rank, self.teams, trained=self.trained, active=not self.disabled
        )

    def inactive_since(self, t: datetime, config: PolicyConfig) -> bool:
        """A-05: no activity for the configured period: flag for removal."""
        return not self.disabled and t - self.last_activity > timedelta(days=config.inactivity_days)

    def _admin(self, command: str, actor: Actor, at: datetime, reason: str, *more: Decision) -> None:
        self._enforce(
            command,
            actor,
            at,
            combine(_administrator(actor, self.user_id), stated(reason, "A-05", "the reason"), *more),
        )
