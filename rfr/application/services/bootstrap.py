"""The first administrator of a new installation, created only while no user exists.

Every other user is registered by an administrator (A-05), so an empty store needs one
door in. It opens once: the first administrator is saved together with an
``Installation`` aggregate of a fixed id, so two processes racing to bootstrap collide in
the event store and only one succeeds; after that, the door is shut for good.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from rfr.application.app import ConcurrentModification, RfrApplication
from rfr.application.errors import AlreadyBootstrapped
from rfr.application.ports import Clock
from rfr.application.services.base import any_created
from rfr.domain.calendar import require_aware
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import Actor, Role
from rfr.domain.user import User

INSTALLATION_ID: UUID = uuid5(NAMESPACE_URL, "urn:rfr:installation")

# Named in the events of the bootstrap so the audit trail says the installation, not a
# person, created the first administrator.
INSTALLER = Actor("rfr:installation", {Role.ADMINISTRATOR})


class Installation(GovernedAggregate):
    """One per event store: the record that the first administrator was created, and by whom."""

    class Bootstrapped(GovernedAggregate.Event, Aggregate.Created):
        administrator: str

        def apply(self, agg: Installation) -> None:
            agg.administrator = self.administrator
            agg.bootstrapped_at = self.timestamp

    @classmethod
    def bootstrap(cls, at: datetime, administrator: str, reason: str) -> Installation:
        return cls._create(
            cls.Bootstrapped,
            id=INSTALLATION_ID,
            timestamp=require_aware(at),
            actor=INSTALLER.to_data(),
            reason=reason,
            administrator=administrator,
        )


def bootstrap_administrator(
    app: RfrApplication,
    clock: Clock,
    user_id: str,
    *,
    reason: str = "first administrator of a new installation",
) -> UUID:
    """Registers ``user_id`` as a trained Administrator; ``AlreadyBootstrapped`` once any user exists.

    Returns the new user's aggregate id. The administrator holds no other role, so they can
    manage access but cannot search or approve until an administrator grants more (A-05).
    """
    if any_created(app, User.Registered):
        raise AlreadyBootstrapped("users already exist; an administrator registers new ones")
    at = clock.now()
    user = User.register(INSTALLER, at, user_id, [Role.ADMINISTRATOR])
    # Training is attested by whoever installs the system; without it A-05 would refuse
    # every command of the only person able to register anyone.
    user.record_training(INSTALLER, at, True, reason)
    try:
        app.save(user, Installation.bootstrap(at, user_id, reason))
    except ConcurrentModification:
        raise AlreadyBootstrapped("another process bootstrapped this installation first") from None
    return user.id
