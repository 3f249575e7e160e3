"""The analyst's probe (P-01..P-11): Form 3 with the image, the faces drawn on it, the selection
and the quality decision.

The same use cases as ``POST /probes``, ``/probes/{id}/selection`` and ``/quality-decision``
(``Probes``), which decide and record as over the API: Form 3 is built from the form's fields,
validated as the API's ``Form3Body`` (``decode_json_part``: the same limits and messages) and
judged by the domain (a refusal names its rule, P-01..P-07, and is recorded). The image and the
faces' thumbnails are shown to the user who submitted the probe only, as over the API.

The faces are drawn in an inline SVG over the image (CSP forbids inline styles; SVG attributes
are not styles), each box numbered, and listed under the image with its quality flags in words.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any
from uuid import UUID

from anyio import to_thread
from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, PathParameter
from litestar.response import Template

from rfr.application.ports import FaceBox
from rfr.application.services.access import Principal
from rfr.application.services.endorsements import ADVISERS, ProbeEndorsements
from rfr.application.services.offences import OffenceCodes
from rfr.application.services.probes import PROBE_READERS, PROBE_USERS, Probes, ProbeView
from rfr.domain.forms import Form3
from rfr.domain.images import ImageLevel, PerceivedAgeBand
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, context_of, use_case
from rfr.entrypoints.http.resources._workflow import decode_json_part, domain_value
from rfr.entrypoints.http.resources.probes import Form3Body, submit_upload
from rfr.entrypoints.web.forms import FormData, FormErrors, text
from rfr.entrypoints.web.layout import page, see_other
from rfr.entrypoints.web.navigation import NavLink
from rfr.entrypoints.web.security import SECURITY_HEADERS, WEB_PATH

ProbeId = Annotated[UUID, PathParameter(description="the probe's id")]
FaceId = Annotated[str, PathParameter(max_length=100)]
JPEG = "image/jpeg"
MAX_COORDINATE = 100_000

PURPOSES = (
    ("a_identify", "(a) Identify a person", ""),
    ("b_place_at_location", "(b) Place a person at a location", ""),
    ("c_association", "(c) Establish an association", ""),
    ("d_confirm_conduct", "(d) Confirm a person's conduct", ""),
)
GROUNDS = (
    ("a_wanted_by_courts", "(a) Wanted by the courts", ""),
    ("b_offence", "(b) Suspected of an offence", "Name the offence below."),
    ("c_breach_of_conditions", "(c) Breach of conditions", ""),
    ("d_missing_increased_risk", "(d) Missing, at increased risk", ""),
    ("e_risk_of_harm", "(e) Risk of harm to self or others", ""),
    ("f_deceased_or_injured", "(f) Deceased or injured, unable to identify themselves", ""),
    (
        "g_victim_witness_associate",
        "(g) Victim, person with information, or close associate",
        "Needs the case for searching them, below (P-07).",
    ),
)
LEVELS = (
    (1, "Level 1: a compliant police image (custody-style)"),
    (2, "Level 2: a non-compliant police image"),
    (3, "Level 3: an image the public would expect the police to hold"),
    (4, "Level 4: an image of elevated privacy; needs an Inspector's endorsement (P-08)"),
    (
        5,
        "Level 5: an image the public would not expect the police to hold; "
        "needs an Inspector's endorsement (P-08)",
    ),
)
AGES = (
    ("18_plus", "18 or over"),
    ("16_17", "16 or 17: any offence; your necessity case is recorded (P-05)"),
    ("13_15", "13 to 15: needs an Inspector's endorsement, and a recordable offence (P-04)"),
    ("under_13", "Under 13: the search is refused (P-03)"),
    ("unknown", "Unknown: treated as 13 to 15 (P-04)"),
)
PRE_RFR = (
    ("other_lines_of_investigation", "Other lines of investigation"),
    ("local_enquiries", "Local enquiries"),
    ("open_source_checks", "Open-source checks"),
    ("other", "Another less intrusive option"),
)
GROUND_G = (
    ("why_necessary", "Why searching for this person is necessary"),
    ("how_match_advances_investigation", "How a match would advance the investigation"),
    ("less_intrusive_methods", "The less intrusive methods considered, and why they do not serve"),
    ("importance_against_threat_harm_risk", "How identifying them weighs against the threat, harm or risk"),
    ("privacy_expectations", "What privacy the person could reasonably expect"),
)
# P-10's flags, in words.
FLAG_WORDS = {
    "small_face": "small face: few pixels between the eyes",
    "blurred": "blurred",
    "under_exposed": "under-exposed: the face is too dark",
    "over_exposed": "over-exposed: the face is too bright",
    "pose_yaw": "head turned to one side",
    "pose_roll": "head tilted",
    "low_detector_score": "the detector was unsure this is a face",
}


def flag_words(flag: str) -> str:
    return FLAG_WORDS.get(flag, flag.replace("_", " "))


def _endorsements(ctx: HttpContext) -> ProbeEndorsements:
    return ctx.services.endorsements


def _probes(ctx: HttpContext) -> Probes:
    return ctx.services.probes


def _offences(ctx: HttpContext) -> OffenceCodes:
    return ctx.services.offences


def probe_path(probe_id: str) -> str:
    return f"{WEB_PATH}/probes/{probe_id}"


def _form_page(
    request: Request[Any, Any, Any],
    offences: OffenceCodes,
    principal: Principal,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Template:
    return page(
        request,
        "probes/new.html",
        title="Submit a probe with its Form 3",
        status=status,
        values=values,
        errors=errors,
        offences=offences.list(principal.user_id),
        purposes=PURPOSES,
        grounds=GROUNDS,
        levels=LEVELS,
        ages=AGES,
        pre_rfr=PRE_RFR,
        ground_g=GROUND_G,
    )


@get("/probes/new", summary="Submit a probe", sync_to_thread=True, **allow(*PROBE_USERS.roles))
def new_probe(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    offences: NamedDependency[OffenceCodes],
) -> Template:
    """Form 3, each field explained with the rules it triggers, and the image."""
    return _form_page(
        request, offences, principal, values={"purposes": [], "grounds": [], "tried": []}, errors={}
    )


def form3_of(form: Any, errors: FormErrors) -> dict[str, Any]:
    """Form 3 as the API's JSON body, from the posted fields; the page's own checks in ``errors``."""
    one = lambda name: str(form.get(name) or "").strip()  # noqa: E731
    many = lambda name: [str(v) for v in form.getall(name, [])]  # noqa: E731
    body: dict[str, Any] = {
        "case_reference": text(one("case_reference"), "case_reference", errors, label="the case reference"),
        "purposes": many("purposes"),
        "grounds": many("grounds"),
        "necessity_and_proportionality": text(
            one("necessity_and_proportionality"),
            "necessity_and_proportionality",
            errors,
            label="why the search is necessary and proportionate",
        ),
        "image_source": text(one("image_source"), "image_source", errors, label="where the image comes from"),
        "source_sensitivity": text(
            one("source_sensitivity"), "source_sensitivity", errors, label="the source's sensitivity, or None"
        ),
        "most_current_image_confirmed": one("most_current_image_confirmed") == "yes",
        "perceived_age": one("perceived_age"),
        "vulnerability": {
            "suspected_relevant_disability": one("suspected_relevant_disability") == "yes",
            "suspected_predates_gender_reassignment": one("suspected_predates_gender_reassignment") == "yes",
        },
    }
    if not body["purposes"]:
        errors.add("purposes", "Choose at least one purpose (P-01).")
    if not body["grounds"]:
        errors.add("grounds", "Choose at least one ground (P-01).")
    level = one("image_level")
    if level in {"1", "2", "3", "4", "5"}:
        body["image_level"] = int(level)
    else:
        errors.add("image_level", "Choose the image's level (P-01).")
    if not body["perceived_age"]:
        errors.add("perceived_age", "Choose the perceived age of the person shown.")
    if one("offence_code"):
        body["offence_code"] = one("offence_code")
    if one("offence_description"):
        body["offence_description"] = text(one("offence_description"), "offence_description", errors)
    tried, why = many("tried"), one("why_insufficient")
    if tried or why:
        body["pre_rfr_checks"] = {"tried": tried, "why_insufficient": why}
    else:
        errors.add(
            "tried",
            "Say which less intrusive options were tried and why they did not suffice (P-02).",
        )
    rationale = {name: one(f"g_{name}") for name, _ in GROUND_G}
    if any(rationale.values()):
        body["ground_g_rationale"] = rationale
    return body


@post("/probes", summary="Submit a probe", status_code=303, **allow(*PROBE_USERS.roles))
async def submit_probe(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    probes: NamedDependency[Probes],
    offences: NamedDependency[OffenceCodes],
) -> Response[Any]:
    """As ``POST /probes``: Form 3 judged first (refusals recorded), then the faces detected."""
    form = await request.form()
    errors = FormErrors()
    body = form3_of(form, errors)
    upload = form.get("image")
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors.add("image", "Choose the probe image (JPEG, PNG or WebP) or short video (MP4, WebM or AVI).")
    if errors:
        values = {k: form.get(k) for k in form}
        values.update(purposes=body["purposes"], grounds=body["grounds"], tried=form.getall("tried", []))
        return await to_thread.run_sync(
            partial(
                _form_page, request, offences, principal, values=values, errors=errors.by_field, status=400
            )
        )
    assert isinstance(upload, UploadFile)
    form3 = domain_value(Form3, decode_json_part(json.dumps(body), Form3Body, "form3"))
    view = await to_thread.run_sync(partial(submit_upload, probes, principal.user_id, form3, upload))
    return see_other(probe_path(view.probe_id))


def _probe_page(
    request: Request[Any, Any, Any],
    principal: Principal,
    probes: Probes,
    probe_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    view: ProbeView = probes.get(principal.user_id, probe_id)
    mine = view.requester_id == principal.user_id and not view.purged
    width, height = probes.image_size(principal.user_id, probe_id) if mine else (0, 0)
    numbered = [(n, face, [flag_words(f) for f in face.flags]) for n, face in enumerate(view.faces, 1)]
    # P-06's technical advice, shown and recorded here: the Inspector's endorsement waits for it.
    # Read only while P-06 is missing: every other view of the probe needs nothing more than
    # the probe's own view.
    governance = (
        context_of(request.app).services.endorsements.get(principal.user_id, probe_id)
        if "P-06" in view.missing_endorsements
        else None
    )
    return page(
        request,
        "probes/probe.html",
        title="Probe",
        status=status,
        probe=view,
        mine=mine,
        width=width,
        height=height,
        numbered=numbered,
        # A video's faces come from several frames; the picture is one of them (its poster), so
        # only the boxes found on that frame are drawn on it, the others listed with their frame.
        on_picture=[
            item
            for item in numbered
            if view.video is None or item[1].frame_index in (None, view.video.poster_frame)
        ],
        selected_flags=[flag_words(f) for f in view.quality_flags],
        governance=governance,
        ages=AGES,
        higher_levels=[(n, label) for n, label in LEVELS if n > view.image_level],
        can_advise=bool({r.value for r in ADVISERS.roles} & set(principal.roles)) and not view.purged,
        errors=errors or {},
        values=values or {},
        path=probe_path(view.probe_id),
    )


@get("/probes/{probe_id:uuid}", summary="A probe", sync_to_thread=True, **allow(*PROBE_READERS.roles))
def probe(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    probes: NamedDependency[Probes],
    probe_id: FromPath[ProbeId],
) -> Template:
    """The faces detected, drawn on the image for its submitter, each with its quality flags."""
    return _probe_page(request, principal, probes, str(probe_id))


@get(
    "/probes/{probe_id:uuid}/image",
    summary="The probe image (submitter only)",
    sync_to_thread=True,
    media_type=JPEG,
    **allow(*PROBE_USERS.roles),
)
def probe_image(
    principal: NamedDependency[Principal], probes: NamedDependency[Probes], probe_id: FromPath[ProbeId]
) -> Response[bytes]:
    picture = probes.image(principal.user_id, str(probe_id))
    return Response(picture.jpeg, media_type=JPEG, headers=SECURITY_HEADERS)


@get(
    "/probes/{probe_id:uuid}/faces/{face_id:str}/thumbnail",
    summary="A face of the probe (submitter only)",
    sync_to_thread=True,
    media_type=JPEG,
    **allow(*PROBE_USERS.roles),
)
def probe_face(
    principal: NamedDependency[Principal],
    probes: NamedDependency[Probes],
    probe_id: FromPath[ProbeId],
    face_id: FromPath[FaceId],
) -> Response[bytes]:
    jpeg = probes.thumbnail(principal.user_id, str(probe_id), face_id)
    return Response(jpeg, media_type=JPEG, headers=SECURITY_HEADERS)


@post(
    "/probes/{probe_id:uuid}/selection",
    summary="Select a face (P-11)",
    sync_to_thread=True,
    status_code=303,
    **allow(*PROBE_USERS.roles),
)
def select_face(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    probes: NamedDependency[Probes],
    probe_id: FromPath[ProbeId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /probes/{id}/selection`` with one face: quality recorded, that face templated."""
    errors = FormErrors()
    face_id = text(data.get("face_id"), "face_id", errors, label="which face to search")
    if not face_id:
        errors.by_field["face_id"] = "Choose the face to search."
    reason = text(data.get("reason"), "reason", errors, label="why this face")
    if errors:
        return _probe_page(request, principal, probes, str(probe_id), status=400, errors=errors.by_field)
    probes.select_faces(principal.user_id, str(probe_id), [face_id], reason)
    return see_other(probe_path(str(probe_id)))


