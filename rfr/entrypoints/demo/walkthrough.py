"""The demo's steps: each acts through the API as the person the policy names, then says what
the policy requires (with its rule IDs) and what the system recorded.

Nothing here decides anything the server would not: refusals come back as problems and stop
the demo with the API's own words (``ApiError``).
"""

from __future__ import annotations

import json
import mimetypes
import textwrap
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import attrs

from rfr.entrypoints.demo.api import Api, ApiError, Caller
from rfr.entrypoints.demo.dataset import DemoDataset, Photo, upright_size

STEPS = 12
TEAM = "fr-team"
ENROL_BATCH = 16
PROGRESS_EVERY = 4 * ENROL_BATCH
CANDIDATES_SHOWN = 5
# Held-back photos showing several faces tried before the first of them is searched anyway:
# a one-face still is the clearer lesson, but each try is a probe on the record.
CROWDED_TRIES = 5
# LFW gives no capture date: the demo treats its photos as custody images taken a year ago,
# well inside every R-01 retention period for adults.
CAPTURE_AGE = timedelta(days=365)
WIDTH = 100
POLICY = "      Policy:   "
INDENT = " " * len(POLICY)


class DemoStopped(RuntimeError):
    """The flow cannot go on (no face found, the person not among the candidates, ...)."""


@attrs.frozen
class Outcome:
    """What the demo found, for the exit code and for tests that read it."""

    probe_identity: str
    rank_of_correct_identity: int | None
    report_path: Path
    audit_ok: bool
    audit_summary: str

    @property
    def correct_first(self) -> bool:
        return self.rank_of_correct_identity == 1


@attrs.define
class Narrator:
    out: TextIO
    total: int
    _step: int = 0

    def lesson(self, title: str, rules: str, policy: str) -> None:
        self._step += 1
        print(f"\n{self._step:>2}/{self.total} {title} ({rules})", file=self.out)
        print(textwrap.fill(policy, WIDTH, initial_indent=POLICY, subsequent_indent=INDENT), file=self.out)
        self.out.flush()

    def recorded(self, text: str) -> None:
        self._say("Recorded:", text)

    def shown(self, text: str) -> None:
        self._say("Shown:   ", text)

    def _say(self, label: str, text: str) -> None:
        lines = text.splitlines() or [""]
        print(f"      {label} {lines[0]}", file=self.out)
        for line in lines[1:]:
            print(f"{INDENT}{line}", file=self.out)
        self.out.flush()


@attrs.define
class Cast:
    """The people of the demo, each with their own token."""

    admin: Caller
    analyst: Caller  # RFR user in the FR team
    inspector: Caller  # approving officer, Inspector
    superintendent: Caller  # approving officer, Superintendent
    sro: Caller
    lead: Caller  # operational lead
    auditor: Caller


def run(api: Api, admin: Caller, dataset: DemoDataset, output_dir: Path, out: TextIO) -> Outcome:
    say = Narrator(out, STEPS)
    cast = _register_cast(api, admin, say)
    approval_id = _approve_library(cast, say)
    library_id = _create_library(cast, approval_id, say)
    in_library = _enrol(cast, library_id, dataset.enrol, say)
    photo, probe = _submit_probe(cast, dataset.held_back, in_library, say)
    probe = _select_face(cast, photo, probe, say)
    request = _open_search(cast, probe["probe_id"], library_id, say)
    candidates = _run_search(cast, request["id"], say)
    chosen, rank = _adjudicate(cast, request["id"], candidates, photo.identity, say)
    report_path, report_id = _issue_report(cast, request["id"], chosen, output_dir, say)
    _disseminate(cast, request["id"], report_id, say)
    ok, summary = _verify_audit(cast, say)
    return Outcome(photo.identity, rank, report_path, ok, summary)


# -- the steps ----------------------------------------------------------------------------------


