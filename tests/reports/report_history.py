"""A known history for the usage report tests (A-04), made through the application services.

Two phases on the world's fixed clock (T0 = 2024-03-01 09:00 UTC):

day 0
  - library approval A (temporary, review due day 30) granted; library "lib-a" created;
  - a second application rejected; a third granted verbally in urgency (L-09);
  - request 1 (analyst): lib-a searched, candidate 1 viable, 2 not; match report, dissemination;
    a second search of lib-a on it is refused (S-04);
  - request 2 (analyst-2; purposes identify + place at location, grounds offence + wanted by
    courts, common assault): lib-a searched, both candidates not viable; probe added to the
    UCC (tier 3, review due 2024-06-01, U-03);
  - request 3 (analyst, probe at level 4): rejected by an inspector;
  - the outsider (team-z) tries to open a request on lib-a: refused (L-13).

day 40
  - library approval B granted (review due day 70), library "lib-b";
  - the urgent approval stopped;
  - request 4 (analyst) on lib-b searched; request 5 (analyst) on lib-b, closed unsearched;
  - probe of request 1 purged (one template) and the first image of lib-a purged (one template).

Then the clock stands at day 100, when approvals A and B and the UCC entry are overdue.

Probes, enrolments, searches and purges run through the biometric services of
``app_world`` (its fake face engine over the real store and index), so every potential match
counted was found by the production search.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import attrs
import domain_builders as b
from app_world import T0, World

from rfr.application.services.searches import LibrarySelection
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.forms import Dissemination
from rfr.domain.images import ImageLevel
from rfr.domain.search_terms import SearchGround, SearchPurpose, Urgency, UrgencyBasis

DAY_1 = T0 + timedelta(days=1)
DAY_40 = T0 + timedelta(days=40)
DAY_100 = T0 + timedelta(days=100)


@attrs.frozen
class History:
    approval_a: UUID
    approval_b: UUID
    library_a: UUID
    library_b: UUID
    urgent_approval: UUID
    ucc_probe: UUID


def _open(world: World, user: str, probe_id: UUID, library_id: UUID) -> UUID:
    return world.searches.open(user, probe_id, [LibrarySelection(str(library_id), "may hold the subject")]).id


def _search(world: World, user: str, request_id: UUID, library_id: UUID) -> None:
    assert len(world.search(request_id, library_id, user=user).candidates) == 2


def build_history(world: World) -> History:
    assert world.clock.now() == T0
    approval_a, library_a = world.enrolled_library("lib-a")
    rejected = world.approvals.apply("analyst", b.application())
    world.approvals.reject("supt", rejected.id, "not necessary")
    urgent = world.approvals.apply("analyst", b.application())
    world.approvals.approve(
        "supt",
        urgent.id,
        b.record(T0, rationale=""),
        urgency=Urgency(UrgencyBasis.RISK_TO_LIFE_OR_HARM, "a child is missing"),
    )

    probe_1 = world.probe()
    request_1 = _open(world, "analyst", probe_1, library_a)
    _search(world, "analyst", request_1, library_a)
    world.searches.adjudicate("analyst", request_1, f"{library_a}#1", True, "likeness", identity_known=True)
    world.searches.adjudicate("analyst", request_1, f"{library_a}#2", False, "different ears")
    world.searches.issue_match_report("analyst", request_1, f"{library_a}#1", report_id="R-1")
    world.searches.record_dissemination(
        "analyst", request_1, "R-1", Dissemination("CPS", "DPA 2018 s.35", True)
    )
    try:
        _search(world, "analyst", request_1, library_a)
    except PolicyRefusal as refusal:
        assert "S-04" in refusal.rule_ids
    else:
        raise AssertionError("a second search of the same library must be refused (S-04)")

    probe_2 = world.probe(
        purposes={SearchPurpose.IDENTIFY, SearchPurpose.PLACE_AT_LOCATION},
        grounds={SearchGround.OFFENCE, SearchGround.WANTED_BY_COURTS},
        offence_code="common_assault",
    )
    request_2 = _open(world, "analyst-2", probe_2, library_a)
    _search(world, "analyst-2", request_2, library_a)
    for rank in (1, 2):
        world.searches.adjudicate("analyst-2", request_2, f"{library_a}#{rank}", False, "not them")
    world.ucc.add("inspector", probe_2, [SearchGround.OFFENCE], "offender still at large")

    request_3 = _open(world, "analyst", world.probe(image_level=ImageLevel.ELEVATED_PRIVACY), library_a)
    world.searches.reject("inspector", request_3, "not proportionate")

    try:
        _open(world, "outsider", world.probe(), library_a)
    except PolicyRefusal as refusal:
        assert "L-13" in refusal.rule_ids
    else:
        raise AssertionError("the outsider may not search lib-a (L-13)")

    world.clock.advance(days=40)
    approval_b, library_b = world.enrolled_library("lib-b")
    world.approvals.stop("supt", urgent.id, "the child was found")
    request_4 = _open(world, "analyst", world.probe(), library_b)
    _search(world, "analyst", request_4, library_b)
    request_5 = _open(world, "analyst", world.probe(), library_b)
    world.searches.close("analyst", request_5, "suspect identified by other means")

    assert len(world.erasure.purge_probe("op-lead", probe_1, "viable match reported; R-02")) == 3
    first_image = world.image_ids(library_a)[0]
    purged = world.erasure.purge_library_images(
        "op-lead", library_a, [first_image], "image withdrawn by its owner"
    )
    assert len(purged) == 1  # its one template

    world.clock.advance(days=60)
    return History(approval_a, approval_b, library_a, library_b, urgent.id, probe_2)
