"""A probe's facts after submission: its perceived age reassessed (P-03, P-04) and its level
raised (L-11, P-08), through the service every entrypoint calls, each with its reason."""

from __future__ import annotations

from uuid import UUID

import pytest
from app_world import World

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.images import ImageLevel, PerceivedAgeBand
from rfr.domain.probe_image import ProbeImage


def _refused(call, rule_ids: tuple[str, ...]) -> None:
    with pytest.raises(PolicyRefusal) as caught:
        call()
    assert caught.value.rule_ids == rule_ids, caught.value


def test_P04_a_probe_reassessed_as_13_to_15_needs_an_inspectors_endorsement_before_a_search(world: World):
    probe_id = world.probe()  # an adult at level 3: ready
    assert world.probes.get("analyst", str(probe_id)).ready_for_search
    view = world.probes.reassess_perceived_age(
        "analyst", str(probe_id), PerceivedAgeBand.AGE_13_15, "a clearer frame shows a child"
    )
    assert view.perceived_age == "13_15"
    assert view.missing_endorsements == ("P-04",) and not view.ready_for_search
    (event,) = [e for e in world.app.events.get(probe_id) if isinstance(e, ProbeImage.PerceivedAgeReassessed)]
    assert event.reason == "a clearer frame shows a child"


def test_L11_P08_a_probes_level_is_raised_never_lowered_and_the_higher_level_needs_an_endorsement(
    world: World,
):
    probe_id = str(world.probe())
    view = world.probes.raise_level("analyst", probe_id, ImageLevel.ELEVATED_PRIVACY, "a hospital ward")
    assert view.image_level == 4 and view.missing_endorsements == ("P-08",)
    _refused(
        lambda: world.probes.raise_level("analyst", probe_id, ImageLevel.PUBLIC_WOULD_EXPECT, "lower"),
        ("L-11",),
    )
    probe = world.app.get(UUID(probe_id), ProbeImage)
    assert probe.level == ImageLevel.ELEVATED_PRIVACY and probe.refusals[-1].rule_ids == ("L-11",)


def test_A05_only_an_rfr_user_changes_a_probes_facts(world: World):
    probe_id = str(world.probe())
    _refused(
        lambda: world.probes.reassess_perceived_age("inspector", probe_id, PerceivedAgeBand.ADULT, "x"),
        ("A-05",),
    )
    _refused(
        lambda: world.probes.raise_level("op-lead", probe_id, ImageLevel.NOT_EXPECTED_BY_PUBLIC, "x"),
        ("A-05",),
    )
