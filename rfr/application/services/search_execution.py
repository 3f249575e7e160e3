"""Running a search: a probe's selected-face templates against one library's index (S-01..S-04, T-01).

One call searches one library, by default the next in progressive order (lowest level
first, S-02): a viable match at a lower level must be adjudicated before a higher level may
be searched, so searching every library at once would defeat the rule. The domain's
``search_library`` decides every rule (approvals, order, L-13, P-10, T-02...) and records
the candidates; a refusal is recorded like any other.

Candidates: each selected face's template of the library's algorithm (T-01: the one it was
last re-templated with, else the deployment's default; the probe is templated with it when it
has no template of it yet) is searched in the library's index of that algorithm; hits of
templates the library may no longer search (retention expired, R-01) are dropped, a template
found by several faces keeps its best distance, and the ``top_k`` nearest become candidates
ranked 1, 2, 3... with the similarity score of ``SimilarityScale`` (0.5 at the algorithm's threshold).

The index is a projection of the store: when it lacks a template the library records
(a failed index write, a lost file), it is rebuilt from the store before searching, so a
search never silently misses enrolled material.

Thumbnails and subject references of candidates are shown only to users within the
library's access restrictions (L-13).
"""

from __future__ import annotations

import math
from datetime import datetime
from uuid import UUID, uuid4

import attrs

from rfr.application.app import RfrApplication
from rfr.application.errors import NotFound
from rfr.application.face_engine import UnknownAlgorithm
from rfr.application.ports import Clock, FaceBox
from rfr.application.services.base import Act, Need, UseCase
from rfr.application.services.biometric_support import (
    Biometrics,
    face_crop,
    library_face_record,
    library_subject_record,
    load_analysis,
    probe_face_record,
    template_on_pictures,
)
from rfr.application.services.calibrations import ScoreCalibrations, calibrated_scale
from rfr.application.services.index_catch_up import catch_up
from rfr.application.similarity import ensure_same_algorithm
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import OPERATIONAL_ROLES, Role
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.rules_search import Candidate, within_access
from rfr.domain.search_request import SearchRequest

SEARCHERS = Need((Role.RFR_USER,))
CANDIDATE_READERS = Need(OPERATIONAL_ROLES)


@attrs.frozen
class FoundCandidate:
    """A potential match as its searcher sees it: ``subject`` is the enrolled reference, if any.

    Attributes:
        candidate_id: The candidate's id, ``<library_id>#<rank>``.
        rank: Its rank within this library's search, 1 the most similar.
        score: Its similarity score, from 0 to 1 (0.5 at the algorithm's threshold).
        library_id: The library searched.
        image_id: The library image found.
        algorithm_id: The algorithm that found it.
        subject: The reference of the person shown, as enrolled (e.g. a custody record
            number), or null.
        non_mate_chance: The expected chance that at least one person other than the probe's
            subject, in a library of this one's size when it was searched, reaches this score:
            from the algorithm's score calibration in force then (``rfr calibrate``); null while
            the algorithm is uncalibrated.
    """

    candidate_id: str
    rank: int
    score: float
    library_id: str
    image_id: str
    algorithm_id: str
    subject: str | None
    non_mate_chance: float | None = None


@attrs.frozen
class LibrarySearchResult:
    """One library searched for a request (S-01..S-04), and the candidates found.

    Attributes:
        request_id: The search request.
        library_id: The library searched.
        algorithm_id: The algorithm searched with (T-01).
        searched_at: When the search ran.
        candidates: The potential matches found, by rank.
    """

    request_id: str
    library_id: str
    algorithm_id: str
    searched_at: datetime
    candidates: tuple[FoundCandidate, ...]


