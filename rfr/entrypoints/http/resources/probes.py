"""Probe images: upload with Form 3 (P-01..P-07), detected faces and quality (P-10), selection (P-11),
endorsements (P-04, P-06, P-08) and technical advice.

The upload is ``multipart/form-data`` with two parts: ``image`` (the file) and ``form3`` (Form 3
as a JSON document: in OpenAPI the part is the object ``Form3Body``, which a form sends as JSON).
JSON rather than one form field per answer because Form 3 nests (pre-RFR checks, urgency, the
8.3(g) case) and its lists (purposes, grounds) would otherwise need a convention of their own.
The image is decoded before anything is recorded: a bad one is refused (413/415/422) and nothing
is kept. The ``image`` part may instead be a short video (declared ``video/mp4``, ``video/webm``
or ``video/x-msvideo``): over its limits (size, duration, frame size) it is refused with 413
before a frame is decoded, another video type with 415, and its faces are offered one per
person tracked across its frames (ADR 0026).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

import attrs
import msgspec
from litestar import Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter

from rfr.application.errors import NoFaceInBox
from rfr.application.ports import FaceBox
from rfr.application.services.access import Principal
from rfr.application.services.endorsements import (
    ADVISERS,
    ENDORSEMENT_READERS,
    ProbeEndorsements,
    ProbeGovernanceView,
)
from rfr.application.services.probe_videos import submit_video
from rfr.application.services.probes import PROBE_READERS, PROBE_USERS, Probes, ProbeView
from rfr.domain.forms import Form3
from rfr.domain.images import ImageLevel, PerceivedAgeBand
from rfr.domain.offences import OFFENCE_CODES
from rfr.domain.people import Role
from rfr.domain.rules_probe import EndorsementKind
from rfr.domain.search_terms import PreRfrOption, SearchGround, SearchPurpose
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.problem_responses import IMAGE_WORK_BUSY, problem_spec
from rfr.entrypoints.http.resources._workflow import (
    Choices,
    Cursor,
    Name,
    PageSize,
    Reason,
    Statement,
    UrgencyBody,
    decode_json_part,
    domain_value,
    image_bytes,
    is_video,
    unprocessable,
)

ProbeId = Annotated[UUID, PathParameter(description="the probe's id")]
Caller = NamedDependency[Principal]
JPEG = "image/jpeg"


class VulnerabilityBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Policy 4.7 safeguards beyond age (P-06).

    Attributes:
        suspected_relevant_disability: The person shown may have a disability relevant to facial
            recognition; the search then needs technical advice and an Inspector's endorsement
            (P-06).
        suspected_predates_gender_reassignment: The image may predate the person's gender
            reassignment; the search then needs technical advice and an Inspector's endorsement
            (P-06).
    """

    suspected_relevant_disability: bool = False
    suspected_predates_gender_reassignment: bool = False


class PreRfrChecksBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """P-02: the less intrusive options tried (8.16) and why they did not suffice.

    Attributes:
        tried: The less intrusive options tried (policy 8.16).
        why_insufficient: Why they did not identify the person.
    """

    tried: Annotated[list[PreRfrOption], Choices]
    why_insufficient: Statement


class GroundGBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """P-07: the case for searching a victim, witness or associate (8.11, 8.12).

    Attributes:
        why_necessary: Why searching for this person is necessary.
        how_match_advances_investigation: How a match would advance the investigation.
        less_intrusive_methods: The less intrusive methods considered and why they do not serve.
        importance_against_threat_harm_risk: How the importance of identifying the person weighs
            against the threat, harm or risk involved.
        privacy_expectations: What privacy the person could reasonably expect.
    """

    why_necessary: Statement
    how_match_advances_investigation: Statement
    less_intrusive_methods: Statement
    importance_against_threat_harm_risk: Statement
    privacy_expectations: Statement


# C-01: the published codes (GET /policy/offences) are the field's enum in the schema, but any
# text is taken, so that a code outside them reaches the domain, which refuses it naming C-01
# and records the refusal, where a schema error would record nothing.
OffenceCode = Annotated[
    Annotated[str, msgspec.Meta(max_length=64)] | None,
    msgspec.Meta(
        description="an Annex C offence code (GET /policy/offences), or 'other' with offence_description",
        extra_json_schema={"extra": {"enum": [*OFFENCE_CODES, None]}},
    ),
]


