"""Re-templating a library (T-02): a stored, resumable job, run a batch per save.

A library manager starts it, naming the algorithm (``start``); a process then takes it up
(``take_up``, refused while the process named last still lives) and runs it a batch at a time
(``step``), each batch one save in the name of the person who started or resumed it:

1. *templating*: the library's images are read in enrolment order after the position the job
   reached (``LibraryImages.images_after``: one index range, whatever the library's size); each
   searchable image without a template of the new algorithm is templated from its stored image,
   the new algorithm finding its own points in the stored face box (``template_located``), and
   the templates are recorded on the batches holding the images with the job's progress. New
   images enrolled meanwhile are templated with both algorithms (``template_algorithms``) and
   lie after the job's position anyway;
2. when no image is left, the library switches to the new algorithm only if every searchable
   image has a template of it (the projection's count, decided by the library: T-02); if the
   new algorithm could not template some, the job ends *incomplete* and the library keeps its
   algorithm;
3. *erasing*: the replaced algorithms' templates are erased from the store, a page at a time,
   then recorded erased on their batches (R-05); last their indexes are dropped, and the job
   completes.

A crash at any point loses at most the batch under way: its store writes are undone when its
save fails, or, after a SIGKILL, named by no event and erased by reconciliation (ADR 0015).
Templates erased from the store whose events were not saved are erased again (erasing is
idempotent) when the job resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from uuid import UUID, uuid4

import attrs
import numpy as np

from rfr.application.app import RfrApplication
from rfr.application.errors import NotFound, RecordNotFound
from rfr.application.face_engine import FaceEngine
from rfr.application.ports import Clock
from rfr.application.projections.library_images import ImageRow
from rfr.application.services.base import Act, Need, UseCase
from rfr.application.services.biometric_support import Biometrics, library_face_record, load_analysis
from rfr.application.services.enrolment import index_templates
from rfr.application.services.import_jobs import RunnerLiveness
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.enrolment_batch import LIBRARY_MANAGERS, ImageHolder
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.reference_library import LibraryHoldings, ReferenceLibrary
from rfr.domain.retemplating import MAX_NAMED_PER_EVENT, RetemplatingJob, RetemplatingStatus

log = logging.getLogger(__name__)

RETEMPLATERS = Need(LIBRARY_MANAGERS)
DEFAULT_BATCH = 32
# The job records its progress after about this many images (or templates erased), not after
# every batch: a poll replays the job, so its events must not grow with the library (a library
# of a million images: about 2,000 events). The templates themselves are recorded every batch;
# a resumed job re-reads from the last recorded position and skips the images templated since.
PROGRESS_EVERY = 500


@attrs.define
class _Running:
    """A job as one runner runs it: the job and library in hand, and the progress made since the
    job last recorded it. Counters move only after the save of the batch that made them."""

    job_id: str
    runner: str
    job: RetemplatingJob = attrs.field(default=None)
    library: ReferenceLibrary = attrs.field(default=None)
    stale: bool = True
    position: int = 0
    examined: int = 0
    templated: int = 0
    not_templated: dict[str, str] = attrs.field(factory=dict)
    erased: int = 0

    def due(self, examined: int, failed: Mapping[str, str]) -> bool:
        """Whether the batch about to be saved should record the job's progress too."""
        named = len(self.not_templated) + len(failed)
        return self.examined + examined >= PROGRESS_EVERY or named >= MAX_NAMED_PER_EVENT // 2

    def record_progress(
        self, at: datetime, position: int, examined: int, templated: int, failed: Mapping[str, str]
    ) -> None:
        """The job records the progress since its last record, this batch's included."""
        if position <= self.job.position and self.examined + examined == 0:
            return
        named = {**self.not_templated, **failed}
        self.job.record_batch(
            at,
            position=position,
            examined=self.examined + examined,
            templated=self.templated + templated,
            not_templated=dict(list(named.items())[:MAX_NAMED_PER_EVENT]),
        )

    def saved(
        self, position: int, examined: int, templated: int, failed: Mapping[str, str], *, recorded: bool
    ) -> None:
        """A batch was saved: the position moves on; the counters restart if it was recorded."""
        self.position = position
        if recorded:
            self.examined = self.templated = 0
            self.not_templated = {}
        else:
            self.examined += examined
            self.templated += templated
            self.not_templated.update(failed)


