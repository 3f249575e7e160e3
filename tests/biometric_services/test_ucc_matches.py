"""U-02: new library material is searched with the cached probes it is relevant to; matches are queued."""

from __future__ import annotations

from uuid import UUID

import pytest
from domain_builders import form3
from eventsourcing.application import AggregateNotFoundError
from service_builders import World, gallery_items, item

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.probe_image import ProbeImage
from rfr.domain.search_terms import SearchGround
from rfr.domain.ucc_matches import UccMatchQueue


def _ucc_probe(world: World, image: bytes, *libraries) -> str:
    """A probe searched against ``libraries`` without a viable match, then added to the cache (U-01)."""
    view = world.probes.submit("analyst", form3(), image)
    view = world.probes.select_faces("analyst", view.probe_id, [view.faces[0].face_id], "the suspect")
    if view.quality_flags:
        world.probes.decide_on_quality("analyst", view.probe_id, True, "clear enough")
    request = world.open_request(view.probe_id, *libraries)
    while world.search.search_next("analyst", request.id) is not None:
        pass
    probe = world.app.get(UUID(view.probe_id), ProbeImage)
    searched = world.app.get(request.id, type(request))
    probe.add_to_ucc(
        world.actor("inspector"),
        world.clock.now(),
        [searched],
        [SearchGround.OFFENCE],
        "burglary series still unresolved",
        config=world.config,
    )
    world.app.save(probe)
    return view.probe_id


def test_U02_new_images_are_searched_with_relevant_cached_probes_and_queued(world: World, photos):
    """U-02: only probes whose searches chose the library are re-searched, and only new material."""
    _, custody = world.library("custody images")
    _, other = world.library("appeal images")
    world.enrolment.enrol("admin", str(custody.id), gallery_items(photos, ["adam_sandler", "bill_simon"]))
    world.enrolment.enrol("admin", str(other.id), gallery_items(photos, ["bob_graham"]))
    wanted = _ucc_probe(world, photos["colin_powell"][2].read_bytes(), custody)
    elsewhere = _ucc_probe(world, photos["colin_powell"][3].read_bytes(), other)
    world.clock.advance(days=3)

    report = world.enrolment.enrol(
        "admin",
        str(custody.id),
        [item(p, subject="colin_powell") for p in photos["colin_powell"][:2]]
        + [item(photos["carlos_moya"][0], subject="carlos_moya")],
    )

    assert report.screening.probes_screened == 1 and report.screening.matches_queued == 2
    queue = world.ucc.queue_of("analyst", wanted)
    colin = {r.image_id for r in report.enrolled if r.name.startswith("Colin")}
    assert {m.image_id for m in queue.pending} == colin
    assert all(m.score >= 0.5 for m in queue.pending)
    with pytest.raises(AggregateNotFoundError):
        world.app.get(UccMatchQueue.id_for(elsewhere), UccMatchQueue)


def test_L13_queued_matches_are_adjudicated_within_access_only(world: World, photos):
    _, custody = world.library("custody images")
    world.enrolment.enrol("admin", str(custody.id), gallery_items(photos, ["adam_sandler"]))
    probe_id = _ucc_probe(world, photos["colin_powell"][2].read_bytes(), custody)
    world.enrolment.enrol("admin", str(custody.id), [item(photos["colin_powell"][0])])
    match = world.ucc.queue_of("analyst", probe_id).pending[0]

    assert world.ucc.queue_of("outsider", probe_id).matches == ()
    with pytest.raises(PolicyRefusal) as refused:
        world.ucc.adjudicate("outsider", probe_id, match.match_id, True, "looks like him")
    assert refused.value.rule_ids == ("L-13",)

    view = world.ucc.adjudicate(
        "analyst", probe_id, match.match_id, True, "same scar and ear shape", identity_known=True
    )
    assert view.pending == () and view.matches[0].viable is True
    stored = world.app.get(UccMatchQueue.id_for(probe_id), UccMatchQueue)
    assert stored.adjudications[match.match_id].by == "analyst"


def test_U02_probes_out_of_the_cache_are_not_searched(world: World, photos):
    """U-02: probes out of the cache are not searched."""
    _, custody = world.library("custody images")
    world.enrolment.enrol("admin", str(custody.id), gallery_items(photos, ["adam_sandler"]))
    probe_id = _ucc_probe(world, photos["colin_powell"][2].read_bytes(), custody)
    probe = world.app.get(UUID(probe_id), ProbeImage)
    probe.remove_from_ucc(world.actor("inspector"), world.clock.now(), "suspect charged (U-04)", world.config)
    world.app.save(probe)

    report = world.enrolment.enrol("admin", str(custody.id), [item(photos["colin_powell"][0])])

    assert report.screening.probes_screened == 0 and report.screening.matches_queued == 0


