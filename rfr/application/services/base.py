"""The foundation every use case stands on: who acts, what they may do, one atomic save.

A use case method names the acting user by id. ``UseCase._act`` is the unit of work of a
command; it reads top to bottom as load, command, save:

1. establishes who acts, once: the ``User`` the request's gate already read (HTTP), or else
   the stored one (``UnknownUser`` if none; a disabled user is refused with ``AccessDenied``
   and the refusal recorded, A-05), and its ``Actor`` (roles, rank, teams, training, status);
2. runs the domain command with ``at = clock.now()`` and the policy config in force. The
   domain command decides every rule, the acting person's role and rank included (A-05,
   P-08, L-10 ...), so the application never decides a rule a second time;
3. records the user's activity (A-05) and saves every touched and created aggregate in ONE
   ``app.save`` call, so a command either lands whole or not at all; biometric records
   written through ``Act.recording`` are erased again if it does not land.

Conflicts (docs/adr/0011-retry-commands-on-conflict.md): every save is an optimistic lock on
each aggregate it writes. A command run through ``_retrying`` loads its aggregates inside the
attempt, so when another writer saved one of them between load and save the whole attempt is
run again on a fresh load (at most ``MAX_ATTEMPTS`` times): the domain decides everything
again on the new state, so commands on different parts of one aggregate both land, and a
command the other writer made invalid is refused and recorded like any refusal.

Queries have no domain command: ``_read`` checks the roles a query admits (``Need``) and any
rule of the thing read (``decide``, e.g. L-13) and records a refusal as a ``RefusedAttempt``.

Refusals (A-01): a ``PolicyRefusal`` is never lost. The target aggregate's pending
``Refused`` event, or the ``RefusedAttempt`` the domain carried in ``err.record``, is saved
and the error re-raised. If a refusal could not be stored on its target (because a target
also held a non-refusal change that must not persist), a ``RefusedAttempt`` records it.

Listing (``list_ids``): eventsourcing has no query by aggregate type, so a kind is listed
by selecting the application recorder's notifications whose topic is that kind's
"created" event. The notification id is the paging cursor: it only grows, so a page
boundary never skips or repeats an aggregate created meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, BaseAggregate

from rfr.application.app import ConcurrentModification, RfrApplication
from rfr.application.errors import AccessDenied, NotFound, UnknownUser
from rfr.application.ports import BiometricStore, Clock
from rfr.domain.decisions import Decision, PolicyRefusal
from rfr.domain.governed import GovernedAggregate, stored_topics
from rfr.domain.people import Actor, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.policy_settings import SETTINGS_ID, PolicySettings
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.rules_access import authorised
from rfr.domain.user import User

R = TypeVar("R")
T = TypeVar("T")
A = TypeVar("A", bound=BaseAggregate[UUID])

# A-05 measures inactivity in days; stamping activity at most hourly keeps the User stream
# small and stops one user's parallel requests from colliding on their own User aggregate.
ACTIVITY_RESOLUTION = timedelta(hours=1)

MAX_PAGE = 500

# How many times ``_retrying`` runs a command in all when other writers keep saving first.
# Each conflict means another command landed, so a handful covers any realistic contention.
MAX_ATTEMPTS = 5

log = logging.getLogger("rfr.application")

# Who a request acts for, as the gate loaded them: set once per request in that request's own
# context (contextvars do not leak between requests), so every use case the request runs
# reuses that one ``User`` instead of rebuilding the aggregate at each step. Unset outside a
# request (CLI, worker, tests): the user is loaded as usual.
_ACTING_USER: ContextVar[User | None] = ContextVar("rfr_acting_user", default=None)


def act_for_request(user: User) -> None:
    """The gate names the ``User`` the current request acts for (see ``_ACTING_USER``)."""
    _ACTING_USER.set(user)


@attrs.frozen
class Need:
    """The roles a use case admits (any of ``roles``): what its HTTP route declares, and what a
    query checks before it reads (``_read``). A command's rules, roles and ranks included, are
    decided by its domain command alone, so a refusal names the rule the policy names.
    """

    roles: tuple[Role, ...] = ()

    def decide(self, actor: Actor, what: str) -> Decision:
        return authorised(actor, *self.roles)


# Any trained, enabled user whatever their role (a user reading their own record).
ANYONE = Need()


@attrs.frozen
class Act:
    """What a domain command needs from the use case: the actor, the time and the config in force.

    It is also the command's unit of work: aggregates it creates (``new``) are saved with the
    rest, and biometric records it writes through ``recording(store)`` are erased again if the
    command is refused, fails or cannot be saved, so no record is left that no event names.
    """

    actor: Actor
    at: datetime
    config: PolicyConfig
    created: list[BaseAggregate[UUID]] = attrs.field(factory=list, eq=False)
    written: list[tuple[BiometricStore, str]] = attrs.field(factory=list, eq=False)

    def new(self, aggregate: T) -> T:
        """Marks an aggregate the command created, so it is saved with the rest."""
        self.created.append(aggregate)  # type: ignore[arg-type]
        return aggregate

    def recording(self, store: BiometricStore) -> RecordingStore:
        """``store`` as this command writes to it: every record put is undone if the command fails."""
        return RecordingStore(store, self.written)

    def undo_writes(self) -> None:
        """Erases, newest first, every biometric record the command wrote (best effort, logged)."""
        while self.written:
            store, record_id = self.written.pop()
            try:
                store.erase(record_id)
            except Exception:
                log.exception("could not erase biometric record %s of a failed command", record_id)


class RecordingStore:
    """A ``BiometricStore`` that notes each record id before writing it (see ``Act.recording``).

    The id is noted before the write, so a write that fails half-way is undone too.
    """

    def __init__(self, store: BiometricStore, written: list[tuple[BiometricStore, str]]) -> None:
        self._store = store
        self._written = written

    def put(self, record_id: str, *args: Any, **kwargs: Any) -> Any:
        self._written.append((self._store, record_id))
        return self._store.put(record_id, *args, **kwargs)

    def put_template(self, record_id: str, *args: Any, **kwargs: Any) -> Any:
        self._written.append((self._store, record_id))
        return self._store.put_template(record_id, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing; pass ``next_after`` back as ``after`` for the next (None: last page)."""

    items: tuple[T, ...]
    next_after: int | None


