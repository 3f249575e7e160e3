"""A runner is alive exactly while its process holds its lock, however that process ends (ADR 0017)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

from rfr.adapters.runner_locks import RunnerLocks

HOLD = """
import sys, time
from pathlib import Path
from rfr.adapters.runner_locks import RunnerLocks
held = RunnerLocks(Path(sys.argv[1])).hold()
print(held.runner_id, flush=True)
time.sleep(120)
"""


def _child(folder: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def test_a_runner_is_alive_while_its_process_holds_the_lock_even_to_itself(tmp_path: Path):
    locks = RunnerLocks(tmp_path / "runners")
    held = locks.hold()
    # Another opening in the same process is refused the lock too: the process answers as any other.
    assert locks.alive(held.runner_id) and RunnerLocks(tmp_path / "runners").alive(held.runner_id)
    assert held.path.exists() and b'"pid"' in held.path.read_bytes()
    other = locks.hold()
    assert other.runner_id != held.runner_id and locks.alive(other.runner_id)
    held.release()
    assert not locks.alive(held.runner_id) and not held.path.exists()
    assert locks.alive(other.runner_id)


def test_no_runner_ever_had_an_unknown_or_malformed_id(tmp_path: Path):
    locks = RunnerLocks(tmp_path / "runners")
    locks.hold()
    assert not locks.alive(str(uuid4()))
    assert not locks.alive("../../etc/passwd") and not locks.alive("")


def test_a_process_without_the_runners_folder_cannot_tell_and_takes_every_runner_as_alive(tmp_path: Path):
    """A process on another data folder (misconfigured beside the same store) must not end others' jobs."""
    assert RunnerLocks(tmp_path / "elsewhere").alive(str(uuid4()))


def test_a_lock_file_nobody_holds_is_a_gone_runner_and_is_removed(tmp_path: Path):
    folder = tmp_path / "runners"
    folder.mkdir()
    runner_id = str(uuid4())
    left = folder / f"{runner_id}.lock"
    left.write_text("{}")
    locks = RunnerLocks(folder)
    assert not locks.alive(runner_id)
    assert not left.exists()


def test_a_runner_killed_with_sigkill_is_gone_at_once_for_every_other_process(tmp_path: Path):
    folder = tmp_path / "runners"
    child, runner_id = _child(folder)
    try:
        locks = RunnerLocks(folder)
        assert locks.alive(runner_id) and locks.alive(runner_id)  # asking takes nothing away
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert not locks.alive(runner_id)
        assert not (folder / f"{runner_id}.lock").exists()
        assert not locks.alive(runner_id)
    finally:
        child.kill()
        child.wait(timeout=30)
