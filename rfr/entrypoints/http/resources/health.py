"""Liveness and the catalogue of problem types, both public; the operators' health details.

``GET /health`` tells anyone only whether the event store reads. ``GET /health/details`` is for
Administrators: the store, the log's head, the chain head, the projections' positions and the
vector indexes this process holds, with how far each lags the log. Both cost bounded time: a
few single-row reads of the store and this process's memory, never a log scan or an index load.
"""

from __future__ import annotations

import logging
import os

import attrs
from litestar import Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from rfr.application.app import RfrApplication
from rfr.application.services.index_catch_up import next_start
from rfr.domain.people import Role
from rfr.entrypoints.http.access_control import allow, public
from rfr.entrypoints.http.context import STATE_KEY, HttpContext
from rfr.entrypoints.http.problems import PROBLEM_TYPES, ProblemType
from rfr.infrastructure.persistence.chain import ChainedRecorder
from rfr.infrastructure.persistence.environment import MEMORY_MODULE, POSTGRES_MODULE, SQLITE_MODULE

log = logging.getLogger(__name__)

_STORE_KINDS = {SQLITE_MODULE: "sqlite", POSTGRES_MODULE: "postgres", MEMORY_MODULE: "memory"}


@attrs.frozen
class Health:
    """Whether the service can read its event store.

    Attributes:
        status: ``ok`` (status 200) or ``unavailable`` (status 503).
    """

    status: str


@attrs.frozen
class ChainHeadView:
    """The head of the audit hash chain (ADR 0005): what ``rfr audit head`` prints.

    Attributes:
        count: Number of events the chain links (one link per stored event).
        hash: SHA-256 of the last link, 64 hexadecimal digits.
        text: ``COUNT:HASH``, the form ``rfr audit head`` prints and ``rfr audit verify --anchor``
            takes. Read here without flushing the store to disk; to publish an anchor, take it
            from ``rfr audit head`` or ``GET /audit/head`` (Auditors, recorded).
    """

    count: int
    hash: str
    text: str


@attrs.frozen
class ProjectionHealth:
    """One projection: read-side tables kept from the event log (ADR 0013), as the store holds it.

    Attributes:
        name: The projection's name, as ``rfr projections status`` prints it.
        version: The version its tables were built for, as stored; null when it is not installed.
        expected_version: The version this server's code writes; a store holding another one is
            rebuilt from the log on the next start.
        position: The last notification id applied to its tables; null when it is not installed.
        behind: ``log_head`` minus ``position`` (never below 0): notification ids stored and not
            yet applied. 0 in normal operation, since projections are written in the transaction
            that stores the events; null when it is not installed.
    """

    name: str
    version: int | None
    expected_version: int
    position: int | None
    behind: int | None


@attrs.frozen
class IndexHealth:
    """One vector index this server process holds in memory (ADR 0014): a library's templates of
    one algorithm, a projection of their events caught up by each search (``index_catch_up``).

    Attributes:
        library_id: The library whose templates the index holds.
        algorithm_id: The algorithm that made them (T-01).
        saved_position: The notification id saved with the index in its files (the head of the log
            when the index last applied the log's template events), as this process last read or
            wrote the files; null when none is saved yet (an index never caught up, or rebuilt from
            the biometric store).
        reached_position: The notification id this process's next catch-up reads after: the
            position reached in memory by catch-ups whose events changed nothing (ADR 0014,
            addendum) when it was reached from ``saved_position``, else ``saved_position``; 0
            when none is saved (the next catch-up reads the whole log).
        lag: The index lag: ``log_head`` minus ``reached_position`` (never below 0), the
            notification ids after the reached position up to the log's head as this report read
            it. The next search of this library in this process reads past them, applying the
            template events among them, before it searches. Every stored event counts, a search's
            own included: right after a search it is the number of events that search stored.
            An exact count of notifications with SQLite and in memory; with PostgreSQL an upper
            bound (a rolled back write leaves a gap in the ids). Computed from what this process
            holds: if another process has since saved another position with the index, the next
            search starts from that one. Null when the log head could not be read.
    """

    library_id: str
    algorithm_id: str
    saved_position: int | None
    reached_position: int
    lag: int | None


