"""An RFR User asks for a probe's addition to the UCC; an Inspector decides (U-01, P-08, P-12).

The requester asks with a rationale (U-01 checked then); an approving officer of Inspector rank
or above, not the requester, approves (U-01 checked again, the probe enters the cache) or
declines with a rationale. An Inspector's own direct addition stays, as P-08's approval.
"""

from __future__ import annotations

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
from eventsourcing.application import Application

from rfr.domain.offences import CrimeTier
from rfr.domain.people import Actor, Rank, Role
from rfr.domain.probe_image import FaceRegion, ProbeImage, UccRequestStatus
from rfr.domain.search_terms import SearchGround

OFFENCE = [SearchGround.OFFENCE]
MAPPER = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def searched(probe: ProbeImage):
    pair = searchable_library()
    request = open_request(probe, pair)
    search(request, probe, pair)
    return request


def ready_probe_of(actor: Actor) -> ProbeImage:
    """A ready probe (as ``ready_probe``) submitted by ``actor``."""
    probe = ProbeImage.submit(actor, T0, form3(), "sha256:own")
    probe.record_faces_detected(actor, T0, "cnn-mmod-v1", [FaceRegion("f1", 10, 10, 90, 90, 0.99)])
    probe.select_faces(actor, T0, ["f1"], "the suspect")
    probe.record_quality(actor, T0, "f1", {"inter_eye_px": 40.0}, [])
    probe.record_templates(actor, T0, ALG, {"f1": "probe-tpl-own"})
    return probe


def requested(probe: ProbeImage | None = None):
    probe = probe or ready_probe(offence_code="robbery")
    request = searched(probe)
    probe.request_ucc_addition(ANALYST, at(1), [request], OFFENCE, "robber still at large")
    return probe, request


def event_names(probe: ProbeImage) -> list[str]:
    return [type(e).__name__ for e in probe.pending_events]


def test_U01_P08_a_requested_addition_approved_by_an_inspector_enters_the_cache():
    """U-01, P-08: request, then an Inspector's approval; the probe enters the cache."""
    probe, request = requested()
    assert probe.ucc is None and probe.ucc_request.status is UccRequestStatus.PENDING
    assert probe.ucc_request.requested_by == ANALYST.user_id
    assert probe.ucc_request.rationale == "robber still at large"
    probe.approve_ucc_addition(INSPECTOR, at(2), [request], "serious, proportionate", config=CONFIG)
    assert event_names(probe)[-3:] == [
        "UccAdditionRequested",
        "UccAdditionApproved",
        "AddedToUcc",
    ]
    assert probe.ucc.approved_by == INSPECTOR.user_id and probe.ucc.grounds == frozenset(OFFENCE)
    assert probe.ucc.tier == CrimeTier.TIER_1
    decided = probe.ucc_request
    assert (decided.status, decided.decided_by, decided.decider_rank) == (
        UccRequestStatus.APPROVED,
        INSPECTOR.user_id,
        int(Rank.INSPECTOR),
    )
    assert decided.decision_rationale == "serious, proportionate"
    added = probe.pending_events[-1]
    assert added.search_request_ids == [str(request.id)] and added.approver_rank == int(Rank.INSPECTOR)


def test_P08_P12_a_request_is_declined_with_a_rationale_and_may_be_made_again():
    """P-08, P-12: an Inspector declines; nothing enters the cache; the requester may ask again."""
    probe, request = requested()
    refused("P-12", lambda: probe.decline_ucc_addition(INSPECTOR, at(2), " ", config=CONFIG), probe)
    probe.decline_ucc_addition(INSPECTOR, at(2), "low harm; retention not justified", config=CONFIG)
    assert probe.ucc is None and probe.ucc_request.status is UccRequestStatus.DECLINED
    assert probe.ucc_request.decision_rationale == "low harm; retention not justified"
    refused(
        "U-01",
        lambda: probe.approve_ucc_addition(INSPECTOR, at(3), [request], "after all", config=CONFIG),
        probe,
    )
    probe.request_ucc_addition(ANALYST, at(4), [request], OFFENCE, "a second offence linked")
    assert probe.ucc_request.status is UccRequestStatus.PENDING


