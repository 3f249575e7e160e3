"""Enrolling images into a reference library: from bytes to a searchable template (R-01, T-01, T-02).

Each image goes: decode -> hash -> R-01 -> detect -> choose the subject's face -> template.
Only then is the batch offered to ``ReferenceLibrary.enrol``, which makes a new
``EnrolmentBatch`` of what R-01 allows and lists what it refused with why (ADR 0013).
Images are detected BEFORE the domain enrols them because an enrolled image without a
template would keep the whole library unsearchable (T-02); an image with no usable face is
reported and never enrolled.

What the domain enrolled is then stored (image, face analysis, subject reference and
template, each encrypted on its own key) and the templates recorded, and the batch, the
library and the acting user are saved in one step. Nothing of an item that was refused, rejected or
had no face is kept, and if the save fails every record written for the batch is erased (the
use case writes through ``Act.recording``, the unit of work that undoes them).
The index is updated after the save: it is a projection, so if that update fails the
index is dropped and rebuilt from the store when next searched.

After each batch the UCC probes to which the library is relevant are searched against
the new templates (U-02, ``UccScreening``).

Bulk enrolment reads a folder on the server with a CSV manifest (columns ``file``,
``capture_date`` (ISO), ``age_band`` (a ``PerceivedAgeBand`` value), ``mopi_group``
(1-3), optionally ``subject``); only folders inside the configured import root are read,
and a manifest naming a file outside its folder is refused row by row.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from uuid import uuid4

import attrs
import numpy as np

from rfr.application.app import RfrApplication
from rfr.application.errors import ImageRejected, RfrError
from rfr.application.face_engine import AnalysedFace, FaceEngine
from rfr.application.ports import Clock, RecordKind
from rfr.application.services.base import Act, Need, UseCase
from rfr.application.services.biometric_support import (
    Biometrics,
    FaceAnalysis,
    content_hash,
    library_face_record,
    library_subject_record,
    library_video_record,
)
from rfr.application.services.ucc_screening import ScreeningReport, UccScreening
from rfr.application.video_faces import faces_in_video
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.reference_library import LIBRARY_MANAGERS, LibraryImage, ReferenceLibrary
from rfr.domain.retention import may_enrol

log = logging.getLogger(__name__)

ENROLLERS = Need(LIBRARY_MANAGERS)
DEFAULT_BATCH = 25
# A second face at least this large (by box area) beside the largest makes the subject unclear.
AMBIGUOUS_FACE_RATIO = 0.6
MANIFEST_COLUMNS = ("file", "capture_date", "age_band", "mopi_group")

Progress = Callable[[int, int], None]


class ManifestError(RfrError, ValueError):
    """A bulk enrolment cannot start: no import root, a folder outside it, or no usable manifest."""


@attrs.frozen
class EnrolmentItem:
    """One image offered for enrolment, with the facts R-01 needs; ``name`` only labels the result."""

    data: bytes = attrs.field(repr=False)
    captured_on: date
    age_at_capture: PerceivedAgeBand
    mopi_group: MopiGroup
    subject: str | None = None
    name: str = ""
    # A short video rather than a still image (ADR 0026): the subject's best face is enrolled.
    video: bool = False


@attrs.frozen
class EnrolmentResult:
    """What became of one item. ``code`` says why not: an ``ImageRejected`` code, ``"R-01"``,
    ``"no_face"``, ``"several_faces"``, ``"duplicate"`` or ``"manifest"``.

    Attributes:
        name: The item: the file name as uploaded or as the manifest gives it.
        enrolled: Whether it was enrolled.
        reason: What happened, in words: why it was not enrolled, or that it was.
        code: Why it was not enrolled, as a code (see above), or null.
        rule_ids: The policy rules that refused it, e.g. ``["R-01"]``.
        image_id: The enrolled image's id, or null.
        template_id: The template made of it, or null.
        content_hash: ``sha256:`` and the hex SHA-256 of its bytes, when they were read.
    """

    name: str
    enrolled: bool
    reason: str
    code: str | None = None
    rule_ids: tuple[str, ...] = ()
    image_id: str | None = None
    template_id: str | None = None
    content_hash: str | None = None


@attrs.frozen
class EnrolmentReport:
    library_id: str
    algorithm_id: str
    results: tuple[EnrolmentResult, ...]
    screening: ScreeningReport

    @property
    def enrolled(self) -> tuple[EnrolmentResult, ...]:
        return tuple(r for r in self.results if r.enrolled)

    @property
    def not_enrolled(self) -> tuple[EnrolmentResult, ...]:
        return tuple(r for r in self.results if not r.enrolled)


@attrs.define
class _Candidate:
    """An item that passed decoding, hashing, R-01 and detection, before the domain decides."""

    position: int
    item: EnrolmentItem
    image_id: str
    digest: str
    analysis: FaceAnalysis | None = None
    # From a video: the frame the subject's face is on (stored as the image, PNG) and where it is.
    frame: bytes | None = attrs.field(default=None, repr=False)
    frame_index: int | None = None
    time_ms: int | None = None
    # One template per algorithm the library is templated with (T-01, T-02), the first its own.
    vectors: dict[str, np.ndarray] = attrs.field(factory=dict)


def choose_subject_face(faces: Sequence[AnalysedFace]) -> tuple[int | None, str, str]:
    """The face of a library image's subject: the only face, or one clearly larger than the rest.

    Returns ``(index, code, reason)``; ``index`` is None when no face can be chosen.
    """
    if not faces:
        return None, "no_face", "no face was detected in the image"
    areas = [f.face.box.width * f.face.box.height for f in faces]
    order = sorted(range(len(faces)), key=lambda i: -areas[i])
    if len(order) > 1 and areas[order[1]] >= AMBIGUOUS_FACE_RATIO * areas[order[0]]:
        return (
            None,
            "several_faces",
            f"{len(faces)} faces of similar size, so the subject is unclear; enrol a crop of the subject",
        )
    return order[0], "", ""


class Enrolment(UseCase):
    """Enrols images into a library, one batch per save, by an Administrator or Operational Lead."""

    def __init__(self, app: RfrApplication, clock: Clock, biometrics: Biometrics) -> None:
        super().__init__(app, clock)
        self.bio = biometrics
        self.screening = UccScreening(app, clock, biometrics)

    def enrol(
        self,
        acting_user: str,
        library_id: str,
        items: Sequence[EnrolmentItem],
        *,
        progress: Progress | None = None,
    ) -> EnrolmentReport:
        """Enrol ``items`` as one batch; ``progress(done, total)`` follows the face detection."""
        with self.bio.heavy.admit(acting_user):
            library = self.load(library_id, ReferenceLibrary)
            approval = self.load(library.approval_id, LibraryApproval)
            # T-01, T-02: the library's algorithms, its own first, and one a re-templating moves it to.
            templated = self.app.library_images.totals(str(library.id), self.clock.now()).algorithms
            algorithms = self.bio.buildable(
                library.template_algorithms(templated, self.bio.algorithm_id)
            ) or (self.bio.algorithm_id,)  # none this deployment can build: its default, as before
            staged: dict[str, dict[str, tuple[str, np.ndarray]]] = {a: {} for a in algorithms}

            def action(act: Act) -> list[EnrolmentResult]:
                return self._enrol(
                    act, library, approval, list(items), algorithms, staged=staged, progress=progress
                )

            results = self._act(acting_user, "enrol images", [library], action)
            live = [t for a, by_image in staged.items() for t in self._index(str(library.id), a, by_image)]
            screening = self.screening.screen(acting_user, str(library.id), live)
            return EnrolmentReport(str(library.id), algorithms[0], tuple(results), screening)

    def enrol_folder(
        self,
        acting_user: str,
        library_id: str,
        folder: Path | str,
        *,
        manifest: str = "manifest.csv",
        batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None,
    ) -> EnrolmentReport:
        """Enrol the images a manifest lists in a server folder, ``batch_size`` per save."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        root = self._import_folder(folder)
        rows = list(_read_manifest(root / manifest))
        total, done = len(rows), 0
        results: list[EnrolmentResult] = []
        screened = ScreeningReport.empty()
        for start in range(0, total, batch_size):
            batch = rows[start : start + batch_size]
            items: list[EnrolmentItem] = []
            by_position: dict[int, EnrolmentResult] = {}
            for position, row in enumerate(batch):
                item = _item_from_row(root, row)
                if isinstance(item, EnrolmentResult):
                    by_position[position] = item
                else:
                    items.append(item)
            report = self.enrol(acting_user, library_id, items) if items else None
            enrolled_iter = iter(report.results if report else ())
            for position in range(len(batch)):
                results.append(by_position.get(position) or next(enrolled_iter))
            if report is not None:
                screened = screened.merge(report.screening)
            done += len(batch)
            if progress is not None:
                progress(done, total)
        return EnrolmentReport(library_id, self.bio.algorithm_id, tuple(results), screened)

    # -- the steps ---------------------------------------------------------------------------

    def _enrol(
        self,
        act: Act,
        library: ReferenceLibrary,
        approval: LibraryApproval,
        items: list[EnrolmentItem],
        algorithms: Sequence[str],
        *,
        staged: dict[str, dict[str, tuple[str, np.ndarray]]],
        progress: Progress | None,
    ) -> list[EnrolmentResult]:
        results: dict[int, EnrolmentResult] = {}
        offered: list[_Candidate] = []
        # Already in the library (not purged), from the projection's unique key: what this batch
        # offers, not the whole library. A race with another enrolment fails that key at save.
        digests = [content_hash(i.data) for i in items]  # each item's bytes hashed once
        seen = self.app.library_images.enrolled_as(str(library.id), set(digests))
        for position, (item, digest) in enumerate(zip(items, digests, strict=True)):
            name = item.name or f"item {position + 1}"
            outcome = self._prepare(act, position, item, name, algorithms, digest=digest, seen=seen)
            if isinstance(outcome, EnrolmentResult):
                results[position] = outcome
            else:
                offered.append(outcome)
                seen[outcome.digest] = outcome.image_id
            if progress is not None:
                progress(position + 1, len(items))
        if not offered:
            return [results[p] for p in range(len(items))]

        batch = act.new(
            library.enrol(
                act.actor,
                act.at,
                [
                    LibraryImage(
                        c.image_id,
                        c.digest,
                        c.item.captured_on,
                        c.item.age_at_capture,
                        c.item.mopi_group,
                        c.frame_index,
                        c.time_ms,
                    )
                    for c in offered
                ],
                approval,
                act.config,
            )
        )
        enrolled, refused = set(batch.images), batch.refused
        templates: dict[str, dict[str, str]] = {a: {} for a in algorithms}
        store, owner = act.recording(self.bio.store), str(library.id)
        for c in offered:
            name = c.item.name or f"item {c.position + 1}"
            if c.image_id not in enrolled:
                rule_ids, reason = refused.get(c.image_id, (("R-01",), "not enrolled"))
                results[c.position] = EnrolmentResult(
                    name, False, reason, "R-01", rule_ids, content_hash=c.digest
                )
                continue
            if c.analysis is None or set(c.vectors) != set(algorithms):
                raise RuntimeError(f"{name}: enrolled by the domain without a face; R-01 checks disagree")
            if c.frame is not None:
                # A video: its frame is the library image (thumbnails, re-templating read it).
                store.put(c.image_id, RecordKind.IMAGE, c.frame, owner=owner)
                store.put(library_video_record(c.image_id), RecordKind.IMAGE, c.item.data, owner=owner)
            else:
                store.put(c.image_id, RecordKind.IMAGE, c.item.data, owner=owner)
            c.analysis.put(store, library_face_record(c.image_id), owner)
            if c.item.subject:
                store.put(
                    library_subject_record(c.image_id),
                    RecordKind.SUBJECT,
                    c.item.subject.encode(),
                    owner=owner,
                )
            made = {}
            for algorithm_id, vector in c.vectors.items():
                template_id = made[algorithm_id] = str(uuid4())
                store.put_template(template_id, vector, owner=owner, algorithm_id=algorithm_id)
                templates[algorithm_id][c.image_id] = template_id
                staged[algorithm_id][c.image_id] = (template_id, vector)
            results[c.position] = EnrolmentResult(
                name, True, "enrolled", None, ("R-01", "T-01"), c.image_id, made[algorithms[0]], c.digest
            )
        for algorithm_id, by_image in templates.items():
            if by_image:
                batch.record_templates(act.actor, act.at, algorithm_id, by_image)
        return [results[p] for p in range(len(items))]

    def _prepare(
        self,
        act: Act,
        position: int,
        item: EnrolmentItem,
        name: str,
        algorithms: Sequence[str],
        *,
        digest: str,
        seen: dict[str, str],
    ) -> EnrolmentResult | _Candidate:
        try:
            # A video's limits are checked when it is opened, after R-01 (``_video_subject``).
            pixels = None if item.video else self.bio.decode(item.data)
        except ImageRejected as rejected:
            return EnrolmentResult(name, False, rejected.reason, rejected.code)
        if digest in seen:
            return EnrolmentResult(
                name,
                False,
                f"the same image is already enrolled as {seen[digest]}",
                "duplicate",
                content_hash=digest,
            )
        candidate = _Candidate(position, item, str(uuid4()), digest)
        if not may_enrol(item.captured_on, item.age_at_capture, item.mopi_group, act.at, act.config).allowed:
            # Offered without detection: the domain records the refusal and its reason.
            return candidate
        own, *others = (self.bio.engine_for(a) for a in algorithms)
        if pixels is None:
            subject = self._video_subject(item, own, candidate)
            if isinstance(subject, EnrolmentResult):
                return attrs.evolve(subject, name=name, content_hash=digest)
            pixels, faces, chosen = subject
        else:
            faces = own.detect(pixels)
            chosen, code, reason = choose_subject_face(faces)
            if chosen is None:
                return EnrolmentResult(name, False, reason, code, content_hash=digest)
        face = faces[chosen].face
        candidate.analysis = FaceAnalysis.of("subject", faces[chosen])
        candidate.vectors[own.algorithm_id] = own.template(pixels, [face])[0]
        for engine in others:  # a re-templating under way: its algorithm finds its own points
            try:
                candidate.vectors[engine.algorithm_id] = engine.template_located(pixels, [face])[0]
            except ValueError:
                reason = "the algorithm the library is being re-templated with finds no face there"
                return EnrolmentResult(name, False, reason, "no_face", content_hash=digest)
        return candidate

    def _video_subject(
        self, item: EnrolmentItem, engine: FaceEngine, candidate: _Candidate
    ) -> tuple[np.ndarray, list[AnalysedFace], int] | EnrolmentResult:
        """A video's subject: its faces tracked (``video_faces``), the best face of each track, and
        of those the one ``choose_subject_face`` takes (the only one, or one clearly larger); its
        frame becomes the library image. Returns (frame pixels, faces, chosen) or why not."""
        sampler = self.bio.video
        if sampler is None:
            return EnrolmentResult("", False, "this deployment takes still images only", "unsupported_type")
        try:
            with sampler.open(item.data) as opened:
                found = faces_in_video(engine, opened, sampler.limits.max_tracks)
        except ImageRejected as rejected:
            return EnrolmentResult("", False, rejected.reason, rejected.code)
        faces = [t.face for t in found.faces]
        chosen, code, reason = choose_subject_face(faces)
        if chosen is None:
            return EnrolmentResult("", False, reason.replace("image", "video"), code)
        frame = found.faces[chosen].frame
        candidate.frame = sampler.encode_frame(frame.pixels)
        candidate.frame_index, candidate.time_ms = frame.index, frame.time_ms
        return frame.pixels, faces, chosen

    def _index(
        self, library_id: str, algorithm_id: str, staged: dict[str, tuple[str, np.ndarray]]
    ) -> list[str]:
        return index_templates(self.bio, library_id, algorithm_id, staged)

    def _import_folder(self, folder: Path | str) -> Path:
        if self.bio.import_root is None:
            raise ManifestError("bulk enrolment from server folders is not enabled (no import root)")
        root = Path(self.bio.import_root).resolve()
        resolved = Path(folder).resolve()
        if not resolved.is_relative_to(root):
            raise ManifestError(f"{folder} is outside the import root")
        if not resolved.is_dir():
            raise ManifestError(f"{folder} is not a folder")
        return resolved


