"""Erasure (R-05): purge library images, or a probe, for good.

The image, its face analyses and its templates leave the encrypted store and every index,
irrecoverably; the audit trail keeps the fact (``ImagesPurged`` / ``Purged``: who, when, why,
which ids) and never the biometric data. Afterwards the probe's thumbnails answer 404 and a
search no longer returns a purged library image.

Who: library images are purged by those who manage libraries, Administrators and the
Operational Lead (the domain's ``LIBRARY_MANAGERS``). A probe is purged by the Operational
Lead, the SRO or an Administrator: erasing a probe by hand is a retention decision (the
31-day deletions of policy 7.1(b) are the retention sweep's job), not a step of the search
an RFR User runs. A legal hold (R-04) refuses every purge: 403 ``policy-refusal`` naming R-04,
recorded (see ``legal_holds``).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import attrs
import msgspec
from litestar import Router, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter

from rfr.application.services.access import Principal
from rfr.application.services.biometric_erasure import BiometricErasure
from rfr.domain.people import Role
from rfr.domain.reference_library import LIBRARY_MANAGERS
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.resources._workflow import Reason, ReasonBody

ProbeId = Annotated[UUID, PathParameter(description="the probe's id")]
LibraryId = Annotated[UUID, PathParameter(description="the library's id")]
Caller = NamedDependency[Principal]
Erasure = NamedDependency[BiometricErasure]
PROBE_ERASERS = (Role.OPERATIONAL_LEAD, Role.SRO, Role.ADMINISTRATOR)
ImageId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ImagePurgeBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Library images to erase for good (R-05).

    Attributes:
        image_ids: The ids of the library's images to erase, with their face analyses and
            templates.
        reason: Why they are erased, in the caller's words; recorded in the audit trail.
    """

    image_ids: Annotated[list[ImageId], msgspec.Meta(min_length=1, max_length=500)]
    reason: Reason


@attrs.frozen
class ImagesPurged:
    """What was erased: the images named, and how many templates went with them.

    Attributes:
        library_id: The library the images were in.
        image_ids: The images erased.
        templates_erased: How many templates of them were erased from the store and every index.
    """

    library_id: UUID
    image_ids: list[str]
    templates_erased: int


@attrs.frozen
class ProbePurged:
    """How many records of the probe (image, face analyses, templates) were erased.

    Attributes:
        probe_id: The probe erased.
        records_erased: How many stored records of it were erased: the image, its face
            analyses and its templates.
    """

    probe_id: UUID
    records_erased: int


def _erasure(ctx: HttpContext) -> BiometricErasure:
    return ctx.services.erasure


@post(
    "/libraries/{library_id:uuid}/images/purge",
    sync_to_thread=True,
    status_code=200,
    summary="Purge library images (R-05)",
    **allow(*LIBRARY_MANAGERS),
)
def purge_images(
    principal: Caller,
    erasure: Erasure,
    library_id: FromPath[LibraryId],
    data: Annotated[
        ImagePurgeBody,
        Body(
            examples=[
                Example(value={"image_ids": ["img-000123"], "reason": "Subject acquitted; record deleted"})
            ]
        ),
    ],
) -> ImagesPurged:
    """All or nothing: an image id not in the library, or already purged, refuses the whole
    request under R-05 and nothing is erased."""
    image_ids = list(dict.fromkeys(data.image_ids))
    destroyed = erasure.purge_library_images(principal.user_id, library_id, image_ids, data.reason)
    return ImagesPurged(library_id, image_ids, len(destroyed))


@post(
    "/probes/{probe_id:uuid}/purge",
    sync_to_thread=True,
    status_code=200,
    summary="Purge a probe (R-05)",
    **allow(*PROBE_ERASERS),
)
def purge_probe(
    principal: Caller,
    erasure: Erasure,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        ReasonBody, Body(examples=[Example(value={"reason": "Purpose resolved; deletion under 7.1(b)(iii)"})])
    ],
) -> ProbePurged:
    """Its image, faces and templates are erased; the probe's record keeps only the fact."""
    erased = erasure.purge_probe(principal.user_id, probe_id, data.reason)
    return ProbePurged(probe_id, len(erased))


ROUTES = [
    Router(
        path="/",
        route_handlers=[purge_images, purge_probe],
        dependencies={"erasure": use_case(_erasure)},
        tags=["erasure"],
    )
]
