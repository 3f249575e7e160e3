"""The audit trail, for Auditors only (A-03); every query here is itself recorded before it answers.

``reason`` is required on every query: the record of the query says why it was made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, Parameter

from rfr.application.services.access import AuditAnswer, AuditService, Principal
from rfr.domain.people import Role
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.infrastructure.persistence.chain import ChainHead

Reason = Annotated[str, Parameter(min_length=1, max_length=2000, description="why this query is made")]


def _audit(ctx: HttpContext) -> AuditService:
    return ctx.services.audit


@get(
    "/audit/verify",
    summary="Verify the hash chain (A-02)",
    sync_to_thread=True,
    **allow(Role.AUDITOR, rule="A-03"),
)
def verify_chain(
    principal: NamedDependency[Principal],
    audit: NamedDependency[AuditService],
    reason: Reason,
    anchor: Annotated[str | None, Parameter(description="a published head, COUNT:HASH")] = None,
) -> AuditAnswer:
    """Recompute the hash chain over every stored event (A-02); ``ok`` false names the first break."""
    if anchor is not None:
        try:
            ChainHead.parse(anchor)
        except ValueError as e:
            raise ValidationException(
                str(e), extra=[{"key": "anchor", "source": "query", "message": str(e)}]
            ) from None
    return audit.verify(principal.user_id, reason, anchor=anchor)


@get(
    "/audit/head",
    summary="The chain head, to publish",
    sync_to_thread=True,
    **allow(Role.AUDITOR, rule="A-03"),
)
def chain_head(
    principal: NamedDependency[Principal], audit: NamedDependency[AuditService], reason: Reason
) -> AuditAnswer:
    """The chain head (COUNT:HASH), to publish outside the system as an anchor."""
    return audit.head(principal.user_id, reason)


@get(
    "/audit/aggregates/{aggregate_id:uuid}/events",
    summary="One record's events (A-03)",
    sync_to_thread=True,
    **allow(Role.AUDITOR, rule="A-03"),
)
def aggregate_events(
    principal: NamedDependency[Principal],
    audit: NamedDependency[AuditService],
    aggregate_id: FromPath[UUID],
    reason: Reason,
    until: Annotated[datetime | None, Parameter(description="only events up to this time")] = None,
) -> AuditAnswer:
    """The stored events of one aggregate, oldest first (optionally up to ``until``; no zone: UTC)."""
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return audit.history(principal.user_id, aggregate_id, reason, until=until)


ROUTES = [
    Router(
        path="/",
        route_handlers=[verify_chain, chain_head, aggregate_events],
        dependencies={"audit": use_case(_audit)},
        tags=["audit"],
    )
]
