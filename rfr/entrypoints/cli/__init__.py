"""The `rfr` command line.

Each module in this package that defines ``register(subparsers)`` contributes its
sub-commands, so a new command group is a new module and never an edit here.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rfr",
        description="Retrospective facial recognition: governed searches with an audit trail.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every sub-command sets `handler`, which returns the process exit code.
    code = args.handler(args)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
