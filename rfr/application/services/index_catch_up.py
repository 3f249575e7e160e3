"""A library's vector index as a projection of its template events, caught up from its position.

The index of (library, algorithm) saves, with each change, the last notification id it has
applied (its *position*, ADR 0014). Before a search, the searching process reads the template
events stored after that position (templates built, images purged), keeps this library's,
reads their vectors from the biometric store and applies them, then saves the new position, all
under the index's write lock. So an index misses nothing the log holds, whichever process wrote
the events and whether or not that process lived to write the index itself (an enrolment
writes its new templates at once, so a search right after it finds them; if it died between
its save and that write, the next search adds them). The cost is the template events since the
position, never the library's size. An index with no position (new, or rebuilt from the store
after damage) starts from the beginning of the log, once.
"""

from __future__ import annotations

import contextlib

import numpy as np

from rfr.application.app import RfrApplication
from rfr.application.errors import RecordNotFound
from rfr.application.services.biometric_support import Biometrics
from rfr.domain.enrolment_batch import EnrolmentBatch, ImageHolder
from rfr.domain.governed import stored_topics
from rfr.domain.reference_library import ReferenceLibrary

# Events that change what an index holds: templates built, images (and their templates) purged.
TOPICS = tuple(
    topic
    for kind in (
        EnrolmentBatch.TemplatesBuilt,
        ReferenceLibrary.TemplatesBuilt,
        EnrolmentBatch.ImagesPurged,
        ReferenceLibrary.ImagesPurged,
    )
    for topic in stored_topics(kind)
)
PAGE = 500


def catch_up(app: RfrApplication, bio: Biometrics, library_id: str) -> int:
    """Applies the template events after the index's position; returns how many were read."""
    head = app.recorder.max_notification_id() or 0
    if (getattr(bio.index(library_id), "position", None) or 0) >= head:
        return 0
    embedder = bio.engine.embedder
    algorithm_id = bio.algorithm_id
    with bio.indexes.writing(library_id, algorithm_id, embedder.dimension, embedder.metric) as index:
        after = getattr(index, "position", None) or 0  # again, under the lock
        if after >= head:
            return 0
        built: dict[str, None] = {}
        purged: set[str] = set()
        read = 0
        while after < head:
            page = app.recorder.select_notifications(
                start=after, limit=PAGE, stop=head, topics=TOPICS, inclusive_of_start=False
            )
            for notification in page:
                event = app.mapper.to_domain_event(notification)
                if isinstance(event, ImageHolder.TemplatesBuilt) and event.algorithm_id == algorithm_id:
                    built.update(dict.fromkeys(event.templates.values()))
                elif isinstance(event, ImageHolder.ImagesPurged):
                    purged.update(event.template_ids)
            read += len(page)
            if len(page) < PAGE:
                break
            after = page[-1].id
        # This library's templates, as the projection knows them (a purged one is gone from it).
        mine = app.library_images.templates_in(library_id, algorithm_id, built)
        vectors: dict[str, np.ndarray] = {}
        for template_id in built:
            if template_id in mine and template_id not in purged and template_id not in index:
                with contextlib.suppress(RecordNotFound):  # erased since: nothing to index
                    vectors[template_id] = bio.store.get_template(template_id).vector
        if vectors:
            index.add(list(vectors), np.stack(list(vectors.values())))
        gone = [t for t in purged if t in index]
        if gone:
            index.remove(gone)
        index.position = head  # type: ignore[attr-defined]
    return read