def _register_cast(api: Api, admin: Caller, say: Narrator) -> Cast:
    say.lesson(
        "People and their roles",
        "A-05",
        "only authorised, trained users act; an administrator grants and revokes access.",
    )
    tag = uuid.uuid4().hex[:4]

    def person(name: str, roles: Sequence[str], rank: str | None = None, teams: Sequence[str] = ()) -> Caller:
        return api.register(admin, f"{name}-{tag}", roles, rank=rank, teams=teams)

    cast = Cast(
        admin=admin,
        analyst=person("analyst", ["rfr_user"], teams=[TEAM]),
        inspector=person("inspector", ["approving_officer"], "inspector"),
        superintendent=person("superintendent", ["approving_officer"], "superintendent"),
        sro=person("sro", ["sro"], "chief_superintendent"),
        lead=person("oplead", ["operational_lead"], "chief_inspector"),
        auditor=person("auditor", ["auditor"]),
    )
    say.recorded(
        f"{admin.user_id} (administrator) registered 6 people, recorded their training and issued each a\n"
        "one-time token that they exchanged for their own bearer token:\n"
        f"{cast.analyst.user_id}: RFR user, team {TEAM}\n"
        f"{cast.inspector.user_id}: approving officer, Inspector\n"
        f"{cast.superintendent.user_id}: approving officer, Superintendent (temporary libraries, L-03)\n"
        f"{cast.sro.user_id}: Senior Responsible Owner (SRO)\n"
        f"{cast.lead.user_id}: operational lead\n"
        f"{cast.auditor.user_id}: auditor"
    )
    return cast


def _approve_library(cast: Cast, say: Narrator) -> str:
    say.lesson(
        "Form 1 and the SRO's approval of a substantive library",
        "L-02, L-04, L-05, P-12",
        "every part of 5.7(a)-(e) is stated; only the SRO approves a substantive library, not "
        "the applicant, recording access, Image Level, conditions, purposes and a review date.",
    )
    application = cast.lead.post(
        "/library-approvals",
        {
            "kind": "substantive",
            "library_name": "Demo custody images",
            "legal_basis": "Common law policing purposes; images held under PACE s.64A (demo)",
            "how_obtained_and_privacy_expectations": "Taken on arrest; subjects are told how they are used",
            "composition_quality_and_suitability": "Frontal photographs, one face each",
            "elevated_privacy_or_human_rights": "None beyond the custody setting",
            "necessity_and_proportionality": "Needed to identify suspects of recordable offences",
            "monitoring_and_assurance": "Quarterly review by the Operational Lead; searches audited",
        },
    )
    review_due = (datetime.now(UTC) + timedelta(days=180)).replace(microsecond=0)
    approval = cast.sro.post(
        f"/library-approvals/{application['id']}/approval",
        {
            "record": {
                "rationale": "Necessary and proportionate for identifying suspects",
                "access": {"teams": [TEAM], "users": [], "all_rfr_users": False},
                "image_level": 1,
                "conditions": f"Searched by team {TEAM} only",
                "purposes": ["a_identify"],
                "review_due": review_due.isoformat(),
            }
        },
    )
    say.recorded(
        f"approval {approval['id']}: applied for by {cast.lead.user_id}, {approval['status']} by "
        f"{cast.sro.user_id}\n"
        f"Image Level {approval['approved_level']}, purposes {', '.join(approval['purposes'])}, "
        f"team {TEAM} only (L-13), review due {review_due.date()} (L-06: within 12 months)"
    )
    return str(approval["id"])


def _create_library(cast: Cast, approval_id: str, say: Narrator) -> str:
    say.lesson(
        "The reference library",
        "L-01",
        "a library exists and is searched only under an approval in force.",
    )
    library = cast.lead.post("/libraries", {"name": "Demo custody images", "approval_id": approval_id})
    say.recorded(f"library {library['id']} created by {cast.lead.user_id} under approval {approval_id}")
    return str(library["id"])