class Form3Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Form 3, the search request form for one probe image (P-01). ``pre_rfr_checks`` or
    ``urgency`` is required (P-02); ``offence_code`` (Annex C) where a ground is an offence.

    Attributes:
        case_reference: The case or crime reference the search serves.
        purposes: The purposes of the search (policy 8.2 (a)-(d)); at least one.
        grounds: The grounds for the search (policy 8.3 (a)-(g)); at least one.
        image_level: The probe's level in the Annex A Image Matrix, from 1 (least intrusive)
            to 5; a level the policy settings name (4 and 5 by default) needs an Inspector's
            endorsement (P-08).
        necessity_and_proportionality: Why the search is necessary and proportionate.
        image_source: Where the probe image comes from, e.g. CCTV at an address.
        source_sensitivity: Anything sensitive about the source, or "None".
        most_current_image_confirmed: That this is the most current image of the person
            available.
        perceived_age: The perceived age of the person shown at the time of the search; under
            16 needs an endorsement (P-04), under 13 is refused.
        offence_description: The offence in words, with ``offence_code`` ``other`` (an offence
            Annex C does not list); for people only, no rule reads it (C-02).
        vulnerability: Safeguards beyond age (policy 4.7, P-06); default: none suspected.
        pre_rfr_checks: The less intrusive options tried and why they did not suffice; required
            unless ``urgency`` is given (P-02).
        urgency: The urgency (policy 3.1) that excuses the pre-RFR checks (P-02).
        ground_g_rationale: The case for searching a victim, witness or associate; required
            with ground ``g_victim_witness_associate`` (P-07).
        collection_id: The collection the probe belongs to, when several probes are searched
            together; a collection needs an Inspector's approval (P-09).
    """

    case_reference: Statement
    purposes: Annotated[list[SearchPurpose], Choices]
    grounds: Annotated[list[SearchGround], Choices]
    image_level: ImageLevel
    necessity_and_proportionality: Statement
    image_source: Statement
    source_sensitivity: Statement
    most_current_image_confirmed: bool
    perceived_age: PerceivedAgeBand
    offence_code: OffenceCode = None
    offence_description: Statement | None = None
    vulnerability: VulnerabilityBody = msgspec.field(default_factory=VulnerabilityBody)
    pre_rfr_checks: PreRfrChecksBody | None = None
    urgency: UrgencyBody | None = None
    ground_g_rationale: GroundGBody | None = None
    collection_id: Name | None = None


FORM3_EXAMPLE = {
    "case_reference": "OP-LANTERN/2025/0142",
    "purposes": ["a_identify"],
    "grounds": ["b_offence"],
    "image_level": 1,
    "necessity_and_proportionality": "Suspect of a burglary; no other line of enquiry identifies him",
    "image_source": "CCTV at the victim's address",
    "source_sensitivity": "None",
    "most_current_image_confirmed": True,
    "perceived_age": "18_plus",
    "offence_code": "burglary",
    "pre_rfr_checks": {
        "tried": ["local_enquiries", "open_source_checks"],
        "why_insufficient": "House-to-house and open sources found no name",
    },
}


@dataclass
class ProbeUpload:
    """The probe image and its Form 3."""

    image: Annotated[
        UploadFile,
        Body(
            description="the probe image: JPEG, PNG or WebP; or a short video declared as "
            "video/mp4, video/webm or video/x-msvideo (MP4, WebM or AVI)"
        ),
    ]
    form3: Annotated[
        str,
        Body(
            description="Form 3 as a JSON document (send the part as application/json)",
            # The part's type: a component of its own in OpenAPI (openapi_contract.FieldDocs).
            schema_extra={"contentMediaType": "application/json", "contentSchema": Form3Body},
        ),
    ]


class SelectionBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """P-11: the faces to search; only these are templated.

    Attributes:
        face_ids: The ids of the detected or drawn faces to search, e.g. ``face-1``.
        reason: Why these faces, in the user's words; recorded (P-11).
    """

    face_ids: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=100)]],
        msgspec.Meta(min_length=1, max_length=100),
    ]
    reason: Reason


Coordinate = Annotated[int, msgspec.Meta(ge=0, le=100_000)]


class DrawnFaceBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A face box drawn by the user, in image pixels, inclusive (P-11).

    Attributes:
        left: The box's left edge, in pixels from the image's left.
        top: The box's top edge, in pixels from the image's top.
        right: The box's right edge, greater than ``left``.
        bottom: The box's bottom edge, greater than ``top``.
        reason: Why the box is drawn, e.g. the detector missed the face; recorded (P-11).
    """

    left: Coordinate
    top: Coordinate
    right: Coordinate
    bottom: Coordinate
    reason: Reason


class QualityDecisionBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """P-10: go on despite the flags shown, or not.

    Attributes:
        proceed: Whether to search despite the quality flags of the selected faces.
        reason: Why, in the user's words; recorded (P-10).
    """

    proceed: bool
    reason: Reason


class PerceivedAgeBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A better view of the face changes the perceived age of the person shown.

    Attributes:
        perceived_age: The age band as perceived now; P-03 (under 13) and P-04 (13-15, or
            unknown) then apply as if the probe had been submitted so.
        reason: Why the age is reassessed, in the user's words; recorded.
    """

    perceived_age: PerceivedAgeBand
    reason: Reason


class LevelBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """L-11 for probes: a higher place on the Annex A Image Matrix, never lower.

    Attributes:
        level: The new level, above the probe's level now (1 least intrusive, 5 most); P-08
            then asks an Inspector's endorsement at a level the policy config reserves.
        reason: Why the level is raised, in the user's words; recorded.
    """

    level: ImageLevel
    reason: Reason


class EndorsementBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An Inspector's endorsement, named by the rule asking for it: P-04, P-06 or P-08.

    Attributes:
        kind: The rule that asks for the endorsement: ``P-04`` (under 16), ``P-06``
            (vulnerability) or ``P-08`` (a high image level).
        rationale: Why the endorser supports the search, in their words.
    """

    kind: EndorsementKind
    rationale: Statement


class AdviceBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """P-06: the technical advice that must precede a vulnerability endorsement.

    Attributes:
        advice: The advice on how the vulnerability may affect the algorithm's accuracy.
    """

    advice: Statement


def _probes(ctx: HttpContext) -> Probes:
    return ctx.services.probes


def _endorsements(ctx: HttpContext) -> ProbeEndorsements:
    return ctx.services.endorsements


ProbesDep = NamedDependency[Probes]
EndorsementsDep = NamedDependency[ProbeEndorsements]


@post("/probes", sync_to_thread=True, summary="Submit a probe with its Form 3", **allow(*PROBE_USERS.roles))
def submit_probe(
    principal: Caller,
    probes: ProbesDep,
    data: Annotated[
        ProbeUpload,
        Body(
            media_type=RequestEncodingType.MULTI_PART,
            description="multipart/form-data with the parts ``image`` and ``form3`` (JSON)",
            examples=[Example(value={"image": "<the image file>", "form3": FORM3_EXAMPLE})],
        ),
    ],
) -> ProbeView:
    """The Form 3 is judged first (P-01..P-07, refusals recorded); faces are then detected and
    shown with their quality (P-10). No template is made until faces are selected (P-11)."""
    form = decode_json_part(data.form3, Form3Body, "form3")
    return submit_upload(probes, principal.user_id, domain_value(Form3, form), data.image)


def submit_upload(probes: Probes, acting_user: str, form: Form3, upload: UploadFile) -> ProbeView:
    """A probe from its uploaded file, an image or a short video by its declared type (the API's
    and the web client's submission alike). A video's limits are checked before a frame is
    decoded (413, ADR 0026)."""
    if is_video(upload, "image"):
        return submit_video(probes, acting_user, form, upload.file.read())
    return probes.submit(acting_user, form, image_bytes(upload, "image"))


@get("/probes/{probe_id:uuid}", sync_to_thread=True, summary="Read a probe", **allow(*PROBE_READERS.roles))
def get_probe(principal: Caller, probes: ProbesDep, probe_id: FromPath[ProbeId]) -> ProbeView:
    """Detected faces with boxes, quality measures and flags; selection, templates, readiness."""
    return probes.get(principal.user_id, str(probe_id))


