"""A library's vector index as a projection of its template events, caught up from its position.

The index of (library, algorithm) saves, with each change, the last notification id it has
applied (its *position*, ADR 0014). Before a search, the searching process reads the template
events stored after that position (templates built, images purged), keeps this library's,
reads their vectors from the biometric store and applies them under the index's write lock,
saving the new position with them. So an index misses nothing the log holds, whichever process
wrote the events and whether or not that process lived to write the index itself (an enrolment
writes its new templates at once, so a search right after it finds them; if it died between
its save and that write, the next search adds them). The cost is the events since the
position, never the library's size. An index with no position (new, or rebuilt from the store
after damage) starts from the beginning of the log, once.

A search is not a write. When the events since the position change nothing in the index (the
usual case: the log moved by searches, audit queries, other libraries' enrolments, or by an
enrolment that already wrote its templates), the position reached is kept in this process's
memory only, and neither the lock is taken nor a journal entry written. The moved position is
saved with the next change the catch-up writes anyway, or on its own (one small journal entry)
once it is more than ``POSITION_GAP`` notifications ahead of the saved one, or when the index
has no position yet. After a restart the memory is gone and the catch-up starts again from the
saved position: it re-reads at most ``POSITION_GAP`` notifications that change nothing, which
is correct, only slower once.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import attrs
import numpy as np

from rfr.application.app import RfrApplication
from rfr.application.errors import RecordNotFound
from rfr.application.ports import VectorIndex
from rfr.application.services.biometric_support import Biometrics
from rfr.domain.enrolment_batch import EnrolmentBatch, ImageHolder
from rfr.domain.governed import stored_topics
from rfr.domain.reference_library import ReferenceLibrary

# Events that change what an index holds: templates built, images (and their templates) purged,
# templates of a replaced algorithm erased (T-02).
TOPICS = tuple(
    topic
    for kind in (
        EnrolmentBatch.TemplatesBuilt,
        ReferenceLibrary.TemplatesBuilt,
        EnrolmentBatch.ImagesPurged,
        ReferenceLibrary.ImagesPurged,
        EnrolmentBatch.TemplatesErased,
        ReferenceLibrary.TemplatesErased,
    )
    for topic in stored_topics(kind)
)
PAGE = 500
# How far (in notifications) the position reached may run ahead of the saved one before a
# catch-up that changes nothing saves it anyway. Bounds what a restart re-reads: the select by
# topic scans every notification after the saved position (the log has no index on topics), and
# 10,000 are a few tens of milliseconds once per library searched after a restart. Against one
# journal entry per search before, a library searched all day writes one entry (about 100
# bytes) per 10,000 events stored, so its journal no longer grows, and compacts, with searches.
POSITION_GAP = 10_000


@attrs.frozen
class _Reached:
    """No event in (saved, reached] changed the index whose saved position is ``saved``."""

    saved: int
    reached: int


class _Memory:
    """The positions this process reached without saving them, per registry and index.

    Held weakly by registry (one folder of indexes), so a registry that is gone forgets its
    positions; valid for one log, the recorder it was read from, and only while the index's
    saved position is the one it was reached from (a rebuild or another process's save moves
    that, and the catch-up then starts from the saved position again).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_registry: weakref.WeakKeyDictionary[object, dict] = weakref.WeakKeyDictionary()

    def start(
        self, app: RfrApplication, bio: Biometrics, library_id: str, algorithm_id: str, saved: int | None
    ) -> int:
        """Where to read from: the position reached from ``saved``, else ``saved`` itself."""
        return self.start_of(app, bio.indexes, library_id, algorithm_id, saved)

    def start_of(
        self, app: RfrApplication, indexes: object, library_id: str, algorithm_id: str, saved: int | None
    ) -> int:
        """``start`` for the index of (library, algorithm) in the registry ``indexes``."""
        if saved is None:
            return 0
        with self._lock, contextlib.suppress(TypeError):
            recorder, reached = self._by_registry.get(indexes, {}).get(
                (library_id, algorithm_id), (None, None)
            )
            if recorder is not None and recorder() is app.recorder and reached.saved == saved:
                return max(reached.reached, saved)
        return saved

    def remember(
        self, app: RfrApplication, bio: Biometrics, library_id: str, algorithm_id: str, reached: _Reached
    ) -> None:
        with self._lock, contextlib.suppress(TypeError):  # a registry that takes no weak reference
            positions = self._by_registry.setdefault(bio.indexes, {})
            positions[(library_id, algorithm_id)] = (weakref.ref(app.recorder), reached)


