"""Audit, access and governance (A-01, A-05, A-06), Annex C (C-01, C-02), retention (R-01), persistence."""

from __future__ import annotations

import json
from datetime import date, timedelta

import attrs
import pytest
from domain_builders import (
    ADMIN,
    ALG,
    ANALYST,
    CONFIG,
    INSPECTOR,
    SRO,
    SUPERINTENDENT,
    T0,
    approved,
    at,
    form3,
    open_request,
    ready_probe,
    refused,
    search,
    searchable_library,
)
from eventsourcing.application import Application

from rfr.domain.codec import from_data, to_data
from rfr.domain.decisions import Decision, PolicyRefusal, combine
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.domain.offences import ANNEX_C, CrimeTier, UnknownOffence, find_offence, is_listed, offence, tier_of
from rfr.domain.people import Actor, Rank, Role, rank_for_staff_grade
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.policy_exception import ExceptionStatus, PolicyException
from rfr.domain.policy_settings import SETTINGS_ID, PolicySettings
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import LibraryImage, ReferenceLibrary
from rfr.domain.retention import retention_end
from rfr.domain.user import User


def test_A01_every_event_names_person_roles_time_and_reason():
    """A-01: every event names person roles time and reason."""
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair, when=at(1))
    search(request, probe, pair, when=at(2))
    for aggregate in (probe, request, *pair):
        for event in aggregate.pending_events:
            actor = Actor.from_data(event.actor)
            assert actor.user_id and actor.roles, event
            assert isinstance(event.reason, str), event
            assert event.timestamp.tzinfo is not None
    assert request.pending_events[-1].timestamp == at(2)


def test_A01_refusal_is_recorded_on_the_aggregate_before_the_error_is_raised():
    """A-01: refusal is recorded on the aggregate before the error is raised."""
    approval = approved()
    with pytest.raises(PolicyRefusal) as caught:
        approval.stop(ANALYST, at(1), "not mine to stop", CONFIG)
    refusal = approval.pending_events[-1]
    assert type(refusal).__name__ == "Refused" and refusal.command == "stop"
    assert refusal.actor["user_id"] == ANALYST.user_id and refusal.actor["roles"] == ["rfr_user"]
    assert refusal.rule_ids == list(caught.value.rule_ids) and refusal.reason == caught.value.reason
    assert approval.in_force_at(at(1))


def test_A01_event_times_must_be_timezone_aware():
    """A-01: event times must be timezone aware."""
    with pytest.raises(ValueError, match="timezone"):
        approved(when=T0.replace(tzinfo=None))


def test_A01_saved_aggregates_reconstruct_to_equal_state_and_hold_no_biometric_bytes():
    """A-01: saved aggregates reconstruct to equal state and hold no biometric bytes."""
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair)
    search(request, probe, pair)
    refused("S-04", lambda: search(request, probe, pair))
    app.save(probe, request, *pair)
    for original in (probe, request, *pair):
        copy = app.repository.get(original.id)
        assert copy.state() == original.state() and copy.refusals == original.refusals
        for stored in app.recorder.select_events(original.id):
            json.loads(stored.state)  # plain JSON: no pickled objects, no raw bytes
    assert type(app.repository.get(request.id)).__name__ == "SearchRequest"


def test_A05_untrained_or_disabled_users_cannot_act():
    untrained = attrs.evolve(ANALYST, trained=False)
    refused("A-05", lambda: ProbeImage.submit(untrained, T0, form3(), "sha256:p"))
    probe = ready_probe()
    refused("A-05", lambda: probe.select_faces(untrained, T0, ["f1"], "x"), probe)
    disabled = attrs.evolve(ANALYST, active=False)
    refused("A-05", lambda: probe.select_faces(disabled, T0, ["f1"], "x"), probe)
    probe.select_faces(ANALYST, T0, ["f1"], "still relevant")


