"""Erasing biometric data (R-05): the bytes, templates and index entries, then the ``Purged`` event.

The domain decides first (legal holds, R-04; roles; a reason), on the loaded aggregate, so
nothing is destroyed that policy forbids destroying. Then the store records (image, face
analyses, subject reference, templates) are erased, irrecoverably, and the templates
removed from every index of the library, which is saved at once so the vectors leave the
index files too. The store is erased before the index is locked, so an enrolment or a
rebuild that takes the index lock after this one finds the templates gone from the store
and cannot put them back. Last the aggregate is saved with its ``ImagesPurged`` / ``Purged`` event,
which keeps the fact and never the data.

If that last save loses a race with another writer, the erasure has already happened:
erasing is idempotent, so the command is decided and saved again on the fresh aggregate,
once; a second conflict is reported to the caller, who may simply retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from rfr.application.app import ConcurrentModification, RfrApplication
from rfr.application.ports import Clock
from rfr.application.services.base import Act, Need, UseCase
from rfr.application.services.biometric_support import Biometrics, library_image_records
from rfr.domain.enrolment_batch import ImageHolder
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary

# The domain names who may purge (library managers for library images, any authorised
# user for a probe, e.g. under a retention job); this only asks for an enabled user.
ERASERS = Need()


class BiometricErasure(UseCase):
    def __init__(self, app: RfrApplication, clock: Clock, biometrics: Biometrics) -> None:
        super().__init__(app, clock)
        self.bio = biometrics

    def purge_library_images(
        self, acting_user: str, library_id: UUID | str, image_ids: Sequence[str], reason: str
    ) -> tuple[str, ...]:
        """R-05 for library images; returns the template ids that were destroyed."""
        image_ids = list(dict.fromkeys(image_ids))
        return self._twice(lambda: self._purge_images(acting_user, library_id, image_ids, reason))

    def purge_probe(self, acting_user: str, probe_id: UUID | str, reason: str) -> tuple[str, ...]:
        """R-05 for a probe: its image, face analyses and templates; returns the erased record ids."""
        return self._twice(lambda: self._purge_probe(acting_user, probe_id, reason))

    def _purge_images(
        self, acting_user: str, library_id: UUID | str, image_ids: list[str], reason: str
    ) -> tuple[str, ...]:
        """The images' holders (enrolment batches, or a library enrolled before them) each record
        the purge, in one save; an id the library does not hold is refused on the library's record."""
        library = self.load(library_id, ReferenceLibrary)
        images, own = self.app.library_images, str(library.id)
        holders = images.holders(own, image_ids)
        unknown = set(image_ids) - {i for held in holders.values() for i in held}
        if unknown:
            # Refused by the library, on its record (R-05: not an image it holds).
            holders.setdefault(own, []).extend(i for i in image_ids if i in unknown)
        loaded: list[ImageHolder] = [library if h == own else self.load(h, ImageHolder) for h in holders]
        by_algorithm: dict[str, list[str]] = {}
        for templates in images.templates_of(image_ids).values():
            for algorithm_id, template_id in templates.items():
                by_algorithm.setdefault(algorithm_id, []).append(template_id)

        def action(act: Act) -> tuple[str, ...]:
            for holder in loaded:
                ids, hold = holders[str(holder.id)], library.legal_hold
                holder.purge_images(act.actor, act.at, ids, reason, hold=hold)
            for image_id in image_ids:
                for record_id in library_image_records(image_id):
                    self.bio.store.erase(record_id)
            destroyed: list[str] = []
            for algorithm_id, template_ids in by_algorithm.items():
                for template_id in template_ids:
                    self.bio.store.erase(template_id)
                destroyed += template_ids
                self._unindex(str(library.id), algorithm_id, template_ids)
            return tuple(sorted(destroyed))

        others = [h for h in loaded if h is not library]
        return self._act(acting_user, "purge library images", [library, *others], action)

    def _unindex(self, library_id: str, algorithm_id: str, template_ids: list[str]) -> None:
        if not template_ids:
            return
        if algorithm_id != self.bio.algorithm_id:
            # An index of another algorithm is not opened here (its shape is that algorithm's);
            # dropped, it is rebuilt from the store, which no longer holds these templates.
            self.bio.indexes.drop(library_id, algorithm_id)
            return
        embedder = self.bio.engine.embedder
        # One locked write from the index's current files, not this process's cached copy:
        # saving a copy older than another process's save would put back what it removed.
        with self.bio.indexes.writing(library_id, algorithm_id, embedder.dimension, embedder.metric) as index:
            index.remove(template_ids)

    def _purge_probe(self, acting_user: str, probe_id: UUID | str, reason: str) -> tuple[str, ...]:
        probe = self.load(probe_id, ProbeImage)

        def action(act: Act) -> tuple[str, ...]:
            probe.purge(act.actor, act.at, reason)
            erased = [
                r.record_id
                for r in self.bio.store.records(str(probe.id))
                if self.bio.store.erase(r.record_id)
            ]
            return tuple(sorted(erased))

        return self._act(acting_user, "purge probe", [probe], action)

    @staticmethod
    def _twice(command: Callable[[], tuple[str, ...]]) -> tuple[str, ...]:
        try:
            return command()
        except ConcurrentModification:
            return command()
