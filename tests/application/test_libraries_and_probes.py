"""Libraries (L-01, L-11, L-13), probe endorsements (P-04, P-06, P-08) and technical advice."""

from __future__ import annotations

import domain_builders as b
import pytest
from app_world import World

from rfr.application.services.base import list_ids
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.forms import AccessRestriction
from rfr.domain.images import ImageLevel, PerceivedAgeBand, VulnerabilityFlags
from rfr.domain.probe_image import ProbeImage
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.rules_probe import EndorsementKind


def test_L01_L11_a_library_is_created_under_an_approval_in_force_at_its_level(world: World) -> None:
    """L-01, L-11: a library is created under an approval in force at its level."""
    approval_id = world.approved(level=ImageLevel.PUBLIC_WOULD_EXPECT)
    view = world.libraries.create("op-lead", "Op Example", approval_id)
    assert (view.name, view.approval_id, view.kind) == ("Op Example", str(approval_id), "temporary")
    assert view.approved_level == int(ImageLevel.PUBLIC_WOULD_EXPECT)
    assert view.approval_in_force and view.images_enrolled == 0
    assert world.libraries.get("analyst", view.id) == view
    assert world.libraries.list("analyst").items == (view,)


def test_L01_A01_no_library_under_an_approval_not_in_force_refusal_stored(world: World) -> None:
    """A-01: no library under an approval not in force refusal stored."""
    applied = world.approvals.apply("analyst", b.application())
    with pytest.raises(PolicyRefusal) as caught:
        world.libraries.create("op-lead", "too early", applied.id)
    assert "L-01" in caught.value.rule_ids
    stored = world.app.get(caught.value.record.id, RefusedAttempt)
    assert stored.command == "create library"
    assert stored.refusals[0].actor.user_id == "op-lead"


def test_T02_a_library_summary_counts_images_and_readiness(world: World) -> None:
    """T-02: a library summary counts images and readiness."""
    _, library_id = world.library(n=4)
    view = world.libraries.get("analyst", library_id)
    assert (view.images_enrolled, view.images_searchable) == (4, 4)
    assert view.algorithms == (b.ALG,) and view.searchable_with == (b.ALG,)


def test_L13_contents_are_listed_only_within_the_access_restrictions(world: World) -> None:
    """L-13: contents are listed only within the access restrictions."""
    _, library_id = world.library(n=5)
    page = world.libraries.contents("analyst", library_id, limit=3)
    assert [i.image_id for i in page.images] == ["lib-0", "lib-1", "lib-2"]
    assert page.images[0].templates == ((b.ALG, "tpl-lib-0"),)
    assert page.images[0].searchable and page.next_offset == 3
    rest = world.libraries.contents("analyst", library_id, offset=3, limit=3)
    assert [i.image_id for i in rest.images] == ["lib-3", "lib-4"] and rest.next_offset is None


def test_L13_A01_a_refused_listing_is_recorded_and_names_the_reader(world: World) -> None:
    """A-01: a refused listing is recorded and names the reader."""
    _, library_id = world.library()
    before = list_ids(world.app, RefusedAttempt.AttemptRefused, limit=500)[0]
    with pytest.raises(PolicyRefusal) as caught:
        world.libraries.contents("outsider", library_id)
    assert caught.value.rule_ids == ("L-13",)
    after = list_ids(world.app, RefusedAttempt.AttemptRefused, limit=500)[0]
    (new,) = set(after) - set(before)
    attempt = world.app.get(new, RefusedAttempt)
    assert attempt.command == "list library contents" and str(library_id) in attempt.target
    assert attempt.refusals[0].actor.user_id == "outsider"


def test_L13_named_users_and_all_rfr_users_may_list(world: World) -> None:
    """L-13: named users and all rfr users may list."""
    _, named = world.library("named", access=AccessRestriction(users={"outsider"}))
    assert world.libraries.contents("outsider", named).images
    with pytest.raises(PolicyRefusal):
        world.libraries.contents("analyst", named)
    _, everyone = world.library("open", access=AccessRestriction(all_rfr_users=True))
    assert world.libraries.contents("outsider", everyone).images
    with pytest.raises(PolicyRefusal):
        world.libraries.contents("sro", everyone)  # the SRO holds no RFR User role


def test_P04_P12_an_under_16_probe_needs_an_inspectors_endorsement_not_the_requesters(world: World) -> None:
    """P-12: an under 16 probe needs an inspectors endorsement not the requesters."""
    probe_id = world.probe(perceived_age=PerceivedAgeBand.AGE_13_15)
    view = world.endorsements.get("analyst", probe_id)
    assert view.missing_endorsements == () and view.endorsements[0].kind == "P-04"
    assert view.endorsements[0].by == "inspector"
    assert view.endorsements[0].rank == 2


def test_P04_A01_a_sergeant_cannot_endorse_and_the_refusal_stays_on_the_probe(world: World) -> None:
    """A-01: a sergeant cannot endorse and the refusal stays on the probe."""
    probe_id = world.probe()
    at, analyst = world.clock.now(), world.actor("analyst")
    young = ProbeImage.submit(analyst, at, b.form3(perceived_age=PerceivedAgeBand.AGE_16_17), "sha256:x")
    world.app.save(young)
    with pytest.raises(PolicyRefusal) as caught:
        world.endorsements.endorse("sergeant", young.id, EndorsementKind.UNDER_16, "ok")
    assert "P-04" in caught.value.rule_ids
    assert world.app.get(young.id, ProbeImage).refusals[-1].rule_ids == caught.value.rule_ids
    assert world.endorsements.get("analyst", probe_id).required_endorsements == ()


def test_P06_a_vulnerability_endorsement_needs_technical_advice_first(world: World) -> None:
    at, analyst = world.clock.now(), world.actor("analyst")
    form = b.form3(vulnerability=VulnerabilityFlags(suspected_relevant_disability=True))
    probe = ProbeImage.submit(analyst, at, form, "sha256:v")
    world.app.save(probe)
    with pytest.raises(PolicyRefusal) as caught:
        world.endorsements.endorse("inspector", probe.id, EndorsementKind.VULNERABILITY, "justified")
    assert "P-06" in caught.value.rule_ids
    view = world.endorsements.record_technical_advice("analyst", probe.id, "expect lower scores")
    assert view.technical_advice == "expect lower scores"
    view = world.endorsements.endorse("inspector", probe.id, EndorsementKind.VULNERABILITY, "justified")
    assert view.missing_endorsements == ()
