"""Probe images: Form 3 (P-01..P-07), quality (P-10), privacy by design (P-11), endorsements, UCC (U-01)."""

from __future__ import annotations

import attrs
from domain_builders import (
    ALG,
    ANALYST,
    ANALYST_2,
    CONFIG,
    INSPECTOR,
    SERGEANT,
    T0,
    approvals_of,
    at,
    form3,
    open_request,
    ready_probe,
    refused,
    search,
    searchable_library,
)

from rfr.domain.forms import GroundGRationale, ReviewOutcome
from rfr.domain.images import ImageLevel, PerceivedAgeBand, VulnerabilityFlags
from rfr.domain.offences import CrimeTier
from rfr.domain.probe_image import FaceRegion, ProbeImage
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.rules_probe import EndorsementKind
from rfr.domain.search_terms import SearchGround, Urgency, UrgencyBasis

GROUND_G = GroundGRationale(
    why_necessary="victim has not come forward; welfare concern",
    how_match_advances_investigation="identifying the victim lets us take a statement",
    less_intrusive_methods="local enquiries failed",
    importance_against_threat_harm_risk="knife attack, serious harm",
    privacy_expectations="victim may not wish contact; welfare outweighs",
)


def submit(**overrides) -> ProbeImage:
    return ProbeImage.submit(ANALYST, T0, form3(**overrides), "sha256:p")


def detected(probe: ProbeImage, n: int = 2) -> ProbeImage:
    faces = [FaceRegion(f"f{i}", 10 * i, 10, 10 * i + 40, 50, 0.9) for i in range(n)]
    probe.record_faces_detected(ANALYST, T0, "cnn-mmod-v1", faces)
    return probe


def test_P01_complete_form_3_is_accepted():
    """P-01: complete form 3 is accepted."""
    probe = submit()
    assert probe.requester_id == ANALYST.user_id and probe.level is ImageLevel.PUBLIC_WOULD_EXPECT


def test_P01_form_3_without_ground_or_offence_is_refused_into_a_refused_attempt():
    error = refused("P-01", lambda: submit(grounds=frozenset()))
    assert isinstance(error.record, RefusedAttempt) and "search ground" in error.reason
    refused("P-01", lambda: submit(offence_code=None))
    refused("P-01", lambda: submit(most_current_image_confirmed=False))


def test_P02_pre_rfr_checks_or_urgency_is_required():
    refused("P-02", lambda: submit(pre_rfr_checks=None))
    probe = submit(
        pre_rfr_checks=None, urgency=Urgency(UrgencyBasis.OPPORTUNITY_LOST, "suspect leaving the UK")
    )
    assert probe.form.urgency is not None


def test_P03_under_13_is_refused_and_16_17_adult_are_accepted():
    refused("P-03", lambda: submit(perceived_age=PerceivedAgeBand.UNDER_13))
    assert submit(perceived_age=PerceivedAgeBand.AGE_16_17).required_endorsements(CONFIG) == frozenset()


def test_P03_reassessed_under_13_probe_cannot_be_searched():
    probe = ready_probe()
    probe.reassess_perceived_age(ANALYST, at(1), PerceivedAgeBand.UNDER_13, "closer look at the face")
    assert "P-03" in probe.ready_for_search(ALG, CONFIG).rule_ids
    refused("P-03", lambda: open_request(probe, searchable_library()))


def test_P04_13_to_15_needs_inspector_endorsement_and_a_recordable_offence():
    refused("P-04", lambda: submit(perceived_age=PerceivedAgeBand.AGE_13_15, offence_code="unlisted_bylaw"))
    probe = submit(perceived_age=PerceivedAgeBand.AGE_13_15, offence_code="robbery")
    assert probe.missing_endorsements(CONFIG) == {EndorsementKind.UNDER_16}
    refused("P-04", lambda: probe.endorse(SERGEANT, T0, EndorsementKind.UNDER_16, "ok", CONFIG), probe)
    probe.endorse(INSPECTOR, T0, EndorsementKind.UNDER_16, "serious robbery, necessary", CONFIG)
    assert probe.missing_endorsements(CONFIG) == frozenset()


def test_P04_unknown_perceived_age_is_handled_like_under_16():
    """P-04: unknown perceived age is handled like under 16."""
    probe = submit(perceived_age=PerceivedAgeBand.UNKNOWN)
    assert EndorsementKind.UNDER_16 in probe.required_endorsements(CONFIG)


def test_P05_16_17_any_offence_with_necessity_recorded():
    probe = submit(
        perceived_age=PerceivedAgeBand.AGE_16_17, offence_code="other", offence_description="bylaw breach"
    )
    assert probe.required_endorsements(CONFIG) == frozenset()
    refused(
        "P-05", lambda: submit(perceived_age=PerceivedAgeBand.AGE_16_17, necessity_and_proportionality="")
    )