class SearchExecution(UseCase):
    def __init__(self, app: RfrApplication, clock: Clock, biometrics: Biometrics) -> None:
        super().__init__(app, clock)
        self.bio = biometrics

    def next_library(self, request_id: UUID | str) -> str | None:
        """The unsearched library of lowest level (S-02), in the order chosen; None when all are done."""
        return _next_library(self.load(request_id, SearchRequest))

    def search_next(
        self, acting_user: str, request_id: UUID | str, *, top_k: int | None = None
    ) -> LibrarySearchResult | None:
        request = self.load(request_id, SearchRequest)
        library_id = _next_library(request)
        if library_id is None:
            return None
        return self._search(acting_user, request, library_id, top_k)

    def search_library(
        self, acting_user: str, request_id: UUID | str, library_id: str, *, top_k: int | None = None
    ) -> LibrarySearchResult:
        """Search one library of the request; the domain refuses what the policy does not allow."""
        return self._search(acting_user, self.load(request_id, SearchRequest), library_id, top_k)

    def _search(
        self, acting_user: str, request: SearchRequest, library_id: str, top_k: int | None
    ) -> LibrarySearchResult:
        k = self.bio.top_k if top_k is None else int(top_k)
        if k < 1:
            raise ValueError("top_k must be at least 1")
        probe = self.load(request.probe_id, ProbeImage)
        library = self.load(library_id, ReferenceLibrary)
        approval = self.load(library.approval_id, LibraryApproval)
        searched_with: list[str] = []

        def action(act: Act) -> datetime:
            images = self.app.library_images
            totals = images.totals(str(library.id), act.at)
            # T-01, T-02: the one algorithm this library is compared with, and the probe's
            # templates of it, made now from its selected faces if it has none yet.
            # One this deployment cannot build is as good as none: refused under T-02.
            searchable_with = self.bio.buildable(totals.searchable_with)
            algorithm_id = library.search_algorithm(searchable_with, self.bio.algorithm_id)
            searched_with.append(algorithm_id)
            if algorithm_id in searchable_with:  # else refused (T-02): nothing to template for
                self._template_probe(act, probe, algorithm_id)
            candidates = self._candidates(
                probe, library, algorithm_id, act.at, k=k, templated=totals.templated_by(algorithm_id)
            )
            # Every candidate is a hit the projection found searchable at act.at (_candidates).
            found = [c.template_id for c in candidates]
            holdings = images.holdings(
                str(library.id), algorithm_id, found, act.at, totals=totals, searchable=found
            )
            request.search_library(
                act.actor,
                act.at,
                probe=probe,
                library=library,
                holdings=holdings,
                approval=approval,
                algorithm_id=algorithm_id,
                candidates=candidates,
                config=act.config,
            )
            return act.at

        at = self._act(acting_user, f"search library {library.id}", [request, probe], action)
        found = [c for c in request.candidates("rank") if c.library_id == str(library.id)]
        return LibrarySearchResult(
            str(request.id),
            str(library.id),
            searched_with[-1],
            at,
            tuple(self._found(c) for c in found),
        )

    # -- reading -----------------------------------------------------------------------------

    def candidates(self, acting_user: str, request_id: UUID | str) -> tuple[FoundCandidate, ...]:
        """The request's potential matches by rank, of the libraries the reader may access (L-13)."""
        actor = self._read(
            acting_user, "read candidates", CANDIDATE_READERS, target=f"SearchRequest {request_id}"
        )
        request = self.load(request_id, SearchRequest)
        allowed = {
            lib.library_id
            for lib in request.libraries.values()
            if within_access(self.load(lib.approval_id, LibraryApproval), actor).allowed
        }
        return tuple(self._found(c) for c in request.candidates("rank") if c.library_id in allowed)

    def candidate_thumbnail(self, acting_user: str, request_id: UUID | str, candidate_id: str) -> bytes:
        """JPEG of a candidate's face, for users within its library's access restrictions (L-13)."""
        request = self.load(request_id, SearchRequest)
        candidate = request.candidate_list.get(candidate_id)
        if candidate is None:
            raise NotFound("candidate", candidate_id)
        library = self.load(candidate.library_id, ReferenceLibrary)
        approval = self.load(library.approval_id, LibraryApproval)
        self._read(
            acting_user,
            "view candidate image",
            CANDIDATE_READERS,
            target=f"ReferenceLibrary {library.id}",
            decide=lambda actor: within_access(approval, actor),
        )
        entry = self.app.library_images.image(str(library.id), candidate.image_id)
        if entry is None or entry.purged_at is not None:
            raise NotFound("library image", candidate.image_id)
        analysis = load_analysis(self.bio.store, library_face_record(candidate.image_id))
        pixels = self.bio.decode(self.bio.store.get(candidate.image_id))
        box = FaceBox(analysis.box.left, analysis.box.top, analysis.box.right, analysis.box.bottom)
        return self.bio.encode_jpeg(face_crop(pixels, box))

    # -- helpers -----------------------------------------------------------------------------

    def _template_probe(self, act: Act, probe: ProbeImage, algorithm_id: str) -> None:
        """Probes are templated with every algorithm their searched libraries need (T-01, T-02):
        the faces templated before are templated again with ``algorithm_id``, from the stored
        image, and recorded in this search's save. Nothing is done when the probe has templates of
        it, none at all (the domain refuses the search: P-11), or the deployment cannot build it
        (refused: T-02)."""
        if probe.template_ids(algorithm_id) or not probe.templates or probe.purged_at is not None:
            return
        try:
            engine = self.bio.engine_for(algorithm_id)
        except UnknownAlgorithm:
            return
        owner = str(probe.id)
        face_ids = sorted({t.face_id for t in probe.templates})
        faces = [load_analysis(self.bio.store, probe_face_record(owner, f)).face for f in face_ids]
        # Each face on the picture it is on: a video probe's faces are on their own frames.
        vectors = template_on_pictures(
            probe,
            face_ids,
            faces,
            lambda record: self.bio.decode(self.bio.store.get(record)),
            engine.template_located,
        )
        store = act.recording(self.bio.store)
        templates: dict[str, str] = {}
        for face_id, vector in zip(face_ids, vectors, strict=True):
            template_id = str(uuid4())
            store.put_template(template_id, vector, owner=owner, algorithm_id=algorithm_id)
            templates[face_id] = template_id
        probe.record_templates(act.actor, act.at, algorithm_id, templates)

    def _candidates(
        self,
        probe: ProbeImage,
        library: ReferenceLibrary,
        algorithm_id: str,
        at: datetime,
        *,
        k: int,
        templated: int,
    ) -> list[Candidate]:
        """The ``k`` searchable templates of the library nearest the probe's, by the index.

        The index is first caught up with the library's template events; it may hold templates
        no longer searchable (expired, past retention, of an image purged since it was read); its
        hits are checked against the library images projection, and the search goes deeper until
        ``k`` searchable ones are found or the index has no more. Its cost is that of the hits
        read, not of the library.
        """
        templates = [self.bio.store.get_template(t) for t in probe.template_ids(algorithm_id)]
        for template in templates:
            ensure_same_algorithm(algorithm_id, template.algorithm_id)
        library_id = str(library.id)
        images = self.app.library_images
        if not templates or not templated:
            # Nothing to compare: the domain says why (no selected face, T-02...).
            return []
        # The index holds every template the log has built for the library (index_catch_up).
        catch_up(self.app, self.bio, library_id, algorithm_id)
        index = self.bio.index_for(library_id, algorithm_id)
        best: dict[str, float] = {}
        image_of: dict[str, str] = {}
        depth = min(len(index), 2 * k)
        while True:
            hits: dict[str, float] = {}
            for template in templates:
                for hit in index.search(template.vector, depth):
                    hits[hit.template_id] = min(hits.get(hit.template_id, math.inf), hit.distance)
            image_of = images.searchable_templates(library_id, algorithm_id, hits, at)
            best = {t: d for t, d in hits.items() if t in image_of}
            if len(best) >= k or depth >= len(index):
                break
            depth = min(len(index), depth * 4)
        ranked = sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:k]
        # The score users see is calibrated per algorithm when a calibration is in force (0.5 at
        # its operating point), with the chance of a non-mate scoring as high in a library this
        # size (ADR 0020); else the embedder's own threshold is 0.5 and no chance is given.
        calibration = ScoreCalibrations(self.app, self.clock).current(algorithm_id)
        scale = calibrated_scale(calibration, self.bio.engine_for(algorithm_id).embedder)

        def chance(distance: float) -> float | None:
            if calibration is None:
                return None
            return round(calibration.non_mate_chance(distance, max(templated, 1)), 6)

        return [
            Candidate(rank, scale.score(distance), library_id, algorithm_id, image_of[t], t, chance(distance))
            for rank, (t, distance) in enumerate(ranked, start=1)
        ]

    def _found(self, candidate: Candidate) -> FoundCandidate:
        """Only ever built for users the library admits (L-13): it names the enrolled subject."""
        subject = None
        if self.bio.store.exists(library_subject_record(candidate.image_id)):
            subject = self.bio.store.get(library_subject_record(candidate.image_id)).decode()
        return FoundCandidate(
            candidate.candidate_id,
            candidate.rank,
            candidate.score,
            candidate.library_id,
            candidate.image_id,
            candidate.algorithm_id,
            subject,
            candidate.non_mate_chance,
        )


def _next_library(request: SearchRequest) -> str | None:
    pending = [lib for lib in request.libraries.values() if lib.library_id not in request.searches]
    order = {lib_id: n for n, lib_id in enumerate(request.libraries)}
    pending.sort(key=lambda lib: (lib.level, order[lib.library_id]))
    return pending[0].library_id if pending else None
