"""The one eventsourcing application every use case runs in: one event store, one audit chain.

Its persistence comes from the environment it is given; entrypoints build that with
``rfr.infrastructure.persistence.application_env(Settings.from_env())``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, overload
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, Repository
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, StoredEvent, Transcoding

from rfr.application.projections import STATEMENTS_KEYWORD, Projection, ProjectionStore, Statement
from rfr.application.projections.endorsement_queue import EndorsementQueue, EndorsementQueueProjection
from rfr.application.projections.library_images import LibraryImages, LibraryImagesProjection
from rfr.application.projections.probe_searches import ProbeSearches, ProbeSearchesProjection
from rfr.application.projections.usage_counts import UsageCounts, UsageCountsProjection
from rfr.domain.report_schedule import ReportSchedule

# Every projection the application keeps (ADR 0013).
PROJECTIONS: tuple[Projection, ...] = (
    LibraryImagesProjection(),
    ProbeSearchesProjection(),
    UsageCountsProjection(),
    EndorsementQueueProjection(),
)

A = TypeVar("A", bound=BaseAggregate[UUID])

# A report schedule is snapshotted every this many events (ADR 0028): the worker loads every
# schedule every round, and a schedule gains two or more events per period delivered, so without
# one an hourly schedule's load would replay ~17,500 events after a year. With one, a load reads
# one snapshot and fewer than this many events, whatever the schedule's age.
SNAPSHOT_INTERVAL = 30

# Told the domain events of each save once they are stored (live metrics count them).
SaveObserver = Callable[[Sequence[Any]], None]

log = logging.getLogger(__name__)


def _mutate_each(aggregate: Any, domain_events: Iterable[Any]) -> Any:
    """The library's ``project_aggregate`` without its per-event ``isinstance`` check against a
    runtime protocol, which cost more than the mutation itself when a search loads its
    aggregates (every event here is one of our aggregates' events)."""
    for domain_event in domain_events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


__all__ = ["AggregateNotFoundError", "ConcurrentModification", "RfrApplication"]


class ConcurrentModification(Exception):
    """Someone else saved one of these aggregate versions first; nothing of this save was stored.

    Reload the aggregate and decide again: the other writer's decision may change yours.
    """

    def __init__(self, attempted: tuple[tuple[UUID | str, int], ...]) -> None:
        self.attempted = attempted
        listed = ", ".join(f"{oid} v{version}" for oid, version in attempted)
        super().__init__(f"concurrent modification: another writer saved first (attempted {listed})")


class RfrApplication(Application[UUID]):
    # Only aggregates whose history grows without bound while they are loaded again and again
    # are snapshotted; the others are sized to their decisions (ADR 0013) and load without
    # asking the snapshot store.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {ReportSchedule: SNAPSHOT_INTERVAL}
    snapshotting_projectors: ClassVar[dict[type[Any], Any]] = {ReportSchedule: _mutate_each}

    # Value objects carried by events need transcodings; the domain lists them here (or a
    # subclass extends the tuple) so storage never falls back to lossy conversions.
    transcodings: ClassVar[tuple[Transcoding, ...]] = ()

    def __init__(self, env: Mapping[str, str]) -> None:
        if "PERSISTENCE_MODULE" not in env:
            # Without it eventsourcing silently picks an in-memory store with no audit chain.
            raise ValueError("env must name PERSISTENCE_MODULE; build it with application_env(settings)")
        super().__init__(env=dict(env))
        if not all(callable(getattr(self.recorder, m, None)) for m in ("chain_head", "audit_snapshot")):
            raise TypeError(
                f"{type(self.recorder).__name__} keeps no audit hash chain (A-02); "
                "use a persistence module from rfr.infrastructure.persistence"
            )
        # The same events without the snapshot store, for aggregates that are never snapshotted:
        # their load is one query, as before snapshots were kept.
        self.unsnapshotted = Repository(self.events) if self.snapshots is not None else self.repository
        if not isinstance(self.recorder, ProjectionStore):
            raise TypeError(f"{type(self.recorder).__name__} keeps no projections (ADR 0013)")
        self.projections: tuple[Projection, ...] = PROJECTIONS
        self.library_images = LibraryImages(self.recorder)
        self.probe_searches = ProbeSearches(self.recorder)
        self.usage_counts = UsageCounts(self.recorder)
        self.observers: tuple[SaveObserver, ...] = ()
        self.endorsement_queue = EndorsementQueue(self.recorder)
        if str(env.get("CREATE_TABLE", "yes")).lower() not in ("no", "n", "false", "0", "off"):
            # A store written before a projection (or another version of it) existed: built now.
            try:
                stale = self.recorder.install_projections(self.projections)
                if stale:
                    self.rebuild_projections(stale)
            except BaseException:
                self.close()  # its connections, which no caller holds yet
                raise

    def rebuild_projections(self, names: Sequence[str] | None = None) -> int:
        """Empties the projections named (all by default) and replays the whole log into them,
        in one transaction; returns the number of events read."""
        chosen = [p for p in self.projections if names is None or p.name in names]
        unknown = set(names or ()) - {p.name for p in chosen}
        if unknown:
            raise ValueError(f"no projection named {', '.join(sorted(unknown))}")

        def statements_of(stored: StoredEvent) -> list[Statement]:
            event = self.mapper.to_domain_event(stored)
            return [s for p in chosen for s in p.statements(event)]

        return self.recorder.rebuild_projections(chosen, statements_of)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in self.transcodings:
            transcoder.register(transcoding)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Stores all pending events of ``objs`` atomically, or raises ConcurrentModification."""
        # Read before saving: the library clears an aggregate's pending events as it collects them.
        attempted = tuple(
            (event.originator_id, event.originator_version)
            for obj in objs
            if obj is not None
            for event in (obj.pending_events if isinstance(obj, BaseAggregate) else (obj,))
        )
        # Each projection's rows for these events, written by the recorder in the same transaction.
        statements = [
            statement
            for obj in objs
            if obj is not None
            for event in (obj.pending_events if isinstance(obj, BaseAggregate) else (obj,))
            for projection in self.projections
            for statement in projection.statements(event)
        ]
        try:
            return super().save(*objs, **{STATEMENTS_KEYWORD: statements, **kwargs})
        except IntegrityError as e:
            raise ConcurrentModification(attempted) from e

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        # Runs after the events are stored. A snapshot only saves reading them again, so failing
        # to write one must not make a stored save look failed (a caller would try it again).
        try:
            super()._take_snapshots(processing_event)
        except Exception:
            log.exception("a snapshot could not be taken; loads replay the events instead")

    def observe(self, observer: SaveObserver) -> None:
        """Tells ``observer`` the events of every save from now on, once stored (once, however
        often it is asked: several ``Services`` may be built over one application)."""
        if observer not in self.observers:
            self.observers = (*self.observers, observer)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        # Called by the library only after the events are stored: an observer sees what landed.
        # The save has succeeded whatever an observer does, so its failure is logged, not raised.
        events = [recording.domain_event for recording in recordings]
        for observer in self.observers:
            try:
                observer(events)
            except Exception:
                log.exception("an observer of saved events failed")

    @overload
    def get(self, aggregate_id: UUID) -> BaseAggregate[UUID]: ...

    @overload
    def get(self, aggregate_id: UUID, kind: type[A]) -> A: ...

    def get(self, aggregate_id: UUID, kind: type[Any] | None = None) -> Any:
        """The aggregate's current state; ``kind`` guards against an id of another type."""
        snapshotted = kind is None or kind in self.snapshotting_intervals
        repository = self.repository if snapshotted else self.unsnapshotted
        aggregate = repository.get(aggregate_id, projector_func=_mutate_each)
        if kind is not None and not isinstance(aggregate, kind):
            raise TypeError(f"{aggregate_id} is a {type(aggregate).__name__}, not a {kind.__name__}")
        return aggregate
