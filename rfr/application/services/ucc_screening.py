"""U-02: re-searching the Unresolved Crime Cache against newly enrolled library material.

After an enrolment, every probe still in the cache to which the library is relevant is
compared with the NEW templates only (exact distances; the batch is small), and the close
ones are queued on the probe's ``UccMatchQueue`` for adjudication.

Which libraries are relevant to a cached probe: those chosen in the search requests the
probe was cached after (the ``search_request_ids`` of its ``AddedToUcc``
event), i.e. libraries someone already justified searching for this probe (S-03). The
rules a search would need now are re-checked by the domain (``may_queue``); a probe they
exclude is skipped and named in the report, not refused, since nobody asked for it.

"Close": at or above ``Biometrics.ucc_min_score`` (default 0.5, the algorithm's own
decision threshold), at most ``ucc_top_k`` per probe and enrolment. Unlike an ordinary
search, nobody chose to look, so only material near the threshold is put before a person.

Cached probes are found through the notifications of ``AddedToUcc`` events
(eventsourcing has no query by state); each is loaded to check it is still cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

import attrs
import numpy as np
from eventsourcing.application import AggregateNotFoundError

from rfr.application.app import ConcurrentModification, RfrApplication
from rfr.application.errors import NotFound, RecordNotFound
from rfr.application.ports import Clock, StoredTemplate
from rfr.application.services.base import Act, Need, UseCase
from rfr.application.services.biometric_support import Biometrics, distances
from rfr.application.services.calibrations import ScoreCalibrations
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import OPERATIONAL_ROLES
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.rules_search import within_access
from rfr.domain.search_request import SearchRequest
from rfr.domain.ucc_matches import QueuedMatch, UccMatchQueue, may_queue

UCC_MATCH_READERS = Need(OPERATIONAL_ROLES)


@attrs.frozen
class ScreeningReport:
    """What one re-search of the cache did: probes compared, matches queued, probes skipped and why."""

    probes_screened: int
    matches_queued: int
    skipped: tuple[tuple[str, str], ...] = ()

    @classmethod
    def empty(cls) -> ScreeningReport:
        return cls(0, 0, ())

    def merge(self, other: ScreeningReport) -> ScreeningReport:
        return ScreeningReport(
            self.probes_screened + other.probes_screened,
            self.matches_queued + other.matches_queued,
            self.skipped + other.skipped,
        )


@attrs.frozen
class QueuedMatchView:
    """A potential match found for a cached probe in new library material (U-02).

    Attributes:
        match_id: The match's id within the probe's queue.
        library_id: The library of the image found.
        image_id: The library image found.
        score: Its similarity score, from 0 to 1 (0.5 at the algorithm's threshold).
        adjudicated: Whether a person has adjudicated it.
        viable: The adjudication: viable or not; null while not adjudicated.
    """

    match_id: str
    library_id: str
    image_id: str
    score: float
    adjudicated: bool
    viable: bool | None


@attrs.frozen
class UccQueueView:
    """The potential matches queued for a cached probe, highest score first (U-02).

    Attributes:
        probe_id: The cached probe.
        matches: Its queued matches, adjudicated or not, highest score first.
    """

    probe_id: str
    matches: tuple[QueuedMatchView, ...]

    @property
    def pending(self) -> tuple[QueuedMatchView, ...]:
        return tuple(m for m in self.matches if not m.adjudicated)


class UccScreening(UseCase):
    def __init__(self, app: RfrApplication, clock: Clock, biometrics: Biometrics) -> None:
        super().__init__(app, clock)
        self.bio = biometrics

    def _live_templates(self, template_ids: Iterable[str]) -> list[StoredTemplate]:
        """The templates still in the store: one erased meanwhile (R-05) is simply not screened."""
        found = []
        for template_id in template_ids:
            try:
                found.append(self.bio.store.get_template(template_id))
            except RecordNotFound:
                continue
        return found

    def screen(self, acting_user: str, library_id: str, template_ids: Sequence[str]) -> ScreeningReport:
        """Search the cached probes relevant to the library against these new templates (U-02)."""
        if not template_ids:
            return ScreeningReport.empty()
        library = self.load(library_id, ReferenceLibrary)
        approval = self.load(library.approval_id, LibraryApproval)
        algorithm_id = self.bio.algorithm_id
        new = [t for t in self._live_templates(template_ids) if t.algorithm_id == algorithm_id]
        if not new:
            return ScreeningReport.empty()
        image_of = self.app.library_images.searchable_templates(
            str(library.id), algorithm_id, [t.record_id for t in new], self.clock.now()
        )
        screened, queued, skipped = 0, 0, []
        for probe in self.ucc_probes():
            if str(library.id) not in self._relevant_libraries(probe):
                continue
            at = self.clock.now()
            decision = may_queue(
                probe, library, approval, algorithm_id=algorithm_id, at=at, config=self.config(at)
            )
            if not decision.allowed:
                skipped.append((str(probe.id), f"{', '.join(decision.rule_ids)}: {decision.reason}"))
                continue
            screened += 1
            matches = self._matches(probe, library, new, image_of)
            if not matches:
                continue
            try:
                queued += self._queue(acting_user, probe, library, approval, matches)
            except PolicyRefusal as refusal:
                skipped.append((str(probe.id), f"{', '.join(refusal.rule_ids)}: {refusal.reason}"))
            except ConcurrentModification:
                # Another screening queued on this probe meanwhile; screening these templates
                # again is safe (queued matches are never queued twice).
                skipped.append((str(probe.id), "the queue changed meanwhile; screen these templates again"))
        return ScreeningReport(screened, queued, tuple(skipped))

    def ucc_probes(self) -> list[ProbeImage]:
        """Probes in the Unresolved Crime Cache now (added, not removed, not purged)."""
        probes = [self.app.get(UUID(i), ProbeImage) for i in self.app.probe_searches.in_ucc()]
        return [p for p in probes if p.purged_at is None and p.ucc is not None and p.ucc.removed_at is None]

    def _relevant_libraries(self, probe: ProbeImage) -> set[str]:
        added = [
            e for e in self.app.repository.event_store.get(probe.id) if isinstance(e, ProbeImage.AddedToUcc)
        ]
        if not added:
            return set()
        libraries: set[str] = set()
        for request_id in added[-1].search_request_ids:
            try:
                libraries.update(self.app.get(UUID(request_id), SearchRequest).libraries)
            except AggregateNotFoundError:
                continue
        return libraries

    def _matches(
        self,
        probe: ProbeImage,
        library: ReferenceLibrary,
        new: list[StoredTemplate],
        image_of: dict[str, str],
    ) -> list[QueuedMatch]:
        algorithm_id = self.bio.algorithm_id
        held = self._live_templates(probe.template_ids(algorithm_id))
        probe_templates = [t for t in held if t.algorithm_id == algorithm_id]
        if not probe_templates:
            return []
        probe_vectors = np.stack([t.vector for t in probe_templates])
        gallery = np.stack([t.vector for t in new])
        best = distances(probe_vectors, gallery, self.bio.engine.embedder.metric).min(axis=0)
        # The calibrated scale when one is in force (ADR 0020), as a search would score them.
        scale = ScoreCalibrations(self.app, self.clock).scale_for(algorithm_id, self.bio.engine.embedder)
        queue = self._queue_or_none(probe)
        already = set(queue.matches) if queue is not None else set()
        found = []
        for template, distance in zip(new, best, strict=True):
            score = scale.score(float(distance))
            image_id = image_of.get(template.record_id)
            if score < self.bio.ucc_min_score or image_id is None:
                continue
            match = QueuedMatch(str(library.id), image_id, template.record_id, algorithm_id, score)
            if match.match_id not in already:
                found.append(match)
        found.sort(key=lambda m: -m.score)
        return found[: self.bio.ucc_top_k]

    def _queue_or_none(self, probe: ProbeImage) -> UccMatchQueue | None:
        try:
            return self.app.get(UccMatchQueue.id_for(probe.id), UccMatchQueue)
        except AggregateNotFoundError:
            return None

    def _queue(
        self,
        acting_user: str,
        probe: ProbeImage,
        library: ReferenceLibrary,
        approval: LibraryApproval,
        matches: list[QueuedMatch],
    ) -> int:
        existing = self._queue_or_none(probe)

        def action(act: Act) -> int:
            queue = existing or act.new(UccMatchQueue.open_for(act.actor, act.at, probe))
            holdings = self.app.library_images.holdings(
                str(library.id), self.bio.algorithm_id, [m.template_id for m in matches], act.at
            )
            queue.queue(
                act.actor,
                act.at,
                probe=probe,
                library=library,
                holdings=holdings,
                approval=approval,
                algorithm_id=self.bio.algorithm_id,
                matches=matches,
                config=act.config,
            )
            return len(matches)

        return self._act(
            acting_user,
            "queue cache matches (U-02)",
            [existing] if existing is not None else [],
            action,
            target_name=f"UccMatchQueue of probe {probe.id}",
        )

    # -- reading and adjudicating ---------------------------------------------------------------

    def queue_of(self, acting_user: str, probe_id: str) -> UccQueueView:
        """The probe's queued U-02 matches; only those of libraries the reader may access (L-13)."""
        actor = self._read(
            acting_user, "read cache matches", UCC_MATCH_READERS, target=f"ProbeImage {probe_id}"
        )
        probe = self.load(probe_id, ProbeImage)
        queue = self._queue_or_none(probe)
        if queue is None:
            return UccQueueView(str(probe.id), ())
        views = []
        for match_id, match in sorted(queue.matches.items(), key=lambda kv: (-kv[1].score, kv[0])):
            approval = self.load(queue.library_approvals[match.library_id], LibraryApproval)
            if not within_access(approval, actor).allowed:
                continue
            adjudication = queue.adjudications.get(match_id)
            views.append(
                QueuedMatchView(
                    match_id,
                    match.library_id,
                    match.image_id,
                    match.score,
                    adjudication is not None,
                    adjudication.viable if adjudication else None,
                )
            )
        return UccQueueView(str(probe.id), tuple(views))

    def adjudicate(
        self,
        acting_user: str,
        probe_id: str,
        match_id: str,
        viable: bool,
        rationale: str,
        *,
        identity_known: bool | None = None,
    ) -> UccQueueView:
        """S-05 on a queued match, by an RFR User within the library's access restrictions (L-13).

        Another writer saving the queue first (a colleague adjudicating another match, a
        screening queuing new ones) runs it again on a fresh load (``_retrying``); the same match
        adjudicated twice at once is refused the second time under S-05, and recorded.
        """
        probe = self.load(probe_id, ProbeImage)

        def attempt() -> None:
            queue = self._queue_or_none(probe)
            if queue is None or match_id not in queue.matches:
                raise NotFound("queued match", match_id)
            approval = self.load(queue.library_approvals[queue.matches[match_id].library_id], LibraryApproval)
            self._act(
                acting_user,
                "adjudicate cache match",
                [queue],
                lambda act: queue.adjudicate(
                    act.actor,
                    act.at,
                    match_id,
                    viable,
                    rationale,
                    approval=approval,
                    identity_known=identity_known,
                ),
            )

        self._retrying(attempt)
        return self.queue_of(acting_user, probe_id)