def _read_manifest(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path.name}: {exc.strerror}") from exc
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ManifestError(f"the manifest lacks the columns {missing}")
    for line, row in enumerate(reader, start=2):
        yield line, {k: (v or "").strip() for k, v in row.items() if k}


def _item_from_row(root: Path, numbered: tuple[int, dict[str, str]]) -> EnrolmentItem | EnrolmentResult:
    line, row = numbered
    name = row.get("file") or f"manifest line {line}"

    def refused(reason: str) -> EnrolmentResult:
        return EnrolmentResult(name, False, f"manifest line {line}: {reason}", "manifest")

    path = (root / row.get("file", "")).resolve()
    if not row.get("file") or not path.is_relative_to(root) or not path.is_file():
        return refused("the file is missing or outside the folder")
    try:
        captured_on = date.fromisoformat(row["capture_date"])
    except ValueError:
        return refused(f"capture_date {row['capture_date']!r} is not a date (YYYY-MM-DD)")
    try:
        age = PerceivedAgeBand(row["age_band"])
    except ValueError:
        return refused(f"age_band must be one of {[b.value for b in PerceivedAgeBand]}")
    try:
        mopi = MopiGroup(int(row["mopi_group"]))
    except ValueError:
        return refused("mopi_group must be 1, 2 or 3")
    try:
        data = path.read_bytes()
    except OSError as exc:
        return refused(f"the file cannot be read ({exc.strerror})")
    return EnrolmentItem(data, captured_on, age, mopi, row.get("subject") or None, name)


