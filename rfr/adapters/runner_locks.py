"""Which server processes are alive, told by a lock each holds for as long as it lives (ADR 0017).

A process that runs bulk enrolment jobs takes a random *runner* id and holds an exclusive
``flock`` on ``<folder>/<runner id>.lock`` until it exits. The kernel releases the lock when the
process ends, however it ends (SIGKILL and power loss included: a lock is not on disk), so no
heartbeat is written anywhere. Any process sharing the folder asks whether a runner is alive by
trying to take its lock without waiting: refused, the runner holds it; granted, or no such
file, the runner is gone, and its file is removed while the lock is held.

``flock`` locks belong to an open file, not to a process, so a second open of the file in the
runner's own process is refused too: one process answers for its own jobs as any other does.

The folder is under the data folder, which every process serving one store shares: its
biometric store and indexes are there, and the index writers ``flock`` there too (ADR 0014).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import attrs

log = logging.getLogger(__name__)


@attrs.define(eq=False)
class HeldRunner:
    """The lock of one runner, held by this process until it exits or ``release`` is called."""

    runner_id: str
    path: Path
    _fd: int | None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Gives the lock up (a test's or a clean stop's end): the runner reads as gone."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


class RunnerLocks:
    """The runners' lock files in ``folder``; see the module docstring."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def hold(self) -> HeldRunner:
        """A new runner id and its lock, held by this process from now on."""
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            runner_id = str(uuid4())
            path = self._path(runner_id)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # A reader that found the new file unlocked removed it: then this lock is on a
                # file nobody can find, and a new id is taken.
                if _same_file(os.fstat(fd), path):
                    os.write(fd, _describe(runner_id))
                    return HeldRunner(runner_id, path, fd)
            except BlockingIOError:
                pass  # a reader holds it for a moment, and will remove it: a new id is taken
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    def alive(self, runner_id: str) -> bool:
        """Whether the runner still holds its lock.

        A job is never declared interrupted on a doubt: a lock file that cannot be opened or
        tested for another reason than its absence counts as alive, and so does every runner
        when the folder itself is missing (this process does not share the runners' data
        folder, so it cannot tell).
        """
        try:
            path = self._path(runner_id)
        except ValueError:
            return False  # no runner ever had this id
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            if self.folder.is_dir():
                return False
            log.warning("no folder %s: import runner %s taken as alive", self.folder, runner_id)
            return True
        except OSError:
            log.exception("cannot open the lock of import runner %s; taken as alive", runner_id)
            return True
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            except OSError:
                log.exception("cannot test the lock of import runner %s; taken as alive", runner_id)
                return True
            path.unlink(missing_ok=True)  # while holding its lock: the runner is gone for good
            return False
        finally:
            os.close(fd)

    def _path(self, runner_id: str) -> Path:
        return self.folder / f"{UUID(runner_id)}.lock"


def _same_file(opened: os.stat_result, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


def _describe(runner_id: str) -> bytes:
    """For an operator who looks at the folder: which process holds the lock."""
    facts = {
        "runner": runner_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(),
    }
    return (json.dumps(facts) + "\n").encode("utf-8")
