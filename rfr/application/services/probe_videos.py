"""A short video as a probe (issue 13; policy 1.10 "or short video"): Form 3, then faces offered.

The upload is checked against the deployment's limits (size, duration, frame size) by the
video sampler before anything else: a refused video is an ``ImageRejected`` (413/415/422)
and nothing is kept. The Form 3 is then judged exactly as for a still image (P-01..P-07).
Only then are frames sampled, faces detected on each and tracked across them, and one face
of best quality per track offered (``video_faces``): its box, frame index and time go into
the probe's events (``VideoSampled``, ``FacesDetected``), its landmarks and quality into the
encrypted store, as for an image. Nothing is templated (P-11 step 1).

What is stored, encrypted and owned by the probe, so erased with it (R-05): the video as
uploaded, each offered face's frame (PNG, lossless: its template is made from that frame when
the face is selected), and the poster frame as the probe's picture (the first offered face's
frame), where a box is drawn when the detector missed a face. From selection on, a video
probe is a probe like any other: ``Probes`` selects, templates and shows it (ADR 0026).
"""

from __future__ import annotations

from uuid import uuid4

import attrs

from rfr.application.errors import ImageRejected
from rfr.application.ports import RecordKind
from rfr.application.services.base import Act
from rfr.application.services.biometric_support import (
    FaceAnalysis,
    content_hash,
    probe_face_record,
    probe_frame_record,
    probe_image_record,
    probe_video_record,
)
from rfr.application.services.probes import Probes, ProbeView, _region
from rfr.application.video_faces import faces_in_video
from rfr.domain.forms import Form3
from rfr.domain.probe_image import ProbeImage


def submit_video(probes: Probes, acting_user: str, form: Form3, video: bytes) -> ProbeView:
    """Form 3 and a short video; faces tracked, one offered per track, none templated (P-01, P-11)."""
    bio = probes.bio
    sampler = bio.video
    if sampler is None:
        raise ImageRejected("this deployment takes still images only, not video", "unsupported_type")
    with bio.heavy.admit(acting_user), sampler.open(video) as opened:
        digest = content_hash(video)
        probe_id = uuid4()
        owner = str(probe_id)

        def action(act: Act) -> ProbeImage:
            probe = act.new(ProbeImage.submit(act.actor, act.at, form, digest, probe_id=probe_id))
            found = faces_in_video(bio.engine, opened, sampler.limits.max_tracks)
            probe.record_video_sampled(act.actor, act.at, found.sampling)
            offered = [
                (FaceAnalysis.of(f"face-{n}", tracked.face), tracked.frame)
                for n, tracked in enumerate(found.faces, start=1)
            ]
            probe.record_faces_detected(
                act.actor,
                act.at,
                bio.engine.detector.algorithm_id,
                [
                    attrs.evolve(_region(analysis), frame_index=frame.index, time_ms=frame.time_ms)
                    for analysis, frame in offered
                ],
            )
            store = act.recording(bio.store)
            store.put(probe_video_record(owner), RecordKind.IMAGE, video, owner=owner)
            poster = sampler.encode_frame(found.poster.pixels)
            store.put(probe_image_record(owner), RecordKind.IMAGE, poster, owner=owner)
            for analysis, frame in offered:
                analysis.put(store, probe_face_record(owner, analysis.face_id), owner)
                picture = poster if frame is found.poster else sampler.encode_frame(frame.pixels)
                store.put(probe_frame_record(owner, analysis.face_id), RecordKind.IMAGE, picture, owner=owner)
            return probe

        probe = probes._act(acting_user, "submit probe", [], action, target_name="ProbeImage")
        return probes._view(probe)
