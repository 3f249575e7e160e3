"""A probe image from Form 3 to deletion, including its time in the Unresolved Crime Cache.

Privacy by design (P-11): faces are first only detected (boxes); templates are recorded only
for faces the user selected or drew. Events carry ids, hashes, boxes and algorithm ids,
never the image or a template vector.

The UCC entry lives on the probe (``AddedToUcc``, ``UccReviewed``,
``RemovedFromUcc``) because an entry is nothing but the probe's continued retention and
re-searching; keeping it here keeps one history per image.

A probe enters the UCC in one of two ways, both under U-01 with P-08's Inspector approval:

- the probe's requester (an RFR User) asks for it with a rationale
  (``request_ucc_addition``, U-01 checked then), and an approving officer of
  Inspector rank or above who is not the requester (P-12) approves it, when U-01 is checked
  again and the probe enters the cache, or declines it with a rationale;
- an Inspector adds it on their own decision (``add_to_ucc``). This is kept:
  P-08 asks for an Inspector's individual approval of every addition, and the Inspector's
  own addition is that approval, by someone who is not the probe's requester (P-12), with
  their rank and rationale recorded. While a requester's request awaits a decision, the
  Inspector decides that request instead, so it is never left open beside an entry.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

import attrs
from eventsourcing.domain import Aggregate

from rfr.domain.calendar import add_months, require_aware
from rfr.domain.codec import from_data, to_data
from rfr.domain.decisions import Decision, combine
from rfr.domain.forms import Form3, ReviewOutcome
from rfr.domain.governed import GovernedAggregate, formerly
from rfr.domain.images import ImageLevel, PerceivedAgeBand
from rfr.domain.legal_holds import LegallyHoldable
from rfr.domain.offences import CrimeTier, tier_of
from rfr.domain.overdue_flags import FLAG_MESSAGES, NOTIFIED
from rfr.domain.people import OPERATIONAL_ROLES, Actor, Rank, Role, rank_of
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.retention import deletion_deadline, never_searched_deadline
from rfr.domain.rules_access import authorised, different_person, inspector_or_above, stated
from rfr.domain.rules_probe import (
    EndorsementKind,
    age_allows_search,
    form3_acceptable,
    required_endorsements,
    ucc_addition_allowed,
    under_16_safeguards,
)
from rfr.domain.search_terms import SearchGround


class ProbeSearch(Protocol):
    """What the probe's decisions know of one search request on it (U-01, R-02, R-03): the
    request itself (``SearchRequest`` has these) or its row in the probe searches projection."""

    @property
    def id(self) -> Any: ...

    @property
    def probe_id(self) -> str: ...

    @property
    def last_searched_at(self) -> datetime | None: ...

    @property
    def searched(self) -> bool:
        """Whether any library was searched (U-01)."""
        ...

    @property
    def has_viable_match(self) -> bool: ...

    @property
    def has_viable_match_of_known_person(self) -> bool: ...


@attrs.frozen
class FaceRegion:
    """A face box in image pixels (inclusive), found by the detector or drawn by the user."""

    face_id: str
    left: int
    top: int
    right: int
    bottom: int
    score: float | None = None
    drawn: bool = False
    # A face offered from a short video: the frame it is on (from 0) and that frame's time.
    frame_index: int | None = None
    time_ms: int | None = None


@attrs.frozen
class VideoSampling:
    """What a short video probe was (its container's facts) and how it was looked at: frames
    sampled, faces tracked, and the poster frame (shown whole, and where a box is drawn).
    No pixels: the video and its frames are in the encrypted store (ADR 0026)."""

    frame_count: int
    fps: float
    width: int
    height: int
    duration_ms: int
    sampled_frames: int
    tracks: int
    poster_frame: int


@attrs.frozen
class QualityAssessment:
    """P-10 measures (face size, blur, exposure, pose...) and the flags raised for one face."""

    face_id: str
    measures: dict[str, float]
    flags: tuple[str, ...] = attrs.field(converter=tuple)


@attrs.frozen
class Endorsement:
    kind: EndorsementKind
    by: str
    rank: int | None
    rationale: str
    at: datetime


@attrs.frozen
class TemplateRef:
    face_id: str
    template_id: str
    algorithm_id: str


class UccRequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


@attrs.frozen
class UccRequest:
    """An RFR User's request to add the probe to the UCC (U-01), and the Inspector's decision (P-08, P-12)."""

    requested_by: str
    requested_at: datetime
    grounds: frozenset[SearchGround]
    rationale: str
    status: UccRequestStatus = UccRequestStatus.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    decider_rank: int | None = None
    decision_rationale: str | None = None

    @property
    def pending(self) -> bool:
        return self.status is UccRequestStatus.PENDING

    def decided(self, status: UccRequestStatus, event: Any) -> UccRequest:
        """The request as decided by ``event`` (approved or declined: who, when, rank, rationale)."""
        return attrs.evolve(
            self,
            status=status,
            decided_by=event.acting.user_id,
            decided_at=event.timestamp,
            decider_rank=event.approver_rank,
            decision_rationale=event.reason,
        )


@attrs.frozen
class UccEntry:
    added_at: datetime
    approved_by: str
    grounds: frozenset[SearchGround]
    tier: int
    review_due: datetime
    removed_at: datetime | None = None
    deletion_due: datetime | None = None


class ProbeImage(LegallyHoldable):
    # A short video probe's sampling (issue 13); None for a still image. A class default, so a
    # probe whose history predates videos reads as an image.
    video: VideoSampling | None = None

    class Submitted(GovernedAggregate.Event, Aggregate.Created):
        # v2: Form 3 gained ``offence_description`` (C-01: the offence ``other`` is described).
        class_version = 2
        form: dict[str, Any]
        image_hash: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["form"] = {"offence_description": None, **state["form"]}

        def apply(self, agg: ProbeImage) -> None:
            agg.form = from_data(Form3, self.form)
            agg.image_hash = self.image_hash
            agg.requester_id = self.acting.user_id
            agg.submitted_at = self.timestamp
            agg.perceived_age = agg.form.perceived_age
            agg.level = agg.form.image_level
            agg.detector_algorithm_id = None
            agg.faces = {}
            agg.selected = set()
            agg.quality = {}
            agg.quality_decision = None
            agg.technical_advice = None
            agg.endorsements = {}
            agg.templates = []
            agg.ucc = None
            agg.ucc_request = None
            agg.purged_at = None
            agg.legal_hold = None

    class PerceivedAgeReassessed(GovernedAggregate.Event):
        perceived_age: str

        def apply(self, agg: ProbeImage) -> None:
            agg.perceived_age = PerceivedAgeBand(self.perceived_age)

    class LevelRaised(GovernedAggregate.Event):
        level: int

        def apply(self, agg: ProbeImage) -> None:
            agg.level = ImageLevel(self.level)

    class VideoSampled(GovernedAggregate.Event):
        """The probe is a short video: how it was sampled and tracked, before its faces are offered."""

        sampling: dict[str, Any]

        def apply(self, agg: ProbeImage) -> None:
            agg.video = from_data(VideoSampling, self.sampling)

    class FacesDetected(GovernedAggregate.Event):
        detector_algorithm_id: str
        faces: list[dict[str, Any]]

        def apply(self, agg: ProbeImage) -> None:
            agg.detector_algorithm_id = self.detector_algorithm_id
            for item in self.faces:
                face = from_data(FaceRegion, item)
                agg.faces[face.face_id] = face

    class FacesSelected(GovernedAggregate.Event):
        face_ids: list[str]
        drawn: list[dict[str, Any]]

        def apply(self, agg: ProbeImage) -> None:
            for item in self.drawn:
                face = from_data(FaceRegion, item)
                agg.faces[face.face_id] = face
            agg.selected.update(self.face_ids)

    class QualityAssessed(GovernedAggregate.Event):
        assessment: dict[str, Any]

        def apply(self, agg: ProbeImage) -> None:
            assessment = from_data(QualityAssessment, self.assessment)
            agg.quality[assessment.face_id] = assessment
            agg.quality_decision = None

    class QualityDecisionRecorded(GovernedAggregate.Event):
        proceed: bool
        flags_seen: list[str]

        def apply(self, agg: ProbeImage) -> None:
            agg.quality_decision = self.proceed

    class TemplatesExtracted(GovernedAggregate.Event):
        algorithm_id: str
        templates: dict[str, str]

        def apply(self, agg: ProbeImage) -> None:
            for face_id, template_id in self.templates.items():
                agg.templates.append(TemplateRef(face_id, template_id, self.algorithm_id))

    class TechnicalAdviceRecorded(GovernedAggregate.Event):
        advice: str

        def apply(self, agg: ProbeImage) -> None:
            agg.technical_advice = self.advice

    class EndorsementGiven(GovernedAggregate.Event):
        kind: str
        endorser_rank: int | None

        def apply(self, agg: ProbeImage) -> None:
            kind = EndorsementKind(self.kind)
            agg.endorsements[kind] = Endorsement(
                kind, self.acting.user_id, self.endorser_rank, self.reason, self.timestamp
            )

    class AddedToUcc(GovernedAggregate.Event):
        grounds: list[str]
        crime_tier: int
        review_due: datetime
        approver_rank: int | None
        search_request_ids: list[str]

        def apply(self, agg: ProbeImage) -> None:
            agg.ucc = UccEntry(
                self.timestamp,
                self.acting.user_id,
                frozenset(SearchGround(g) for g in self.grounds),
                self.crime_tier,
                self.review_due,
            )

    class UccAdditionRequested(GovernedAggregate.Event):
        """U-01: the probe's requester asks for its addition; ``reason`` is their rationale."""

        grounds: list[str]
        search_request_ids: list[str]

        def apply(self, agg: ProbeImage) -> None:
            agg.ucc_request = UccRequest(
                self.acting.user_id,
                self.timestamp,
                frozenset(SearchGround(g) for g in self.grounds),
                self.reason,
            )

    class UccAdditionApproved(GovernedAggregate.Event):
        """P-08, P-12: an Inspector approves the request; ``AddedToUcc`` follows."""

        approver_rank: int | None

        def apply(self, agg: ProbeImage) -> None:
            agg.ucc_request = agg.ucc_request.decided(UccRequestStatus.APPROVED, self)

    class UccAdditionDeclined(GovernedAggregate.Event):
        """P-08, P-12: an Inspector declines the request, with the rationale in ``reason``."""

        approver_rank: int | None

        def apply(self, agg: ProbeImage) -> None:
            agg.ucc_request = agg.ucc_request.decided(UccRequestStatus.DECLINED, self)

    class UccReviewed(GovernedAggregate.Event):
        outcome: str
        next_review_due: datetime | None

        def apply(self, agg: ProbeImage) -> None:
            if self.next_review_due is not None:
                agg.ucc = attrs.evolve(agg.ucc, review_due=self.next_review_due)

    class RemovedFromUcc(GovernedAggregate.Event):
        deletion_due: datetime

        def apply(self, agg: ProbeImage) -> None:
            agg.ucc = attrs.evolve(agg.ucc, removed_at=self.timestamp, deletion_due=self.deletion_due)

    class Purged(GovernedAggregate.Event):
        template_ids: list[str]

        def apply(self, agg: ProbeImage) -> None:
            agg.purged_at = self.timestamp
            agg.templates = []

    class UccReviewFlaggedOverdue(GovernedAggregate.Event):
        """U-03: the worker flagged the entry's review, due at ``due``, to the Operational Lead."""

        due: datetime
        notified: list[str]

        def apply(self, agg: ProbeImage) -> None:
            agg.ucc_review_flagged = self.due

    # The review date last flagged overdue (U-03). A class default without an annotation
    # (eventsourcing would take one for a constructor argument): older probes read as none.
    ucc_review_flagged = None

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def submit(
        cls, actor: Actor, at: datetime, form: Form3, image_hash: str, *, probe_id: UUID | None = None
    ) -> ProbeImage:
        """A probe enters only with an acceptable Form 3 (P-01, P-02, P-03, P-04, P-05, P-07, C-01)."""
        decision = combine(
            authorised(actor, Role.RFR_USER),
            stated(image_hash, "P-01", "the image's content hash"),
            form3_acceptable(form),
        )
        enforce_new("submit probe (Form 3)", "ProbeImage", actor, at, decision)
        return cls._create(
            cls.Submitted,
            id=probe_id or uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=form.necessity_and_proportionality,
            form=to_data(form),
            image_hash=image_hash,
        )

    def reassess_perceived_age(self, actor: Actor, at: datetime, age: PerceivedAgeBand, reason: str) -> None:
        """A better view of the face may change the perceived age; the safeguards follow it (P-03/P-04).

        The new age is recorded whatever it is: refusing it would leave the probe searchable
        under the wrong one. P-03 and P-04 (``under_16_safeguards``) are asked with the age the
        probe has now by every later command: a probe reassessed as 13-15 needs an Inspector's
        endorsement and a recordable offence before it is searched, exactly as if submitted so.
        """
        self._enforce(
            "reassess perceived age",
            actor,
            at,
            combine(self._live(), authorised(actor, Role.RFR_USER), stated(reason, "P-01", "the reason")),
        )
        self._record(self.PerceivedAgeReassessed, actor, at, reason, perceived_age=age.value)

    def raise_level(self, actor: Actor, at: datetime, level: ImageLevel, reason: str) -> None:
        """L-11 for probes (4.5): the user may place a probe higher on the matrix, never lower."""
        self._enforce(
            "raise probe level",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER),
                Decision.check(level > self.level, "L-11", "a probe's level may be raised, never lowered"),
                stated(reason, "L-11", "the reason"),
            ),
        )
        self._record(self.LevelRaised, actor, at, reason, level=int(level))

    def record_video_sampled(self, actor: Actor, at: datetime, sampling: VideoSampling) -> None:
        """A short video: its frames sampled and faces tracked; the best face of each track is
        then offered by ``record_faces_detected`` with its frame and time (P-11: boxes only)."""
        self._enforce(
            "record video sampled",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER),
                Decision.check(self.video is None, "P-11", "the video was already sampled"),
                Decision.check(not self.faces, "P-11", "faces were already detected for this probe"),
            ),
        )
        self._record(
            self.VideoSampled,
            actor,
            at,
            f"{sampling.sampled_frames} frames sampled, {sampling.tracks} faces tracked",
            sampling=to_data(sampling),
        )

    def record_faces_detected(
        self, actor: Actor, at: datetime, detector_algorithm_id: str, faces: Sequence[FaceRegion]
    ) -> None:
        """P-11 step 1: boxes only; nothing is templated yet."""
        ids = [f.face_id for f in faces]
        self._enforce(
            "record detected faces",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER),
                stated(detector_algorithm_id, "T-01", "the detector id"),
                Decision.check(not self.faces, "P-11", "faces were already detected for this probe"),
                Decision.check(len(set(ids)) == len(ids), "P-11", "face ids must be unique"),
            ),
        )
        self._record(
            self.FacesDetected,
            actor,
            at,
            f"{len(faces)} faces detected",
            detector_algorithm_id=detector_algorithm_id,
            faces=[to_data(f) for f in faces],
        )

    def select_faces(self, actor: Actor, at: datetime, face_ids: Sequence[str], reason: str) -> None:
        """P-11 step 2: the user picks the faces relevant to the purpose."""
        unknown = sorted(set(face_ids) - set(self.faces))
        self._enforce(
            "select faces",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER),
                Decision.check(bool(face_ids), "P-11", "select at least one face"),
                Decision.check(not unknown, "P-11", f"no such detected faces: {unknown}"),
                stated(reason, "P-11", "why these faces are relevant"),
            ),
        )
        self._record(self.FacesSelected, actor, at, reason, face_ids=sorted(set(face_ids)), drawn=[])

    def draw_face(self, actor: Actor, at: datetime, face: FaceRegion, reason: str) -> None:
        """P-11: a box drawn by the user, typically when no face was detected; it counts as selected."""
        self._enforce(
            "draw face",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER),
                Decision.check(face.face_id not in self.faces, "P-11", "that face id is taken"),
                Decision.check(face.right >= face.left and face.bottom >= face.top, "P-11", "an empty box"),
                stated(reason, "P-11", "why this face is relevant"),
            ),
        )
        drawn = attrs.evolve(face, drawn=True, score=None)
        self._record(self.FacesSelected, actor, at, reason, face_ids=[face.face_id], drawn=[to_data(drawn)])

    def record_quality(
        self, actor: Actor, at: datetime, face_id: str, measures: Mapping[str, float], flags: Sequence[str]
    ) -> None:
        """P-10: the system's assessment of one selected face, shown to the user before any search."""
        self._enforce(
            "record quality",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER),
                Decision.check(face_id in self.selected, "P-10", "quality is assessed on a selected face"),
            ),
        )
        assessment = QualityAssessment(face_id, {k: float(v) for k, v in measures.items()}, tuple(flags))
        self._record(
            self.QualityAssessed,
            actor,
            at,
            ", ".join(flags) or "no quality flags",
            assessment=to_data(assessment),
        )

    def decide_on_quality(self, actor: Actor, at: datetime, proceed: bool, reason: str) -> None:
        """P-10: the user's decision on flagged quality, recorded with the flags they saw."""
        flags = self.quality_flags
        self._enforce(
            "decide on quality",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER),
                Decision.check(bool(flags), "P-10", "no quality flag awaits a decision"),
                stated(reason, "P-10", "the reason for the decision"),
            ),
        )
        self._record(self.QualityDecisionRecorded, actor, at, reason, proceed=proceed, flags_seen=list(flags))

    def record_templates(
        self, actor: Actor, at: datetime, algorithm_id: str, templates: Mapping[str, str]
    ) -> None:
        """P-11 step 3: templates for selected faces only, each under its algorithm (T-01)."""
        unselected = sorted(set(templates) - self.selected)
        existing = {(t.face_id, t.algorithm_id) for t in self.templates}
        again = sorted(f for f in templates if (f, algorithm_id) in existing)
        self._enforce(
            "record templates",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER),
                stated(algorithm_id, "T-01", "the algorithm id"),
                Decision.check(bool(templates), "P-11", "no templates given"),
                Decision.check(
                    not unselected,
                    "P-11",
                    f"faces not selected by the user are never templated: {unselected}",
                ),
                Decision.check(not again, "T-01", f"already templated with {algorithm_id}: {again}"),
            ),
        )
        self._record(
            self.TemplatesExtracted,
            actor,
            at,
            f"{len(templates)} templates by {algorithm_id}",
            algorithm_id=algorithm_id,
            templates=dict(templates),
        )

    def record_technical_advice(self, actor: Actor, at: datetime, advice: str) -> None:
        """P-06: the FRT team's technical advice, which must precede an approval."""
        self._enforce(
            "record technical advice",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER, Role.OPERATIONAL_LEAD),
                stated(advice, "P-06", "the technical advice"),
            ),
        )
        self._record(self.TechnicalAdviceRecorded, actor, at, "technical advice obtained", advice=advice)

    def endorse(
        self, actor: Actor, at: datetime, kind: EndorsementKind, rationale: str, config: PolicyConfig
    ) -> None:
        """P-04/P-06/P-08: an Inspector or above, not the requester (P-12), with a rationale."""
        rule = kind.value
        if kind is EndorsementKind.UNDER_16:
            # P-04 decides the endorser's rank, and refuses an endorsement it would not let search.
            rank = [authorised(actor, Role.APPROVING_OFFICER), self._under_16(endorser_rank=actor.rank)]
        else:
            rank = [inspector_or_above(actor, rule, "this endorsement")]
        checks = [
            self._live(),
            *rank,
            different_person(actor, self.requester_id, "an endorsement"),
            stated(rationale, "P-12", "the endorsement rationale"),
            Decision.check(kind in self.required_endorsements(config), rule, "this probe does not need it"),
            age_allows_search(self.perceived_age),
        ]
        if kind is EndorsementKind.VULNERABILITY:
            checks.append(
                Decision.check(
                    self.technical_advice is not None,
                    "P-06",
                    "technical advice must be recorded before approval",
                )
            )
        self._enforce(f"endorse ({rule})", actor, at, combine(*checks))
        self._record(
            self.EndorsementGiven, actor, at, rationale, kind=kind.value, endorser_rank=rank_of(actor)
        )

    def add_to_ucc(
        self,
        actor: Actor,
        at: datetime,
        searches: Sequence[ProbeSearch],
        grounds_still_applying: Sequence[SearchGround],
        rationale: str,
        *,
        config: PolicyConfig,
    ) -> None:
        """U-01: no useful viable match, a ground still applies; an Inspector adds it on their own
        decision, which is P-08's individual approval (see the module docstring)."""
        checks = [
            self._live(),
            self._ucc_eligible(searches, grounds_still_applying),
            Decision.check(
                self.ucc_request is None or not self.ucc_request.pending,
                "U-01",
                "the requester's request for this addition awaits a decision: approve or decline it",
            ),
            stated(rationale, "U-01", "the rationale"),
            different_person(actor, self.requester_id, "a UCC addition"),
            self._ucc_approver(actor, config),
        ]
        self._enforce("add to unresolved crime cache", actor, at, combine(*checks))
        self._added(actor, at, rationale, searches=searches, grounds=grounds_still_applying, config=config)

    def request_ucc_addition(
        self,
        actor: Actor,
        at: datetime,
        searches: Sequence[ProbeSearch],
        grounds_still_applying: Sequence[SearchGround],
        rationale: str,
    ) -> None:
        """U-01: the probe's requester asks for its addition, with a rationale; U-01 is checked now."""
        pending = self.ucc_request is not None and self.ucc_request.pending
        self._enforce(
            "request addition to unresolved crime cache",
            actor,
            at,
            combine(
                self._live(),
                authorised(actor, Role.RFR_USER),
                Decision.check(
                    actor.user_id == self.requester_id,
                    "U-01",
                    "only the RFR User who submitted the probe asks for its addition to the cache",
                ),
                Decision.check(not pending, "U-01", "a request for this addition already awaits a decision"),
                self._ucc_eligible(searches, grounds_still_applying),
                stated(rationale, "U-01", "the rationale"),
            ),
        )
        self._record(
            self.UccAdditionRequested,
            actor,
            at,
            rationale,
            grounds=sorted({g.value for g in grounds_still_applying}),
            search_request_ids=self._search_ids(searches),
        )

    def approve_ucc_addition(
        self,
        actor: Actor,
        at: datetime,
        searches: Sequence[ProbeSearch],
        rationale: str,
        *,
        config: PolicyConfig,
    ) -> None:
        """P-08: an Inspector or above, not the requester (P-12), approves; U-01 is checked again
        (a search may have found a known person since) and the probe enters the cache."""
        request = self._pending_ucc_request()
        grounds = sorted(request.grounds) if request is not None else []
        self._enforce(
            "approve addition to unresolved crime cache",
            actor,
            at,
            combine(
                self._live(),
                self._decidable(actor, request, config),
                stated(rationale, "P-12", "the approval rationale"),
                self._ucc_eligible(searches, grounds),
            ),
        )
        self._record(self.UccAdditionApproved, actor, at, rationale, approver_rank=rank_of(actor))
        self._added(actor, at, rationale, searches=searches, grounds=grounds, config=config)

    def decline_ucc_addition(
        self, actor: Actor, at: datetime, rationale: str, *, config: PolicyConfig
    ) -> None:
        """P-08: an Inspector or above, not the requester (P-12), declines, with a rationale."""
        request = self._pending_ucc_request()
        self._enforce(
            "decline addition to unresolved crime cache",
            actor,
            at,
            combine(
                self._live(),
                self._decidable(actor, request, config),
                stated(rationale, "P-12", "the rationale for declining"),
            ),
        )
        self._record(self.UccAdditionDeclined, actor, at, rationale, approver_rank=rank_of(actor))

    def review_ucc_entry(
        self, actor: Actor, at: datetime, outcome: ReviewOutcome, reason: str, config: PolicyConfig
    ) -> None:
        """U-03: periodic review; STOP removes the entry (U-04)."""
        self._enforce(
            "review cache entry",
            actor,
            at,
            combine(
                self._live(),
                self._in_ucc(),
                authorised(actor, Role.RFR_USER, Role.APPROVING_OFFICER, Role.OPERATIONAL_LEAD),
                stated(reason, "U-03", "the review rationale"),
            ),
        )
        if outcome is ReviewOutcome.STOP:
            self._record(self.UccReviewed, actor, at, reason, outcome=outcome.value, next_review_due=None)
            self._removed(actor, at, reason, config)
            return
        due = add_months(at, config.ucc_review_months[self.crime_tier])
        self._record(self.UccReviewed, actor, at, reason, outcome=outcome.value, next_review_due=due)

    def remove_from_ucc(self, actor: Actor, at: datetime, reason: str, config: PolicyConfig) -> None:
        """U-04: the purpose was resolved by other means; deletion follows within 31 days."""
        self._enforce(
            "remove from cache",
            actor,
            at,
            combine(
                self._live(),
                self._in_ucc(),
                authorised(actor, *OPERATIONAL_ROLES),
                stated(reason, "U-04", "the reason"),
            ),
        )
        self._removed(actor, at, reason, config)

    def purge(self, actor: Actor, at: datetime, reason: str) -> None:
        """R-05: the image and templates are gone from the store; only the fact stays."""
        self._enforce(
            "purge probe",
            actor,
            at,
            combine(
                self._live(),
                self._not_held(),
                authorised(actor),
                stated(reason, "R-05", "the reason for deletion"),
            ),
        )
        self._record(self.Purged, actor, at, reason, template_ids=[t.template_id for t in self.templates])

    def _erased(self) -> bool:
        return self.purged_at is not None

    # -- queries ----------------------------------------------------------------------------

    @property
    def crime_tier(self) -> CrimeTier:
        """C-01: the tier of the Form 3 offence; no offence, or ``other``, is Tier 3."""
        return tier_of(self.form.offence_code)

    @property
    def quality_flags(self) -> tuple[str, ...]:
        return tuple(f for q in self.quality.values() for f in q.flags)

    def required_endorsements(self, config: PolicyConfig) -> frozenset[EndorsementKind]:
        return required_endorsements(self.perceived_age, self.form.vulnerability, self.level, config)

    def missing_endorsements(self, config: PolicyConfig) -> frozenset[EndorsementKind]:
        return frozenset(k for k in self.required_endorsements(config) if k not in self.endorsements)

    def template_ids(self, algorithm_id: str) -> tuple[str, ...]:
        return tuple(t.template_id for t in self.templates if t.algorithm_id == algorithm_id)

    def age_safeguards(self) -> Decision:
        """P-03 and P-04 as they stand for the probe's current perceived age, without P-04's
        endorsement, which may still be given before the search: for opening a request."""
        return combine(age_allows_search(self.perceived_age), self._under_16())

    def ready_for_search(self, algorithm_id: str, config: PolicyConfig) -> Decision:
        """Everything the probe itself must satisfy before any library is searched with it.

        P-04 is asked of ``under_16_safeguards`` with the current perceived age and offence, so
        a probe reassessed as 13-15 with an offence that is not recordable is refused here.
        """
        missing = self.missing_endorsements(config) - {EndorsementKind.UNDER_16}
        unassessed = sorted(self.selected - set(self.quality))
        templated = {t.face_id for t in self.templates if t.algorithm_id == algorithm_id}
        return combine(
            self._live(),
            age_allows_search(self.perceived_age),
            self._under_16(endorser_rank=self._under_16_endorser_rank, endorsement_due=True),
            *(
                Decision.refuse(k.value, f"the probe needs an Inspector's endorsement under {k.value}")
                for k in sorted(missing)
            ),
            Decision.check(bool(self.selected), "S-01", "no face has been selected"),
            Decision.check(not unassessed, "P-10", f"quality not yet assessed for faces {unassessed}"),
            Decision.check(
                not self.quality_flags or self.quality_decision is True,
                "P-10",
                "the quality flags need the user's recorded decision to proceed",
            ),
            Decision.check(
                bool(templated) and templated <= self.selected,
                "P-11",
                f"no templates of selected faces by {algorithm_id}",
            ),
        )

    def ucc_review_overdue(self, t: datetime) -> bool:
        """U-03: an entry past its review date is flagged."""
        return self.ucc is not None and self.ucc.removed_at is None and t > self.ucc.review_due

    def ucc_review_flag_due(self, t: datetime) -> bool:
        """U-03: overdue at ``t`` and not yet flagged for this review date (``overdue_flags``)."""
        return self.ucc_review_overdue(t) and self.ucc_review_flagged != self.ucc.review_due

    def flag_ucc_review(self, actor: Actor, at: datetime) -> bool:
        """Records the U-03 flag if it is due and not recorded; returns whether it recorded it."""
        if self.purged_at is not None or not self.ucc_review_flag_due(at):
            return False
        self._record(
            self.UccReviewFlaggedOverdue,
            actor,
            at,
            FLAG_MESSAGES["U-03"],
            due=self.ucc.review_due,
            notified=[NOTIFIED],
        )
        return True

    def deletion_due(self, config: PolicyConfig, searches: Sequence[ProbeSearch] = ()) -> datetime | None:
        """R-02/R-03/R-03a/U-04: when the probe must be gone, if it must; never while held (R-04).

        ``searches`` are every search request opened on the probe: without them a probe reads
        as never searched (R-03a)."""
        if self.legal_hold is not None:
            return None
        return self.deletion_due_ignoring_hold(config, searches)

    def deletion_due_ignoring_hold(
        self, config: PolicyConfig, searches: Sequence[ProbeSearch] = ()
    ) -> datetime | None:
        """``deletion_due`` without the hold, so what a hold keeps can be reported as held (R-04)."""
        if self.purged_at is not None:
            return None
        if self.ucc is not None:
            return self.ucc.deletion_due if self.ucc.removed_at is not None else None
        searched = [s.last_searched_at for s in searches if s.probe_id == str(self.id) and s.last_searched_at]
        if searched:
            return deletion_deadline(max(searched), config)
        # R-03a: never searched (a request opened but not run counts as no search).
        return never_searched_deadline(self.submitted_at, config)

    # -- helpers ----------------------------------------------------------------------------

    def _live(self) -> Decision:
        return Decision.check(self.purged_at is None, "R-05", "the probe has been deleted")

    def _in_ucc(self) -> Decision:
        return Decision.check(
            self.ucc is not None and self.ucc.removed_at is None, "U-03", "the probe is not in the cache"
        )

    def _under_16(self, *, endorser_rank: Rank | None = None, endorsement_due: bool = False) -> Decision:
        return under_16_safeguards(
            self.perceived_age,
            self.form.offence_code,
            endorser_rank=endorser_rank,
            endorsement_due=endorsement_due,
        )

    @property
    def _under_16_endorser_rank(self) -> Rank | None:
        given = self.endorsements.get(EndorsementKind.UNDER_16)
        return Rank(given.rank) if given is not None and given.rank is not None else None

    def _search_ids(self, searches: Sequence[ProbeSearch]) -> list[str]:
        return [str(s.id) for s in searches if s.probe_id == str(self.id)]

    def _ucc_eligible(self, searches: Sequence[ProbeSearch], grounds: Sequence[SearchGround]) -> Decision:
        """U-01 over every search of the probe, with the age safeguards a search would need (P-03,
        P-04 with its endorsement): the cache exists to search the probe again (6.2)."""
        mine = [s for s in searches if s.probe_id == str(self.id)]
        return combine(
            ucc_addition_allowed(
                in_ucc=self.ucc is not None and self.ucc.removed_at is None,
                searched=any(s.searched for s in mine),
                viable_match_of_known_person=any(s.has_viable_match_of_known_person for s in mine),
                grounds_still_applying=grounds,
                form_grounds=self.form.grounds,
            ),
            age_allows_search(self.perceived_age),
            self._under_16(endorser_rank=self._under_16_endorser_rank, endorsement_due=True),
        )

    def _ucc_approver(self, actor: Actor, config: PolicyConfig) -> Decision:
        """P-08: every addition is approved by an Inspector or above (configurable)."""
        if config.ucc_addition_needs_inspector:
            return inspector_or_above(actor, "P-08", "an addition to the Unresolved Crime Cache")
        return authorised(actor, Role.APPROVING_OFFICER, Role.RFR_USER)

    def _pending_ucc_request(self) -> UccRequest | None:
        return self.ucc_request if self.ucc_request is not None and self.ucc_request.pending else None

    def _decidable(self, actor: Actor, request: UccRequest | None, config: PolicyConfig) -> Decision:
        """A pending request, and an approver (P-08) who neither asked for it nor submitted the probe."""
        if request is None:
            return Decision.refuse("U-01", "no request for an addition to the cache awaits a decision")
        approver = (
            inspector_or_above(actor, "P-08", "deciding an addition to the Unresolved Crime Cache")
            if config.ucc_addition_needs_inspector
            else authorised(actor, Role.APPROVING_OFFICER)
        )
        return combine(
            approver,
            different_person(actor, request.requested_by, "a UCC addition"),
            different_person(actor, self.requester_id, "a UCC addition"),
        )

    def _added(
        self,
        actor: Actor,
        at: datetime,
        rationale: str,
        *,
        searches: Sequence[ProbeSearch],
        grounds: Sequence[SearchGround],
        config: PolicyConfig,
    ) -> None:
        tier = self.crime_tier
        self._record(
            self.AddedToUcc,
            actor,
            at,
            rationale,
            grounds=sorted({g.value for g in grounds}),
            crime_tier=int(tier),
            review_due=add_months(at, config.ucc_review_months[tier]),
            approver_rank=rank_of(actor),
            search_request_ids=self._search_ids(searches),
        )

    def _removed(self, actor: Actor, at: datetime, reason: str, config: PolicyConfig) -> None:
        self._record(self.RemovedFromUcc, actor, at, reason, deletion_due=deletion_deadline(at, config))


# Stored before the Unresolved Crime Cache was called ``ucc`` everywhere (issue 7).
formerly(ProbeImage.AddedToUcc, "rfr.domain.probe_image:ProbeImage.AddedToUnresolvedCache")
formerly(ProbeImage.UccReviewed, "rfr.domain.probe_image:ProbeImage.CacheReviewed")
formerly(ProbeImage.RemovedFromUcc, "rfr.domain.probe_image:ProbeImage.RemovedFromCache")
