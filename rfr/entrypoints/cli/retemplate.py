"""`rfr retemplate LIBRARY --algorithm NAME`: re-template a library on the server (T-02).

The same job as ``POST /libraries/{id}/retemplating``, run in this process until it ends, with
its progress printed after each batch. Run it again after an interruption (or while a server
that took the job up is down) and it resumes from the last batch saved. The operator names
themselves with ``--user``: a registered Administrator or Operational Lead, role-checked as
over the API, in whose name the templates are recorded. A refusal is recorded and ends with
exit code 3; a job another live process runs ends with exit code 4.
"""

from __future__ import annotations

import argparse
import sys

from rfr.application.errors import AccessDenied, NotFound, UnknownUser
from rfr.application.face_engine import UnknownAlgorithm
from rfr.application.services.retemplating import DEFAULT_BATCH, RetemplatingView
from rfr.domain.decisions import PolicyRefusal
from rfr.entrypoints.composition import Services
from rfr.infrastructure.settings import Settings

EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_RUNNING_ELSEWHERE = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "retemplate", help="regenerate a library's templates with another algorithm (T-02); resumable"
    )
    command.add_argument("library", help="the library's id")
    command.add_argument("--algorithm", required=True, help="the algorithm's name (dlib, sface, ...)")
    command.add_argument("--user", required=True, help="your user id (an Administrator or Operational Lead)")
    command.add_argument("--reason", default="re-templated on the server", help="recorded with the job")
    command.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="images per recorded batch")
    command.set_defaults(handler=_retemplate)


def _line(view: RetemplatingView) -> str:
    return (
        f"{view.status}: {view.templated_now} of {view.searchable} searchable images templated with "
        f"{view.algorithm}; {view.erased} old templates erased"
    )


def _retemplate(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        print("rfr retemplate: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = Settings.from_env()
    except ValueError as e:
        print(f"rfr retemplate: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with Services(settings) as services:
            jobs = services.retemplating
            view = jobs.start(args.user, args.library, args.algorithm, args.reason)
            runner = services.import_runners.hold()
            try:
                if not jobs.take_up(args.user, view.job_id, runner.runner_id):
                    view = jobs.get(args.user, args.library)
                    if view.ended_at is None:
                        print(
                            f"rfr retemplate: job {view.job_id} is run by another live process",
                            file=sys.stderr,
                        )
                        return EXIT_RUNNING_ELSEWHERE
                    print(_line(view))
                    return 0
                print(f"job {view.job_id}: re-templating library {args.library} with {args.algorithm}")
                view = jobs.run(
                    args.user,
                    view.job_id,
                    runner.runner_id,
                    batch=args.batch_size,
                    after_batch=lambda v: print(_line(v), flush=True),
                )
            finally:
                runner.release()
    except UnknownAlgorithm as e:
        print(f"rfr retemplate: {e}", file=sys.stderr)
        return EXIT_USAGE
    except NotFound as e:
        print(f"rfr retemplate: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (PolicyRefusal, AccessDenied, UnknownUser) as e:
        print(f"rfr retemplate: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    print(_line(view))
    return 0 if view.status == "completed" else EXIT_REFUSED
