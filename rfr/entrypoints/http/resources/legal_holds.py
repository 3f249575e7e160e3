"""Legal holds (R-04) on probes and libraries: placed and lifted by the Operational Lead or the
SRO, read by every operational role and Administrators (why: ``rfr.application.services.legal_holds``).

While a hold is in place, every purge of what it holds is refused: 403 ``policy-refusal``
naming R-04, recorded like every refusal (A-01). 403, not 409, because a hold is not a
conflicting write the caller can retry: the policy forbids the deletion until someone with
the authority lifts the hold. Placing a second hold, or lifting where there is none, is
refused the same way.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter

from rfr.application.services.access import Principal
from rfr.application.services.legal_holds import (
    HOLD_READERS,
    HOLDERS,
    HoldKind,
    HoldSubject,
    LegalHolds,
    LegalHoldView,
)
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.resources._workflow import Reason, ReasonBody

ProbeId = Annotated[UUID, PathParameter(description="the probe's id")]
LibraryId = Annotated[UUID, PathParameter(description="the library's id")]
Caller = NamedDependency[Principal]
Holds = NamedDependency[LegalHolds]


class HoldBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """R-04: which matter of policy 7.1(a) keeps the data, and the reason (case, complaint, reference).

    Attributes:
        kind: The matter that keeps the data: ``disclosure`` (CPIA 1996), ``complaint`` or
            ``conduct_investigation``.
        reason: The case, complaint or investigation, by name or reference; recorded.
    """

    kind: HoldKind
    reason: Reason


PLACE_EXAMPLE = Example(
    value={"kind": "disclosure", "reason": "Disclosure schedule of R v Smith (CPIA 1996); trial listed"}
)
LIFT_EXAMPLE = Example(value={"reason": "Trial concluded; no appeal lodged"})


def _holds(ctx: HttpContext) -> LegalHolds:
    return ctx.services.legal_holds


@get(
    "/probes/{probe_id:uuid}/legal-hold",
    sync_to_thread=True,
    summary="A probe's legal hold (R-04)",
    **allow(*HOLD_READERS.roles),
)
def probe_hold(principal: Caller, holds: Holds, probe_id: FromPath[ProbeId]) -> LegalHoldView:
    return holds.get(principal.user_id, HoldSubject.PROBE, probe_id)


@post(
    "/probes/{probe_id:uuid}/legal-hold",
    sync_to_thread=True,
    status_code=200,
    summary="Place a legal hold on a probe (R-04)",
    **allow(*HOLDERS.roles),
)
def hold_probe(
    principal: Caller,
    holds: Holds,
    probe_id: FromPath[ProbeId],
    data: Annotated[HoldBody, Body(examples=[PLACE_EXAMPLE])],
) -> LegalHoldView:
    """The probe, its faces and templates are not deleted, by hand or by a retention sweep,
    until the hold is lifted."""
    return holds.place(principal.user_id, HoldSubject.PROBE, probe_id, data.kind, data.reason)


@post(
    "/probes/{probe_id:uuid}/legal-hold/lift",
    sync_to_thread=True,
    status_code=200,
    summary="Lift a probe's legal hold (R-04)",
    **allow(*HOLDERS.roles),
)
def lift_probe_hold(
    principal: Caller,
    holds: Holds,
    probe_id: FromPath[ProbeId],
    data: Annotated[ReasonBody, Body(examples=[LIFT_EXAMPLE])],
) -> LegalHoldView:
    return holds.lift(principal.user_id, HoldSubject.PROBE, probe_id, data.reason)


@get(
    "/libraries/{library_id:uuid}/legal-hold",
    sync_to_thread=True,
    summary="A library's legal hold (R-04)",
    **allow(*HOLD_READERS.roles),
)
def library_hold(principal: Caller, holds: Holds, library_id: FromPath[LibraryId]) -> LegalHoldView:
    return holds.get(principal.user_id, HoldSubject.LIBRARY, library_id)


@post(
    "/libraries/{library_id:uuid}/legal-hold",
    sync_to_thread=True,
    status_code=200,
    summary="Place a legal hold on a library (R-04)",
    **allow(*HOLDERS.roles),
)
def hold_library(
    principal: Caller,
    holds: Holds,
    library_id: FromPath[LibraryId],
    data: Annotated[HoldBody, Body(examples=[PLACE_EXAMPLE])],
) -> LegalHoldView:
    """Holds every image of the library: none is purged until the hold is lifted."""
    return holds.place(principal.user_id, HoldSubject.LIBRARY, library_id, data.kind, data.reason)


@post(
    "/libraries/{library_id:uuid}/legal-hold/lift",
    sync_to_thread=True,
    status_code=200,
    summary="Lift a library's legal hold (R-04)",
    **allow(*HOLDERS.roles),
)
def lift_library_hold(
    principal: Caller,
    holds: Holds,
    library_id: FromPath[LibraryId],
    data: Annotated[ReasonBody, Body(examples=[LIFT_EXAMPLE])],
) -> LegalHoldView:
    return holds.lift(principal.user_id, HoldSubject.LIBRARY, library_id, data.reason)


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            probe_hold,
            hold_probe,
            lift_probe_hold,
            library_hold,
            hold_library,
            lift_library_hold,
        ],
        dependencies={"holds": use_case(_holds)},
        tags=["legal holds"],
    )
]