def test_A05_administrators_register_and_manage_users_and_inactivity_is_flagged():
    refused("A-05", lambda: User.register(ANALYST, T0, "new", [Role.RFR_USER]))
    user = User.register(ADMIN, T0, "new", [Role.RFR_USER], teams=["team-a"])
    assert user.id == User.id_for("new") and not user.actor().trained
    user.record_training(ADMIN, T0, True, "course RFR-101 passed")
    user.set_rank(ADMIN, T0, "promoted staff", staff_grade="Band C")
    assert user.actor() == Actor("new", {Role.RFR_USER}, Rank.INSPECTOR, {"team-a"})
    refused("A-05", lambda: user.grant_role(ANALYST, T0, Role.SRO, "self-service"), user)
    assert not user.inactive_since(at(90), CONFIG) and user.inactive_since(at(91), CONFIG)
    user.record_activity(at(80), "search")
    assert not user.inactive_since(at(91), CONFIG)
    user.disable(ADMIN, at(100), "left the unit")
    assert not user.actor().active


def test_A05_an_administrator_cannot_change_their_own_access():
    admin_user = User.register(
        attrs.evolve(ADMIN, user_id="admin-2"), T0, ADMIN.user_id, [Role.ADMINISTRATOR]
    )
    refused("A-05", lambda: admin_user.grant_role(ADMIN, T0, Role.SRO, "self"), admin_user)


def test_A06_policy_exception_needs_rationale_and_legal_advice_and_waits_for_the_sro():
    refused(
        "A-06", lambda: PolicyException.record(INSPECTOR, T0, "searched a level 5 library", "urgent", " ")
    )
    exception = PolicyException.record(
        INSPECTOR, T0, "searched a level 5 library", "kidnap, risk to life", "DLS advice ref 42"
    )
    assert exception.awaiting_sro
    refused("A-06", lambda: exception.review(SUPERINTENDENT, at(1), True, "fine"), exception)
    exception.review(SRO, at(1), True, "justified; debrief scheduled")
    assert exception.status is ExceptionStatus.ENDORSED


def test_C01_annex_c_tiers_and_unlisted_offences_are_tier_3():
    """C-01: annex c tiers and unlisted offences are tier 3."""
    assert offence("murder").tier is CrimeTier.TIER_1
    assert offence("Burglary").tier is CrimeTier.TIER_2
    assert offence("common_assault").tier is CrimeTier.TIER_3
    # An offence not listed is named ``other`` (Tier 3); an unknown code is not guessed at.
    other = offence("other")
    assert other.tier is CrimeTier.TIER_3 and not other.listed and not is_listed("other")
    assert tier_of("other") is tier_of(None) is CrimeTier.TIER_3
    with pytest.raises(UnknownOffence):
        offence("littering")
    assert find_offence("littering") is None and not is_listed("littering")
    assert {o.tier for o in ANNEX_C} == set(CrimeTier)


def test_C02_recordable_and_mopi_group_1_come_from_the_table_not_free_text():
    """C-02: recordable and mopi group 1 come from the table not free text."""
    assert offence("robbery").recordable and offence("robbery").mopi_group_1_public_protection
    assert (
        offence("drugs_possession").recordable
        and not offence("drugs_possession").mopi_group_1_public_protection
    )
    assert find_offence("murder (recordable)") is None
    assert not offence("other").recordable and not offence("other").mopi_group_1_public_protection


