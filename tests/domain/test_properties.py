"""Properties over many command sequences: refusals change nothing but the refusal record (A-01),
progressive order (S-02), no search of an under-13 probe (P-03), and replay gives equal state."""

from __future__ import annotations

import copy

from domain_builders import (
    ALG,
    ANALYST,
    CONFIG,
    INSPECTOR,
    OP_LEAD,
    OUTSIDER,
    SERGEANT,
    SRO,
    SUPERINTENDENT,
    T0,
    application,
    approvals_of,
    at,
    candidates_for,
    holdings,
    open_request,
    ready_probe,
    record,
    searchable_library,
)
from eventsourcing.application import Application
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.forms import LibraryKind, ReviewOutcome
from rfr.domain.images import ImageLevel, PerceivedAgeBand
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.rules_probe import EndorsementKind
from rfr.domain.rules_search import progressive_order
from rfr.domain.search_terms import Urgency, UrgencyBasis

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACTORS = st.sampled_from([ANALYST, OUTSIDER, SERGEANT, INSPECTOR, SUPERINTENDENT, SRO, OP_LEAD])
MAPPER = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def replay(aggregate, events):
    """Rebuild through the stored (JSON) form, as the event store would."""
    rebuilt = None
    for event in events:
        rebuilt = MAPPER.to_domain_event(MAPPER.to_stored_event(event)).mutate(rebuilt)
    return rebuilt


def approval_command(draw, approval: LibraryApproval):
    actor = draw(ACTORS)
    day = draw(st.integers(0, 60))
    name = draw(
        st.sampled_from(["approve", "approve_urgent", "reject", "stop", "review", "vary", "ratify", "expire"])
    )
    when = at(day)
    commands = {
        "approve": lambda: approval.approve(actor, when, record(when), CONFIG),
        "approve_urgent": lambda: approval.approve_urgently_as_inspector(
            actor, when, record(when), Urgency(UrgencyBasis.RISK_TO_LIFE_OR_HARM, "risk"), CONFIG
        ),
        "reject": lambda: approval.reject(actor, when, "no"),
        "stop": lambda: approval.stop(actor, when, "end", CONFIG),
        "review": lambda: approval.review(
            actor, when, ReviewOutcome.CONTINUE, "ok", CONFIG, next_review_due=when + (at(30) - T0)
        ),
        "vary": lambda: approval.vary(actor, when, record(when), "vary", CONFIG),
        "ratify": lambda: approval.ratify(actor, when, "continue"),
        "expire": lambda: approval.expire(actor, when, CONFIG),
    }
    return commands[name]


@FAST
@given(st.data(), st.sampled_from(list(LibraryKind)))
def test_A01_refused_commands_change_nothing_but_the_refusal_record_and_replay_is_equal(data, kind):
    """A-01: refused commands change nothing but the refusal record and replay is equal."""
    approval = LibraryApproval.apply_for(ANALYST, T0, application(kind))
    for _ in range(data.draw(st.integers(1, 8))):
        command = approval_command(data.draw, approval)
        before = copy.deepcopy(dict(approval.state()))
        refusals, events = len(approval.refusals), len(approval.pending_events)
        try:
            command()
        except PolicyRefusal as refusal:
            assert dict(approval.state()) == before
            assert len(approval.refusals) == refusals + 1
            assert len(approval.pending_events) == events + 1
            assert approval.refusals[-1].rule_ids == refusal.rule_ids
    rebuilt = replay(approval, approval.pending_events)
    assert rebuilt.state() == approval.state() and rebuilt.refusals == approval.refusals


@FAST
@given(
    levels=st.lists(st.sampled_from(list(ImageLevel)), min_size=1, max_size=4),
    attempts=st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=8),
    urgent=st.booleans(),
)
def test_S02_progressive_order_holds_for_any_libraries_and_results(levels, attempts, urgent):
    """S-02: progressive order holds for any libraries and results."""
    probe = ready_probe()
    pairs = [
        searchable_library(name=f"L{i}", level=level, purposes=frozenset(probe.form.purposes))
        for i, level in enumerate(levels)
    ]
    urgency = Urgency(UrgencyBasis.RISK_TO_LIFE_OR_HARM, "risk to life", search_all=True) if urgent else None
    request = open_request(probe, *pairs, urgency=urgency)
    if request.required_approvals:
        request.approve(INSPECTOR, T0, "approved for the property test", approvals=approvals_of(request))
    level_of = {str(lib.id): level for (_, lib), level in zip(pairs, levels, strict=True)}
    for index, viable in attempts:
        approval, library = pairs[index % len(pairs)]
        target = str(library.id)
        expected = (
            progressive_order(
                level_of[target],
                list(level_of.items()),
                set(request.searches),
                {request.candidate_list[a.match_id].library_id for a in request.viable_matches},
                urgency,
            ).allowed
            and target not in request.searches
        )
        try:
            request.search_library(
                ANALYST,
                T0,
                probe=probe,
                library=library,
                holdings=holdings(library),
                approval=approval,
                algorithm_id=ALG,
                candidates=candidates_for(library, 1),
                config=CONFIG,
            )
            searched = True
        except PolicyRefusal:
            searched = False
        assert searched == expected
        if searched and viable:
            request.adjudicate(ANALYST, T0, f"{target}#1", True, "match", approvals=approvals_of(request))
        if searched and not urgent:
            lower = [lib for lib, level in level_of.items() if level < level_of[target]]
            assert all(lib in request.searches for lib in lower)
    assert replay(request, request.pending_events).state() == request.state()


@FAST
@given(
    steps=st.lists(
        st.sampled_from(["reassess_u13", "reassess_adult", "reassess_13_15", "endorse", "search", "open"]),
        max_size=8,
    )
)
def test_P03_no_sequence_of_commands_lets_an_under_13_probe_be_searched(steps):
    probe = ready_probe()
    pair = searchable_library()
    request = open_request(probe, pair)
    bands = {
        "reassess_u13": PerceivedAgeBand.UNDER_13,
        "reassess_adult": PerceivedAgeBand.ADULT,
        "reassess_13_15": PerceivedAgeBand.AGE_13_15,
    }
    for day, step in enumerate(steps, start=1):
        when = at(day / 10)
        try:
            if step in bands:
                probe.reassess_perceived_age(ANALYST, when, bands[step], "second look")
            elif step == "endorse":
                probe.endorse(INSPECTOR, when, EndorsementKind.UNDER_16, "endorsed", CONFIG)
            elif step == "open":
                request = open_request(probe, pair, when=when)
            else:
                was_under_13 = probe.perceived_age is PerceivedAgeBand.UNDER_13
                request.search_library(
                    ANALYST,
                    when,
                    probe=probe,
                    library=pair[1],
                    holdings=holdings(pair[1], when),
                    approval=pair[0],
                    algorithm_id=ALG,
                    candidates=candidates_for(pair[1], 1),
                    config=CONFIG,
                )
                assert not was_under_13
        except PolicyRefusal as refusal:
            if step == "search" and probe.perceived_age is PerceivedAgeBand.UNDER_13:
                assert "P-03" in refusal.rule_ids
    assert replay(probe, probe.pending_events).state() == probe.state()