@get(
    "/probes/{probe_id:uuid}/governance",
    sync_to_thread=True,
    summary="A probe's endorsements and needs",
    **allow(*ENDORSEMENT_READERS.roles),
)
def probe_governance(
    principal: Caller, endorsements: EndorsementsDep, probe_id: FromPath[ProbeId]
) -> ProbeGovernanceView:
    """Endorsements required (P-04, P-06, P-08), given and missing; technical advice; the cache."""
    return endorsements.get(principal.user_id, probe_id)


@attrs.frozen
class AwaitingEndorsementPage:
    """One page of the probes awaiting an endorsement; pass ``next_after`` as ``after`` for the
    next (null: last page).

    Attributes:
        items: The probes missing an endorsement (P-04, P-06, P-08), oldest first.
        next_after: The cursor of the next page (pass it as ``after``), or null on the last page.
    """

    items: list[ProbeGovernanceView]
    next_after: int | None


@get(
    "/probes/awaiting-endorsement",
    sync_to_thread=True,
    summary="Probes awaiting an endorsement",
    **allow(*ENDORSEMENT_READERS.roles),
)
def awaiting_endorsement(
    principal: Caller, endorsements: EndorsementsDep, after: Cursor = 0, limit: PageSize = 50
) -> AwaitingEndorsementPage:
    """An approving officer's queue: the probes still missing an endorsement the rules ask for
    (P-04 under 16, P-06 vulnerability, P-08 a level the policy config reserves), oldest first."""
    page = endorsements.awaiting(principal.user_id, after=after, limit=limit)
    return AwaitingEndorsementPage(list(page.items), page.next_after)


@get(
    "/probes/{probe_id:uuid}/faces/{face_id:str}/thumbnail",
    sync_to_thread=True,
    media_type=JPEG,
    summary="Thumbnail of a face (submitter only)",
    **allow(*PROBE_USERS.roles),
)
def face_thumbnail(
    principal: Caller,
    probes: ProbesDep,
    probe_id: FromPath[ProbeId],
    face_id: Annotated[str, PathParameter(description="a face id of the probe, e.g. face-1")],
) -> Response[bytes]:
    """JPEG of one face with a margin, for the user who submitted the probe and nobody else."""
    jpeg = probes.thumbnail(principal.user_id, str(probe_id), face_id)
    return Response(jpeg, media_type=JPEG, headers={"Cache-Control": "no-store"})


@post(
    "/probes/{probe_id:uuid}/selection",
    sync_to_thread=True,
    status_code=200,
    summary="Select faces (P-11)",
    responses={
        **IMAGE_WORK_BUSY,
        422: problem_spec(
            "a face was detected under another algorithm and the configured one (SFace's) finds no "
            "face in its box to align it by"
        ),
    },
    **allow(*PROBE_USERS.roles),
)
def select_faces(
    principal: Caller,
    probes: ProbesDep,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        SelectionBody,
        Body(examples=[Example(value={"face_ids": ["face-1"], "reason": "The suspect, nearest the camera"})]),
    ],
) -> ProbeView:
    """Quality is recorded (P-10) and templates made for exactly these faces."""
    try:
        return probes.select_faces(principal.user_id, str(probe_id), data.face_ids, data.reason)
    except NoFaceInBox as e:
        # Nothing was recorded: the selection and its templates are saved together or not at all.
        raise unprocessable("face_ids", str(e)) from None


@post(
    "/probes/{probe_id:uuid}/drawn-faces",
    sync_to_thread=True,
    status_code=200,
    summary="Draw a face box (P-11)",
    responses={
        **IMAGE_WORK_BUSY,
        422: problem_spec(
            "right is not greater than left, bottom not below top, the box leaves the image, or "
            "the algorithm (SFace's) finds no face inside the box to align it by"
        ),
    },
    **allow(*PROBE_USERS.roles),
)
def draw_face(
    principal: Caller,
    probes: ProbesDep,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        DrawnFaceBody,
        Body(
            examples=[
                Example(
                    value={
                        "left": 80,
                        "top": 60,
                        "right": 170,
                        "bottom": 150,
                        "reason": "Face missed by the detector",
                    }
                )
            ]
        ),
    ],
) -> ProbeView:
    """When no face, or not the right one, was detected: the box is selected and templated."""
    if data.right <= data.left:
        raise unprocessable("right", "right must be greater than left")
    if data.bottom <= data.top:
        raise unprocessable("bottom", "bottom must be greater than top")
    box = FaceBox(data.left, data.top, data.right, data.bottom)
    try:
        return probes.draw_face(principal.user_id, str(probe_id), box, data.reason)
    except ValueError as e:
        # The engine's objections to a box, which only it can make: it lies outside the image, or
        # the algorithm aligns by its own detector's points (SFace) and finds no face in it
        # (NoFaceInBox). Nothing is recorded: the box was never accepted.
        raise unprocessable("left", str(e)) from None