def test_R01_enrolment_follows_the_age_and_mopi_retention_table():
    """R-01: enrolment follows the age and mopi retention table."""
    approval = approved()
    library = ReferenceLibrary.create(ADMIN, T0, "custody", approval)
    images = [
        LibraryImage("child", "h1", date(2023, 1, 1), PerceivedAgeBand.UNDER_13, MopiGroup.GROUP_1),
        LibraryImage("young-m3", "h2", date(2023, 1, 1), PerceivedAgeBand.AGE_13_15, MopiGroup.GROUP_3),
        LibraryImage("young-m2", "h3", date(2023, 1, 1), PerceivedAgeBand.AGE_13_15, MopiGroup.GROUP_2),
        LibraryImage("teen-m3", "h4", date(2021, 6, 1), PerceivedAgeBand.AGE_16_17, MopiGroup.GROUP_3),
        LibraryImage("adult-old", "h5", date(2017, 1, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_3),
    ]
    batch = library.enrol(ADMIN, T0, images, approval, CONFIG)
    assert tuple(batch.images) == ("young-m2", "teen-m3")
    assert batch.images["teen-m3"].retention_until == date(2024, 6, 1)
    not_enrolled = batch.pending_events[-1].not_enrolled
    assert {n["image_id"] for n in not_enrolled} == {"child", "young-m3", "adult-old"}
    batch.record_templates(ADMIN, T0, ALG, {"young-m2": "t1", "teen-m3": "t2"})
    assert batch.expire_images(ADMIN, T0 + timedelta(days=100), CONFIG) == ("teen-m3",)
    assert batch.template_ids(ALG, T0 + timedelta(days=100)) == ("t1",)
    assert retention_end(date(2020, 2, 29), PerceivedAgeBand.ADULT, MopiGroup.GROUP_3, CONFIG) == date(
        2026, 2, 28
    )


def test_policy_settings_record_each_change_and_answer_for_any_time():
    refused("A-05", lambda: PolicySettings.establish(ADMIN, T0, CONFIG, "initial"))
    settings = PolicySettings.establish(SRO, T0, CONFIG, "initial policy values")
    assert settings.id == SETTINGS_ID
    stricter = attrs.evolve(CONFIG, overdue_review_grace_days=7)
    settings.change(SRO, at(10), stricter, "Board decision 2024/3")
    assert (
        settings.config == stricter
        and settings.config_at(at(5)) == CONFIG
        and settings.config_at(at(-1)) is None
    )


def test_policy_config_round_trips_through_plain_data():
    config = attrs.evolve(PolicyConfig(), inactivity_days=60)
    assert PolicyConfig.from_data(json.loads(json.dumps(config.to_data()))) == config
    assert from_data(Actor, to_data(INSPECTOR)) == INSPECTOR


def test_staff_grades_map_onto_ranks_or_fail_loudly():
    assert rank_for_staff_grade("Band A") is Rank.SUPERINTENDENT
    with pytest.raises(ValueError, match="no rank equivalent"):
        rank_for_staff_grade("Band Z")


def test_decisions_combine_to_the_refusing_rules_only():
    decision = combine(
        Decision.allow("L-01"), Decision.refuse("L-08", "scope"), Decision.refuse("L-13", "access")
    )
    assert (
        not decision.allowed and decision.rule_ids == ("L-08", "L-13") and decision.reason == "scope; access"
    )
    assert combine(Decision.allow("L-01"), Decision.allow("L-13")).rule_ids == ("L-01", "L-13")


def test_R01_an_image_captured_in_the_future_is_not_enrolled():
    """R-01: an image captured in the future is not enrolled."""
    approval = approved()
    library = ReferenceLibrary.create(ADMIN, T0, "custody", approval)
    tomorrow = (T0 + timedelta(days=1)).date()
    images = [
        LibraryImage("future", "h1", tomorrow, PerceivedAgeBand.ADULT, MopiGroup.GROUP_1),
        LibraryImage("far-future", "h2", date(9999, 12, 31), PerceivedAgeBand.ADULT, MopiGroup.GROUP_1),
        LibraryImage("today", "h3", T0.date(), PerceivedAgeBand.ADULT, MopiGroup.GROUP_1),
    ]
    batch = library.enrol(ADMIN, T0, images, approval, CONFIG)
    assert tuple(batch.images) == ("today",)
    reasons = {n["image_id"]: n["reason"] for n in batch.pending_events[-1].not_enrolled}
    assert "in the future" in reasons["future"] and "in the future" in reasons["far-future"]


def test_A05_nobody_is_registered_under_a_system_actors_id():
    with pytest.raises(PolicyRefusal) as refused_with:
        User.register(ADMIN, T0, "rfr:retention-worker", [Role.ADMINISTRATOR])
    assert refused_with.value.rule_ids == ("A-05",)
    assert "reserved" in refused_with.value.reason
    assert User.register(ADMIN, T0, "rfr-analyst", [Role.RFR_USER]).user_id == "rfr-analyst"
