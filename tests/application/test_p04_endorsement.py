"""P-04 endorsements: the rank is decided once, in the domain, and a refusal stays on the probe."""

from __future__ import annotations

import pytest
from app_world import World

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.images import PerceivedAgeBand
from rfr.domain.probe_image import ProbeImage
from rfr.domain.rules_probe import EndorsementKind


def _refused(call, rule_ids: tuple[str, ...]) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as caught:
        call()
    assert caught.value.rule_ids == rule_ids, caught.value
    return caught.value


def test_P04_a_sergeants_endorsement_is_refused_by_the_domain_and_stored_on_the_probe(world: World) -> None:
    """P-04: the rank is decided once, in the domain, and the refusal stays on the probe."""
    probe_id = world.probe(perceived_age=PerceivedAgeBand.AGE_13_15)  # endorsed by the inspector
    governance = world.endorsements.get("analyst", probe_id)
    assert governance.required_endorsements == ("P-04",) and governance.missing_endorsements == ()
    _refused(
        lambda: world.endorsements.endorse("sergeant", probe_id, EndorsementKind.UNDER_16, "ok"),
        ("P-04",),
    )
    assert world.app.get(probe_id, ProbeImage).refusals[-1].rule_ids == ("P-04",)
