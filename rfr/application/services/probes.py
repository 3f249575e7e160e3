"""A probe image from upload to templates of the faces the user chose (P-01, P-10, P-11, T-01).

Submitting decodes the upload (a bad one is an ``ImageRejected`` and nothing is kept),
hashes it, and lets ``ProbeImage.submit`` decide on the Form 3. Only then are the faces
detected: their boxes go into the ``FacesDetected`` event, their landmarks and quality
into the encrypted store beside the image. No template is made (P-11 step 1).

The user then selects faces, or draws a box when none was found; only then are quality
assessments recorded for those faces (the domain records quality of selected faces only;
the measures of every detected face are shown before selecting, P-10) and templates made
of exactly those faces (P-11 steps 2-3). A flagged face needs the user's recorded decision
before any search (P-10).

A face's thumbnail is shown to the user who submitted the probe and nobody else: the
probe image is theirs to work on, and others see only what the process records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import uuid4

import attrs
import numpy as np

from rfr.application.app import RfrApplication
from rfr.application.errors import NotFound
from rfr.application.ports import Clock, FaceBox, RecordKind
from rfr.application.services.base import Act, Need, UseCase
from rfr.application.services.biometric_support import (
    Biometrics,
    FaceAnalysis,
    content_hash,
    face_crop,
    load_analysis,
    probe_face_picture_record,
    probe_face_record,
    probe_image_record,
    template_on_pictures,
)
from rfr.domain.decisions import Decision
from rfr.domain.forms import Form3
from rfr.domain.images import ImageLevel, PerceivedAgeBand
from rfr.domain.people import OPERATIONAL_ROLES, Role
from rfr.domain.probe_image import FaceRegion, ProbeImage

PROBE_USERS = Need((Role.RFR_USER,))
PROBE_READERS = Need(OPERATIONAL_ROLES)


@attrs.frozen
class FaceView:
    """One face of a probe: where it is, how good it is (P-10), whether chosen and templated (P-11).

    Attributes:
        face_id: The face's id within the probe, e.g. ``face-1``.
        left: The box's left edge, in image pixels.
        top: The box's top edge, in image pixels.
        right: The box's right edge, in image pixels.
        bottom: The box's bottom edge, in image pixels.
        score: The detector's confidence, or null for a drawn box.
        drawn: Whether the user drew the box (P-11) rather than the detector finding it.
        selected: Whether the user selected the face for search (P-11).
        templated: Whether a template of the face exists for the current algorithm (T-01).
        measures: The quality measures of the face by name, e.g. sharpness and pose (P-10);
            empty once the probe is purged.
        flags: The quality flags raised by those measures (P-10).
        frame_index: For a face offered from a video, the frame it is on (from 0); else null.
        time_ms: For a face offered from a video, that frame's time in milliseconds; else null.
    """

    face_id: str
    left: int
    top: int
    right: int
    bottom: int
    score: float | None
    drawn: bool
    selected: bool
    templated: bool
    measures: dict[str, float]
    flags: tuple[str, ...]
    frame_index: int | None = None
    time_ms: int | None = None


@attrs.frozen
class VideoView:
    """A short video probe: what it was and how its faces were found (ADR 0026).

    Attributes:
        frame_count: Frames in the video, as its container declares.
        fps: Frames per second.
        width: A frame's width in pixels.
        height: A frame's height in pixels.
        duration_ms: The video's duration in milliseconds.
        sampled_frames: How many frames the detector looked at.
        tracks: How many faces were tracked across those frames; one is offered per track.
        poster_frame: The frame shown as the probe's picture, where a drawn box is drawn.
    """

    frame_count: int
    fps: float
    width: int
    height: int
    duration_ms: int
    sampled_frames: int
    tracks: int
    poster_frame: int


@attrs.frozen
class ProbeView:
    """A probe image: its detected faces, their quality, selection and templates (P-10, P-11).

    Attributes:
        probe_id: The probe's id.
        content_hash: ``sha256:`` and the hex SHA-256 of the image as uploaded.
        requester_id: The user id of whoever submitted it.
        submitted_at: When it was submitted.
        image_level: Its level in the Annex A Image Matrix (1-5): its Form 3's, or higher once
            raised (L-11).
        perceived_age: The perceived age band of the person shown: its Form 3's, or the age
            it was reassessed to.
        detector_algorithm_id: The face detector that found its faces, or null.
        faces: The detected and drawn faces.
        quality_flags: The quality flags of the selected faces (P-10).
        quality_decision: The user's decision to go on despite the flags (P-10), or null.
        algorithm_id: The algorithm the server searches with (T-01).
        template_count: How many templates of its selected faces exist for that algorithm.
        missing_endorsements: The endorsements still needed: ``P-04``, ``P-06``, ``P-08``.
        ready_for_search: Whether the probe itself allows a search now.
        not_ready_because: Why not, each reason naming its rule; empty when ready.
        purged: Whether the image and its templates were erased.
        video: For a short video probe, the video and its sampling; else null.
    """

    probe_id: str
    content_hash: str
    requester_id: str
    submitted_at: datetime
    image_level: int
    perceived_age: str
    detector_algorithm_id: str | None
    faces: tuple[FaceView, ...]
    quality_flags: tuple[str, ...]
    quality_decision: bool | None
    algorithm_id: str
    template_count: int
    missing_endorsements: tuple[str, ...]
    ready_for_search: bool
    not_ready_because: tuple[str, ...]
    purged: bool
    video: VideoView | None = None


@attrs.frozen
class ProbePicture:
    """The probe image as a JPEG, and its size in pixels (the faces' boxes are in these pixels)."""

    jpeg: bytes
    width: int
    height: int


class Probes(UseCase):
    def __init__(self, app: RfrApplication, clock: Clock, biometrics: Biometrics) -> None:
        super().__init__(app, clock)
        self.bio = biometrics

    # -- commands ----------------------------------------------------------------------------

    def submit(self, acting_user: str, form: Form3, image: bytes) -> ProbeView:
        """Form 3 and the image; faces detected, none templated (P-01, P-11)."""
        with self.bio.heavy.admit(acting_user):
            pixels = self.bio.decode(image)
            digest = content_hash(image)
            probe_id = uuid4()
            owner = str(probe_id)

            def action(act: Act) -> ProbeImage:
                probe = act.new(ProbeImage.submit(act.actor, act.at, form, digest, probe_id=probe_id))
                faces = self.bio.engine.detect(pixels)
                analyses = [FaceAnalysis.of(f"face-{n}", f) for n, f in enumerate(faces, start=1)]
                probe.record_faces_detected(
                    act.actor,
                    act.at,
                    self.bio.engine.detector.algorithm_id,
                    [_region(a) for a in analyses],
                )
                store = act.recording(self.bio.store)
                store.put(probe_image_record(owner), RecordKind.IMAGE, image, owner=owner)
                for analysis in analyses:
                    analysis.put(store, probe_face_record(owner, analysis.face_id), owner)
                return probe

            probe = self._act(acting_user, "submit probe", [], action, target_name="ProbeImage")
            return self._view(probe)

    def select_faces(
        self, acting_user: str, probe_id: str, face_ids: Sequence[str], reason: str
    ) -> ProbeView:
        """P-11: the user's choice; quality recorded (P-10) and templates made for these faces only."""
        with self.bio.heavy.admit(acting_user):
            probe = self.load(probe_id, ProbeImage)
            face_ids = list(dict.fromkeys(face_ids))
            return self._template_after(
                acting_user,
                "select faces",
                probe,
                lambda act: probe.select_faces(act.actor, act.at, face_ids, reason),
                face_ids,
            )

    def draw_face(self, acting_user: str, probe_id: str, box: FaceBox, reason: str) -> ProbeView:
        """P-11: a box drawn by the user when no face (or not the right one) was detected."""
        with self.bio.heavy.admit(acting_user):
            probe = self.load(probe_id, ProbeImage)
            face_id = f"drawn-{sum(1 for f in probe.faces.values() if f.drawn) + 1}"
            pixels = self._pixels(probe)
            analysis = FaceAnalysis.of(face_id, self.bio.engine.face_from_box(pixels, box), drawn=True)

            def draw(act: Act) -> None:
                probe.draw_face(act.actor, act.at, _region(analysis), reason)

            return self._template_after(
                acting_user, "draw face", probe, draw, [face_id], drawn=analysis, pixels=pixels
            )

    def decide_on_quality(self, acting_user: str, probe_id: str, proceed: bool, reason: str) -> ProbeView:
        """P-10: the user's decision on the flags shown, recorded with them."""
        probe = self.load(probe_id, ProbeImage)
        self._act(
            acting_user,
            "decide on quality",
            [probe],
            lambda act: probe.decide_on_quality(act.actor, act.at, proceed, reason),
        )
        return self._view(probe)

    def reassess_perceived_age(
        self, acting_user: str, probe_id: str, age: PerceivedAgeBand, reason: str
    ) -> ProbeView:
        """A better view of the face changes the perceived age; P-03 and P-04 follow the new one."""
        probe = self.load(probe_id, ProbeImage)
        self._act(
            acting_user,
            "reassess perceived age",
            [probe],
            lambda act: probe.reassess_perceived_age(act.actor, act.at, age, reason),
        )
        return self._view(probe)

    def raise_level(self, acting_user: str, probe_id: str, level: ImageLevel, reason: str) -> ProbeView:
        """L-11 for probes: higher on the Image Matrix, never lower; P-08 follows the new level."""
        probe = self.load(probe_id, ProbeImage)
        self._act(
            acting_user,
            "raise probe level",
            [probe],
            lambda act: probe.raise_level(act.actor, act.at, level, reason),
        )
        return self._view(probe)

    # -- queries -----------------------------------------------------------------------------

    def get(self, acting_user: str, probe_id: str) -> ProbeView:
        self._read(acting_user, "read probe", PROBE_READERS, target=f"ProbeImage {probe_id}")
        return self._view(self.load(probe_id, ProbeImage))

    def thumbnail(self, acting_user: str, probe_id: str, face_id: str) -> bytes:
        """JPEG of one face with a margin, for the user who submitted the probe only."""
        probe = self._submitters_only(acting_user, probe_id, "view probe face", "its faces")
        if probe.purged_at is not None or face_id not in probe.faces:
            raise NotFound("face", face_id)
        face = probe.faces[face_id]
        box = FaceBox(face.left, face.top, face.right, face.bottom)
        picture = self._picture(probe, probe_face_picture_record(probe, face_id))
        return self.bio.encode_jpeg(face_crop(picture, box))

    def image(self, acting_user: str, probe_id: str) -> ProbePicture:
        """The whole probe image as a JPEG with its size, for the user who submitted the probe
        only: the picture the analyst selects a face on, its detected boxes drawn over it (P-11)."""
        probe = self._submitters_only(acting_user, probe_id, "view probe image", "its image")
        pixels = self._pixels(probe)
        height, width = pixels.shape[:2]
        return ProbePicture(self.bio.encode_jpeg(pixels), int(width), int(height))

    def image_size(self, acting_user: str, probe_id: str) -> tuple[int, int]:
        """(width, height) of the probe image, the pixels its faces' boxes are in, for the user
        who submitted it only: the page that draws the boxes needs the size, not a JPEG."""
        probe = self._submitters_only(acting_user, probe_id, "view probe image", "its image")
        height, width = self._pixels(probe).shape[:2]
        return int(width), int(height)

    def _submitters_only(self, acting_user: str, probe_id: str, what: str, shown: str) -> ProbeImage:
        """The probe, for the user who submitted it; anyone else's read is refused and recorded
        (A-05): a probe's pictures are the submitter's to see, whatever their roles."""
        probe = self.load(probe_id, ProbeImage)
        self._read(
            acting_user,
            what,
            PROBE_USERS,
            target=f"ProbeImage {probe_id}",
            decide=lambda actor: Decision.check(
                actor.user_id == probe.requester_id,
                "A-05",
                f"only the user who submitted the probe sees {shown}",
            ),
        )
        return probe

    # -- helpers -----------------------------------------------------------------------------

    def _template_after(
        self,
        acting_user: str,
        command: str,
        probe: ProbeImage,
        choose: Callable[[Act], None],
        face_ids: Sequence[str],
        *,
        drawn: FaceAnalysis | None = None,
        pixels: np.ndarray | None = None,
    ) -> ProbeView:
        owner = str(probe.id)
        algorithm_id = self.bio.algorithm_id

        def action(act: Act) -> None:
            choose(act)
            store = act.recording(self.bio.store)
            if drawn is not None:
                drawn.put(store, probe_face_record(owner, drawn.face_id), owner)
            analyses = [
                drawn if drawn is not None and f == drawn.face_id else self._analysis(probe, f)
                for f in face_ids
            ]
            for analysis in analyses:
                probe.record_quality(
                    act.actor, act.at, analysis.face_id, analysis.quality.measures, analysis.quality.flags
                )
            templated = {t.face_id for t in probe.templates if t.algorithm_id == algorithm_id}
            todo = [a for a in analyses if a.face_id not in templated]
            if not todo:
                return
            vectors = template_on_pictures(
                probe,
                [a.face_id for a in todo],
                [a.face for a in todo],
                lambda record: self._picture(probe, record, pixels),
                self.bio.engine.template,
            )
            templates = {}
            for analysis, vector in zip(todo, vectors, strict=True):
                template_id = str(uuid4())
                store.put_template(template_id, vector, owner=owner, algorithm_id=algorithm_id)
                templates[analysis.face_id] = template_id
            probe.record_templates(act.actor, act.at, algorithm_id, templates)

        self._act(acting_user, command, [probe], action)
        return self._view(probe)

    def _analysis(self, probe: ProbeImage, face_id: str) -> FaceAnalysis:
        if face_id not in probe.faces:
            # The domain names unknown faces in its refusal; this only avoids a store miss first.
            raise NotFound("face", face_id)
        return load_analysis(self.bio.store, probe_face_record(probe.id, face_id))

    def _pixels(self, probe: ProbeImage) -> np.ndarray:
        if probe.purged_at is not None:
            raise NotFound("probe image", probe.id)
        return self.bio.decode(self.bio.store.get(probe_image_record(probe.id)))

    def _picture(self, probe: ProbeImage, record: str, pixels: np.ndarray | None = None) -> np.ndarray:
        """The stored picture ``record`` of the probe (its image, or a video face's frame);
        ``pixels``, already decoded, stand for the probe image."""
        if pixels is not None and record == probe_image_record(probe.id):
            return pixels
        if probe.purged_at is not None:
            raise NotFound("probe image", probe.id)
        return self.bio.decode(self.bio.store.get(record))

    def _view(self, probe: ProbeImage) -> ProbeView:
        algorithm_id = self.bio.algorithm_id
        config = self.config()
        templated = {t.face_id for t in probe.templates if t.algorithm_id == algorithm_id}
        faces = []
        for face_id, region in probe.faces.items():
            measures: dict[str, float] = {}
            flags: tuple[str, ...] = ()
            if probe.purged_at is None and face_id in probe.quality:
                measures, flags = dict(probe.quality[face_id].measures), probe.quality[face_id].flags
            elif probe.purged_at is None:
                analysis = load_analysis(self.bio.store, probe_face_record(probe.id, face_id))
                measures, flags = dict(analysis.quality.measures), analysis.quality.flags
            faces.append(
                FaceView(
                    face_id,
                    region.left,
                    region.top,
                    region.right,
                    region.bottom,
                    region.score,
                    region.drawn,
                    face_id in probe.selected,
                    face_id in templated,
                    measures,
                    tuple(flags),
                    region.frame_index,
                    region.time_ms,
                )
            )
        ready = probe.ready_for_search(algorithm_id, config)
        return ProbeView(
            probe_id=str(probe.id),
            content_hash=probe.image_hash,
            requester_id=probe.requester_id,
            submitted_at=probe.submitted_at,
            image_level=int(probe.level),
            perceived_age=probe.perceived_age.value,
            detector_algorithm_id=probe.detector_algorithm_id,
            faces=tuple(faces),
            quality_flags=probe.quality_flags,
            quality_decision=probe.quality_decision,
            algorithm_id=algorithm_id,
            template_count=len(probe.template_ids(algorithm_id)),
            missing_endorsements=tuple(sorted(k.value for k in probe.missing_endorsements(config))),
            ready_for_search=ready.allowed,
            not_ready_because=ready.reasons,
            purged=probe.purged_at is not None,
            video=None if probe.video is None else VideoView(**attrs.asdict(probe.video)),
        )


def _region(analysis: FaceAnalysis) -> FaceRegion:
    box = analysis.box
    return FaceRegion(
        analysis.face_id, box.left, box.top, box.right, box.bottom, analysis.score, drawn=analysis.drawn
    )
