"""A private PostgreSQL cluster for the tests, on loopback in a temporary folder (issue 10).

``make test`` installs Debian's ``postgresql`` package when no server binaries are found; this
module finds them, makes a cluster with ``initdb`` (as the ``postgres`` account when the tests
run as root, since the server refuses to run as root), starts it on a free loopback port with
its socket in the same folder, and stops it when the session ends. Nothing listens beyond
127.0.0.1 and the cluster trusts only local connections.

The server runs with ``fsync=off``: the tests kill clients, never the server or the machine, so
what reaches the server's memory is what they check, and the suite stays fast.
``start(durable=True)`` keeps PostgreSQL's own defaults instead (``fsync``, ``synchronous_commit``
and ``full_page_writes`` on: a commit waits for its WAL on disk), for the benchmarks
(``bench/postgres_service.py``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import attrs

USER = "rfr"
DATABASE = "rfr"


def server_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, newest major version first, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for folder in reversed(candidates):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.frozen
class Cluster:
    folder: Path
    port: int
    binaries: Path
    as_user: tuple[str, ...]

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def restart(self) -> None:
        """Stops the server (fast: every connection is cut) and starts it again on the same port."""
        # Its options come back from postmaster.opts; the log must be named again, or the
        # server would hold this call's output pipes open.
        data, log = str(self.folder / "data"), str(self.folder / "log")
        self._run(str(self.binaries / "pg_ctl"), "-D", data, "-l", log, "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        with_ctl = [str(self.binaries / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"]
        subprocess.run([*self.as_user, *with_ctl], capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def start(*, durable: bool = False) -> Cluster:
    """A new cluster with database ``rfr`` owned by the trusted user ``rfr``; ``stop()`` it.

    ``durable``: commits are flushed to disk as in production (the server's defaults) rather
    than the tests' ``fsync=off``."""
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl): `make test` installs them")
    folder = Path(tempfile.mkdtemp(prefix="rfr-pg-"))
    as_user: tuple[str, ...] = ()
    if os.geteuid() == 0:
        # The server refuses to run as root; its own account owns the folder instead.
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_user = ("runuser", "-u", "postgres", "--")
    data = folder / "data"
    cluster = Cluster(folder, _free_port(), binaries, as_user)
    try:
        no_sync = () if durable else ("--no-sync",)
        cluster._run(
            str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8", *no_sync
        )
        options = f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {folder} -c max_connections=200"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        cluster._run(
            str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"
        )
        _create_database(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _create_database(cluster: Cluster) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(
                f"postgresql://{USER}@127.0.0.1:{cluster.port}/postgres", autocommit=True
            ) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
