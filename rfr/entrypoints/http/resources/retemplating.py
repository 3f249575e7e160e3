"""Re-templating a library with another algorithm (T-02), run in the background and polled.

The job is stored (``rfr.application.services.retemplating``): any server process answers a
poll, and a job whose process ended is resumed by the same request made again, through any
process. The running stays in the process that took the job up: one re-templating at a time
per process (the cores belong to the engines' onnxruntime threads), under this process's runner
id, the one its bulk enrolments use (``ImportJobRunner``), whose lock says whether it lives.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter

from rfr.application.face_engine import UnknownAlgorithm
from rfr.application.services.access import Principal
from rfr.application.services.retemplating import DEFAULT_BATCH, RETEMPLATERS, Retemplating, RetemplatingView
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.problem_responses import problem_spec
from rfr.entrypoints.http.resources._import_jobs import ImportJobRunner
from rfr.entrypoints.http.resources._workflow import unprocessable

log = logging.getLogger("rfr.http")

LibraryId = Annotated[UUID, PathParameter(description="the library's id")]
Caller = NamedDependency[Principal]


class RetemplatingBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which algorithm to re-template the library with, and why (T-02).

    Attributes:
        algorithm: The algorithm's name as the deployment configures it (``dlib``, ``sface``, or
            one of the force's own); the server's names are in its error when it has no such one.
        reason: Why the library is re-templated, for the audit trail.
        batch_size: Images templated per recorded batch (smaller: finer progress and less work
            redone after a crash; larger: fewer events).
    """

    algorithm: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=500)] = DEFAULT_BATCH


class RetemplatingRunner:
    """Runs the jobs this process took up, one at a time, each in a background thread."""

    def __init__(self, runner: ImportJobRunner) -> None:
        self._runner = runner
        self._turn = threading.Lock()
        self._lock = threading.Lock()
        # The jobs with a thread in this process: a job taken up here whose thread stopped (an
        # error, the store down) is started again by the next request for it, not twice.
        self._active: set[str] = set()

    @property
    def runner_id(self) -> str:
        return self._runner.runner_id

    def start(self, retemplating: Retemplating, acting_user: str, job_id: str, batch: int) -> None:
        """Runs the job, which this process's runner has taken up, unless it runs here already."""
        with self._lock:
            if job_id in self._active:
                return
            self._active.add(job_id)
        # A daemon thread: a stopping server does not wait; every batch saved is whole, and the
        # job is resumed by asking for it again.
        threading.Thread(
            target=self._run,
            args=(retemplating, acting_user, job_id, batch),
            name=f"rfr-retemplate-{job_id}",
            daemon=True,
        ).start()

    def _run(self, retemplating: Retemplating, acting_user: str, job_id: str, batch: int) -> None:
        try:
            with self._turn:
                retemplating.run(acting_user, job_id, self.runner_id, batch=batch)
        except Exception:
            # The job stays open; asking for it again resumes it from the last batch saved, in
            # this process or, once this one has ended, in any.
            log.exception("re-templating job %s stopped", job_id)
        finally:
            with self._lock:
                self._active.discard(job_id)


def _retemplating(ctx: HttpContext) -> Retemplating:
    return ctx.services.retemplating


def _runner(ctx: HttpContext) -> RetemplatingRunner:
    imports = ctx.component("import-runner", lambda c: ImportJobRunner(c.services.import_runners))
    return ctx.component("retemplating-runner", lambda c: RetemplatingRunner(imports))


@post(
    "/libraries/{library_id:uuid}/retemplating",
    sync_to_thread=True,
    status_code=202,
    summary="Re-template a library with another algorithm (T-02)",
    responses={422: problem_spec("The deployment has no algorithm of that name")},
    **allow(*RETEMPLATERS.roles),
)
def start_retemplating(
    *,
    principal: Caller,
    retemplating: NamedDependency[Retemplating],
    runner: NamedDependency[RetemplatingRunner],
    library_id: FromPath[LibraryId],
    data: Annotated[
        RetemplatingBody,
        Body(
            examples=[
                Example(
                    value={
                        "algorithm": "sface",
                        "reason": "the force adopts YuNet + SFace (decision 2026/14)",
                        "batch_size": 32,
                    }
                )
            ]
        ),
    ],
) -> RetemplatingView:
    """Starts the job, or resumes the one under way to the same algorithm if no live server
    process runs it, and answers 202 with it; poll ``GET`` on the same path. The library stays
    searchable with its algorithm until every searchable image has a template of the new one,
    then is searched with the new one only, and the old templates are erased (R-05)."""
    try:
        view = retemplating.start(principal.user_id, library_id, data.algorithm, data.reason)
    except UnknownAlgorithm as unknown:
        raise unprocessable("algorithm", str(unknown)) from None
    if retemplating.take_up(principal.user_id, view.job_id, runner.runner_id):
        runner.start(retemplating, principal.user_id, view.job_id, data.batch_size)
        view = retemplating.get(principal.user_id, library_id)
    return view


@get(
    "/libraries/{library_id:uuid}/retemplating",
    sync_to_thread=True,
    summary="Poll a library's re-templating",
    **allow(*RETEMPLATERS.roles),
)
def get_retemplating(
    principal: Caller, retemplating: NamedDependency[Retemplating], library_id: FromPath[LibraryId]
) -> RetemplatingView:
    """The re-templating under way, else the last one: status (templating, erasing, completed,
    incomplete), whether a live process runs it, images examined and templated, and how many of
    the library's searchable images the new algorithm templates now."""
    return retemplating.get(principal.user_id, library_id)


ROUTES = [
    Router(
        path="/",
        route_handlers=[start_retemplating, get_retemplating],
        dependencies={"retemplating": use_case(_retemplating), "runner": use_case(_runner)},
        tags=["libraries"],
    )
]
