"""Annex C offence codes as published reference data (C-01, C-02).

A Form 3 names its offence by a code of ``offences.OFFENCES``; an unknown code is refused
under C-01 instead of being taken as Tier 3, and ``other`` (described in free text) keeps
"any offence not listed is Tier 3" without reading anything from the text (C-02).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from domain_builders import (
    ANALYST,
    T0,
    form3,
    refused,
)
from eventsourcing.application import Application

from rfr.domain.offences import ANNEX_C, OFFENCE_CODES, OFFENCES, OTHER_CODE, CrimeTier, offence, tier_of
from rfr.domain.probe_image import ProbeImage
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.search_terms import SearchGround

MAPPER = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def submit(**overrides) -> ProbeImage:
    return ProbeImage.submit(ANALYST, T0, form3(**overrides), "sha256:p")


def test_C01_an_unknown_offence_code_is_refused_not_taken_as_tier_3():
    """C-01: a typo'd code is refused with a Decision naming C-01, recorded as a RefusedAttempt."""
    error = refused("C-01", lambda: submit(offence_code="burglery"))
    assert error.rule_ids == ("C-01",) and "burglery" in error.reason
    assert isinstance(error.record, RefusedAttempt) and error.record.refusals[0].rule_ids == ("C-01",)


def test_C01_other_is_the_code_of_an_offence_not_listed_and_must_be_described():
    """C-01: ``other`` keeps "any offence not listed is Tier 3", with the offence in free text."""
    refused("C-01", lambda: submit(offence_code=OTHER_CODE))
    refused("C-01", lambda: submit(offence_code=OTHER_CODE, offence_description="  "))
    probe = submit(offence_code=OTHER_CODE, offence_description="breach of a local bylaw")
    assert probe.crime_tier is CrimeTier.TIER_3
    assert probe.form.offence_description == "breach of a local bylaw"


def test_C01_no_offence_is_needed_where_the_ground_is_not_one_and_listed_codes_are_known():
    """C-01: only a given code is judged; a listed code in any case is that offence."""
    probe = submit(grounds={SearchGround.MISSING_INCREASED_RISK}, offence_code=None)
    assert probe.crime_tier is CrimeTier.TIER_3
    assert submit(offence_code="Murder").crime_tier is CrimeTier.TIER_1
    assert submit(offence_code="robbery").crime_tier is CrimeTier.TIER_1


def test_C01_C02_the_published_codes_are_annex_c_then_other():
    """C-01, C-02: one table; ``other`` is Tier 3, not recordable and not MOPI Group 1."""
    assert OFFENCES[: len(ANNEX_C)] == ANNEX_C and OFFENCE_CODES[-1] == OTHER_CODE
    assert len(set(OFFENCE_CODES)) == len(OFFENCE_CODES)
    other = offence(OTHER_CODE)
    assert (other.tier, other.recordable, other.mopi_group_1_public_protection) == (
        CrimeTier.TIER_3,
        False,
        False,
    )
    assert all(o.listed for o in ANNEX_C)
    # A probe recorded before codes were checked keeps C-01's default rather than failing.
    assert tier_of("an old free-text offence") is CrimeTier.TIER_3


def test_C01_a_probe_submitted_before_offence_descriptions_existed_still_replays():
    """C-01: Form 3 gained ``offence_description``; a stored v1 event is upcast to v2 on reading."""
    created = submit().pending_events[0]
    assert isinstance(created, ProbeImage.Submitted) and type(created).class_version == 2
    stored = MAPPER.to_stored_event(created)
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["form"]["offence_description"]
    v1 = dataclasses.replace(stored, state=json.dumps(state).encode())
    probe = MAPPER.to_domain_event(v1).mutate(None)
    assert probe.form.offence_description is None and probe.form == created.mutate(None).form


@pytest.mark.parametrize("code", OFFENCE_CODES)
def test_C01_every_published_code_is_accepted_on_a_form_3(code):
    """C-01: each code GET /policy/offences publishes is one a Form 3 may give."""
    description = "described" if code == OTHER_CODE else None
    probe = submit(offence_code=code, offence_description=description)
    assert probe.crime_tier is offence(code).tier
