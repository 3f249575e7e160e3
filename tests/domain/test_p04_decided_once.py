"""P-04 decided once: ``rules_probe.under_16_safeguards`` and every command that asks it.

P-04: a subject perceived 13-15 is searched only with an Inspector's endorsement and for a
recordable offence. Submission, the endorsement a probe needs, the giving of it and the
probe's readiness for a search all ask the one function, with the age the probe has now.
"""

from __future__ import annotations

from domain_builders import (
    ALG,
    ANALYST,
    CONFIG,
    INSPECTOR,
    SERGEANT,
    T0,
    at,
    form3,
    open_request,
    ready_probe,
    refused,
    search,
    searchable_library,
)

from rfr.domain.decisions import Decision
from rfr.domain.images import PerceivedAgeBand
from rfr.domain.offences import OTHER_CODE
from rfr.domain.people import Rank
from rfr.domain.probe_image import ProbeImage
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.rules_probe import EndorsementKind, under_16_safeguards

A13_15 = PerceivedAgeBand.AGE_13_15
NOT_RECORDABLE = {"offence_code": OTHER_CODE, "offence_description": "dropping litter"}


def submit(**overrides) -> ProbeImage:
    return ProbeImage.submit(ANALYST, T0, form3(**overrides), "sha256:p")


def test_P04_one_function_decides_both_halves_and_names_only_where_it_governs():
    """P-04: the recordable offence (C-02) and the Inspector's endorsement, in one function."""
    assert under_16_safeguards(PerceivedAgeBand.ADULT, OTHER_CODE, endorsement_due=True) == Decision.allow()
    assert under_16_safeguards(PerceivedAgeBand.AGE_16_17, None, endorsement_due=True).rule_ids == ()
    # At submission only the offence half is asked: nobody can have endorsed yet.
    assert under_16_safeguards(A13_15, "burglary") == Decision.allow("P-04")
    assert under_16_safeguards(A13_15, None) == Decision.allow("P-04")  # no offence: ground is not one
    for code in (OTHER_CODE, "burglery"):  # not recordable in Annex C, or not a code at all
        assert under_16_safeguards(A13_15, code).rule_ids == ("P-04",)
        assert not under_16_safeguards(A13_15, code).allowed
    # Before a search, the endorsement must be there, by an Inspector or above.
    assert not under_16_safeguards(A13_15, "burglary", endorsement_due=True).allowed
    assert not under_16_safeguards(A13_15, "burglary", endorser_rank=Rank.SERGEANT).allowed
    assert under_16_safeguards(A13_15, "burglary", endorser_rank=Rank.INSPECTOR, endorsement_due=True).allowed
    # An unknown perceived age is handled as under 16 (Annex A para 2).
    assert not under_16_safeguards(PerceivedAgeBand.UNKNOWN, OTHER_CODE).allowed


def test_P04_reassessed_13_15_with_an_offence_that_is_not_recordable_refuses_to_be_searched():
    """P-04 after a reassessment: the search is refused under P-04 and the refusal recorded (A-01)."""
    probe = ready_probe(**NOT_RECORDABLE)  # an adult: any offence may be searched
    pair = searchable_library()
    request = open_request(probe, pair)
    probe.reassess_perceived_age(ANALYST, at(1), A13_15, "closer look: a school uniform")
    assert probe.perceived_age is A13_15, "the truer age is recorded whatever it means"

    readiness = probe.ready_for_search(ALG, CONFIG)
    assert not readiness.allowed and "P-04" in readiness.rule_ids
    assert any("recordable" in r for r in readiness.reasons)
    assert "P-04" in probe.age_safeguards().rule_ids and not probe.age_safeguards().allowed
    error = refused("P-04", lambda: search(request, probe, pair, when=at(1)), request)
    assert "recordable" in error.reason
    assert request.refusals[-1].rule_ids == error.rule_ids and "P-04" in error.rule_ids
    assert not request.searches

    # An Inspector cannot endorse what P-04 forbids: no endorsement makes the offence recordable.
    assert probe.required_endorsements(CONFIG) == {EndorsementKind.UNDER_16}
    refused(
        "P-04",
        lambda: probe.endorse(INSPECTOR, at(1), EndorsementKind.UNDER_16, "necessary", CONFIG),
        probe,
    )
    assert probe.refusals[-1].rule_ids == ("P-04",)


def test_P04_reassessed_13_15_with_a_recordable_offence_waits_for_an_inspectors_endorsement():
    """P-04: the endorsement half after a reassessment, as if the probe had been submitted so."""
    probe = ready_probe(offence_code="burglary")
    pair = searchable_library()
    request = open_request(probe, pair)
    probe.reassess_perceived_age(ANALYST, at(1), A13_15, "closer look")
    assert probe.missing_endorsements(CONFIG) == {EndorsementKind.UNDER_16}
    assert probe.age_safeguards().allowed, "the request may stay open: the endorsement may still come"
    refused("P-04", lambda: search(request, probe, pair, when=at(1)), request)
    refused("P-04", lambda: probe.endorse(SERGEANT, at(1), EndorsementKind.UNDER_16, "ok", CONFIG), probe)
    probe.endorse(INSPECTOR, at(1), EndorsementKind.UNDER_16, "serious burglary series", CONFIG)
    assert probe.ready_for_search(ALG, CONFIG).allowed
    search(request, probe, pair, when=at(2))
    assert request.searches


def test_P04_submission_of_13_15_names_the_rule_and_leaves_a_refused_attempt():
    """P-04 at submission: ``other`` is never recordable, whatever its description says (C-02)."""
    error = refused(
        "P-04",
        lambda: submit(
            perceived_age=A13_15, offence_code=OTHER_CODE, offence_description="robbery (recordable)"
        ),
    )
    assert error.rule_ids == ("P-04",) and isinstance(error.record, RefusedAttempt)
    assert submit(perceived_age=A13_15, offence_code="robbery").required_endorsements(CONFIG) == {
        EndorsementKind.UNDER_16
    }