def _enrol(cast: Cast, library_id: str, photos: Sequence[Photo], say: Narrator) -> frozenset[str]:
    """Enrols ``photos``; returns the identities with at least one photo enrolled."""
    say.lesson(
        "Enrolment",
        "R-01, T-01",
        "each image carries its capture date, perceived age and MOPI group, which set its "
        "retention; every template records the algorithm that made it.",
    )
    captured = (date.today() - CAPTURE_AGE).isoformat()
    facts = {"capture_date": captured, "age_band": "18_plus", "mopi_group": "2"}
    results: list[dict[str, Any]] = []
    algorithm = ""
    for start in range(0, len(photos), ENROL_BATCH):
        for report in _upload(cast.lead, library_id, photos[start : start + ENROL_BATCH], facts):
            results.extend(report["results"])
            algorithm = report["algorithm_id"]
        sent = min(start + ENROL_BATCH, len(photos))
        if sent % PROGRESS_EVERY == 0 or sent == len(photos):
            print(f"{INDENT}... {sent}/{len(photos)} images sent", file=say.out, flush=True)
    enrolled = sum(1 for r in results if r["enrolled"])
    refused: dict[str, int] = {}
    for result in results:
        if not result["enrolled"]:
            code = result.get("code") or "other"
            refused[code] = refused.get(code, 0) + 1
    not_enrolled = ", ".join(f"{n} {code}" for code, n in sorted(refused.items())) or "none"
    say.recorded(
        f"{enrolled} of {len(photos)} images enrolled by {cast.lead.user_id} (not enrolled: {not_enrolled})\n"
        f"captured {captured}, 18 and over, MOPI group 2: kept 10 years (R-01)\n"
        f"templates made by {algorithm}"
    )
    if enrolled == 0:
        raise DemoStopped("no image was enrolled")
    # The API reports each batch's results in the order its files were sent.
    return frozenset(p.identity for p, r in zip(photos, results, strict=True) if r["enrolled"])


def _upload(
    lead: Caller, library_id: str, batch: Sequence[Photo], facts: dict[str, str]
) -> list[dict[str, Any]]:
    """Enrolment reports of ``batch``, halved as often as the server's body limit needs (413)."""
    files = [("files", (p.path.name, p.path.read_bytes(), _media_type(p.path))) for p in batch]
    fields = {**facts, "subject": [p.identity for p in batch]}
    try:
        return [lead.post(f"/libraries/{library_id}/images", files=files, data=fields)]
    except ApiError as e:
        if e.status != 413 or len(batch) == 1:
            raise
    half = len(batch) // 2
    return _upload(lead, library_id, batch[:half], facts) + _upload(lead, library_id, batch[half:], facts)


def _submit_probe(
    cast: Cast, held_back: Sequence[Photo], in_library: frozenset[str], say: Narrator
) -> tuple[Photo, dict[str, Any]]:
    """The probe: the first held-back photo, of a person the library holds, in which the
    detector finds one face; failing that, the first in which it finds several."""
    say.lesson(
        "The probe image and its Form 3",
        "P-01, P-02, P-10, P-11",
        "a search needs a Form 3 (purpose, ground, offence, Image Level, necessity, source) and "
        "the less intrusive checks tried first; faces are only detected, never templated yet.",
    )
    usable = [photo for photo in held_back if photo.identity in in_library]
    if not usable:
        names = ", ".join(sorted({photo.identity for photo in held_back}))
        raise DemoStopped(
            f"no person held back for the probe is in the library (none of the other photos of {names} "
            "was enrolled): the set needs a person with one photo to search and another enrolled"
        )
    crowded: list[tuple[Photo, dict[str, Any]]] = []
    for photo in held_back:
        if photo.identity not in in_library:
            say.shown(f"{photo.identity}/{photo.path.name} set aside: no other photo of theirs was enrolled")
            continue
        view = _submit_one(cast, photo, say)
        count = len(view["faces"])
        if count == 1:
            return photo, view
        if count > 1:
            crowded.append((photo, view))
            if len(crowded) == CROWDED_TRIES:
                break
        say.shown(
            f"set aside, {count} faces: a held-back photo with one face is looked for first"
            if count
            else "set aside, no face (a user would draw a box, P-11)"
        )
    if crowded:
        photo, view = crowded[0]
        say.shown(f"no held-back photo tried has one face: the probe is {photo.identity}/{photo.path.name}")
        return photo, view
    raise DemoStopped(
        f"no face was detected in any held-back photo ({len(usable)} tried); a user would draw a box (P-11)"
    )


