"""Writing files so that a crash leaves either the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def temporary_sibling(path: Path) -> Path:
    """A fresh, empty file in ``path``'s folder: ``os.replace`` is atomic only within a filesystem."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def fsync_file(path: Path) -> None:
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


def fsync_dir(folder: Path) -> None:
    # Makes the renames themselves durable; not every platform lets a folder be opened.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_together(writers: dict[Path, Callable[[Path], None]]) -> None:
    """Write every target through a temporary file, then move them all into place.

    Each writer is given a temporary path to fill. Nothing is moved until every file is
    written and flushed, so a failing writer leaves all targets as they were. The moves
    themselves are one rename each, in the order given; readers check that the files agree
    (see the index adapters) because two renames cannot be one atomic step.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, write in writers.items():
            tmp = temporary_sibling(target)
            staged.append((tmp, target))
            write(tmp)
            fsync_file(tmp)
        for tmp, target in staged:
            os.replace(tmp, target)
        for folder in {target.parent for _, target in staged}:
            fsync_dir(folder)
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