_MEMORY = _Memory()


def next_start(
    app: RfrApplication, indexes: object, library_id: str, algorithm_id: str, saved: int | None
) -> int:
    """The position the next catch-up of this index in this process reads after, if its files
    still hold ``saved``: the position reached in memory from ``saved`` (ADR 0014's addendum),
    else ``saved`` itself, or 0 when ``saved`` is None (the whole log is read then).

    Reads this process's memory only: no event, no file. ``indexes`` is the registry the index
    is in, ``saved`` the position saved with it as this process holds it. For reports (the
    operators' health details); the catch-up itself decides with the same rule.
    """
    return _MEMORY.start_of(app, indexes, library_id, algorithm_id, saved)


@attrs.define
class _Events:
    """The template events of one algorithm in (after, head]."""

    built: dict[str, None] = attrs.field(factory=dict)
    purged: set[str] = attrs.field(factory=set)
    read: int = 0


def _read(app: RfrApplication, algorithm_id: str, after: int, head: int) -> _Events:
    events = _Events()
    while after < head:
        page = app.recorder.select_notifications(
            start=after, limit=PAGE, stop=head, topics=TOPICS, inclusive_of_start=False
        )
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            if isinstance(event, ImageHolder.TemplatesBuilt) and event.algorithm_id == algorithm_id:
                events.built.update(dict.fromkeys(event.templates.values()))
            elif isinstance(event, ImageHolder.ImagesPurged) or (
                isinstance(event, ImageHolder.TemplatesErased) and event.algorithm_id == algorithm_id
            ):
                events.purged.update(event.template_ids)
        events.read += len(page)
        if len(page) < PAGE:
            break
        after = page[-1].id
    return events


def _changes(
    app: RfrApplication, library_id: str, algorithm_id: str, index: VectorIndex, events: _Events
) -> tuple[list[str], list[str]]:
    """The templates to add to ``index`` and those to remove from it, as the events say."""
    # This library's templates, as the projection knows them (a purged one is gone from it).
    mine = app.library_images.templates_in(library_id, algorithm_id, events.built)
    added = [t for t in events.built if t in mine and t not in events.purged and t not in index]
    return added, [t for t in events.purged if t in index]


def _must_save(saved: int | None, head: int) -> bool:
    """Whether to save the position even though nothing changed: the first time (no position: a
    new index, or one a rebuild from the store reset, is never trusted to memory), and when it
    is more than ``POSITION_GAP`` ahead of the saved one."""
    return saved is None or head - saved > POSITION_GAP


def catch_up(app: RfrApplication, bio: Biometrics, library_id: str, algorithm_id: str | None = None) -> int:
    """Applies the template events after the index's position to the library's index of
    ``algorithm_id`` (default: the deployment's); returns how many events were read."""
    algorithm = bio.algorithm_id if algorithm_id is None else algorithm_id
    head = app.recorder.max_notification_id() or 0
    index = bio.index_for(library_id, algorithm)
    saved = getattr(index, "position", None)
    after = _MEMORY.start(app, bio, library_id, algorithm, saved)
    if after >= head:
        return 0
    # Read without the lock: the events are immutable, and if they change nothing in the index
    # as its files hold it now, there is nothing to lock for.
    events = _read(app, algorithm, after, head)
    read = events.read
    added, gone = _changes(app, library_id, algorithm, index, events)
    if not added and not gone and not _must_save(saved, head):
        _MEMORY.remember(app, bio, library_id, algorithm, _Reached(saved, head))
        return read
    embedder = bio.engine_for(algorithm).embedder
    with bio.indexes.writing(library_id, algorithm, embedder.dimension, embedder.metric) as index:
        saved = getattr(index, "position", None)  # again, under the lock
        start = _MEMORY.start(app, bio, library_id, algorithm, saved)
        if start >= head:
            return read
        if start != after:  # another process saved a position meanwhile, or a rebuild reset it
            events = _read(app, algorithm, start, head)
            read += events.read
        added, gone = _changes(app, library_id, algorithm, index, events)
        vectors: dict[str, np.ndarray] = {}
        for template_id in added:
            with contextlib.suppress(RecordNotFound):  # erased since: nothing to index
                vectors[template_id] = bio.store.get_template(template_id).vector
        if vectors:
            index.add(list(vectors), np.stack(list(vectors.values())))
        if gone:
            index.remove(gone)
        if vectors or gone or _must_save(saved, head):
            index.position = saved = head  # type: ignore[attr-defined]
    _MEMORY.remember(app, bio, library_id, algorithm, _Reached(saved, head))
    return read