@attrs.frozen
class HealthDetails:
    """The operators' view of this server process: the event store, the chain, the projections
    and the vector indexes it holds. No personal data, no secret, no connection string.

    Reading it costs bounded time: three small reads of the store (the log's head, the chain head,
    the projections' positions, one after the other, not in one transaction) and this process's
    memory; no log scan, no index file read or loaded. Each process behind one port (``rfr serve
    --workers N``) answers for itself: ``process_id`` tells them apart.

    Attributes:
        status: ``ok`` when the store answered and holds its chain head, ``unavailable``
            otherwise; the answer is 200 either way (``GET /health`` answers 503 for monitors).
        process_id: The operating system's id of the server process that answered.
        store: The event store this process uses: ``sqlite``, ``postgres`` or ``memory``
            (``RFR_PERSISTENCE``); ``other`` for a store built outside this configuration.
        store_answers: Whether the store answered the reads below; false: ``log_head``,
            ``chain_head`` and each lag are null and ``projections`` is empty.
        log_head: The highest notification id in the event log (0 for an empty log).
        chain_head: The audit hash chain's head; null when the store did not answer or its head
            is missing (then run ``rfr audit verify``).
        projections: Every projection this server's code keeps, by name.
        indexes: The vector indexes this process holds in memory (opened, written or rebuilt
            here since it started), by library and algorithm. Indexes only on disk, or only in
            other processes, are not listed and none is opened to answer: the list is empty until
            this process has enrolled into or searched a library.
    """

    status: str
    process_id: int
    store: str
    store_answers: bool
    log_head: int | None
    chain_head: ChainHeadView | None
    projections: list[ProjectionHealth]
    indexes: list[IndexHealth]


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


@get(
    "/health/details",
    summary="Health details for operators",
    tags=["service"],
    sync_to_thread=True,
    **allow(Role.ADMINISTRATOR),
)
def health_details(state: State) -> HealthDetails:
    """The event store, the log and chain heads, each projection's position and the vector indexes
    this process holds with their lag behind the log (see ``HealthDetails``); bounded in time."""
    return details(state[STATE_KEY])


def details(ctx: HttpContext) -> HealthDetails:
    """``HealthDetails`` of this process, read as the route reads them."""
    app = ctx.app
    log_head: int | None = None
    chain = None
    positions: dict[str, tuple[int, int]] = {}
    answers = True
    try:
        # The log's head first: a write after it only makes a position newer, never a lag wrong.
        log_head = app.recorder.max_notification_id() or 0
        positions = app.recorder.projection_positions()
        recorder = app.recorder
        # No flush to disk: a report, not an anchor to publish.
        chain = recorder.chain_head(durable=False) if isinstance(recorder, ChainedRecorder) else None
    except Exception as exc:
        # The type only: a driver's message may name the database's host.
        log.warning("health details: the event store did not answer (%s)", type(exc).__name__)
        answers, log_head, chain, positions = False, None, None, {}
    return HealthDetails(
        status="ok" if answers and chain is not None else "unavailable",
        process_id=os.getpid(),
        store=_store_kind(app),
        store_answers=answers,
        log_head=log_head,
        chain_head=None if chain is None else ChainHeadView(chain.count, chain.hash, str(chain)),
        projections=_projections(app, positions, log_head) if answers else [],
        indexes=_indexes(ctx, log_head),
    )


def _store_kind(app: RfrApplication) -> str:
    for kind in type(app.recorder).__mro__:
        if kind.__module__ in _STORE_KINDS:
            return _STORE_KINDS[kind.__module__]
    return "other"


def _projections(
    app: RfrApplication, positions: dict[str, tuple[int, int]], log_head: int | None
) -> list[ProjectionHealth]:
    found = []
    for projection in sorted(app.projections, key=lambda p: p.name):
        version, position = positions.get(projection.name, (None, None))
        behind = None if position is None or log_head is None else max(0, log_head - position)
        found.append(ProjectionHealth(projection.name, version, projection.version, position, behind))
    return found


def _indexes(ctx: HttpContext, log_head: int | None) -> list[IndexHealth]:
    """The indexes this process holds, from memory only (``IndexRegistry.opened``)."""
    # The biometrics as built so far: asking ``services.biometrics`` would load the models.
    biometrics = ctx.services.built_biometrics
    registry = getattr(biometrics, "indexes", None)
    opened = getattr(registry, "opened", None)
    if not callable(opened):
        return []
    found = []
    for index in opened():
        reached = next_start(ctx.app, registry, index.library_id, index.algorithm_id, index.position)
        lag = None if log_head is None else max(0, log_head - reached)
        found.append(IndexHealth(index.library_id, index.algorithm_id, index.position, reached, lag))
    return found


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


ROUTES = [health, health_details, problem_types, problem_type]
