"""`rfr projections status|rebuild`: the read-side tables kept from the event log (ADR 0013).

``status`` prints each projection's version and position beside the log's head. ``rebuild``
empties the projections named (all by default) and replays the whole log into them in one
transaction; writers wait meanwhile. A rebuilt projection equals the one kept live, so this is
for a damaged table or an operator's check, not a routine step.
"""

from __future__ import annotations

import argparse
import time

from rfr.entrypoints.composition import Services
from rfr.infrastructure.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("projections", help="status or rebuild of the read-side tables")
    commands = group.add_subparsers(dest="projections_command", required=True, metavar="COMMAND")
    status = commands.add_parser("status", help="each projection's version and position, and the log's head")
    status.set_defaults(handler=_status)
    rebuild = commands.add_parser("rebuild", help="empty projections and replay the whole log into them")
    rebuild.add_argument("names", nargs="*", help="projections to rebuild (default: all)")
    rebuild.set_defaults(handler=_rebuild)


def _status(args: argparse.Namespace) -> int:
    with Services(Settings.from_env()) as services:
        app = services.app
        head = app.recorder.max_notification_id() or 0
        positions = app.recorder.projection_positions()
        print(f"log head: {head}")
        for projection in app.projections:
            version, position = positions.get(projection.name, (None, None))
            state = "up to date" if version == projection.version and position == head else "stale"
            print(f"{projection.name}: version {version}, position {position} ({state})")
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    with Services(Settings.from_env()) as services:
        app = services.app
        known = {p.name for p in app.projections}
        unknown = sorted(set(args.names) - known)
        if unknown:
            print(f"no projection named {', '.join(unknown)} (known: {', '.join(sorted(known))})")
            return 2
        started = time.perf_counter()
        count = app.rebuild_projections(args.names or None)
        names = ", ".join(args.names or sorted(known))
        print(f"rebuilt {names} from {count} events in {time.perf_counter() - started:.1f} s")
    return 0