def test_P06_vulnerability_needs_technical_advice_before_inspector_approval():
    probe = submit(vulnerability=VulnerabilityFlags(suspected_relevant_disability=True))
    assert probe.missing_endorsements(CONFIG) == {EndorsementKind.VULNERABILITY}
    refused("P-06", lambda: probe.endorse(INSPECTOR, T0, EndorsementKind.VULNERABILITY, "ok", CONFIG), probe)
    probe.record_technical_advice(ANALYST, T0, "FRT: facial injury lowers scores; adjudicate with care")
    probe.endorse(INSPECTOR, T0, EndorsementKind.VULNERABILITY, "necessary", CONFIG)
    assert probe.endorsements[EndorsementKind.VULNERABILITY].rank == 2


def test_P07_ground_g_needs_necessity_and_proportionality_rationale():
    refused("P-07", lambda: submit(grounds={SearchGround.VICTIM_WITNESS_ASSOCIATE}, offence_code=None))
    partial = attrs.evolve(GROUND_G, privacy_expectations="")
    refused(
        "P-07",
        lambda: submit(
            grounds={SearchGround.VICTIM_WITNESS_ASSOCIATE}, offence_code=None, ground_g_rationale=partial
        ),
    )
    probe = submit(
        grounds={SearchGround.VICTIM_WITNESS_ASSOCIATE}, offence_code=None, ground_g_rationale=GROUND_G
    )
    assert probe.form.ground_g_rationale == GROUND_G


def test_P08_level_4_probe_needs_inspector_endorsement():
    probe = submit(image_level=ImageLevel.ELEVATED_PRIVACY)
    assert probe.missing_endorsements(CONFIG) == {EndorsementKind.HIGH_IMAGE_LEVEL}
    refused(
        "P-08", lambda: probe.endorse(SERGEANT, T0, EndorsementKind.HIGH_IMAGE_LEVEL, "ok", CONFIG), probe
    )
    probe.endorse(INSPECTOR, T0, EndorsementKind.HIGH_IMAGE_LEVEL, "hospital CCTV, serious offence", CONFIG)
    assert probe.missing_endorsements(CONFIG) == frozenset()


def test_P08_level_3_probe_needs_no_endorsement_and_one_cannot_be_given():
    probe = submit()
    refused(
        "P-08", lambda: probe.endorse(INSPECTOR, T0, EndorsementKind.HIGH_IMAGE_LEVEL, "ok", CONFIG), probe
    )


def test_P10_flagged_quality_needs_the_users_recorded_decision():
    probe = detected(submit(), 1)
    probe.select_faces(ANALYST, T0, ["f0"], "suspect")
    refused("P-10", lambda: probe.record_quality(ANALYST, T0, "f9", {}, []), probe)
    probe.record_quality(ANALYST, T0, "f0", {"inter_eye_px": 18.0, "blur": 0.7}, ["small_face", "blurred"])
    probe.record_templates(ANALYST, T0, ALG, {"f0": "t0"})
    assert "P-10" in probe.ready_for_search(ALG, CONFIG).rule_ids
    probe.decide_on_quality(ANALYST, T0, True, "only image available; adjudicate with care")
    assert probe.ready_for_search(ALG, CONFIG).allowed
    assert probe.pending_events[-1].flags_seen == ["small_face", "blurred"]


def test_P10_no_decision_without_flags():
    probe = detected(submit(), 1)
    probe.select_faces(ANALYST, T0, ["f0"], "suspect")
    probe.record_quality(ANALYST, T0, "f0", {"inter_eye_px": 60.0}, [])
    refused("P-10", lambda: probe.decide_on_quality(ANALYST, T0, True, "go"), probe)


def test_P11_templates_only_for_selected_faces():
    probe = detected(submit(), 3)
    refused("P-11", lambda: probe.record_templates(ANALYST, T0, ALG, {"f0": "t0"}), probe)
    probe.select_faces(ANALYST, T0, ["f1"], "the suspect is the middle face")
    refused("P-11", lambda: probe.record_templates(ANALYST, T0, ALG, {"f1": "t1", "f2": "t2"}), probe)
    probe.record_templates(ANALYST, T0, ALG, {"f1": "t1"})
    assert probe.template_ids(ALG) == ("t1",)


def test_P11_detection_records_boxes_only_and_a_drawn_box_counts_as_selected():
    probe = detected(submit(), 0)
    assert probe.faces == {} and probe.templates == []
    refused("P-11", lambda: probe.select_faces(ANALYST, T0, ["f0"], "no such face"), probe)
    probe.draw_face(ANALYST, T0, FaceRegion("drawn-1", 5, 5, 60, 70), "face not detected; subject in hood")
    assert probe.selected == {"drawn-1"} and probe.faces["drawn-1"].drawn


