"""The auditor's pages (A-02, A-03): any record's timeline and its state as of a time, and the
hash chain's verification.

Each page runs the same query as the API's ``/audit`` routes, through the same ``AuditService``:
the Auditor role is checked (by the gate, then by the domain, which also wants training), the
reason is required, and the query is recorded (an ``AuditAccess`` naming every event shown)
before anything is shown. The state as of a time is replayed from exactly the events that query
showed and recorded (the events up to that time), so it discloses nothing the record does not name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Annotated, Any
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError
from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template

from rfr.application.services.access import AuditService, Principal
from rfr.domain.people import Rank, Role
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, context_of, use_case
from rfr.entrypoints.web.forms import FormErrors, moment, record_id, text
from rfr.entrypoints.web.layout import page
from rfr.entrypoints.web.navigation import NavLink, role_names
from rfr.infrastructure.audit import replay
from rfr.infrastructure.persistence.chain import ChainHead

AUDITOR = allow(Role.AUDITOR, rule="A-03")
Query = Annotated[str, QueryParameter(max_length=4000)]


def _audit(ctx: HttpContext) -> AuditService:
    return ctx.services.audit


@attrs.frozen
class EventView:
    """One event as the timeline shows it: who, when, why and the rules it names."""

    version: int
    timestamp: str
    aggregate: str
    name: str
    who: str
    who_detail: str
    why: str
    rule_ids: tuple[str, ...]
    refused: bool
    command: str
    fields: str

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> EventView:
        topic = str(event.get("topic", ""))
        qualified = topic.rpartition(":")[2]
        aggregate, _, name = qualified.rpartition(".")
        attributes = dict(event.get("attributes") or {})
        actor = attributes.pop("actor", None) or {}
        reason = str(attributes.pop("reason", "") or "")
        command = str(attributes.get("command", "") or "")
        rules = tuple(dict.fromkeys(_rule_ids(attributes)))
        return cls(
            version=int(event.get("originator_version", 0)),
            timestamp=str(event.get("timestamp", "")),
            aggregate=aggregate or qualified,
            name=name or qualified,
            who=str(actor.get("user_id", "(unknown)")),
            who_detail=_describe(actor),
            why=reason,
            rule_ids=rules,
            refused="Refused" in name,
            command=command,
            fields=json.dumps(attributes, indent=2, sort_keys=True, ensure_ascii=False),
        )


def _rule_ids(value: Any) -> Iterator[str]:
    """Every rule id the event names, in ``rule_ids`` fields at any depth."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key == "rule_ids" and isinstance(inner, list | tuple):
                yield from (str(r) for r in inner)
            else:
                yield from _rule_ids(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _rule_ids(inner)


def _describe(actor: Mapping[str, Any]) -> str:
    parts = role_names(actor.get("roles") or [])
    rank = actor.get("rank")
    if rank is not None:
        try:
            parts.append(Rank(int(rank)).name.replace("_", " ").title())
        except (ValueError, TypeError):
            parts.append(str(rank))
    teams = sorted(actor.get("teams") or [])
    if teams:
        parts.append("teams " + ", ".join(teams))
    return "; ".join(parts)


def _forms(request: Request[Any, Any, Any], *, status: int = 200, **context: Any) -> Template:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return page(request, "audit/index.html", title="Audit trail", status=status, **context)


@get("/audit", summary="Audit trail", sync_to_thread=False, **AUDITOR)
def audit_home(request: Request[Any, Any, Any], record: Query = "") -> Template:
    """The auditor's questions: a record's timeline, its state as of a time, the chain's verification;
    ``record`` fills in the record asked about (nothing is queried until the form is sent)."""
    return _forms(request, values={"record": record.strip()})


@get("/audit/timeline", summary="A record's timeline", sync_to_thread=True, **AUDITOR)
def timeline(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    audit: NamedDependency[AuditService],
    *,
    record: Query = "",
    reason: Query = "",
    until: Query = "",
) -> Template:
    """Every event of one record, oldest first (up to ``until``), and its state as of then."""
    errors = FormErrors()
    aggregate_id = record_id(record, "record", errors)
    why = text(reason, "reason", errors, label="why you are looking")
    as_of = moment(until, "until", errors, to_end_of_second=True)
    if errors or aggregate_id is None:
        values = {"record": record, "reason": reason, "until": until}
        return _forms(request, status=400, errors=errors.by_field, values=values, form="timeline")
    answer = audit.history(principal.user_id, aggregate_id, why, until=as_of)
    events = [EventView.of(e) for e in answer.result]
    state = _state(request, aggregate_id, as_of)
    return page(
        request,
        "audit/timeline.html",
        title=f"Timeline of {aggregate_id}",
        aggregate_id=str(aggregate_id),
        aggregate=events[0].aggregate if events else "",
        record=record.strip(),
        events=events,
        state=state,
        until=as_of.isoformat() if as_of else None,
        reason=why,
        access_id=answer.access_id,
    )


def _state(request: Request[Any, Any, Any], aggregate_id: UUID, as_of: Any) -> str | None:
    try:
        replayed = replay(context_of(request.app).app, aggregate_id, as_of)
    except AggregateNotFoundError:
        return None
    return json.dumps(replayed["state"], indent=2, sort_keys=True, ensure_ascii=False)


@get("/audit/verify", summary="Verify the hash chain", sync_to_thread=True, **AUDITOR)
def verify(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    audit: NamedDependency[AuditService],
    *,
    reason: Query = "",
    anchor: Query = "",
) -> Template:
    """Recomputes the hash chain over every stored event (A-02), optionally through a published head."""
    errors = FormErrors()
    why = text(reason, "verify_reason", errors, label="why you are verifying")
    published = anchor.strip()
    if published:
        try:
            ChainHead.parse(published)
        except ValueError as e:
            errors.add("anchor", f"A published head reads COUNT:HASH ({e}).")
    if errors:
        values = {"verify_reason": reason, "anchor": anchor}
        return _forms(request, status=400, errors=errors.by_field, values=values, form="verify")
    answer = audit.verify(principal.user_id, why, anchor=published or None)
    return page(
        request,
        "audit/verify.html",
        title="Hash chain verification",
        result=answer.result,
        anchor=published,
        reason=why,
        access_id=answer.access_id,
    )


ROUTES = [
    Router(
        path="/",
        route_handlers=[audit_home, timeline, verify],
        dependencies={"audit": use_case(_audit)},
    )
]
NAV = [NavLink(audit_home, "Audit trail", order=80)]