def test_U01_only_the_probes_requester_asks_and_only_when_holds():
    """U-01 at request time: the requester, a search done, no known match, a Form 3 ground."""
    probe = ready_probe()
    refused(
        "U-01",
        lambda: probe.request_ucc_addition(ANALYST, at(1), [], OFFENCE, "not searched yet"),
        probe,
    )
    request = searched(probe)
    refused(
        "U-01",
        lambda: probe.request_ucc_addition(ANALYST_2, at(1), [request], OFFENCE, "colleague"),
        probe,
    )
    refused(
        "A-05",
        lambda: probe.request_ucc_addition(INSPECTOR, at(1), [request], OFFENCE, "inspector"),
        probe,
    )
    refused(
        "U-01",
        lambda: probe.request_ucc_addition(
            ANALYST, at(1), [request], [SearchGround.MISSING_INCREASED_RISK], "not a ground of the Form 3"
        ),
        probe,
    )
    refused(
        "U-01",
        lambda: probe.request_ucc_addition(ANALYST, at(1), [request], OFFENCE, " "),
        probe,
    )
    probe.request_ucc_addition(ANALYST, at(1), [request], OFFENCE, "still unidentified")
    refused(
        "U-01",
        lambda: probe.request_ucc_addition(ANALYST, at(2), [request], OFFENCE, "again"),
        probe,
    )


def test_P08_P12_only_an_inspector_or_above_decides_and_never_the_requester():
    """P-08: a Sergeant is refused; P-12: an Inspector who asked for it cannot approve it."""
    probe, request = requested()
    refused(
        "P-08",
        lambda: probe.approve_ucc_addition(SERGEANT, at(2), [request], "ok", config=CONFIG),
        probe,
    )
    refused("P-08", lambda: probe.decline_ucc_addition(SERGEANT, at(2), "no", config=CONFIG), probe)
    refused(
        "A-05",
        lambda: probe.approve_ucc_addition(ANALYST_2, at(2), [request], "ok", config=CONFIG),
        probe,
    )
    assert probe.ucc is None and probe.ucc_request.pending

    # An Inspector who is also an RFR User asked for it: they cannot approve their own request.
    both = Actor("insp-user", {Role.RFR_USER, Role.APPROVING_OFFICER}, Rank.INSPECTOR, {"team-a"})
    own = ready_probe_of(both)
    own_search = searched(own)
    own.request_ucc_addition(both, at(1), [own_search], OFFENCE, "my own case")
    refused(
        "P-12",
        lambda: own.approve_ucc_addition(both, at(2), [own_search], "mine", config=CONFIG),
        own,
    )
    refused("P-12", lambda: own.decline_ucc_addition(both, at(2), "mine", config=CONFIG), own)
    own.approve_ucc_addition(INSPECTOR, at(2), [own_search], "another officer", config=CONFIG)
    assert own.ucc is not None


def test_U01_is_checked_again_on_approval():
    """U-01: a viable match of a known person found after the request keeps the probe out."""
    probe, request = requested()
    candidate = request.candidates()[0]
    request.adjudicate(
        ANALYST,
        at(2),
        candidate.candidate_id,
        True,
        "same person",
        identity_known=True,
        approvals=approvals_of(request),
    )
    error = refused(
        "U-01",
        lambda: probe.approve_ucc_addition(INSPECTOR, at(3), [request], "ok", config=CONFIG),
        probe,
    )
    assert error.rule_ids == ("U-01",) and "known person" in error.reason
    # Declining stays possible: the request is decided either way.
    probe.decline_ucc_addition(INSPECTOR, at(3), "identified since", config=CONFIG)
    assert probe.ucc is None


def test_U01_an_inspectors_own_addition_waits_while_a_request_is_pending():
    """U-01, P-08: the Inspector's direct addition stays, but decides a pending request instead."""
    probe, request = requested()
    refused(
        "U-01",
        lambda: probe.add_to_ucc(INSPECTOR, at(2), [request], OFFENCE, "direct", config=CONFIG),
        probe,
    )
    probe.decline_ucc_addition(INSPECTOR, at(2), "not now", config=CONFIG)
    probe.add_to_ucc(INSPECTOR, at(3), [request], OFFENCE, "new intelligence", config=CONFIG)
    assert probe.ucc is not None and probe.ucc.approved_by == INSPECTOR.user_id


def test_U01_the_request_events_carry_plain_non_biometric_data_and_replay():
    """U-01: A-01: the new events hold ids, grounds, ranks and text, and replay through their stored form."""
    probe, request = requested()
    probe.approve_ucc_addition(INSPECTOR, at(2), [request], "approved", config=CONFIG)
    new = [e for e in probe.pending_events if type(e).__name__.startswith("UccAddition")]
    assert [type(e).class_version for e in new] == [1, 1]
    rebuilt = None
    for event in probe.pending_events:
        rebuilt = MAPPER.to_domain_event(MAPPER.to_stored_event(event)).mutate(rebuilt)
    assert rebuilt.state() == probe.state()