def _submit_one(cast: Cast, photo: Photo, say: Narrator) -> dict[str, Any]:
    form3 = {
        "case_reference": "DEMO/2025/0001",
        "purposes": ["a_identify"],
        "grounds": ["b_offence"],
        "offence_code": "burglary",
        "image_level": 1,
        "necessity_and_proportionality": "Suspect of a burglary; no other line of enquiry has named him",
        "image_source": "Still from the victim's doorbell camera (demo: a held-back photo)",
        "source_sensitivity": "None",
        "most_current_image_confirmed": True,
        "perceived_age": "18_plus",
        "pre_rfr_checks": {
            "tried": ["local_enquiries", "open_source_checks"],
            "why_insufficient": "House-to-house enquiries and open sources found no name",
        },
    }
    files = {
        "image": (photo.path.name, photo.path.read_bytes(), _media_type(photo.path)),
        "form3": (None, json.dumps(form3), "application/json"),
    }
    view = cast.analyst.post("/probes", files=files)
    faces = view["faces"]
    say.recorded(
        f"probe {view['probe_id']} submitted by {cast.analyst.user_id} ({photo.identity}/{photo.path.name})\n"
        f"{len(faces)} face(s) detected by {view['detector_algorithm_id']}; "
        f"templates made: {view['template_count']}"
    )
    for face in faces:
        flags = ", ".join(face["flags"]) or "none"
        say.shown(
            f"{face['face_id']}: box ({face['left']}, {face['top']})-({face['right']}, {face['bottom']}), "
            f"quality flags: {flags}"
        )
    return view