@attrs.frozen
class RetemplatingView:
    """A library's re-templating as its client polls it.

    Attributes:
        job_id: The job's id.
        library_id: The library re-templated.
        algorithm: The new algorithm's name (e.g. ``sface``).
        algorithm_id: The new algorithm's full id: its stages and versions (T-01).
        replaced: The algorithm ids the library was templated with, erased once it switched.
        started_by: Who started the job.
        started_at: When.
        status: ``templating``, ``erasing`` (the library is searched with the new algorithm and
            the old templates are being erased), ``completed`` or ``incomplete`` (some searchable
            images could not be templated with the new algorithm; the library keeps its own).
        running: Whether a live server process is running it now; an open job that is not
            running is resumed by starting it again.
        examined: Images of the library looked at so far.
        templated: Templates made with the new algorithm so far.
        searchable: Searchable images of the library now.
        templated_now: Of them, those with a template of the new algorithm now.
        not_templated: Images the new algorithm found no face in, with why.
        erased: Templates of the replaced algorithms erased so far.
        ended_at: When it completed or ended incomplete, or null.
    """

    job_id: str
    library_id: str
    algorithm: str
    algorithm_id: str
    replaced: tuple[str, ...]
    started_by: str
    started_at: datetime
    status: str
    running: bool
    examined: int
    templated: int
    searchable: int
    templated_now: int
    not_templated: Mapping[str, str]
    erased: int
    ended_at: datetime | None