@post(
    "/probes/{probe_id:uuid}/quality-decision",
    sync_to_thread=True,
    status_code=200,
    summary="Decide on quality flags (P-10)",
    **allow(*PROBE_USERS.roles),
)
def decide_on_quality(
    principal: Caller,
    probes: ProbesDep,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        QualityDecisionBody,
        Body(examples=[Example(value={"proceed": True, "reason": "Slight blur; features still clear"})]),
    ],
) -> ProbeView:
    return probes.decide_on_quality(principal.user_id, str(probe_id), data.proceed, data.reason)


@post(
    "/probes/{probe_id:uuid}/perceived-age",
    sync_to_thread=True,
    status_code=200,
    summary="Reassess the perceived age (P-03, P-04)",
    **allow(*PROBE_USERS.roles),
)
def reassess_perceived_age(
    principal: Caller,
    probes: ProbesDep,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        PerceivedAgeBody,
        Body(examples=[Example(value={"perceived_age": "13_15", "reason": "A clearer frame shows a child"})]),
    ],
) -> ProbeView:
    """The age recorded whatever it is; the safeguards of the new age then hold (P-03, P-04)."""
    return probes.reassess_perceived_age(principal.user_id, str(probe_id), data.perceived_age, data.reason)


@post(
    "/probes/{probe_id:uuid}/level",
    sync_to_thread=True,
    status_code=200,
    summary="Raise the probe's level (L-11)",
    **allow(*PROBE_USERS.roles),
)
def raise_level(
    principal: Caller,
    probes: ProbesDep,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        LevelBody,
        Body(examples=[Example(value={"level": 4, "reason": "Taken inside a hospital ward"})]),
    ],
) -> ProbeView:
    """Higher, never lower (L-11, refused and recorded otherwise); P-08 follows the new level."""
    return probes.raise_level(principal.user_id, str(probe_id), data.level, data.reason)


@post(
    "/probes/{probe_id:uuid}/endorsements",
    sync_to_thread=True,
    summary="Endorse (P-04, P-06, P-08)",
    **allow(Role.APPROVING_OFFICER),
)
def endorse(
    principal: Caller,
    endorsements: EndorsementsDep,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        EndorsementBody,
        Body(
            examples=[Example(value={"kind": "P-08", "rationale": "Level 4 justified by the risk of harm"})]
        ),
    ],
) -> ProbeGovernanceView:
    """By an approving officer of Inspector rank or above, not the requester (P-12)."""
    return endorsements.endorse(principal.user_id, probe_id, data.kind, data.rationale)


@post(
    "/probes/{probe_id:uuid}/technical-advice",
    sync_to_thread=True,
    status_code=200,
    summary="Record technical advice (P-06)",
    **allow(*ADVISERS.roles),
)
def technical_advice(
    principal: Caller,
    endorsements: EndorsementsDep,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        AdviceBody,
        Body(examples=[Example(value={"advice": "Accuracy may be lower for images before transition"})]),
    ],
) -> ProbeGovernanceView:
    return endorsements.record_technical_advice(principal.user_id, probe_id, data.advice)


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            submit_probe,
            get_probe,
            probe_governance,
            awaiting_endorsement,
            face_thumbnail,
            select_faces,
            draw_face,
            decide_on_quality,
            reassess_perceived_age,
            raise_level,
            endorse,
            technical_advice,
        ],
        dependencies={"probes": use_case(_probes), "endorsements": use_case(_endorsements)},
        tags=["probes"],
    )
]