def record_refusal(
    target: GovernedAggregate, command: str, actor: Actor, at: datetime, decision: Decision
) -> None:
    """Puts a ``Refused`` event on an existing aggregate, as its own commands do (A-01)."""
    target.trigger_event(
        target.Refused,
        timestamp=at,
        actor=actor.to_data(),
        reason=decision.reason,
        command=command,
        rule_ids=list(decision.rule_ids),
    )


def check_page(after: int, limit: int) -> None:
    """A listing's cursor and page size, refused (422 over HTTP) outside their bounds."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    if after < 0:
        raise ValueError("after must not be negative")


def list_ids(
    app: RfrApplication, created: type[Aggregate.Event], *, after: int = 0, limit: int = 50
) -> tuple[list[UUID], int | None]:
    """Ids of the aggregates created by ``created`` events, in creation order, after cursor ``after``.

    Any event class works: the ids are those of the aggregates that recorded one, once per event.
    """
    check_page(after, limit)
    notifications = app.recorder.select_notifications(
        start=after, limit=limit, topics=stored_topics(created), inclusive_of_start=False
    )
    ids = [UUID(str(n.originator_id)) for n in notifications]
    next_after = notifications[-1].id if len(notifications) == limit else None
    return ids, next_after


def any_created(app: RfrApplication, created: type[Aggregate.Event]) -> bool:
    return bool(list_ids(app, created, limit=1)[0])


class UseCase:
    """Base of every application service; see the module docstring for the sequence it enforces."""

    # How many times ``_retrying`` runs a command in all (1: a conflict is raised at once).
    max_attempts: int = MAX_ATTEMPTS

    def __init__(self, app: RfrApplication, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    # -- loading -----------------------------------------------------------------------------

    def load(self, aggregate_id: UUID | str, kind: type[A]) -> A:
        """The aggregate of ``kind`` with this id, or ``NotFound`` (also for an id of another kind)."""
        try:
            uid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))
        except ValueError:
            raise NotFound(kind.__name__, aggregate_id) from None
        try:
            return self.app.get(uid, kind)
        except (AggregateNotFoundError, TypeError):
            raise NotFound(kind.__name__, aggregate_id) from None

    def user(self, user_id: str) -> User:
        """The ``User`` of ``user_id``: the one the request's gate loaded, or else from the store."""
        acting = _ACTING_USER.get()
        if acting is not None and acting.user_id == user_id:
            return acting
        try:
            return self.app.get(User.id_for(user_id), User)
        except (AggregateNotFoundError, TypeError):
            raise UnknownUser(user_id) from None

    def config(self, at: datetime | None = None) -> PolicyConfig:
        """The policy config in force (at ``at``), or the catalogue's defaults before any is established."""
        try:
            settings = self.app.get(SETTINGS_ID, PolicySettings)
        except AggregateNotFoundError:
            return PolicyConfig()
        if at is None:
            return settings.config
        return settings.config_at(at) or PolicyConfig()

    def page(
        self, created: type[Aggregate.Event], build: Callable[[UUID], T], *, after: int, limit: int
    ) -> Page[T]:
        ids, next_after = list_ids(self.app, created, after=after, limit=limit)
        return Page(tuple(build(i) for i in ids), next_after)

    # -- acting ------------------------------------------------------------------------------

    def _acting(self, acting_user: str, command: str, target: str, at: datetime) -> User:
        """The enabled User behind a request; a disabled one is refused and the refusal stored."""
        return self._enabled(self.user(acting_user), command, target, at)

    def _enabled(self, user: User, command: str, target: str, at: datetime) -> User:
        acting_user = user.user_id
        if user.disabled:
            decision = Decision.refuse("A-05", f"{acting_user} is disabled")
            self.app.save(RefusedAttempt.record(command, target, user.actor(), at, decision))
            raise AccessDenied(acting_user, decision.rule_ids, decision.reason, True)
        return user

    def _refuse(
        self,
        command: str,
        actor: Actor,
        at: datetime,
        decision: Decision,
        *,
        target: GovernedAggregate | None,
        target_name: str,
    ) -> PolicyRefusal:
        """Records a refusal decided here (not by the domain) and returns the error to raise."""
        if target is not None and not target.pending_events:
            record_refusal(target, command, actor, at, decision)
            try:
                self.app.save(target)
                return PolicyRefusal(decision.rule_ids, decision.reason)
            except ConcurrentModification:
                pass  # someone wrote the target meanwhile; the refusal goes to an attempt instead
        attempt = RefusedAttempt.record(command, target_name, actor, at, decision)
        self.app.save(attempt)
        return PolicyRefusal(decision.rule_ids, decision.reason, record=attempt)

    def _retrying(self, attempt: Callable[[], R]) -> R:
        """Runs ``attempt`` (load, then ``_act``) again while another writer saved first.

        ``attempt`` must load every aggregate it touches itself: nothing of a failed attempt
        is reused, so each retry re-decides the command on the state now stored. A refusal, or
        any error but ``ConcurrentModification``, ends it at once; after ``max_attempts``
        conflicts the last is raised (409 over HTTP).
        """
        attempts = max(1, self.max_attempts)
        for n in range(1, attempts + 1):
            try:
                return attempt()
            except ConcurrentModification as conflict:
                if n == attempts:
                    raise
                log.info("retrying a command after attempt %d: %s", n, conflict)
                self._reload_acting_user()
        raise AssertionError("unreachable")  # pragma: no cover

    def _reload_acting_user(self) -> None:
        """The request's ``User`` as now stored: a failed save left the one in hand mutated."""
        acting = _ACTING_USER.get()
        if acting is None:
            return
        try:
            act_for_request(self.app.get(acting.id, User))
        except (AggregateNotFoundError, TypeError):
            _ACTING_USER.set(None)

    def _act(
        self,
        acting_user: str,
        command: str,
        touched: Sequence[GovernedAggregate],
        action: Callable[[Act], R],
        *,
        target_name: str | None = None,
    ) -> R:
        """Runs ``action`` as ``acting_user`` and saves ``touched`` + created + the user atomically.

        Who may run the command is the domain command's to decide (A-05 and every other rule),
        so a refusal names the rule the policy names; the use case only establishes who acts.

        ``touched`` are the loaded aggregates the command may change, the target first.
        """
        at = self.clock.now()
        name = target_name or (f"{type(touched[0]).__name__} {touched[0].id}" if touched else command)
        actor, user = self._actor(acting_user, command, name, at, touched)
        act = Act(actor, at, self.config(at))
        try:
            result = action(act)
            to_save: list[Any] = [*touched, *act.created]
            if user is not None:
                if at - user.last_activity >= ACTIVITY_RESOLUTION:
                    user.record_activity(at, command)
                to_save.append(user)
            self.app.save(*_unique(to_save))
        except PolicyRefusal as err:
            act.undo_writes()
            self._store_refusal(command, actor, at, err, touched=touched, name=name)
            raise
        except BaseException:
            act.undo_writes()
            raise
        return result

    def _actor(
        self,
        acting_user: str,
        command: str,
        name: str,
        at: datetime,
        touched: Sequence[GovernedAggregate],
    ) -> tuple[Actor, User | None]:
        """Who runs a command, and the ``User`` whose activity it stamps (None: no User record).

        The acting user's own ``User`` may be among ``touched``; that same object is used.
        """
        user = self._acting(acting_user, command, name, at)
        user = next((a for a in touched if isinstance(a, User) and a.id == user.id), user)
        return user.actor(), user

    def _store_refusal(
        self,
        command: str,
        actor: Actor,
        at: datetime,
        err: PolicyRefusal,
        *,
        touched: Sequence[GovernedAggregate],
        name: str,
    ) -> None:
        # Only aggregates whose pending events are all refusals are saved: any other change
        # made earlier in the same use case must not persist once the command failed.
        refused = [
            a
            for a in _unique(touched)
            if a.pending_events and all(isinstance(e, GovernedAggregate.Refused) for e in a.pending_events)
        ]
        to_save: list[Any] = list(refused)
        if err.record is not None:
            to_save.append(err.record)
        if to_save:
            try:
                self.app.save(*to_save)
                return
            except ConcurrentModification:
                # Another writer changed a target meanwhile. A refusal is never lost:
                # it is kept as an attempt of its own, which cannot conflict.
                if err.record is not None:
                    self.app.save(err.record)
                    return
        decision = Decision(False, err.rule_ids, (err.reason,))
        err.record = RefusedAttempt.record(command, name, actor, at, decision)
        self.app.save(err.record)

    def _read(
        self,
        acting_user: str,
        what: str,
        need: Need,
        *,
        target: str | None = None,
        decide: Callable[[Actor], Decision] | None = None,
    ) -> Actor:
        """Guards a query; ``decide`` adds a rule of the thing read (L-13).

        A refused read is recorded (A-01) as a ``RefusedAttempt`` naming ``target``, never on
        the aggregate read: a read must not change the version of what it reads, or readers
        would collide with writers.
        """
        at = self.clock.now()
        name = target or what
        user = self._acting(acting_user, what, name, at)
        actor = user.actor()
        decision = need.decide(actor, what)
        if decision.allowed and decide is not None:
            decision = decide(actor)
        if not decision.allowed:
            raise self._refuse(what, actor, at, decision, target=None, target_name=name)
        return actor


def _unique(aggregates: Iterable[Any]) -> list[Any]:
    seen: dict[int, Any] = {}
    for a in aggregates:
        seen.setdefault(id(a), a)
    return list(seen.values())


class WorkerUseCase(UseCase):
    """A use case whose commands are a background worker's, in the name of ``worker``: no User
    is loaded or stamped.

    ``UseCase._act`` builds the actor from a ``User`` record; a worker has none (its authority
    is the rule or schedule it carries out), so it acts as that actor directly, with the same
    refusal recording (A-01) and the same single atomic save. Any other acting user is a bug.
    """

    worker: ClassVar[Actor]

    def _actor(
        self,
        acting_user: str,
        command: str,
        name: str,
        at: datetime,
        touched: Sequence[GovernedAggregate],
    ) -> tuple[Actor, User | None]:
        if acting_user != self.worker.user_id:
            raise ValueError(f"this service acts only as {self.worker.user_id}, not {acting_user}")
        return self.worker, None
