"""Through a real `rfr serve`: the offence codes of Annex C are published and a Form 3 must name
one (C-01, C-02); a subject perceived 13-15 is searched only for a recordable offence (P-04).

Every refusal is a 403 problem naming exactly its rules, recorded (A-01): the store then holds
one refusal event more and nothing else.
"""

from __future__ import annotations

from workflow_builders import (
    form3,
    form3_part,
    image_part,
    ok,
    problem,
    stored_events,
    submitted_probe,
)

from rfr.domain.offences import OFFENCE_CODES, OTHER_CODE

# Each test runs on both event stores (tests/http/conftest.py).
STORES = ("sqlite", "postgres")

PROBE_SUBJECT = "howard_dean"


def refused_exactly(server, before: list[str], response, status: int, slug: str, rule_ids: list[str]) -> dict:
    """A 403 problem naming exactly ``rule_ids``, recorded, and one refusal event stored (A-01)."""
    body = problem(response, status, slug)
    assert body["rule_ids"] == rule_ids, body
    assert body["recorded"] is True
    after = stored_events(server)
    assert after[: len(before)] == before
    added = after[len(before) :]
    assert len(added) == 1 and added[0].endswith(("Refused", "RefusedAttempt.AttemptRefused")), added
    return body


def test_C01_C02_the_offence_codes_are_published_to_those_who_read_policy(server, people):
    """C-01, C-02: GET /policy/offences gives code, label, tier, recordable, MOPI Group 1."""
    offences = ok(people.analyst.client.get("/policy/offences"))
    assert [o["code"] for o in offences] == list(OFFENCE_CODES)
    by_code = {o["code"]: o for o in offences}
    assert by_code["robbery"] | {"annex_c_line": None} == {
        "code": "robbery",
        "label": "Robbery (all robbery offences)",
        "tier": 1,
        "recordable": True,
        "mopi_group_1_public_protection": True,
        "annex_c_line": None,
        "listed": True,
    }
    other = by_code[OTHER_CODE]
    assert (other["tier"], other["recordable"], other["mopi_group_1_public_protection"], other["listed"]) == (
        3,
        False,
        False,
        False,
    )
    assert ok(people.superintendent.client.get("/policy/offences")) == offences
    before = stored_events(server)
    refused_exactly(server, before, people.auditor.client.get("/policy/offences"), 403, "forbidden", ["A-05"])


def test_C01_the_form_3_schema_publishes_the_codes_as_the_offence_enum(server):
    """C-01: the Form 3 body's ``offence_code`` lists every code (and null: no offence)."""
    document = ok(server.anonymous().get("/schema/openapi.json"))
    fields = [
        schema["properties"]["offence_code"]
        for schema in document["components"]["schemas"].values()
        if "offence_code" in schema.get("properties", {})
    ]
    assert fields, "no component has offence_code"
    for field in fields:
        assert [c for c in field["enum"] if c is not None] == list(OFFENCE_CODES)


def test_C01_a_form_3_with_a_typod_offence_code_is_refused_naming_and_recorded(server, people, photos):
    """C-01: an unknown code is refused by the domain, not by the schema, so the refusal is recorded."""
    photo = photos[PROBE_SUBJECT][1]
    before = stored_events(server)
    response = people.analyst.client.post(
        "/probes", files=[image_part(photo), form3_part(form3(offence_code="burglery"))]
    )
    body = refused_exactly(server, before, response, 403, "policy-refusal", ["C-01"])
    assert "burglery" in body["reason"]
    before = stored_events(server)
    response = people.analyst.client.post(
        "/probes", files=[image_part(photo), form3_part(form3(offence_code=OTHER_CODE))]
    )
    refused_exactly(server, before, response, 403, "policy-refusal", ["C-01"])

    described = submitted_probe(
        people, photo, offence_code=OTHER_CODE, offence_description="Fly-tipping on a nature reserve"
    )
    governance = ok(people.analyst.client.get(f"/probes/{described['probe_id']}/governance"))
    assert governance["crime_tier"] == 3


def test_P04_a_13_to_15_subject_with_an_offence_that_is_not_recordable_is_refused(server, people, photos):
    """P-04: ``other`` is never recordable, whatever the description says (C-02)."""
    before = stored_events(server)
    form = form3(perceived_age="13_15", offence_code=OTHER_CODE, offence_description="Recordable, honestly")
    response = people.analyst.client.post(
        "/probes", files=[image_part(photos[PROBE_SUBJECT][1]), form3_part(form)]
    )
    refused_exactly(server, before, response, 403, "policy-refusal", ["P-04"])