@post(
    "/probes/{probe_id:uuid}/technical-advice",
    summary="Record technical advice (P-06)",
    sync_to_thread=True,
    status_code=303,
    **allow(*ADVISERS.roles),
)
def technical_advice(
    request: Request[Any, Any, Any],
    *,
    principal: NamedDependency[Principal],
    probes: NamedDependency[Probes],
    endorsements: NamedDependency[ProbeEndorsements],
    probe_id: FromPath[ProbeId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /probes/{id}/technical-advice``: the facial recognition team's advice on the
    algorithm's accuracy for this person, which a P-06 endorsement must follow."""
    errors = FormErrors()
    advice = text(data.get("advice"), "advice", errors, label="the technical advice")
    if errors:
        return _probe_page(
            request, principal, probes, str(probe_id), status=400, errors=errors.by_field, values=dict(data)
        )
    endorsements.record_technical_advice(principal.user_id, probe_id, advice)
    return see_other(f"{probe_path(str(probe_id))}#technical-advice")


@post(
    "/probes/{probe_id:uuid}/perceived-age",
    summary="Reassess the perceived age (P-03, P-04)",
    sync_to_thread=True,
    status_code=303,
    **allow(*PROBE_USERS.roles),
)
def reassess_perceived_age(
    request: Request[Any, Any, Any],
    *,
    principal: NamedDependency[Principal],
    probes: NamedDependency[Probes],
    probe_id: FromPath[ProbeId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /probes/{id}/perceived-age``: the new age's safeguards then hold (P-03, P-04)."""
    errors = FormErrors()
    age = data.get("perceived_age", "")
    if age not in dict(AGES):
        errors.add("perceived_age_now", "Choose the age as perceived now.")
    reason = text(data.get("age_reason"), "age_reason", errors, label="why the age is reassessed")
    if errors:
        return _probe_page(
            request, principal, probes, str(probe_id), status=400, errors=errors.by_field, values=dict(data)
        )
    probes.reassess_perceived_age(principal.user_id, str(probe_id), PerceivedAgeBand(age), reason)
    return see_other(f"{probe_path(str(probe_id))}#facts")


@post(
    "/probes/{probe_id:uuid}/level",
    summary="Raise the probe's level (L-11)",
    sync_to_thread=True,
    status_code=303,
    **allow(*PROBE_USERS.roles),
)
def raise_level(
    request: Request[Any, Any, Any],
    *,
    principal: NamedDependency[Principal],
    probes: NamedDependency[Probes],
    probe_id: FromPath[ProbeId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /probes/{id}/level``: higher, never lower (L-11); P-08 follows the new level."""
    errors = FormErrors()
    level = data.get("level", "")
    if level not in {str(n) for n, _ in LEVELS}:
        errors.add("level", "Choose the new level.")
    reason = text(data.get("level_reason"), "level_reason", errors, label="why the level is raised")
    if errors:
        return _probe_page(
            request, principal, probes, str(probe_id), status=400, errors=errors.by_field, values=dict(data)
        )
    probes.raise_level(principal.user_id, str(probe_id), ImageLevel(int(level)), reason)
    return see_other(f"{probe_path(str(probe_id))}#facts")


def _pixel(value: str | None, field: str, errors: FormErrors) -> int:
    cleaned = (value or "").strip()
    if not cleaned.isdigit() or int(cleaned) > MAX_COORDINATE:
        errors.add(field, "Enter a whole number of pixels from the image's edge.")
        return 0
    return int(cleaned)


@post(
    "/probes/{probe_id:uuid}/drawn-faces",
    summary="Draw a face box (P-11)",
    sync_to_thread=True,
    status_code=303,
    **allow(*PROBE_USERS.roles),
)
def draw_face(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    probes: NamedDependency[Probes],
    probe_id: FromPath[ProbeId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /probes/{id}/drawn-faces``: when no face, or not the right one, was found, the box
    drawn is selected and templated; the engine may still find no face in it (422, nothing kept)."""
    errors = FormErrors()
    left, top = _pixel(data.get("left"), "left", errors), _pixel(data.get("top"), "top", errors)
    right, bottom = _pixel(data.get("right"), "right", errors), _pixel(data.get("bottom"), "bottom", errors)
    if not errors and right <= left:
        errors.add("right", "The right edge must be to the right of the left edge.")
    if not errors and bottom <= top:
        errors.add("bottom", "The bottom edge must be below the top edge.")
    reason = text(data.get("draw_reason"), "draw_reason", errors, label="why you drew the box")
    status = 400
    if not errors:
        try:
            probes.draw_face(principal.user_id, str(probe_id), FaceBox(left, top, right, bottom), reason)
        except ValueError as e:
            # The engine's objections, as over the API (422): outside the image, or no face in it.
            errors.add("left", str(e))
            status = 422
    if errors:
        return _probe_page(
            request,
            principal,
            probes,
            str(probe_id),
            status=status,
            errors=errors.by_field,
            values=dict(data),
        )
    return see_other(probe_path(str(probe_id)))


@post(
    "/probes/{probe_id:uuid}/quality-decision",
    summary="Decide on the quality flags (P-10)",
    sync_to_thread=True,
    status_code=303,
    **allow(*PROBE_USERS.roles),
)
def decide_on_quality(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    probes: NamedDependency[Probes],
    probe_id: FromPath[ProbeId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /probes/{id}/quality-decision``: go on despite the flags, or not, and why."""
    errors = FormErrors()
    proceed = data.get("proceed", "")
    if proceed not in {"yes", "no"}:
        errors.add("proceed", "Choose whether to search despite the flags.")
    reason = text(data.get("reason_quality"), "reason_quality", errors, label="why")
    if errors:
        return _probe_page(request, principal, probes, str(probe_id), status=400, errors=errors.by_field)
    probes.decide_on_quality(principal.user_id, str(probe_id), proceed == "yes", reason)
    return see_other(probe_path(str(probe_id)))


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            draw_face,
            new_probe,
            submit_probe,
            probe,
            probe_image,
            probe_face,
            select_face,
            decide_on_quality,
            technical_advice,
            reassess_perceived_age,
            raise_level,
        ],
        dependencies={
            "probes": use_case(_probes),
            "offences": use_case(_offences),
            "endorsements": use_case(_endorsements),
        },
    )
]
NAV = [NavLink(new_probe, "Submit a probe", order=20)]
