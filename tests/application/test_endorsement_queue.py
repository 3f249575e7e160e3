"""The endorsement queue (P-04, P-06, P-08): the probes an approving officer must endorse.

The queue is read from a projection (``rfr_endorsement_queue``); these tests hold it to the
domain: after any of the commands that change what a probe needs or has, the probes it lists
are exactly those whose ``missing_endorsements`` is not empty, in submission order, and reading
it loads only the probes it lists.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import domain_builders as b
import pytest
from app_world import FixedClock, World, postgres_app, sqlite_app
from fake_biometrics import face_image

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.images import ImageLevel, PerceivedAgeBand, VulnerabilityFlags
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage
from rfr.domain.rules_probe import EndorsementKind


def _submit(world: World, **form: object) -> UUID:
    return UUID(world.probes.submit("analyst", b.form3(**form), face_image(0)).probe_id)


def _queue(world: World, *, limit: int = 50) -> list[tuple[UUID, tuple[str, ...]]]:
    """Every page of the queue, as (probe id, missing endorsements)."""
    listed, after = [], 0
    while True:
        page = world.endorsements.awaiting("inspector", after=after, limit=limit)
        listed += [(v.id, v.missing_endorsements) for v in page.items]
        if page.next_after is None:
            return listed
        after = page.next_after


def _domain_says(world: World, probe_ids: list[UUID]) -> list[tuple[UUID, tuple[str, ...]]]:
    """The same question asked of each probe itself, in submission order."""
    config = world.endorsements.config()
    answers = []
    for probe_id in probe_ids:
        probe = world.app.get(probe_id, ProbeImage)
        missing = tuple(sorted(k.value for k in probe.missing_endorsements(config)))
        if missing and probe.purged_at is None:
            answers.append((probe_id, missing))
    return answers


def _scripted(world: World) -> list[UUID]:
    """Probes needing each kind, none, and several, moved by every command that changes the answer."""
    adult = _submit(world)
    under_16 = _submit(world, perceived_age=PerceivedAgeBand.AGE_13_15)
    vulnerable = _submit(world, vulnerability=VulnerabilityFlags(suspected_relevant_disability=True))
    high = _submit(world, image_level=ImageLevel.NOT_EXPECTED_BY_PUBLIC)
    both = _submit(world, perceived_age=PerceivedAgeBand.UNKNOWN, image_level=ImageLevel.ELEVATED_PRIVACY)
    reassessed = _submit(world)
    raised = _submit(world)
    purged = _submit(world, perceived_age=PerceivedAgeBand.AGE_13_15)

    world.endorsements.endorse("inspector", under_16, EndorsementKind.UNDER_16, "necessary and proportionate")
    world.endorsements.endorse("inspector", both, EndorsementKind.HIGH_IMAGE_LEVEL, "proportionate")
    world.probes.reassess_perceived_age(
        "analyst", str(reassessed), PerceivedAgeBand.AGE_13_15, "looks younger on review"
    )
    world.probes.raise_level("analyst", str(raised), ImageLevel.ELEVATED_PRIVACY, "taken on a hospital ward")
    world.erasure.purge_probe("admin", purged, "entered in error")
    return [adult, under_16, vulnerable, high, both, reassessed, raised, purged]


@pytest.mark.parametrize("limit", [50, 2])
def test_P04_P06_P08_the_queue_lists_exactly_the_probes_missing_an_endorsement(
    world: World, limit: int
) -> None:
    probes = _scripted(world)
    listed = _queue(world, limit=limit)
    assert listed == _domain_says(world, probes)
    _, _, vulnerable, high, both, reassessed, raised, _ = probes
    assert dict(listed) == {
        vulnerable: ("P-06",),
        high: ("P-08",),
        both: ("P-04",),
        reassessed: ("P-04",),
        raised: ("P-08",),
    }


def test_P08_the_levels_are_the_policy_config_in_force_when_the_queue_is_read(world: World) -> None:
    high = _submit(world, image_level=ImageLevel.ELEVATED_PRIVACY)
    assert [p for p, _ in _queue(world)] == [high]
    world.policy.change(
        "sro",
        PolicyConfig(inspector_approval_levels={ImageLevel.NOT_EXPECTED_BY_PUBLIC}),
        "level 4 no longer needs an Inspector",
    )
    assert _queue(world) == []


def test_P04_endorsing_from_the_queue_takes_the_probe_off_it(world: World) -> None:
    probe_id = _submit(world, perceived_age=PerceivedAgeBand.AGE_13_15)
    assert _queue(world) == [(probe_id, ("P-04",))]
    world.endorsements.endorse("inspector", probe_id, EndorsementKind.UNDER_16, "necessary and proportionate")
    assert _queue(world) == []


def test_the_queue_loads_only_the_probes_it_lists(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cost: 40 probes that need nothing and 2 that await; reading the queue loads 2 probes."""
    for _ in range(40):
        _submit(world)
    awaiting = [_submit(world, perceived_age=PerceivedAgeBand.AGE_13_15) for _ in range(2)]
    probes_loaded: list[UUID] = []
    get = world.app.get

    def counting_get(aggregate_id, *args, **kwargs):
        if ProbeImage in args:
            probes_loaded.append(aggregate_id)
        return get(aggregate_id, *args, **kwargs)

    monkeypatch.setattr(world.app, "get", counting_get)
    assert [p for p, _ in _queue(world)] == awaiting
    assert probes_loaded == awaiting


def test_A05_the_queue_is_refused_to_a_role_outside_the_operational_roles(world: World) -> None:
    with pytest.raises(PolicyRefusal) as refused:
        world.endorsements.awaiting("auditor")
    assert refused.value.rule_ids == ("A-05",)


def test_the_queue_refuses_a_page_out_of_bounds(world: World) -> None:
    with pytest.raises(ValueError, match="limit"):
        world.endorsements.awaiting("inspector", limit=0)
    with pytest.raises(ValueError, match="after"):
        world.endorsements.awaiting("inspector", after=-1)


def test_sqlite_the_queue_agrees_with_the_domain_and_survives_a_rebuild(tmp_path: Path) -> None:
    world = World(sqlite_app(tmp_path), FixedClock()).populate()
    probes = _scripted(world)
    assert _queue(world) == _domain_says(world, probes)
    reopened = World(sqlite_app(tmp_path), world.clock)
    assert _queue(reopened) == _domain_says(world, probes)


def test_postgres_the_queue_agrees_with_the_domain(postgres_store: str, tmp_path: Path) -> None:
    world = World(postgres_app(tmp_path), FixedClock()).populate()
    probes = _scripted(world)
    assert _queue(world, limit=2) == _domain_says(world, probes)