def _subject_face(photo: Photo, faces: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The face to search and why: the only one, or the one nearest the centre of the frame.

    Not the largest: a folder-per-identity set centres the person it is named for (LFW does),
    and a bystander nearer the camera can be larger."""
    if len(faces) == 1:
        return faces[0], "the only face in the frame"
    width, height = upright_size(photo.path)

    def off_centre(face: dict[str, Any]) -> float:
        x = (face["left"] + face["right"]) / 2 - width / 2
        y = (face["top"] + face["bottom"]) / 2 - height / 2
        return x * x + y * y

    return min(faces, key=off_centre), "the face nearest the centre of the frame"


def _select_face(cast: Cast, photo: Photo, probe: dict[str, Any], say: Narrator) -> dict[str, Any]:
    say.lesson(
        "Choosing the face to search",
        "P-10, P-11",
        "the user selects the face; only it is templated. Quality flags are shown first and the "
        "user's decision to go on despite them is recorded.",
    )
    face, why = _subject_face(photo, probe["faces"])
    probe_id = probe["probe_id"]
    view = cast.analyst.post(
        f"/probes/{probe_id}/selection", {"face_ids": [face["face_id"]], "reason": f"The suspect, {why}"}
    )
    others = len(probe["faces"]) - 1
    say.recorded(
        f"{face['face_id']} selected; templates now: {view['template_count']} ({view['algorithm_id']})"
        + (f"; the {others} other face(s) are never templated" if others else "")
    )
    if others:
        say.shown(f"why {face['face_id']}: {why}, where this set puts the person it is named for")
    if view["quality_flags"]:
        view = cast.analyst.post(
            f"/probes/{probe_id}/quality-decision",
            {"proceed": True, "reason": "Flags noted; the face is clear enough to search"},
        )
        say.recorded(f"quality flags {', '.join(view['quality_flags'])} shown; decision to proceed recorded")
    say.recorded(
        "ready for search"
        if view["ready_for_search"]
        else f"not ready: {'; '.join(view['not_ready_because'])}"
    )
    return view


def _open_search(cast: Cast, probe_id: str, library_id: str, say: Narrator) -> dict[str, Any]:
    say.lesson(
        "The search request",
        "S-01, S-03, L-08, L-13, P-08",
        "each library is named with why it is relevant; it must be approved for the purpose and "
        "open to the requester; Image Level 4-5 needs an Inspector's approval.",
    )
    request = cast.analyst.post(
        "/searches",
        {
            "probe_id": probe_id,
            "libraries": [
                {
                    "library_id": library_id,
                    "relevance": "Local custody images: the suspect may have been arrested before",
                }
            ],
        },
    )
    needs = ", ".join(request["required_approvals"]) or "none"
    say.recorded(
        f"search request {request['id']} opened by {cast.analyst.user_id}; approvals needed: {needs}"
    )
    if request["awaiting_approval"]:
        request = cast.inspector.post(
            f"/searches/{request['id']}/approval",
            {"rationale": "Proportionate: serious offence, no other lead"},
        )
        say.recorded(f"approved by {cast.inspector.user_id}, Inspector (P-12: not the requester)")
    return request


def _run_search(cast: Cast, request_id: str, say: Narrator) -> list[dict[str, Any]]:
    say.lesson(
        "Running the search",
        "S-02, S-04, T-01",
        "libraries are searched lowest level first; the results are potential matches, by rank "
        "(1 = most similar) with score, library and algorithm, never an identification.",
    )
    result = cast.analyst.post(f"/searches/{request_id}/runs", {})
    listing = cast.analyst.get(f"/searches/{request_id}/candidates", order="rank")
    candidates = list(listing["candidates"])
    say.recorded(
        f"library {result['library_id']} searched with {result['algorithm_id']}: {len(candidates)} candidates"
    )
    for c in candidates[:CANDIDATES_SHOWN]:
        say.shown(
            f"rank {c['rank']:>2}  score {c['score']:.3f}  {c['subject'] or '(subject withheld, L-13)'}"
        )
    if not candidates:
        raise DemoStopped("the search returned no candidate")
    return candidates


def _adjudicate(
    cast: Cast, request_id: str, candidates: list[dict[str, Any]], identity: str, say: Narrator
) -> tuple[dict[str, Any], int | None]:
    say.lesson(
        "Adjudication",
        "S-05",
        "a person compares each potential match they look at and records viable or not, with a "
        "rationale; only this makes a viable match. (The demo knows the answer; a user would not.)",
    )
    for candidate in candidates:
        viable = candidate["subject"] == identity
        rationale = (
            "Same person: face shape, eyes, nose and mouth agree (demo: the labels agree)"
            if viable
            else "Different person on comparison (demo: the labels differ)"
        )
        cast.analyst.post(
            f"/searches/{request_id}/adjudications",
            {
                "candidate_id": candidate["candidate_id"],
                "viable": viable,
                "rationale": rationale,
                "identity_known": True if viable else None,
            },
        )
        say.recorded(
            f"rank {candidate['rank']} ({candidate['subject']}) adjudicated "
            f"{'VIABLE' if viable else 'not viable'} by {cast.analyst.user_id}"
        )
        if viable:
            return candidate, int(candidate["rank"])
    raise DemoStopped(f"{identity} is not among the {len(candidates)} candidates: no viable match, no report")


def _issue_report(
    cast: Cast, request_id: str, candidate: dict[str, Any], output_dir: Path, say: Narrator
) -> tuple[Path, str]:
    say.lesson(
        "The match report",
        "S-06",
        "a viable match produces a report for the case file carrying the 8.27 caveat verbatim "
        "and the link to the performance document.",
    )
    report = cast.analyst.post(f"/searches/{request_id}/reports", {"candidate_id": candidate["candidate_id"]})
    page = f"/searches/{request_id}/reports/{report['report_id']}/printable"
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"match-report-{report['report_id']}.html"
    path.write_text(cast.analyst.text(page), encoding="utf-8")
    say.recorded(f"match report {report['report_id']} issued by {cast.analyst.user_id}")
    say.shown(textwrap.fill(f"caveat (8.27): {report['caveat']}", WIDTH - len(INDENT)))
    say.shown(f"printable page: {cast.analyst.client.base_url}{page} (with the analyst's token)")
    say.shown(f"saved copy: {path}")
    return path, str(report["report_id"])


def _disseminate(cast: Cast, request_id: str, report_id: str, say: Narrator) -> None:
    say.lesson(
        "Dissemination",
        "S-07",
        "who receives the report, on which legal basis, and that they apply equivalent "
        "safeguards; templates are never disseminated.",
    )
    cast.analyst.post(
        f"/searches/{request_id}/disseminations",
        {
            "report_id": report_id,
            "recipient": "DC Demo, Burglary Squad",
            "legal_basis": "Common law policing purpose; DPA 2018 s.35",
            "safeguards_acknowledged": True,
            "items": ["match_report"],
        },
    )
    say.recorded(f"match report {report_id} sent to DC Demo, Burglary Squad; safeguards acknowledged")


def _verify_audit(cast: Cast, say: Narrator) -> tuple[bool, str]:
    say.lesson(
        "The audit trail",
        "A-01, A-02, A-03",
        "every action above, refusals included, is an event in a hash chain; only Auditors read "
        "it, and each of their queries is itself recorded.",
    )
    answer = cast.auditor.get("/audit/verify", reason="Demo: check the trail after a search")
    result = answer["result"]
    ok = bool(result.get("ok"))
    summary = (
        f"audit trail intact: {result.get('checked')} events verified"
        if ok
        else f"audit trail BROKEN at position {result.get('first_bad_position')}: {result.get('reason')}"
    )
    say.recorded(
        f"{summary} (query recorded as audit access {answer['access_id']} by {cast.auditor.user_id})"
    )
    return ok, summary


def _media_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
