"""Policy exceptions (A-06, policy 12.3): a decision outside the policy, recorded with its
rationale and legal advice, and cited to the SRO, who reviews each one.

Anyone who works or governs cases records and reads them; only the SRO reviews.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import attrs
import msgspec
from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter, QueryParameter

from rfr.application.services.access import Principal
from rfr.application.services.exceptions import (
    EXCEPTION_READERS,
    RECORDERS,
    SRO,
    PolicyExceptions,
    PolicyExceptionView,
)
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.resources._workflow import Cursor, Name, PageSize, Statement

ExceptionId = Annotated[UUID, PathParameter(description="the policy exception's id")]
Caller = NamedDependency[Principal]
Exceptions = NamedDependency[PolicyExceptions]


class ExceptionBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A-06: the decision, its detailed rationale and the legal advice behind it; ``related_ids``
    name the records it concerns (search requests, probes, libraries).

    Attributes:
        decision: The decision taken outside the policy.
        rationale: The detailed rationale for it (A-06).
        legal_advice: The legal advice the decision rests on.
        related_ids: The ids of the records it concerns: search requests, probes, libraries.
    """

    decision: Statement
    rationale: Statement
    legal_advice: Statement
    related_ids: Annotated[list[Name], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)


class SroReviewBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The SRO's review of a policy exception (A-06, policy 12.3).

    Attributes:
        endorsed: Whether the SRO endorses the decision.
        notes: The SRO's notes on it, recorded with the review.
    """

    endorsed: bool
    notes: Statement


@attrs.frozen
class PolicyExceptionPage:
    """One page of exceptions; pass ``next_after`` as ``after`` for the next (null: last page).

    Attributes:
        items: The exceptions on this page, in the order they were recorded.
        next_after: The cursor of the next page (pass it as ``after``), or null on the last page.
    """

    items: list[PolicyExceptionView]
    next_after: int | None


def _exceptions(ctx: HttpContext) -> PolicyExceptions:
    return ctx.services.policy_exceptions


@post(
    "/policy-exceptions",
    sync_to_thread=True,
    summary="Record a policy exception (A-06)",
    **allow(*RECORDERS.roles),
)
def record_exception(
    principal: Caller,
    exceptions: Exceptions,
    data: Annotated[
        ExceptionBody,
        Body(
            examples=[
                Example(
                    value={
                        "decision": "Search a level 4 library without the usual Form 1 review",
                        "rationale": "Threat to life; the review board cannot sit within the hour",
                        "legal_advice": "Force solicitor: lawful under common law powers, see note 17",
                        "related_ids": ["5f0c2a1e-8d4b-4f7a-9a61-3b2d1c0e9f88"],
                    }
                )
            ]
        ),
    ],
) -> PolicyExceptionView:
    """Queued for the SRO's review at once. An empty decision, rationale or legal advice is
    refused under A-06 and the refusal recorded."""
    return exceptions.record(
        principal.user_id, data.decision, data.rationale, data.legal_advice, related_ids=data.related_ids
    )


@get(
    "/policy-exceptions",
    sync_to_thread=True,
    summary="List policy exceptions",
    **allow(*EXCEPTION_READERS.roles),
)
def list_exceptions(
    principal: Caller,
    exceptions: Exceptions,
    after: Cursor = 0,
    limit: PageSize = 50,
    awaiting_sro: Annotated[
        bool | None, QueryParameter(description="true: the SRO's queue; false: those reviewed")
    ] = None,
) -> PolicyExceptionPage:
    """In order of recording. The filter applies within each page, so a page may hold fewer
    than ``limit`` items and still have a next one."""
    page = exceptions.list(principal.user_id, after=after, limit=limit, awaiting_sro=awaiting_sro)
    return PolicyExceptionPage(list(page.items), page.next_after)


@get(
    "/policy-exceptions/{exception_id:uuid}",
    sync_to_thread=True,
    summary="Read a policy exception",
    **allow(*EXCEPTION_READERS.roles),
)
def get_exception(
    principal: Caller, exceptions: Exceptions, exception_id: FromPath[ExceptionId]
) -> PolicyExceptionView:
    return exceptions.get(principal.user_id, exception_id)


@post(
    "/policy-exceptions/{exception_id:uuid}/review",
    sync_to_thread=True,
    status_code=200,
    summary="SRO review of a policy exception (A-06)",
    **allow(*SRO.roles),
)
def review_exception(
    principal: Caller,
    exceptions: Exceptions,
    exception_id: FromPath[ExceptionId],
    data: Annotated[
        SroReviewBody,
        Body(
            examples=[Example(value={"endorsed": True, "notes": "Proportionate; debrief at the next board"})]
        ),
    ],
) -> PolicyExceptionView:
    """Endorsed or not, with notes; once only (a second review is refused under A-06)."""
    return exceptions.review(principal.user_id, exception_id, data.endorsed, data.notes)


ROUTES = [
    Router(
        path="/",
        route_handlers=[record_exception, list_exceptions, get_exception, review_exception],
        dependencies={"exceptions": use_case(_exceptions)},
        tags=["policy exceptions"],
    )
]
