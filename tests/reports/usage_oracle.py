"""A usage report recomputed the slow way: every event of the log, in order, with the domain's
own state at the end of the period (the implementation before the usage projection).

The report reads the usage projection instead (issue 9); the tests hold both to the same
sections for many periods. What each event counts (``usage_facts``) and how the sections are
laid out (``report_sections``) are shared; what is recomputed here, and so checked, is
everything the projection does to avoid the log: the period's bounds on stored times, the
grounds of a request taken from its probe, request outcomes from the times they were reached,
the libraries by the end, and the candidates for overdue reviews.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID

from rfr.application.app import RfrApplication
from rfr.application.projections.usage_counts import micros, usage_facts
from rfr.application.services.usage_reports import (
    TIMELINE_MEASURES,
    Counts,
    awaiting_item,
    in_cache,
    report_sections,
    timeline_frame,
    timeline_section,
)
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.policy_exception import PolicyException
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.search_request import RequestStatus, SearchRequest


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def replayed_report(
    app: RfrApplication, *, start: datetime | None, end: datetime, now: datetime, real_time: bool
) -> dict[str, Any]:
    """The sections of the report of ``[start, end)`` (``]`` when ``real_time``) from the log."""
    states: dict[UUID, Any] = {}
    facts: list[tuple[str, str, int]] = []
    # (when, measure, key, n): the same facts with their moments, for the timeline.
    timed: list[tuple[datetime, str, str, int]] = []
    opened: list[UUID] = []
    opened_at: dict[UUID, datetime] = {}
    for notification in app.recorder.select_notifications(start=1, limit=10**9):
        event = app.mapper.to_domain_event(notification)
        if event.timestamp > end or (event.timestamp == end and not real_time):
            continue
        states[event.originator_id] = event.mutate(states.get(event.originator_id))
        if start is not None and event.timestamp < start:
            continue
        these = usage_facts(event)
        if isinstance(event, SearchRequest.Opened):
            opened.append(event.originator_id)
            opened_at[event.originator_id] = event.timestamp
            probe: ProbeImage = states[UUID(event.probe_id)]
            these += [("requests_by_ground", ground.value, 1) for ground in probe.form.grounds]
        facts += these
        timed += [(event.timestamp, *fact) for fact in these]

    outcomes: Counter[str] = Counter()
    for request_id in opened:
        request: SearchRequest = states[request_id]
        if request.status is RequestStatus.REJECTED:
            outcomes["rejected"] += 1
        elif request.has_viable_match:
            outcomes["viable_match"] += 1
        elif request.searched_library_ids:
            outcomes["no_viable_match"] += 1
        else:
            outcomes["not_searched"] += 1
    outcomes["refused_to_open"] = sum(n for measure, _, n in facts if measure == "requests_refused")

    libraries = [s for s in states.values() if isinstance(s, ReferenceLibrary)]
    names = {s.approval_id: s.name for s in libraries}
    as_of = min(end, now)
    approvals = [
        {
            "id": str(a.id),
            "label": names.get(str(a.id), a.application.library_name),
            "due": _iso(a.review_due),
        }
        for a in states.values()
        if isinstance(a, LibraryApproval) and a.review_overdue(as_of)
    ]
    cache = [
        {"id": str(p.id), "label": f"tier {p.ucc.tier}", "due": _iso(p.ucc.review_due)}
        for p in states.values()
        if isinstance(p, ProbeImage) and p.ucc_review_overdue(as_of)
    ]
    overdue = {
        "as_of": _iso(as_of),
        "library_approvals": sorted(approvals, key=lambda i: (i["due"], i["id"])),
        "ucc": sorted(cache, key=lambda i: (i["due"], i["id"])),
    }
    outcome_keys = ("viable_match", "no_viable_match", "not_searched", "rejected", "refused_to_open")

    awaiting = [
        awaiting_item(e) for e in states.values() if isinstance(e, PolicyException) and e.awaiting_sro
    ]
    first = min((when for when, *_ in timed), default=None)
    frame = timeline_frame(start, end, first)
    counted = (
        [(frame.index(micros(when)), m, k, n) for when, m, k, n in timed if m in TIMELINE_MEASURES]
        if frame
        else []
    )
    timeline = timeline_section(
        frame,
        counted,
        [(frame.index(micros(opened_at[r])), _outcome(states[r])) for r in opened] if frame else [],
    )
    return report_sections(
        Counts(facts),
        {k: outcomes[k] for k in outcome_keys},
        {str(s.id): s.name for s in libraries},
        overdue,
        in_ucc=sum(1 for p in states.values() if isinstance(p, ProbeImage) and in_cache(p)),
        awaiting_sro=sorted(awaiting, key=lambda i: (i["since"], i["id"])),
        timeline=timeline,
    )


def _outcome(request: SearchRequest) -> str:
    if request.status is RequestStatus.REJECTED:
        return "rejected"
    if request.has_viable_match:
        return "viable_match"
    if request.searched_library_ids:
        return "no_viable_match"
    return "not_searched"