def index_templates(
    bio: Biometrics, library_id: str, algorithm_id: str, staged: Mapping[str, tuple[str, np.ndarray]]
) -> list[str]:
    """Adds new templates (image id -> (template id, vector)) of one algorithm to the library's
    index; returns those the store still holds. A failed write drops the index, which is then
    rebuilt from the store when next searched: the templates are recorded either way."""
    if not staged:
        return []
    embedder = bio.engine_for(algorithm_id).embedder
    live = list(staged.values())
    try:
        with bio.indexes.writing(library_id, algorithm_id, embedder.dimension, embedder.metric) as index:
            # Checked under the index lock: a template a concurrent purge erased from the
            # store since it was written must not enter the index; the purge
            # erases before it locks, so it cannot miss one added here. One a rebuild
            # already indexed is not added twice.
            live = [(t, v) for t, v in live if bio.store.exists(t)]
            fresh = [(t, v) for t, v in live if t not in index]
            if fresh:
                index.add([t for t, _ in fresh], np.stack([v for _, v in fresh]))
    except Exception:
        # The templates stand; the index is a projection and is rebuilt when next searched.
        log.exception("index update of library %s failed; the index will be rebuilt", library_id)
        bio.indexes.drop(library_id, algorithm_id)
        live = [(t, v) for t, v in live if bio.store.exists(t)]
    return [t for t, _ in live]
