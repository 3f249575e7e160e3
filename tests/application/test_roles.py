"""The wrong person is refused by every use case, and every refusal is stored (A-05, A-01).

Each row names the acting user, the call, the rule the refusal must name and where the
refusal must be found after reloading: on the target aggregate, or in a RefusedAttempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import domain_builders as b
import pytest
from app_world import World

from rfr.application.services.searches import LibrarySelection
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.forms import Dissemination, ReviewOutcome
from rfr.domain.people import Rank, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.rules_probe import EndorsementKind
from rfr.domain.search_terms import SearchGround, Urgency, UrgencyBasis
from rfr.domain.user import User

URGENCY = Urgency(UrgencyBasis.OPPORTUNITY_LOST, "suspect leaving the country")


@pytest.fixture
def ctx(world: World) -> dict[str, Any]:
    """Aggregates in the states the commands act on."""
    applied = world.approvals.apply("analyst", b.application()).id
    request_id, probe_id, library_id = world.searched()
    approval_id = world.libraries.get("analyst", library_id).approval_id
    world.searches.adjudicate("analyst", request_id, f"{library_id}#1", True, "likeness", identity_known=True)
    world.searches.issue_match_report("analyst", request_id, f"{library_id}#1", report_id="R-1")
    unmatched, probe_outside_ucc, other_library = world.searched()
    for rank in (1, 2):
        world.searches.adjudicate("analyst", unmatched, f"{other_library}#{rank}", False, "no")
    exception_id = world.exceptions.record("supt", "decision", "rationale", "advice").id
    world.users.disable("admin", "analyst-2", "on leave")
    return {
        "world": world,
        "applied": applied,
        "approval": approval_id,
        "library": library_id,
        "request": request_id,
        "probe": probe_id,
        "probe_outside_ucc": probe_outside_ucc,
        "exception": exception_id,
        "now": world.clock.now(),
    }


Call = Callable[[World, dict[str, Any]], Any]
ATTEMPT = None  # the refusal lives in a RefusedAttempt (no target aggregate yet)


def user(name: str) -> Callable[[dict[str, Any]], UUID]:
    return lambda c: User.id_for(name)


def key(name: str) -> Callable[[dict[str, Any]], UUID]:
    return lambda c: c[name]


ROWS: list[tuple[str, str, Call, str, Callable[[dict[str, Any]], UUID] | None]] = [
    # users
    ("register", "analyst", lambda w, c: w.users.register("analyst", "x", {Role.RFR_USER}), "A-05", ATTEMPT),
    (
        "grant role",
        "op-lead",
        lambda w, c: w.users.grant_role("op-lead", "analyst", Role.SRO, "r"),
        "A-05",
        user("analyst"),
    ),
    (
        "revoke role",
        "sro",
        lambda w, c: w.users.revoke_role("sro", "analyst", Role.RFR_USER, "r"),
        "A-05",
        user("analyst"),
    ),
    (
        "set rank",
        "inspector",
        lambda w, c: w.users.set_rank("inspector", "analyst", "r", rank=Rank.SUPERINTENDENT),
        "A-05",
        user("analyst"),
    ),
    (
        "set teams",
        "analyst",
        lambda w, c: w.users.set_teams("analyst", "outsider", {"team-a"}, "r"),
        "A-05",
        user("outsider"),
    ),
    (
        "record training",
        "auditor",
        lambda w, c: w.users.record_training("auditor", "analyst", False, "r"),
        "A-05",
        user("analyst"),
    ),
    ("disable", "supt", lambda w, c: w.users.disable("supt", "analyst", "r"), "A-05", user("analyst")),
    (
        "enable",
        "analyst",
        lambda w, c: w.users.enable("analyst", "analyst-2", "r"),
        "A-05",
        user("analyst-2"),
    ),
    ("list users", "analyst", lambda w, c: w.users.list("analyst"), "A-05", ATTEMPT),
    # policy settings
    (
        "change settings",
        "op-lead",
        lambda w, c: w.policy.change("op-lead", PolicyConfig(), "r"),
        "A-05",
        ATTEMPT,
    ),
    # library approvals
    ("apply", "auditor", lambda w, c: w.approvals.apply("auditor", b.application()), "A-05", ATTEMPT),
    (
        "approve",
        "analyst",
        lambda w, c: w.approvals.approve("analyst", c["applied"], b.record(c["now"])),
        "A-05",
        key("applied"),
    ),
    (
        "approve (L-03 rank)",
        "inspector",
        lambda w, c: w.approvals.approve("inspector", c["applied"], b.record(c["now"])),
        "L-03",
        key("applied"),
    ),
    (
        "approve urgently",
        "sergeant",
        lambda w, c: w.approvals.approve_urgently("sergeant", c["applied"], b.record(c["now"]), URGENCY),
        "L-10",
        key("applied"),
    ),
    (
        "reject",
        "op-lead",
        lambda w, c: w.approvals.reject("op-lead", c["applied"], "r"),
        "A-05",
        key("applied"),
    ),
    (
        "written rationale",
        "analyst",
        lambda w, c: w.approvals.record_written_rationale("analyst", c["approval"], "r"),
        "A-05",
        key("approval"),
    ),
    (
        "ratify",
        "inspector",
        lambda w, c: w.approvals.ratify("inspector", c["approval"], "r"),
        "L-10",
        key("approval"),
    ),
    (
        "review",
        "analyst",
        lambda w, c: w.approvals.review("analyst", c["approval"], ReviewOutcome.STOP, "r"),
        "A-05",
        key("approval"),
    ),
    (
        "vary",
        "analyst",
        lambda w, c: w.approvals.vary("analyst", c["approval"], b.record(c["now"]), "r"),
        "A-05",
        key("approval"),
    ),
    (
        "stop",
        "op-lead",
        lambda w, c: w.approvals.stop("op-lead", c["approval"], "r"),
        "A-05",
        key("approval"),
    ),
    ("expire", "analyst", lambda w, c: w.approvals.expire("analyst", c["approval"]), "A-05", key("approval")),
    ("list approvals", "auditor", lambda w, c: w.approvals.list("auditor"), "A-05", ATTEMPT),
    # libraries
    (
        "create library",
        "analyst",
        lambda w, c: w.libraries.create("analyst", "x", c["approval"]),
        "A-05",
        ATTEMPT,
    ),
    (
        "list contents",
        "outsider",
        lambda w, c: w.libraries.contents("outsider", c["library"]),
        "L-13",
        ATTEMPT,
    ),
    # probe endorsements
    (
        "endorse",
        "analyst",
        lambda w, c: w.endorsements.endorse("analyst", c["probe"], EndorsementKind.UNDER_16, "r"),
        "A-05",
        key("probe"),
    ),
    (
        "endorse (rank)",
        "sergeant",
        lambda w, c: w.endorsements.endorse("sergeant", c["probe"], EndorsementKind.HIGH_IMAGE_LEVEL, "r"),
        "P-08",
        key("probe"),
    ),
    (
        "technical advice",
        "auditor",
        lambda w, c: w.endorsements.record_technical_advice("auditor", c["probe"], "advice"),
        "A-05",
        key("probe"),
    ),
    # searches
    (
        "open search",
        "inspector",
        lambda w, c: w.searches.open("inspector", c["probe"], [LibrarySelection(str(c["library"]), "r")]),
        "A-05",
        ATTEMPT,
    ),
    (
        "approve search",
        "analyst",
        lambda w, c: w.searches.approve("analyst", c["request"], "r"),
        "A-05",
        key("request"),
    ),
    (
        "approve search (rank)",
        "sergeant",
        lambda w, c: w.searches.approve("sergeant", c["request"], "r"),
        "P-08",
        key("request"),
    ),
    (
        "reject search",
        "analyst",
        lambda w, c: w.searches.reject("analyst", c["request"], "r"),
        "A-05",
        key("request"),
    ),
    (
        "search library",
        "sro",
        lambda w, c: w.search(c["request"], c["library"], user="sro"),
        "A-05",
        key("request"),
    ),
    (
        "adjudicate",
        "op-lead",
        lambda w, c: w.searches.adjudicate("op-lead", c["request"], f"{c['library']}#2", False, "r"),
        "A-05",
        key("request"),
    ),
    (
        "match report",
        "inspector",
        lambda w, c: w.searches.issue_match_report("inspector", c["request"], f"{c['library']}#1"),
        "A-05",
        key("request"),
    ),
    (
        "dissemination",
        "sro",
        lambda w, c: w.searches.record_dissemination(
            "sro", c["request"], "R-1", Dissemination("CPS", "s.35", True)
        ),
        "A-05",
        key("request"),
    ),
    ("close", "admin", lambda w, c: w.searches.close("admin", c["request"], "r"), "A-05", key("request")),
    ("read search", "outsider", lambda w, c: w.searches.get("outsider", c["request"]), "L-13", ATTEMPT),
    # Unresolved Crime Cache
    (
        "add to cache",
        "analyst",
        lambda w, c: w.ucc.add("analyst", c["probe_outside_ucc"], [SearchGround.OFFENCE], "r"),
        "A-05",
        key("probe_outside_ucc"),
    ),
    (
        "add to cache (rank)",
        "sergeant",
        lambda w, c: w.ucc.add("sergeant", c["probe_outside_ucc"], [SearchGround.OFFENCE], "r"),
        "P-08",
        key("probe_outside_ucc"),
    ),
    (
        "review cache",
        "admin",
        lambda w, c: w.ucc.review("admin", c["probe"], ReviewOutcome.CONTINUE, "r"),
        "A-05",
        key("probe"),
    ),
    (
        "remove from cache",
        "auditor",
        lambda w, c: w.ucc.remove("auditor", c["probe"], "r"),
        "A-05",
        key("probe"),
    ),
    # policy exceptions
    (
        "record exception",
        "auditor",
        lambda w, c: w.exceptions.record("auditor", "d", "r", "a"),
        "A-05",
        ATTEMPT,
    ),
    (
        "review exception",
        "supt",
        lambda w, c: w.exceptions.review("supt", c["exception"], True, "n"),
        "A-05",
        key("exception"),
    ),
]


@pytest.mark.parametrize(("acting", "call", "rule", "where"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_A05_A01_the_wrong_person_is_refused_and_the_refusal_stored(
    ctx: dict[str, Any], acting: str, call: Call, rule: str, where: Callable[[dict[str, Any]], UUID] | None
) -> None:
    """A-05, A-01: the wrong person is refused and the refusal stored."""
    world: World = ctx["world"]
    target_id = where(ctx) if where is not None else None
    before = world.app.get(target_id).version if target_id is not None else None
    with pytest.raises(PolicyRefusal) as caught:
        call(world, ctx)
    assert rule in caught.value.rule_ids, caught.value
    if target_id is None:
        stored = world.app.get(caught.value.record.id)
    else:
        assert caught.value.record is None
        stored = world.app.get(target_id)
        assert stored.version == before + 1  # the refusal and nothing else
    assert stored.refusals[-1].actor.user_id == acting
    assert stored.refusals[-1].rule_ids == caught.value.rule_ids


def test_A05_a_disabled_users_command_is_denied_before_any_rule(ctx: dict[str, Any]) -> None:
    """A-05: a disabled users command is denied before any rule."""
    from rfr.application.errors import AccessDenied

    world: World = ctx["world"]
    with pytest.raises(AccessDenied):
        world.searches.close("analyst-2", ctx["request"], "closing")