def test_P12_requester_cannot_endorse_their_own_probe():
    probe = ProbeImage.submit(SERGEANT, T0, form3(image_level=ImageLevel.ELEVATED_PRIVACY), "sha256:p")
    inspector_requester = attrs.evolve(INSPECTOR, user_id=SERGEANT.user_id)
    refused(
        "P-12",
        lambda: probe.endorse(inspector_requester, T0, EndorsementKind.HIGH_IMAGE_LEVEL, "ok", CONFIG),
        probe,
    )


def searched_without_match(probe: ProbeImage):
    pair = searchable_library()
    request = open_request(probe, pair)
    search(request, probe, pair)
    return request


def test_U01_probe_without_viable_match_is_added_with_inspector_approval():
    """U-01: probe without viable match is added with inspector approval."""
    probe = ready_probe(offence_code="robbery")
    request = searched_without_match(probe)
    probe.add_to_ucc(
        INSPECTOR, at(1), [request], [SearchGround.OFFENCE], "suspect still outstanding", config=CONFIG
    )
    assert probe.ucc.tier == CrimeTier.TIER_1
    assert probe.ucc.review_due.month == 12  # 9 months for Tier 1 (U-03, C-01)


def test_U01_refused_without_search_without_inspector_or_with_known_viable_match():
    probe = ready_probe()
    refused(
        "U-01",
        lambda: probe.add_to_ucc(INSPECTOR, T0, [], [SearchGround.OFFENCE], "r", config=CONFIG),
    )
    request = searched_without_match(probe)
    refused(
        "P-08",
        lambda: probe.add_to_ucc(SERGEANT, at(1), [request], [SearchGround.OFFENCE], "r", config=CONFIG),
        probe,
    )
    refused(
        "U-01",
        lambda: probe.add_to_ucc(
            INSPECTOR, at(1), [request], [SearchGround.MISSING_INCREASED_RISK], "r", config=CONFIG
        ),
        probe,
    )
    candidate = request.candidates()[0]
    request.adjudicate(
        ANALYST,
        at(1),
        candidate.candidate_id,
        True,
        "same person",
        identity_known=True,
        approvals=approvals_of(request),
    )
    refused(
        "U-01",
        lambda: probe.add_to_ucc(INSPECTOR, at(1), [request], [SearchGround.OFFENCE], "r", config=CONFIG),
        probe,
    )


def test_U01_viable_match_of_unknown_person_still_allows_the_cache():
    """U-01: viable match of unknown person still allows the cache."""
    probe = ready_probe()
    request = searched_without_match(probe)
    candidate = request.candidates()[0]
    request.adjudicate(
        ANALYST,
        at(1),
        candidate.candidate_id,
        True,
        "same face, identity unknown",
        identity_known=False,
        approvals=approvals_of(request),
    )
    probe.add_to_ucc(INSPECTOR, at(1), [request], [SearchGround.OFFENCE], "identity open", config=CONFIG)
    assert probe.ucc is not None


def test_U03_cache_review_is_due_per_tier_and_stop_removes_with_deletion_deadline():
    """U-03: cache review is due per tier and stop removes with deletion deadline."""
    probe = ready_probe(offence_code="common_assault")
    request = searched_without_match(probe)
    probe.add_to_ucc(INSPECTOR, at(1), [request], [SearchGround.OFFENCE], "outstanding", config=CONFIG)
    assert not probe.ucc_review_overdue(at(80)) and probe.ucc_review_overdue(at(100))
    probe.review_ucc_entry(ANALYST_2, at(100), ReviewOutcome.CONTINUE, "still outstanding", CONFIG)
    assert not probe.ucc_review_overdue(at(101))
    probe.review_ucc_entry(ANALYST_2, at(150), ReviewOutcome.STOP, "resolved by other means", CONFIG)
    assert probe.ucc.removed_at == at(150) and probe.deletion_due(CONFIG) == at(181)


def test_L11_a_probes_level_may_be_raised_never_lowered():
    probe = ready_probe()
    start = probe.level
    higher = ImageLevel(int(start) + 1)
    refused("L-11", lambda: probe.raise_level(ANALYST, at(1), start, "same level"), probe)
    refused("L-11", lambda: probe.raise_level(ANALYST, at(1), higher, " "), probe)
    probe.raise_level(ANALYST, at(2), higher, "the source is more sensitive than first thought")
    assert probe.level == higher
    refused("L-11", lambda: probe.raise_level(ANALYST, at(3), start, "back down"), probe)
