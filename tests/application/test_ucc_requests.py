"""UCC additions asked for by the probe's requester and decided by an Inspector (U-01, P-08, P-12)."""

from __future__ import annotations

import pytest
from app_world import World

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.probe_image import ProbeImage
from rfr.domain.search_terms import SearchGround

OFFENCE = [SearchGround.OFFENCE]


def _unmatched_probe(world: World):
    request_id, probe_id, library_id = world.searched()
    for rank in (1, 2):
        world.searches.adjudicate("analyst", request_id, f"{library_id}#{rank}", False, "not them")
    return probe_id


def _refused(call, rule_ids: tuple[str, ...]) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as caught:
        call()
    assert caught.value.rule_ids == rule_ids, caught.value
    return caught.value


def test_U01_P08_the_requesters_request_approved_by_an_inspector_puts_the_probe_in_the_cache(
    world: World,
) -> None:
    """U-01, P-08: request, list of pending requests, approval, entry."""
    probe_id = _unmatched_probe(world)
    asked = world.ucc.request_addition("analyst", probe_id, OFFENCE, "burglar still at large")
    assert (asked.status, asked.requested_by, asked.grounds) == ("pending", "analyst", ("b_offence",))
    assert [r.probe_id for r in world.ucc.addition_requests("inspector").items] == [probe_id]
    assert world.ucc.get("analyst", probe_id) is None, "nothing enters the cache before the approval"

    approved = world.ucc.approve_addition("inspector", probe_id, "serious; proportionate")
    assert (approved.status, approved.decided_by, approved.decider_rank) == ("approved", "inspector", 2)
    assert approved.in_ucc
    entry = world.ucc.get("analyst", probe_id)
    assert entry is not None and entry.approved_by == "inspector" and entry.grounds == ("b_offence",)
    assert [e.probe_id for e in world.ucc.entries("analyst").items] == [probe_id]
    assert world.ucc.addition_requests("inspector").items == ()
    assert world.ucc.addition_requests("inspector", include_decided=True).items == (approved,)
    assert world.ucc.addition_request("op-lead", probe_id) == approved


def test_P08_P12_a_declined_request_leaves_the_probe_out_with_the_rationale(world: World) -> None:
    """P-08, P-12: the decline records the officer, rank and rationale; the cache stays empty."""
    probe_id = _unmatched_probe(world)
    world.ucc.request_addition("analyst", probe_id, OFFENCE, "still unidentified")
    declined = world.ucc.decline_addition("inspector", probe_id, "low harm; retention not justified")
    assert (declined.status, declined.decision_rationale) == ("declined", "low harm; retention not justified")
    assert world.ucc.get("analyst", probe_id) is None and not declined.in_ucc


def test_U01_P08_the_wrong_person_is_refused_and_every_refusal_is_stored_on_the_probe(world: World) -> None:
    """A-05, U-01, P-08 and P-12, all decided in the domain; each recorded on the probe (A-01)."""
    probe_id = _unmatched_probe(world)

    def last_refusal() -> tuple[str, ...]:
        return world.app.get(probe_id, ProbeImage).refusals[-1].rule_ids

    # Not an RFR User, and not the probe's submitter either: both rules say so.
    _refused(lambda: world.ucc.request_addition("inspector", probe_id, OFFENCE, "r"), ("A-05", "U-01"))
    assert last_refusal() == ("A-05", "U-01")
    _refused(lambda: world.ucc.request_addition("analyst-2", probe_id, OFFENCE, "r"), ("U-01",))
    assert last_refusal() == ("U-01",)
    _refused(lambda: world.ucc.approve_addition("inspector", probe_id, "nothing asked"), ("U-01",))

    world.ucc.request_addition("analyst", probe_id, OFFENCE, "still unidentified")
    # The requester is no approving officer, no Inspector, and asked for it: every rule says so.
    _refused(lambda: world.ucc.approve_addition("analyst", probe_id, "r"), ("A-05", "P-08", "P-12"))
    assert last_refusal() == ("A-05", "P-08", "P-12")
    _refused(lambda: world.ucc.approve_addition("sergeant", probe_id, "r"), ("P-08",))
    assert last_refusal() == ("P-08",)
    _refused(lambda: world.ucc.decline_addition("sergeant", probe_id, "r"), ("P-08",))
    _refused(lambda: world.ucc.approve_addition("inspector", probe_id, " "), ("P-12",))
    assert last_refusal() == ("P-12",)
    # The Inspector's own direct addition waits for the pending request to be decided.
    _refused(lambda: world.ucc.add("inspector", probe_id, OFFENCE, "direct"), ("U-01",))
    assert world.ucc.approve_addition("inspector-2", probe_id, "approved").status == "approved"
