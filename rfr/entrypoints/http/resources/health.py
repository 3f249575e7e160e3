"""Liveness and the catalogue of problem types; both public."""

from __future__ import annotations

import attrs
from litestar import Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from rfr.entrypoints.http.access_control import public
from rfr.entrypoints.http.context import STATE_KEY
from rfr.entrypoints.http.problems import PROBLEM_TYPES, ProblemType
from rfr.infrastructure.persistence.chain import ChainedRecorder


@attrs.frozen
class Health:
    """Whether the service can read its event store.

    Attributes:
        status: ``ok`` (status 200) or ``unavailable`` (status 503).
    """

    status: str


@attrs.frozen
class ProblemTypeView:
    """One problem type of RFC 9457, as its ``type`` URI names it.

    Attributes:
        type: The type's URI, relative to the API: ``/problems/<slug>``, as problems carry it.
        title: The type's fixed title, as problems of the type carry it.
        status: The HTTP status problems of this type are sent with (image rejections vary:
            see ``meaning``).
        meaning: When the API answers with this type, and what its extensions say.
    """

    type: str
    title: str
    status: int
    meaning: str


@get(
    "/health",
    responses={503: ResponseSpec(Health, description="The event store cannot be read")},
    summary="Liveness",
    tags=["service"],
    sync_to_thread=True,
    **public(),
)
def health(state: State) -> Response[Health]:
    """Answers 200 while the event store can be read, 503 otherwise; says nothing more to anyone."""
    recorder = state[STATE_KEY].app.recorder
    try:
        # A read, never a flush to disk: anyone may call this route.
        readable = isinstance(recorder, ChainedRecorder) and recorder.chain_head(durable=False) is not None
    except Exception:
        readable = False
    return Response(Health("ok" if readable else "unavailable"), status_code=200 if readable else 503)


@get("/problems", summary="Every problem type", tags=["service"], sync_to_thread=False, **public())
def problem_types() -> list[ProblemTypeView]:
    """Every problem ``type`` this API returns, with its status and meaning (RFC 9457)."""
    return [_describe(p) for p in PROBLEM_TYPES.values()]


@get("/problems/{slug:str}", summary="One problem type", tags=["service"], sync_to_thread=False, **public())
def problem_type(slug: FromPath[str]) -> ProblemTypeView:
    """What one problem ``type`` URI means."""
    kind = PROBLEM_TYPES.get(slug)
    if kind is None:
        raise NotFoundException(f"no problem type {slug!r}")
    return _describe(kind)


def _describe(kind: ProblemType) -> ProblemTypeView:
    return ProblemTypeView(type=kind.uri, title=kind.title, status=kind.status, meaning=kind.meaning)


ROUTES = [health, problem_types, problem_type]
