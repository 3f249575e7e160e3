"""A usage report recomputed the slow way: every event of the log, in order, with the domain's
own state at the end of the period (the implementation before the usage projection).

The report reads the usage projection instead (issue 9); the tests hold both to the same
sections for many periods. What each event counts is ``usage_facts`` in both; what differs,
and is checked here, is everything the projection does to avoid the log: the period's bounds
on stored times, the grounds of a request taken from its probe, request outcomes from the
times they were reached, the libraries by the end, and the candidates for overdue reviews.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID

from rfr.application.app import RfrApplication
from rfr.application.projections.usage_counts import usage_facts
from rfr.domain.library_approval import LibraryApproval
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
    counts: dict[str, Counter[str]] = {}
    opened: list[UUID] = []
    for notification in app.recorder.select_notifications(start=1, limit=10**9):
        event = app.mapper.to_domain_event(notification)
        if event.timestamp > end or (event.timestamp == end and not real_time):
            continue
        states[event.originator_id] = event.mutate(states.get(event.originator_id))
        if start is not None and event.timestamp < start:
            continue
        for measure, key, n in usage_facts(event):
            counts.setdefault(measure, Counter())[key] += n
        if isinstance(event, SearchRequest.Opened):
            opened.append(event.originator_id)
            probe: ProbeImage = states[UUID(event.probe_id)]
            for ground in probe.form.grounds:
                counts.setdefault("requests_by_ground", Counter())[ground.value] += 1

    def total(name: str) -> int:
        return counts.get(name, Counter())[""]

    def by(name: str) -> dict[str, int]:
        found = counts.get(name, Counter())
        return {k: found[k] for k in sorted(found)}

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
    outcomes["refused_to_open"] = total("requests_refused")

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

    def keyed(name: str, keys: tuple[str, ...]) -> dict[str, int]:
        found = counts.get(name, Counter())
        return {k: found[k] for k in keys}

    return {
        "searches": {
            "requests_opened": total("requests"),
            "requests_by_purpose": by("requests_by_purpose"),
            "requests_by_ground": by("requests_by_ground"),
            "requests_by_probe_level": by("requests_by_probe_level"),
            "requests_by_user": by("requests_by_user"),
            "request_outcomes": {
                k: outcomes[k]
                for k in ("viable_match", "no_viable_match", "not_searched", "rejected", "refused_to_open")
            },
            "library_searches": total("library_searches"),
            "by_library": by("by_library"),
            "by_library_level": by("by_library_level"),
            "by_algorithm": by("by_algorithm"),
            "by_searcher": by("by_searcher"),
            "library_searches_refused": total("library_searches_refused"),
            "potential_matches": total("potential_matches"),
            "adjudications": keyed("adjudications", ("viable", "not_viable")),
            "match_reports": total("match_reports"),
            "disseminations": total("disseminations"),
            "ucc_rescreens": total("ucc_rescreens"),
            "ucc_rescreen_viable_matches": total("ucc_rescreen_viable_matches"),
            "library_names": {str(s.id): s.name for s in sorted(libraries, key=lambda s: str(s.id))},
        },
        "approvals": {
            "library": keyed(
                "library_approvals",
                (
                    "applied",
                    "granted",
                    "granted_urgently",
                    "awaiting_superintendent",
                    "rejected",
                    "ratified",
                    "varied",
                    "stopped",
                    "expired",
                ),
            ),
            "library_reviews": keyed("library_reviews", ("continue", "vary", "stop")),
            "search": keyed("search_approvals", ("granted", "rejected")),
            "ucc": keyed("ucc", ("added", "reviewed", "removed")),
        },
        "deletions": {
            "probes_purged": total("probes_purged"),
            "library_images_purged": total("library_images_purged"),
            "templates_deleted": total("templates_deleted"),
            "library_images_retention_expired": total("library_images_retention_expired"),
        },
        "overdue_reviews": {
            "as_of": _iso(as_of),
            "library_approvals": sorted(approvals, key=lambda i: (i["due"], i["id"])),
            "ucc": sorted(cache, key=lambda i: (i["due"], i["id"])),
        },
        "refusals": {
            "total": total("refusals"),
            "by_rule": by("refusals_by_rule"),
            "by_command": by("refusals_by_command"),
        },
        "reports": {"run_on_demand": total("reports_run"), "delivered": total("reports_delivered")},
    }