class Retemplating(UseCase):
    """Starts, runs and reads re-templating jobs; see the module docstring."""

    def __init__(
        self, app: RfrApplication, clock: Clock, biometrics: Biometrics, runners: RunnerLiveness
    ) -> None:
        super().__init__(app, clock)
        self.bio = biometrics
        self.runners = runners

    # -- the person ----------------------------------------------------------------------------

    def start(
        self, acting_user: str, library_id: UUID | str, algorithm: str, reason: str
    ) -> RetemplatingView:
        """The library's job to ``algorithm`` (a name the deployment knows: ``UnknownAlgorithm``
        otherwise): a new one, or the one under way to the same algorithm, to be resumed."""
        engine = self.bio.catalogue.named(algorithm)

        def attempt() -> RetemplatingJob:
            library = self.load(library_id, ReferenceLibrary)
            if library.retemplating is not None and library.retemplating[1] == engine.algorithm_id:
                return self.load(library.retemplating[0], RetemplatingJob)
            approval = self.load(library.approval_id, LibraryApproval)
            templated = self.app.library_images.totals(str(library.id), self.clock.now()).algorithms

            def action(act: Act) -> RetemplatingJob:
                return act.new(
                    library.start_retemplating(
                        act.actor,
                        act.at,
                        approval,
                        algorithm=algorithm,
                        algorithm_id=engine.algorithm_id,
                        templated_with=templated,
                        reason=reason,
                    )
                )

            return self._act(acting_user, "start re-templating", [library], action)

        return self._view(self._retrying(attempt))

    def get(self, acting_user: str, library_id: UUID | str) -> RetemplatingView:
        """The library's re-templating under way, else its last one (NotFound if none)."""
        self._read(acting_user, "read re-templating", RETEMPLATERS, target=f"ReferenceLibrary {library_id}")
        library = self.load(library_id, ReferenceLibrary)
        if library.last_retemplating is None:
            raise NotFound("re-templating of library", str(library_id))
        return self._view(self.load(library.last_retemplating, RetemplatingJob))

    # -- the runner ----------------------------------------------------------------------------

    def take_up(self, acting_user: str, job_id: UUID | str, runner: str) -> bool:
        """``runner`` runs the job from now; False if it ended, or its last runner still lives
        (that refusal is recorded on the job, A-01)."""

        def attempt() -> bool:
            job = self.load(job_id, RetemplatingJob)
            if job.ended:
                return False
            alive = job.runner is not None and job.runner != runner and self.runners.alive(job.runner)
            try:
                job.take_up(self.clock.now(), runner, acting_user, runner_alive=alive)
            except PolicyRefusal:
                self.app.save(job)
                return False
            self.app.save(job)
            return True

        return self._retrying(attempt)

    def run(
        self,
        acting_user: str,
        job_id: UUID | str,
        runner: str,
        *,
        batch: int = DEFAULT_BATCH,
        after_batch: Callable[[RetemplatingView], None] | None = None,
    ) -> RetemplatingView:
        """Every step of a job ``runner`` has taken up, until it ends or another runner takes it.

        The job and the library are loaded once and kept between batches (each batch appends to
        them), and reloaded only when another writer saved first; so a batch costs the same
        whatever the library's size and however far the job has gone.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        running = _Running(str(job_id), runner)
        while True:
            with self.bio.heavy.admit(acting_user):
                more = self._retrying(lambda: self._step(acting_user, running, batch))
            if not more:
                break
            if after_batch is not None:
                after_batch(self._view(running.job, pending=running))
        return self._view(self.load(job_id, RetemplatingJob))

    def _step(self, acting_user: str, running: _Running, batch: int) -> bool:
        if running.stale:
            running.job = self.load(running.job_id, RetemplatingJob)
            running.library = self.load(running.job.library_id, ReferenceLibrary)
            running.position = max(running.position, running.job.position)
        job = running.job
        if job.ended or job.runner != running.runner:
            return False  # ended, or taken up by another runner since (its last one found gone)
        running.stale = True  # until this step's save succeeds
        if job.status is RetemplatingStatus.TEMPLATING:
            page = self.app.library_images.images_after(job.library_id, running.position, batch)
            if page:
                self._template(acting_user, running, page)
            else:
                self._decide(acting_user, running)
        else:
            found = {}
            for replaced in job.replaced:
                found = self.app.library_images.templates_by(job.library_id, replaced, batch)
                if found:
                    self._erase(acting_user, running, replaced, found)
                    break
            if not found:
                for replaced in job.replaced:
                    self.bio.indexes.drop(job.library_id, replaced)

                def complete(act: Act) -> None:
                    if running.erased:
                        job.record_erased(act.at, running.erased)
                    job.complete(act.at)

                self._act(acting_user, "complete re-templating", [job], complete)
                running.erased = 0
        running.stale = False
        return not job.ended

    # -- the steps -----------------------------------------------------------------------------

    def _template(self, acting_user: str, running: _Running, page: list[tuple[int, ImageRow]]) -> None:
        job, library = running.job, running.library
        engine = self.bio.engine_for(job.algorithm_id)
        images = self.app.library_images
        at = self.clock.now()
        ids = [row.image_id for _, row in page]
        done = {i for i, by in images.templates_of(ids).items() if job.algorithm_id in by}
        todo = [row for _, row in page if row.searchable_at(at) and row.image_id not in done]
        vectors, failed = self._vectors(engine, [row.image_id for row in todo])
        holders = images.holders(job.library_id, list(vectors))
        loaded = [library if h == job.library_id else self.load(h, ImageHolder) for h in holders]
        staged: dict[str, tuple[str, np.ndarray]] = {}
        position, examined, templated = page[-1][0], len(page), len(vectors)
        record = running.due(examined, failed)

        def action(act: Act) -> None:
            store = act.recording(self.bio.store)
            for holder in loaded:
                templates = {}
                for image_id in holders[str(holder.id)]:
                    template_id = templates[image_id] = str(uuid4())
                    store.put_template(
                        template_id, vectors[image_id], owner=job.library_id, algorithm_id=job.algorithm_id
                    )
                    staged[image_id] = (template_id, vectors[image_id])
                holder.record_templates(act.actor, act.at, job.algorithm_id, templates)
            if record:
                running.record_progress(act.at, position, examined, templated, failed)

        touched = [job, *loaded] if record else loaded
        if touched:  # else nothing to template nor to record: the position moves on in memory
            self._act(acting_user, "re-template library images", touched, action)
        running.saved(position, examined, templated, failed, recorded=record)
        index_templates(self.bio, job.library_id, job.algorithm_id, staged)

    def _vectors(
        self, engine: FaceEngine, image_ids: list[str]
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """Templates of the images by ``engine`` from their stored image and face box, and the
        images it found no face in, with why."""
        vectors: dict[str, np.ndarray] = {}
        failed: dict[str, str] = {}
        for image_id in image_ids:
            try:
                face = load_analysis(self.bio.store, library_face_record(image_id)).face
                pixels = self.bio.decode(self.bio.store.get(image_id))
            except RecordNotFound:
                continue  # purged since the page was read: nothing to template
            try:
                vectors[image_id] = engine.template_located(pixels, [face])[0]
            except ValueError as refused:
                failed[image_id] = str(refused) or "the new algorithm finds no face in the stored face box"
        return vectors, failed

    def _decide(self, acting_user: str, running: _Running) -> None:
        """Every image was looked at: switch the library (T-02) or end incomplete."""
        job, library = running.job, running.library

        def action(act: Act) -> None:
            running.record_progress(act.at, running.position, 0, 0, {})
            totals = self.app.library_images.totals(job.library_id, act.at)
            if totals.searchable == 0 or job.algorithm_id in totals.searchable_with:
                holdings = LibraryHoldings(job.library_id, frozenset(totals.searchable_with), frozenset())
                library.complete_retemplating(act.at, job, holdings, searchable=totals.searchable)
                job.switch(act.at)
            else:
                job.end_incomplete(act.at, totals.searchable - totals.templated_by(job.algorithm_id))
                library.end_retemplating(act.at, job)

        self._act(acting_user, "decide re-templating", [job, library], action)
        running.saved(running.position, 0, 0, {}, recorded=True)

    def _erase(
        self, acting_user: str, running: _Running, algorithm_id: str, found: Mapping[str, tuple[str, str]]
    ) -> None:
        """R-05: the store first (idempotent), then the events that record it, as purges do."""
        job, library = running.job, running.library
        by_holder: dict[str, list[str]] = {}
        for template_id, (_, holder_id) in found.items():
            by_holder.setdefault(holder_id, []).append(template_id)
        loaded = [library if h == job.library_id else self.load(h, ImageHolder) for h in by_holder]
        for template_id in found:
            self.bio.store.erase(template_id)

        def action(act: Act) -> None:
            for holder in loaded:
                holder.erase_templates(
                    act.actor,
                    act.at,
                    algorithm_id,
                    by_holder[str(holder.id)],
                    f"replaced by {job.algorithm} when the library was re-templated (T-02, R-05)",
                )
            if record:
                job.record_erased(act.at, running.erased + len(found))

        record = running.erased + len(found) >= PROGRESS_EVERY
        self._act(acting_user, "erase replaced templates", [job, *loaded] if record else loaded, action)
        running.erased = 0 if record else running.erased + len(found)

    # -- reading -------------------------------------------------------------------------------

    def _view(self, job: RetemplatingJob, *, pending: _Running | None = None) -> RetemplatingView:
        """The job as recorded, with a running job's progress not yet recorded (``pending``)."""
        totals = self.app.library_images.totals(job.library_id, self.clock.now())
        running = not job.ended and job.runner is not None and self.runners.alive(job.runner)
        examined, templated, erased = job.examined, job.templated, job.erased
        if pending is not None:
            examined, templated = examined + pending.examined, templated + pending.templated
            erased += pending.erased
        return RetemplatingView(
            job_id=str(job.id),
            library_id=job.library_id,
            algorithm=job.algorithm,
            algorithm_id=job.algorithm_id,
            replaced=tuple(job.replaced),
            started_by=job.started_by,
            started_at=job.started_at,
            status=job.status.value,
            running=running,
            examined=examined,
            templated=templated,
            searchable=totals.searchable,
            templated_now=totals.templated_by(job.algorithm_id),
            not_templated=dict(job.not_templated),
            erased=erased,
            ended_at=job.ended_at,
        )
