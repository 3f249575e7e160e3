"""The whole probe image, for the user who submitted it and nobody else (as its faces' thumbnails).

The analyst selects a face on the image itself, with the detected boxes drawn over it (P-11);
``Probes.thumbnail`` shows one face, this the picture those boxes are drawn on. The same
decision as the thumbnail's: the submitter only (A-05), the read recorded when refused.
"""

from __future__ import annotations

import attrs

from rfr.application.errors import NotFound
from rfr.application.services.probes import PROBE_USERS, Probes
from rfr.domain.decisions import Decision
from rfr.domain.probe_image import ProbeImage


@attrs.frozen
class ProbePicture:
    """The probe image as a JPEG, and its size in pixels (the faces' boxes are in these pixels)."""

    jpeg: bytes
    width: int
    height: int


def probe_picture(probes: Probes, acting_user: str, probe_id: str) -> ProbePicture:
    probe = probes.load(probe_id, ProbeImage)
    probes._read(
        acting_user,
        "view probe image",
        PROBE_USERS,
        target=f"ProbeImage {probe_id}",
        decide=lambda actor: Decision.check(
            actor.user_id == probe.requester_id,
            "A-05",
            "only the user who submitted the probe sees its image",
        ),
    )
    if probe.purged_at is not None:
        raise NotFound("probe image", probe_id)
    pixels = probes._pixels(probe)
    height, width = pixels.shape[:2]
    return ProbePicture(probes.bio.encode_jpeg(pixels), int(width), int(height))