def test_U02_the_queue_refuses_probes_out_of_the_cache_and_repeats(world: World, photos):
    """U-02 in the domain: a removed probe is not re-searched, and a match is never queued twice."""
    approval, custody = world.library("custody images")
    world.enrolment.enrol("admin", str(custody.id), gallery_items(photos, ["adam_sandler"]))
    probe_id = _ucc_probe(world, photos["colin_powell"][2].read_bytes(), custody)
    world.enrolment.enrol("admin", str(custody.id), [item(photos["colin_powell"][0])])
    queue = world.app.get(UccMatchQueue.id_for(probe_id), UccMatchQueue)
    match = next(iter(queue.matches.values()))
    probe = world.app.get(UUID(probe_id), ProbeImage)
    library = world.app.get(custody.id, type(custody))

    def queue_again():
        queue.queue(
            world.actor("admin"),
            world.clock.now(),
            probe=probe,
            library=library,
            holdings=world.app.library_images.holdings(
                str(library.id), world.bio.algorithm_id, [match.template_id], world.clock.now()
            ),
            approval=approval,
            algorithm_id=world.bio.algorithm_id,
            matches=[match],
            config=world.config,
        )

    with pytest.raises(PolicyRefusal, match="already queued"):
        queue_again()
    probe.remove_from_ucc(world.actor("inspector"), world.clock.now(), "resolved (U-04)", world.config)
    with pytest.raises(PolicyRefusal) as refused:
        queue_again()
    assert "U-02" in refused.value.rule_ids and "not in the Unresolved Crime Cache" in refused.value.reason
    assert [r.command for r in queue.refusals] == [f"queue cache matches from {custody.id}"] * 2


def test_U02_R05_a_template_erased_before_screening_is_skipped_not_an_error(world: World, photos):
    """U-02, R-05:
    A purge may land between enrolment and screening; the erased template is simply not screened."""
    _, custody = world.library("custody images")
    world.enrolment.enrol("admin", str(custody.id), gallery_items(photos, ["adam_sandler"]))
    # Enrolled while no probe is cached, so its own screening queues nothing.
    report = world.enrolment.enrol("admin", str(custody.id), [item(p) for p in photos["colin_powell"][:2]])
    probe_id = _ucc_probe(world, photos["colin_powell"][2].read_bytes(), custody)
    erased, kept = report.enrolled
    assert world.bio.store.erase(erased.template_id)

    screening = world.ucc.screen(
        "admin", str(custody.id), [erased.template_id, kept.template_id, "never-written"]
    )

    assert screening.probes_screened == 1
    assert {m.image_id for m in world.ucc.queue_of("analyst", probe_id).pending} == {kept.image_id}


def _meanwhile(world: World, hook) -> None:
    """Runs ``hook`` once, on the next clock read: another command lands after the next load."""

    def now():
        del world.clock.now  # the clock's own ``now`` again
        hook()
        return world.clock.now()

    world.clock.now = now


def _queued_matches(world: World, photos, n: int) -> tuple[str, list[str]]:
    _, custody = world.library("custody images")
    world.enrolment.enrol("admin", str(custody.id), gallery_items(photos, ["adam_sandler"]))
    probe_id = _ucc_probe(world, photos["colin_powell"][2].read_bytes(), custody)
    world.enrolment.enrol(
        "admin", str(custody.id), [item(p, subject="colin_powell") for p in photos["colin_powell"][:n]]
    )
    matches = [m.match_id for m in world.ucc.queue_of("analyst", probe_id).pending]
    assert len(matches) == n, matches
    return probe_id, matches


def test_S05_U02_adjudications_of_different_queued_matches_at_once_both_land(world: World, photos):
    """ADR 0011: a colleague's adjudication saved between this one's load and save is no conflict."""
    probe_id, (first, second) = _queued_matches(world, photos, 2)
    _meanwhile(world, lambda: world.ucc.adjudicate("analyst-2", probe_id, second, False, "not him"))

    view = world.ucc.adjudicate("analyst", probe_id, first, True, "same ear shape", identity_known=True)

    assert "now" not in vars(world.clock), "the other adjudication ran between load and save"
    assert {m.match_id: m.viable for m in view.matches} == {first: True, second: False}
    queue = world.app.get(UccMatchQueue.id_for(probe_id), UccMatchQueue)
    assert {m: a.by for m, a in queue.adjudications.items()} == {first: "analyst", second: "analyst-2"}
    assert queue.refusals == ()


def test_S05_U02_the_same_queued_match_adjudicated_twice_at_once_lands_once_and_is_refused_once(
    world: World, photos
):
    probe_id, (match,) = _queued_matches(world, photos, 1)
    _meanwhile(world, lambda: world.ucc.adjudicate("analyst-2", probe_id, match, False, "not him"))

    with pytest.raises(PolicyRefusal) as refused:
        world.ucc.adjudicate("analyst", probe_id, match, True, "same ear shape", identity_known=True)

    assert "now" not in vars(world.clock)
    assert refused.value.rule_ids == ("S-05",) and refused.value.reason == "already adjudicated"
    queue = world.app.get(UccMatchQueue.id_for(probe_id), UccMatchQueue)
    assert {m: a.by for m, a in queue.adjudications.items()} == {match: "analyst-2"}
    (refusal,) = queue.refusals
    assert (refusal.actor.user_id, refusal.rule_ids) == ("analyst", ("S-05",))
