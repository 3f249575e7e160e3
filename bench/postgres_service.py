"""PostgreSQL service: audited commands from 1 and 4 writing processes, searches from 1 and 4 API processes.

Run with `python bench/postgres_service.py [--templates 100000] [--json PATH] [--update docs/benchmarks.md]`
(`make bench` runs it too, through `bench/run_all.py`). It starts a private PostgreSQL cluster of its
own (``tests/postgres_cluster.py``, durable: ``fsync``, ``synchronous_commit`` and
``full_page_writes`` on, as PostgreSQL ships them, and ``track_wal_io_timing`` on for the WAL flush
times; loopback only, in a temporary folder) and stops it at the end. One schema per measure
(ADR 0016: ``RFR_POSTGRES_SCHEMA``).

1. Audited commands: the command of ``bench/audit_throughput.py`` (``audited_command``: one
   ``AuditAccess.record``, one save: the event, its chain link and the moved head in one
   transaction), appended by 1 and then by 4 writing processes at once on one schema, each
   process ``--commands`` commands per run, ``--runs`` runs; a run's rate is all its commands over
   the time from the first process's start to the last one's end. The chain the 4 processes wrote
   is then filled to ``--events`` events (``audit_throughput.fill``) and verified (``rfr audit
   verify``'s ``verify``) from a freshly opened application, ``--runs`` times.
2. API searches: one library of ``--templates`` templates filled as ``bench/scale.py`` fills it
   (its code, imported: synthetic templates from the Gaussian fitted to the real templates of the
   shared photos, in batches of 500 through the domain, the encrypted store, ``app.save`` and the
   index; then the first photo of every real identity enrolled by ``Enrolment.enrol``), in a data
   folder on disk and the PostgreSQL schema. Real held-back photos are submitted as probes,
   templated and endorsed, all before anything is timed. Then ``rfr serve --workers N`` (N = 1,
   then 4) serves that schema and folder; ``--clients`` concurrent clients open search requests
   through the API (``POST /searches`` naming the library), run a few untimed (each process loads
   its index), then run the rest (``POST /searches/{id}/runs``, one search each), each client
   taking the next request as soon as its last answer arrives, until ``--searches`` searches
   or ``--phase-seconds`` have passed. A client opens a new connection for each request, so the
   kernel spreads them over the processes. The latency is the client's, request sent to answer
   read: the search beyond the probe's templating, through HTTP.

Besides: the same searches through ``SearchExecution.search_library`` in this process, one at a
time (no HTTP, no concurrency: the cost of one search on PostgreSQL); CPU seconds of the API
processes, of the PostgreSQL server and of the clients over each timed part; the WAL flushes per
audited command (``pg_stat_wal``) and the transactions and blocks per command and per search
(``pg_stat_database``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

# Last, as audit_throughput does, so that PYTHONPATH can point the script at another checkout.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from rfr.infrastructure.settings import Settings

REPO = Path(__file__).resolve().parent.parent
TITLE = "## PostgreSQL service: writers and API processes"
DEFAULT_TEMPLATES = 100_000
DEFAULT_SEARCHES = 1_000
DEFAULT_CLIENTS = 8
# Threads of each writing process: as many requests as an API process serves at once.
DEFAULT_WRITER_THREADS = 8
DEFAULT_PHASE_SECONDS = 120.0
TARGETS = {
    "commands_per_s": 2_000,
    "commands_writers": 4,
    "search_p95_ms": 50.0,
    "verify_events_per_s": 200_000,
}
SERVER_START_S = 240.0
WRITERS_TIMEOUT_S = 600.0
STATS_SETTLE_S = 1.5
RELEVANCE = "the subject may have been arrested before"

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- the cluster -----------------------------------------------------------------------------------


def cluster_module() -> ModuleType:
    """``tests/postgres_cluster.py``, loaded by its path (the tests folder is no package)."""
    if "postgres_cluster" in sys.modules:
        return sys.modules["postgres_cluster"]
    spec = importlib.util.spec_from_file_location("postgres_cluster", REPO / "tests" / "postgres_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["postgres_cluster"] = module
    spec.loader.exec_module(module)
    return module


def unavailable() -> str | None:
    """Why this benchmark cannot run here (no server binaries, no psycopg), or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    if cluster_module().server_binaries() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl): `make postgres-server` installs them"
    return None


def new_schema(dsn: str, prefix: str) -> str:
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema


def server_facts(dsn: str) -> dict[str, str]:
    """The server's version and the settings that decide what a commit costs."""
    import psycopg

    names = (
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_sync_method",
        "shared_buffers",
        "max_connections",
        "track_wal_io_timing",
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        facts = {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in names}  # type: ignore[index]
        facts["server_version"] = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    return facts


def wal_stats(dsn: str) -> dict[str, float]:
    """``pg_stat_wal``: WAL records, bytes, writes and flushes (syncs) since the cluster started."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT wal_records, wal_bytes, wal_write, wal_sync, wal_sync_time FROM pg_stat_wal"
        ).fetchone()
    assert row is not None
    keys = ("wal_records", "wal_bytes", "wal_write", "wal_sync", "wal_sync_time_ms")
    return {k: float(v) for k, v in zip(keys, row, strict=True)}


def database_stats(dsn: str) -> dict[str, int]:
    """``pg_stat_database`` of the benchmark's database: transactions and blocks touched so far.
    Backends report them about once a second while busy and as they go idle, so a reading is
    taken after a pause (``STATS_SETTLE_S``)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback, blks_hit + blks_read, tup_returned + tup_fetched "
            "FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return {"transactions": int(row[0]), "blocks": int(row[1]), "tuples": int(row[2])}


def analyze(dsn: str, schema: str) -> None:
    """The planner's statistics for the schema's tables, as autovacuum gathers them a minute or
    so after a fill this size (the benchmark does not wait for it): without them PostgreSQL
    plans the projections' joins for empty tables."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        ]
        for table in tables:
            conn.execute(SQL("ANALYZE {0}.{1}").format(Identifier(schema), Identifier(table)))


def postmaster_pid(cluster: Any) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((Path(cluster.folder) / "data" / "postmaster.pid").read_text().split()[0])
    return None


# -- processes and their CPU time --------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User and system CPU seconds of each process, its reaped children's included."""
    out = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            out[pid] = sum(int(x) for x in fields[11:15]) / _TICK
    return out


def tree_cpu(root: int | None) -> float:
    return 0.0 if root is None else sum(cpu_seconds(process_tree(root)).values())


def rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def load_average() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return round(float(np.percentile(np.asarray(values, dtype=float), q)), 2)


# -- 1. audited commands from several writing processes ------------------------------------------------


def pg_settings(dsn: str, schema: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, persistence="postgres", postgres_dsn=dsn, postgres_schema=schema)


def pg_env(settings: Settings) -> dict[str, str]:
    assert settings.postgres_dsn is not None
    return {
        "RFR_DATA_DIR": str(settings.data_dir),
        "RFR_PERSISTENCE": "postgres",
        "RFR_POSTGRES_DSN": settings.postgres_dsn,
        "RFR_POSTGRES_SCHEMA": settings.postgres_schema,
    }


def writer_main(number: int, commands: int, runs: int, threads: int) -> int:
    """One writing process (``--writer``): opens the application on the environment's schema, says
    ``ready``, then for each ``go`` on its input appends ``commands`` audited commands from
    ``threads`` threads (as an API process serves that many requests at once; each thread its
    share, one after another) and prints when it started and ended (monotonic clock, shared by
    the processes of one machine) and how many transactions its saves took (group commit)."""
    from audit_throughput import audited_command

    from rfr.application.app import RfrApplication
    from rfr.infrastructure.persistence import application_env

    app = RfrApplication(env=application_env(Settings.from_env(), create_tables=False))
    at = datetime.now(UTC)
    first = (number + 1) * 10**12
    audited_command(app, at, first)  # warm-up: connection, prepared statements
    commits = app.recorder.group_commit
    print("ready", flush=True)
    for run in range(runs):
        if sys.stdin.readline().strip() != "go":
            break
        base = first + run * commands + 1
        batches, saves = commits.batches, commits.saves

        def share(k: int, base: int) -> None:
            for n in range(k, commands, threads):
                audited_command(app, at, base + n)

        workers = [threading.Thread(target=share, args=(k, base)) for k in range(threads)]
        started, cpu = time.monotonic(), time.process_time()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        ended = time.monotonic()
        transactions, stored = commits.batches - batches, commits.saves - saves
        if stored != commands:
            raise SystemExit(f"writer {number}: {stored} of {commands} commands stored")
        cpu = time.process_time() - cpu
        answer = {"start": started, "end": ended, "cpu": cpu, "transactions": transactions}
        print(json.dumps(answer), flush=True)
    app.close()
    return 0


def append_runs(
    cluster: Any, writers: int, commands: int, runs: int, threads: int, work: Path, log: Log
) -> dict[str, Any]:
    """``runs`` runs of ``writers`` processes appending ``commands`` audited commands each at once,
    from ``threads`` threads each."""
    from rfr.application.app import RfrApplication
    from rfr.infrastructure.persistence import application_env

    settings = pg_settings(
        cluster.dsn, new_schema(cluster.dsn, f"audit_{writers}w"), work / f"audit-{writers}"
    )
    RfrApplication(env=application_env(settings)).close()  # the tables, made once before the writers open
    env = {**os.environ, **pg_env(settings)}
    postmaster = postmaster_pid(cluster)
    wal_before, db_before = wal_stats(cluster.dsn), database_stats(cluster.dsn)
    errors = [work / f"writer-{writers}-{n}.log" for n in range(writers)]
    processes = []
    for n in range(writers):
        with errors[n].open("wb") as err:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--writer",
                        str(n),
                        "--commands",
                        str(commands),
                        "--runs",
                        str(runs),
                        "--threads",
                        str(threads),
                    ],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
            )
    # Bounded in time: a writer that hangs is killed, and its empty answer fails the measure.
    watchdog = threading.Timer(WRITERS_TIMEOUT_S, lambda: [p.kill() for p in processes])
    watchdog.start()
    rates, cpu_rates, pg_ms, transactions = [], [], [], 0
    try:
        for p, err in zip(processes, errors, strict=True):
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a writer did not start: {err.read_text()[-2000:]}")
        for run in range(runs):
            pg_cpu = tree_cpu(postmaster)
            for p in processes:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            answers = []
            for p, err in zip(processes, errors, strict=True):
                assert p.stdout is not None
                line = p.stdout.readline()
                if not line:
                    raise RuntimeError(f"a writer stopped: {err.read_text()[-2000:]}")
                answers.append(json.loads(line))
            pg_ms.append((tree_cpu(postmaster) - pg_cpu) * 1e3 / (writers * commands))
            elapsed = max(a["end"] for a in answers) - min(a["start"] for a in answers)
            rates.append(writers * commands / elapsed)
            cpu_rates.append(writers * commands / sum(a["cpu"] for a in answers))
            transactions += sum(a["transactions"] for a in answers)
            log(f"  {writers} writing processes, run {run + 1}: {rates[-1]:,.0f} commands/s")
        for p in processes:
            p.wait(timeout=60)
    finally:
        watchdog.cancel()
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    time.sleep(STATS_SETTLE_S)  # the writers' backends report their statistics as they exit
    wal_after, db_after = wal_stats(cluster.dsn), database_stats(cluster.dsn)
    appended = writers * (runs * commands + 1)
    wal = {k: wal_after[k] - wal_before[k] for k in wal_before}
    return {
        "writers": writers,
        "schema": settings.postgres_schema,
        "settings": settings,
        "commands": commands,
        "threads": threads,
        "runs": runs,
        "commands_per_transaction": round(writers * runs * commands / transactions, 2),
        "commands_per_s": round(statistics.median(rates)),
        "commands_per_s_runs": [round(r) for r in rates],
        "commands_per_writer_cpu_s": round(statistics.median(cpu_rates)),
        "postgres_cpu_ms_per_command": round(statistics.median(pg_ms), 3),
        "wal_syncs_per_command": round(wal["wal_sync"] / appended, 3),
        "transactions_per_command": round(
            (db_after["transactions"] - db_before["transactions"]) / appended, 1
        ),
        "wal_sync_ms_per_sync": round(wal["wal_sync_time_ms"] / wal["wal_sync"], 3)
        if wal["wal_sync"]
        else None,
        "wal_bytes_per_command": round(wal["wal_bytes"] / appended),
        "wal_records_per_command": round(wal["wal_records"] / appended, 1),
    }


def verify_runs(settings: Settings, events: int, runs: int, log: Log) -> dict[str, Any]:
    """The chain filled to ``events`` events, then verified ``runs`` times by a freshly opened application."""
    from audit_throughput import fill

    from rfr.application.app import RfrApplication
    from rfr.infrastructure.audit import verify
    from rfr.infrastructure.persistence import application_env

    app = RfrApplication(env=application_env(settings, create_tables=False))
    written = app.recorder.chain_head().count
    started = time.perf_counter()
    fill(app, datetime.now(UTC), events)
    stored = app.recorder.chain_head().count
    app.close()
    log(f"  chain filled from {written:,} to {stored:,} events in {time.perf_counter() - started:.0f} s")
    auditor = RfrApplication(env=application_env(settings, create_tables=False))
    rates, cpu_rates = [], []
    try:
        for _ in range(runs):
            started, cpu = time.perf_counter(), time.process_time()
            result = verify(auditor.recorder)
            elapsed, cpu_elapsed = time.perf_counter() - started, time.process_time() - cpu
            if not result.ok or result.checked != stored:
                raise SystemExit(
                    f"verification failed on the benchmark's PostgreSQL chain: {result.summary()}"
                )
            rates.append(result.checked / elapsed)
            cpu_rates.append(result.checked / cpu_elapsed)
    finally:
        auditor.close()
    return {
        "events": stored,
        "events_written_by_the_writers": written,
        "runs": runs,
        "verify_events_per_s": round(statistics.median(rates)),
        "verify_events_per_s_runs": [round(r) for r in rates],
        "verify_events_per_cpu_s": round(statistics.median(cpu_rates)),
    }


def measure_audit(
    cluster: Any,
    writer_counts: Sequence[int],
    commands: int,
    runs: int,
    threads: int,
    events: int,
    work: Path,
    log: Log,
) -> dict[str, Any]:
    from audit_throughput import AGGREGATE

    by_writers = []
    for writers in writer_counts:
        log(
            f"audited commands: {writers} writing process(es) of {threads} threads, "
            f"{runs} runs of {commands:,} each"
        )
        by_writers.append(append_runs(cluster, writers, commands, runs, threads, work, log))
    largest = by_writers[-1]
    log(f"chain verification: the chain of {largest['writers']} writers, filled to {events:,} events")
    verified = verify_runs(largest.pop("settings"), events, runs, log)
    for r in by_writers:
        r.pop("settings", None)
    return {
        "aggregate": AGGREGATE,
        "by_writers": by_writers,
        "verify": {**verified, "schema": largest["schema"]},
    }


# -- 2. API searches from several API processes ------------------------------------------------------


class Serve:
    """``rfr serve --workers N`` on a free loopback port, in its own session."""

    def __init__(self, env: dict[str, str], workers: int, log_path: Path) -> None:
        from rfr.entrypoints.demo.server import free_port

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_path = log_path
        with log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "rfr.entrypoints.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(workers),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = SERVER_START_S) -> float:
        """Seconds until ``/health`` answers and every process has finished its start."""
        import httpx

        started = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"rfr serve exited with {self.process.returncode}:\n{self.log_tail()}")
            text = self.log_path.read_text(errors="replace")
            if text.count("Application startup complete") >= self.workers:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{self.base_url}/health", timeout=5.0).status_code == 200:
                        return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"rfr serve --workers {self.workers} not ready in {timeout:.0f} s")
            time.sleep(0.25)

    def api_pids(self) -> list[int]:
        """The processes that answer requests: the one process, or the supervisor's workers
        (spawned by multiprocessing; not its resource tracker)."""
        if self.workers == 1:
            return [self.process.pid]

        def spawned(pid: int) -> bool:
            with contextlib.suppress(OSError):
                return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            return False

        return [p for p in process_tree(self.process.pid) if p != self.process.pid and spawned(p)]

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def concurrently(
    base_url: str, token: str, clients: int, jobs: Sequence[Callable[[Any], Any]], deadline: float
) -> list[tuple[float, float, Any]]:
    """Each job run once by ``clients`` threads, each taking the next job when its last is done,
    until none is left or ``deadline`` (monotonic) has passed; (start, milliseconds, result) by job.
    Each request opens its own connection (no keep-alive)."""
    import httpx

    results: list[Any] = [None] * len(jobs)
    lock = threading.Lock()
    next_job = iter(range(len(jobs)))

    def client() -> None:
        with httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60.0,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http:
            while time.monotonic() < deadline:
                with lock:
                    n = next(next_job, None)
                if n is None:
                    return
                started = time.monotonic()
                try:
                    found = jobs[n](http)
                except Exception as exc:
                    found = exc
                results[n] = (started, (time.monotonic() - started) * 1e3, found)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def _answer(response: Any, status: int) -> Any:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response.json()


def api_phase(
    env: dict[str, str],
    workers: int,
    *,
    token: str,
    library_id: str,
    probes: Sequence[tuple[str, str]],
    searches: int,
    clients: int,
    phase_seconds: float,
    dsn: str,
    postmaster: int | None,
    work: Path,
    log: Log,
) -> dict[str, Any]:
    """One server of ``workers`` processes: requests opened, a warm-up, then the timed searches."""
    load = load_average()
    server = Serve(env, workers, work / f"serve-{workers}.log")
    try:
        ready_s = server.wait_ready()
        warm = clients * max(2, workers)
        count = warm + searches

        def opener(n: int) -> Callable[[Any], Any]:
            body = {
                "probe_id": probes[n % len(probes)][0],
                "libraries": [{"library_id": library_id, "relevance": RELEVANCE}],
            }
            return lambda http: _answer(http.post("/searches", json=body), 201)["id"]

        deadline = time.monotonic() + phase_seconds
        opened = concurrently(server.base_url, token, clients, [opener(n) for n in range(count)], deadline)
        failed = [r for r in opened if isinstance(r[2], Exception)]
        if failed or len(opened) < count:
            raise RuntimeError(f"search requests not opened ({len(opened)} of {count}): {failed[:1]}")
        requests = [r[2] for r in opened]
        open_ms = [r[1] for r in opened]
        log(
            f"  {workers} API process(es): ready in {ready_s:.0f} s, {count:,} requests opened "
            f"(p50 {percentile(open_ms, 50)} ms)"
        )

        def runner(n: int) -> Callable[[Any], Any]:
            def run(http: Any) -> str | None:
                found = _answer(http.post(f"/searches/{requests[n]}/runs"), 200)["candidates"]
                return found[0]["subject"] if found else None

            return run

        warmed = concurrently(
            server.base_url,
            token,
            clients,
            [runner(n) for n in range(warm)],
            time.monotonic() + phase_seconds,
        )
        warm_ms = sorted(r[1] for r in warmed)
        api = server.api_pids()
        time.sleep(STATS_SETTLE_S)
        db_before = database_stats(dsn)
        api_cpu, pg_cpu, own_cpu = cpu_seconds(api), tree_cpu(postmaster), time.process_time()
        load_timed = load_average()
        deadline = time.monotonic() + phase_seconds
        timed = concurrently(
            server.base_url, token, clients, [runner(n) for n in range(warm, count)], deadline
        )
        api_after, pg_after, own_after = cpu_seconds(api), tree_cpu(postmaster), time.process_time()
        time.sleep(STATS_SETTLE_S)
        db_after = database_stats(dsn)
        rss = [rss_mib(p) for p in api]
        errors = [r for r in timed if isinstance(r[2], Exception)]
        done = [r for r in timed if not isinstance(r[2], Exception)]
        if not done:
            raise RuntimeError(f"no search answered: {errors[:1]}")
        wall = max(s + ms / 1e3 for s, ms, _ in done) - min(s for s, _, _ in done)
        latencies = [ms for _, ms, _ in done]
        identity = {n: probes[n % len(probes)][1] for n in range(count)}
        hits = sum(found == identity[warm + n] for n, (_, _, found) in enumerate(timed) if found is not None)
        per_process = {p: round(api_after.get(p, 0.0) - api_cpu.get(p, 0.0), 2) for p in api_cpu}
        api_total = sum(per_process.values())
    finally:
        server.stop()
    result = {
        "workers": workers,
        "clients": clients,
        "load_average_1min_at_start": load,
        "load_average_1min_timed": load_timed,
        "server_ready_s": round(ready_s, 1),
        "opened": count,
        "open_p50_ms": percentile(open_ms, 50),
        "open_p95_ms": percentile(open_ms, 95),
        "warm_up_searches": len(warmed),
        "warm_up_slowest_ms": [round(x) for x in warm_ms[-workers:]],
        "searches": len(done),
        "errors": len(errors),
        "first_error": str(errors[0][2])[:300] if errors else None,
        "stopped_by_time": len(timed) < searches,
        "seconds": round(wall, 2),
        "searches_per_s": round(len(done) / wall, 1),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(max(latencies), 1),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "recall_at_1": round(hits / len(done), 4),
        "postgres_transactions_per_search": round(
            (db_after["transactions"] - db_before["transactions"]) / len(timed), 1
        ),
        "postgres_blocks_per_search": round((db_after["blocks"] - db_before["blocks"]) / len(timed)),
        "api_cpu_ms_per_search": round(api_total * 1e3 / len(done), 2),
        "postgres_cpu_ms_per_search": round((pg_after - pg_cpu) * 1e3 / len(done), 2),
        "client_cpu_ms_per_search": round((own_after - own_cpu) * 1e3 / len(done), 2),
        "cpu_cores_busy": round((api_total + pg_after - pg_cpu + own_after - own_cpu) / wall, 2),
        "api_cpu_s_by_process": sorted(per_process.values(), reverse=True),
        "api_rss_mib_by_process": rss,
    }
    log(
        f"  {workers} API process(es): {result['searches']:,} searches, {result['searches_per_s']}/s, "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, errors {result['errors']}"
    )
    return result


def open_installation(settings: Settings, engine: Any, top_k: int) -> tuple[Any, str]:
    """bench/scale.py's installation (staff registered and trained, an approved library), on
    ``settings``' store: scale's own helper opens SQLite."""
    import scale

    from rfr.entrypoints.composition import Services, embedded_biometrics

    bio = embedded_biometrics(settings, engine, top_k=top_k)
    services = Services(settings, biometrics=lambda: bio)
    return services, scale.staffed_library(services, "postgres service")


def measure_api(
    cluster: Any,
    *,
    templates: int,
    worker_counts: Sequence[int],
    searches: int,
    clients: int,
    probes: int,
    phase_seconds: float,
    seed: int,
    work: Path,
    log: Log,
) -> dict[str, Any]:
    import numpy as np
    import scale

    from rfr.application.services.searches import LibrarySelection
    from rfr.domain.access_token import TokenKind
    from rfr.entrypoints.composition import DEFAULT_SEARCH_TOP_K, build_face_engine

    faces = scale.shared_faces_dir()
    if not (faces / "manifest.csv").exists():
        raise FileNotFoundError(
            f"{faces}/manifest.csv is missing: the shared face photos live beside the checkout"
        )
    engine_settings = Settings.from_env()
    engine = scale.TimedEngine(build_face_engine(engine_settings, upsample=None))
    real = scale.real_faces(engine, scale.single_face_photos(faces), log)
    gaussian = scale.Gaussian(np.stack([f.vector for f in real]), engine.embedder.metric)
    gallery, held_back = scale.split(real, probes)
    if templates <= len(gallery):
        raise ValueError(f"--templates: {templates} is not more than the {len(gallery)} real photos enrolled")
    data_dir = work / "api" / "var"
    settings = pg_settings(cluster.dsn, new_schema(cluster.dsn, "api"), data_dir)
    # The servers' engine from the same converted models, not converted again in the new folder.
    shutil.copytree(engine_settings.models_dir, settings.models_dir)
    top_k = DEFAULT_SEARCH_TOP_K
    services, library_id = open_installation(settings, engine, top_k)
    bio = services.biometrics
    try:
        log(f"library: filling {templates - len(gallery):,} synthetic templates (bench/scale.py's fill)")
        filled = scale.fill(
            services, library_id, gaussian, templates - len(gallery), np.random.default_rng(seed), log
        )
        enrolled = scale.enrol_real(services, library_id, gallery, log)
        analyze(cluster.dsn, settings.postgres_schema)
        held = services.app.library_images.templated(library_id, bio.algorithm_id)
        started = time.perf_counter()
        ready = []
        for face in held_back:
            if face.identity in enrolled.mates:
                prepared = scale.ready_probe(services, face)
                if prepared is not None and prepared[1]:
                    ready.append((prepared[0], face.identity))
        log(
            f"  {len(ready)} probes submitted, templated and endorsed "
            f"in {time.perf_counter() - started:.0f} s"
        )
        # One search at a time in this process: what one search costs on PostgreSQL, without HTTP.
        alone_ms = []
        for probe_id, _ in ready:
            request = services.searches.open("analyst", probe_id, [LibrarySelection(library_id, RELEVANCE)])
            began = time.perf_counter()
            services.search_execution.search_library("analyst", request.id, library_id)
            alone_ms.append((time.perf_counter() - began) * 1e3)
        token = services.access().issue("admin", "analyst", kind=TokenKind.BEARER, label="benchmark").secret
    finally:
        services.close()
        close = getattr(bio.store, "close", None)
        if close is not None:
            close()
    env = {**os.environ, **pg_env(settings)}
    phases = []
    for workers in worker_counts:
        log(f"API searches: rfr serve --workers {workers}, {clients} clients, up to {searches:,} searches")
        phases.append(
            api_phase(
                env,
                workers,
                token=token,
                library_id=library_id,
                probes=ready,
                searches=searches,
                clients=clients,
                phase_seconds=phase_seconds,
                dsn=cluster.dsn,
                postmaster=postmaster_pid(cluster),
                work=work,
                log=log,
            )
        )
    return {
        "templates": held,
        "synthetic": len(filled.template_ids),
        "real_enrolled": len(enrolled.template_ids),
        "fill_seconds": round(filled.seconds, 1),
        "fill_templates_per_s": round(len(filled.template_ids) / filled.seconds),
        "fill_save_ms_per_batch": round(filled.save_s * 1e3 / max(1, len(filled.index_blocks)), 1),
        "probes": len(ready),
        "top_k": top_k,
        "in_process_search_p50_ms": percentile(alone_ms, 50),
        "in_process_search_p95_ms": percentile(alone_ms, 95),
        "phases": phases,
    }


# -- the whole run -------------------------------------------------------------------------------------


def measure(
    *,
    templates: int = DEFAULT_TEMPLATES,
    writer_counts: Sequence[int] = (1, 4),
    worker_counts: Sequence[int] = (1, 4),
    commands: int = 2_000,
    threads: int = DEFAULT_WRITER_THREADS,
    runs: int = 5,
    events: int = 200_000,
    searches: int = DEFAULT_SEARCHES,
    clients: int = DEFAULT_CLIENTS,
    probes: int = 200,
    phase_seconds: float = DEFAULT_PHASE_SECONDS,
    seed: int = 10,
    work_dir: Path | None = None,
    command: str = "python bench/postgres_service.py",
    log: Log = _quiet,
) -> dict[str, Any]:
    """Both measures on one private durable cluster, started here and stopped at the end."""
    import scale
    from audit_throughput import fsync_ms

    why_not = unavailable()
    if why_not is not None:
        raise RuntimeError(why_not)
    began = time.perf_counter()
    load = load_average()
    log(f"PostgreSQL service benchmark: load average {load} at start")
    cluster = cluster_module().start(durable=True)
    try:
        with tempfile.TemporaryDirectory(prefix="rfr-bench-pg-", dir=work_dir) as tmp:
            work = Path(tmp)
            import psycopg

            # pg_stat_wal's flush times (for the WAL flushes per audited command); nothing else changed.
            with psycopg.connect(cluster.dsn, autocommit=True) as conn:
                conn.execute("ALTER SYSTEM SET track_wal_io_timing = on")
                conn.execute("SELECT pg_reload_conf()")
            facts = server_facts(cluster.dsn)
            fsync = fsync_ms(Path(cluster.folder))
            log(
                f"cluster: PostgreSQL {facts['server_version']}, fsync={facts['fsync']}, "
                f"synchronous_commit={facts['synchronous_commit']}; one write and fsync {fsync:.2f} ms"
            )
            audit = measure_audit(cluster, writer_counts, commands, runs, threads, events, work, log)
            api = measure_api(
                cluster,
                templates=templates,
                worker_counts=worker_counts,
                searches=searches,
                clients=clients,
                probes=probes,
                phase_seconds=phase_seconds,
                seed=seed,
                work=work,
                log=log,
            )
    finally:
        cluster.stop()
    return {
        "command": command,
        "run": {
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_1min": load,
            "python": platform.python_version(),
            "seconds": round(time.perf_counter() - began, 1),
            "commit": scale.source_commit(),
            "work_dir": str(work_dir or tempfile.gettempdir()),
            "fsync_ms": round(fsync, 2),
        },
        "postgres": facts,
        "audit": audit,
        "api": api,
        "targets": TARGETS,
    }


# -- the report ----------------------------------------------------------------------------------------


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _by(items: Sequence[dict[str, Any]], key: str, value: int) -> dict[str, Any] | None:
    return next((r for r in items if r[key] == value), None)


def target_lines(result: dict[str, Any]) -> list[str]:
    """Each target against this run: met, or missed by how much and why (from what was measured)."""
    audit, api, run = result["audit"], result["api"], result["run"]
    cores = run["cores"] or 1
    lines = []
    four = _by(audit["by_writers"], "writers", TARGETS["commands_writers"]) or audit["by_writers"][-1]
    one = _by(audit["by_writers"], "writers", 1)
    rate, limit = four["commands_per_s"], TARGETS["commands_per_s"]
    line = (
        f"- audited commands appended by {four['writers']} writing processes: {rate:,} commands/s "
        f"(target at least {limit:,}): "
    )
    if rate >= limit:
        lines.append(line + "met")
    else:
        client_ms = 1e3 / four["commands_per_writer_cpu_s"]
        cpu_ms = client_ms + four["postgres_cpu_ms_per_command"]
        sync = four.get("wal_sync_ms_per_sync")
        per_transaction = four.get("commands_per_transaction", 1.0)
        why = (
            f"missed by {limit - rate:,} commands/s ({limit / rate:.1f}x short). Why: each transaction that "
            "stores events holds the events table's EXCLUSIVE lock (ADR 0016, the one serialisation point) "
            "from its insert to its commit, and its commit waits for its WAL flush "
            f"({four['wal_syncs_per_command']:.2f} a command"
            + (f", {sync:.2f} ms each" if sync is not None else "")
            + f"; one 4 KiB write and fsync here {run['fsync_ms']} ms); a process's waiting saves share "
            f"a transaction (group commit: {per_transaction:.2f} commands a transaction here)"
        )
        if one is not None:
            why += (
                f", so {four['writers']} processes append {rate / one['commands_per_s']:.2f}x what one does"
            )
        why += (
            f". Each command also costs {cpu_ms:.1f} ms of CPU ({client_ms:.1f} ms in the writing process, "
            f"{four['postgres_cpu_ms_per_command']:.2f} ms in the server): with both of the {cores} cores to "
            f"itself and no lock, at most {cores * 1e3 / cpu_ms:,.0f} commands/s"
        )
        lines.append(line + why)
    verified = audit["verify"]
    verify_rate, per_cpu = verified["verify_events_per_s"], verified["verify_events_per_cpu_s"]
    vlimit = TARGETS["verify_events_per_s"]
    line = (
        f"- chain verification on PostgreSQL: {verify_rate:,} events/s (the target set for SQLite, at least "
        f"{vlimit:,}): "
    )
    if verify_rate >= vlimit:
        lines.append(line + "met")
    else:
        lines.append(
            line + f"missed by {vlimit - verify_rate:,} events/s. Why: the verifying process was on a "
            f"core {verify_rate / per_cpu:.0%} of the time (the rest it waited for the server's rows, and "
            f"for cores other work held); per second of its own CPU it checks {per_cpu:,} events"
            + (", short of the target even alone" if per_cpu < vlimit else ", which would meet the target")
        )
    plimit = TARGETS["search_p95_ms"]
    first = api["phases"][0] if api["phases"] else None
    for phase in api["phases"]:
        p95 = phase["p95_ms"]
        plural = "es" if phase["workers"] > 1 else ""
        line = (
            f"- API search p95 with {phase['clients']} clients against {phase['workers']} API "
            f"process{plural}: {p95:.1f} ms (target at most {plimit:.0f} ms, beyond the probe's templating): "
        )
        if p95 <= plimit:
            lines.append(line + "met")
            continue
        cpu_ms = (
            phase["api_cpu_ms_per_search"]
            + phase["postgres_cpu_ms_per_search"]
            + phase["client_cpu_ms_per_search"]
        )
        best = cores * 1e3 / cpu_ms
        why = (
            f"missed by {p95 - plimit:.1f} ms ({p95 / plimit:.1f}x). Why: a search costs {cpu_ms:.1f} ms of "
            f"CPU (API {phase['api_cpu_ms_per_search']:.1f}, PostgreSQL "
            f"{phase['postgres_cpu_ms_per_search']:.1f}, clients {phase['client_cpu_ms_per_search']:.1f}), "
            f"and the {phase['clients']} clients keep {phase['clients']} in flight, so each waits for the "
            f"others: {phase['searches_per_s']:.1f} searches/s give a mean of "
            f"{phase['clients'] / phase['searches_per_s'] * 1e3:.0f} ms (Little's law; measured "
            f"{phase['mean_ms']:.0f}). The benchmark had {phase['cpu_cores_busy']:.2f} of the {cores} cores "
            f"(load average {phase['load_average_1min_timed']} as it began); with both, "
            f"{best:.0f} searches/s at most, a mean of {phase['clients'] / best * 1e3:.0f} ms"
        )
        if phase is first:
            why += (
                f". One search alone, in a process of its own without HTTP, takes "
                f"{api['in_process_search_p50_ms']:.1f} ms (p50; p95 {api['in_process_search_p95_ms']:.1f}): "
                f"{phase['postgres_transactions_per_search']:.0f} PostgreSQL transactions a search "
                "(pg_stat_database), each a round trip or more"
            )
        elif first is not None:
            why += (
                f". {phase['workers']} processes complete "
                f"{phase['searches_per_s'] / first['searches_per_s']:.2f}x the searches of one: one process "
                f"already had {first['cpu_cores_busy']:.2f} of the {cores} cores with other work running, "
                "and more processes add no core"
            )
        lines.append(line + why)
    if api["templates"] < DEFAULT_TEMPLATES:
        lines.append(
            f"- The search target is set at {DEFAULT_TEMPLATES:,} templates here; this run's library "
            f"holds {api['templates']:,}."
        )
    return lines


def markdown_section(result: dict[str, Any]) -> str:
    run, pg, audit, api = result["run"], result["postgres"], result["audit"], result["api"]
    load = "" if run["load_average_1min"] is None else f", load average {run['load_average_1min']} at start"
    writers, phases, verified = audit["by_writers"], api["phases"], audit["verify"]

    def row(
        label: str,
        items: Sequence[dict[str, Any]],
        get: Callable[[dict[str, Any]], Any] | str,
        digits: int = 0,
        *,
        ratio_of: str = "",
        target: str = "",
    ) -> str:
        """One measure by setup, then the last setup's value over the first's, then the target."""
        read = (lambda r: r.get(get)) if isinstance(get, str) else get
        values = " | ".join(_n(read(r), digits) for r in items)
        return f"| {label} | {values} | {ratio(items, ratio_of) if ratio_of else ''} | {target} |"

    def runs(rates: Sequence[int]) -> str:
        return ", ".join(f"{r:,}" for r in rates)

    def ratio(items: Sequence[dict[str, Any]], key: str) -> str:
        if len(items) < 2 or not items[0].get(key):
            return "n/a"
        return f"{items[-1][key] / items[0][key]:.2f}x"

    def heads(items: Sequence[dict[str, Any]], key: str, noun: str) -> str:
        return " | ".join(f"{r[key]} {noun}{'es' if r[key] > 1 else ''}" for r in items)

    w_head = " | ".join(f"{r['writers']} writing process{'es' if r['writers'] > 1 else ''}" for r in writers)
    a_head = heads(phases, "workers", "API process")
    lines = [
        TITLE,
        "",
        f"Made by `{result['command']}` (`bench/postgres_service.py`; `make bench` runs it too). All figures",
        "below come from that one run, on a private PostgreSQL cluster it started on loopback in a temporary",
        "folder and stopped at the end, with PostgreSQL's durable defaults (a commit waits for its WAL on",
        "disk). Audited commands: the command of `bench/audit_throughput.py` (one `AuditAccess.record`, one",
        "save: event, chain link and head in one transaction), appended by 1 and then by 4 processes at once",
        "into one schema; a run's rate is all its commands over the time from the first process's start to",
        "the last one's end; medians of the runs. API searches: one library filled as `bench/scale.py` fills",
        "it (its code: synthetic templates from the Gaussian fitted to the real templates, then the first",
        "photo of every real identity enrolled through `Enrolment.enrol`) in that cluster and a data folder",
        "on disk; real held-back probes submitted, templated and endorsed beforehand; then `rfr serve",
        "--workers N` over that schema and folder, and concurrent clients open search requests through the",
        "API (`POST /searches`) and run them (`POST /searches/{id}/runs`, one search each, timed from",
        "request to answer at the client: the search beyond the probe's templating, through HTTP). Each",
        "client sends its next request when its last is answered, on a new connection each time; a few runs",
        "per process first, untimed (each process loads its index).",
        "",
        f"- Run: {run['at']}, {run['machine']}, {run['cores']} cores{load}, Python {run['python']}; "
        f"{run['seconds']:,.0f} s in all, work folder {run['work_dir']}, "
        f"commit {run.get('commit') or 'unknown'}",
        f"- Server: PostgreSQL {pg['server_version']}, fsync={pg['fsync']}, synchronous_commit="
        f"{pg['synchronous_commit']}, full_page_writes={pg['full_page_writes']}, wal_sync_method="
        f"{pg['wal_sync_method']}, shared_buffers={pg['shared_buffers']}, track_wal_io_timing="
        f"{pg['track_wal_io_timing']}; one 4 KiB write and fsync in its "
        f"folder took {run['fsync_ms']} ms (median of 50)",
        f"- Command: {audit['aggregate']}",
        f"- Library: {api['templates']:,} templates ({api['synthetic']:,} synthetic + "
        f"{api['real_enrolled']:,} real), filled in {api['fill_seconds']:,.0f} s "
        f"({api['fill_templates_per_s']:,} templates/s; "
        f"`app.save` of a batch of 500 on PostgreSQL {api['fill_save_ms_per_batch']:,.1f} ms); "
        f"{api['probes']} probes, each searched in turn; {api['top_k']} candidates kept",
        "",
        f"| audit trail | {w_head} | ratio | target (issue 10) |",
        "|---|" + "---:|" * len(writers) + "---:|---|",
        f"| audited commands appended, median of {writers[0]['runs']} runs (each process "
        f"{writers[0]['commands']:,} commands a run from {writers[0].get('threads', 1)} threads), "
        "commands/s | "
        + " | ".join(f"{r['commands_per_s']:,}" for r in writers)
        + f" | {ratio(writers, 'commands_per_s')} | ≥ {TARGETS['commands_per_s']:,} with 4 processes |",
        "| the runs, commands/s | " + " | ".join(runs(r["commands_per_s_runs"]) for r in writers) + " | | |",
        row("commands per CPU second of the writing processes", writers, "commands_per_writer_cpu_s"),
        row("commands per transaction (group commit, ADR 0016)", writers, "commands_per_transaction", 2),
        row("PostgreSQL server CPU per command, ms", writers, "postgres_cpu_ms_per_command", 3),
        row("PostgreSQL transactions per command (pg_stat_database)", writers, "transactions_per_command", 1),
        row("WAL flushes per command (pg_stat_wal)", writers, "wal_syncs_per_command", 3),
        row("WAL flush, ms each", writers, "wal_sync_ms_per_sync", 3),
        row("WAL bytes per command", writers, "wal_bytes_per_command"),
        "",
        f"Chain verification (`rfr audit verify`'s `verify`, a freshly opened application) of the chain the "
        f"{writers[-1]['writers']} processes wrote ({verified['events_written_by_the_writers']:,} events), "
        f"filled to {verified['events']:,} events as `bench/audit_throughput.py` fills its own: "
        f"{verified['verify_events_per_s']:,} events/s, median of {verified['runs']} runs "
        f"({runs(verified['verify_events_per_s_runs'])}); {verified['verify_events_per_cpu_s']:,} per CPU "
        "second of the verifying process. The chain verifies: one chain, no gap or fork, from all the "
        "writing processes.",
        "",
        f"| API search, {phases[0]['clients']} concurrent clients | {a_head} | ratio | target (issue 10) |",
        "|---|" + "---:|" * len(phases) + "---:|---|",
        row("searches/s", phases, "searches_per_s", 1, ratio_of="searches_per_s"),
        row("search latency p50, ms", phases, "p50_ms", 1, ratio_of="p50_ms"),
        row(
            "search latency p95, ms",
            phases,
            "p95_ms",
            1,
            ratio_of="p95_ms",
            target=f"≤ {TARGETS['search_p95_ms']:.0f} beyond the probe's templating",
        ),
        row("search latency p99, ms", phases, "p99_ms", 1),
        row("search latency, slowest, ms", phases, "max_ms", 1),
        row("searches timed", phases, "searches"),
        row("errors", phases, "errors"),
        row("recall@1 of a true mate, through the API", phases, "recall_at_1", 3),
        row("open a search request (`POST /searches`, same clients), p50 ms", phases, "open_p50_ms", 1),
        row(
            "PostgreSQL transactions per search (pg_stat_database)",
            phases,
            "postgres_transactions_per_search",
            1,
        ),
        row("PostgreSQL blocks touched per search", phases, "postgres_blocks_per_search"),
        row("API processes' CPU per search, ms", phases, "api_cpu_ms_per_search", 1),
        row("PostgreSQL server's CPU per search, ms", phases, "postgres_cpu_ms_per_search", 1),
        row("clients' CPU per search, ms", phases, "client_cpu_ms_per_search", 1),
        row(f"cores busy with all of it (of {run['cores']})", phases, "cpu_cores_busy", 2),
        row(
            "CPU seconds of each API process, timed part",
            phases,
            lambda r: " / ".join(f"{x:.1f}" for x in r["api_cpu_s_by_process"]),
        ),
        row(
            "resident memory of each API process, MiB",
            phases,
            lambda r: " / ".join(_n(x) for x in r["api_rss_mib_by_process"]),
        ),
        row("load average (1 min) as the timed part began", phases, "load_average_1min_timed", 2),
        "",
        f"One search alone, through `SearchExecution.search_library` in one process (no HTTP, one at a time, "
        f"{api['probes']} probes): p50 {api['in_process_search_p50_ms']} ms, "
        f"p95 {api['in_process_search_p95_ms']} ms.",
        "",
        "Targets of issue 10, against this run:",
        "",
        *target_lines(result),
        "",
    ]
    return "\n".join(lines)


def section_templates(text: str) -> int | None:
    """The library size of the committed PostgreSQL section of ``text``, if it has one."""
    start = text.find(TITLE.split(":", maxsplit=1)[0])
    if start < 0:
        return None
    found = re.search(r"^- Library: ([\d,]+) templates", text[start:], re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else None


def replaces(existing: str, result: dict[str, Any]) -> bool:
    """Whether this run's section may replace the committed one: none is committed, or this run's
    library is at least as large (a quick run on a small library never replaces the documented one)."""
    committed = section_templates(existing)
    return committed is None or result["api"]["templates"] >= committed


def results_path(result: dict[str, Any]) -> Path:
    """bench/results/postgres-100k.json for a library of 100,000 templates."""
    n = result["api"]["templates"]
    label = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    return REPO / "bench" / "results" / f"postgres-{label}.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--templates", type=int, default=DEFAULT_TEMPLATES, help="templates in the library")
    parser.add_argument("--searches", type=int, default=DEFAULT_SEARCHES, help="timed searches per API setup")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent API clients")
    parser.add_argument(
        "--phase-seconds",
        type=float,
        default=DEFAULT_PHASE_SECONDS,
        help="longest time of the timed searches of one API setup (and of opening its requests)",
    )
    parser.add_argument("--probes", type=int, default=200, help="held-back real photos searched in turn")
    parser.add_argument("--commands", type=int, default=2_000, help="audited commands per process per run")
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_WRITER_THREADS, help="threads of each writing process"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of each audit measure (median reported)")
    parser.add_argument("--events", type=int, default=200_000, help="events in the verified chain")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="folder for the data (default: the temp dir)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument(
        "--update", type=Path, help="replace this document's PostgreSQL section (docs/benchmarks.md)"
    )
    parser.add_argument("--writer", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer is not None:
        return writer_main(args.writer, args.commands, args.runs, args.threads)
    why_not = unavailable()
    if why_not is not None:
        print(f"postgres_service: {why_not}", file=sys.stderr)
        return 2
    command = " ".join(["python bench/postgres_service.py", *(sys.argv[1:] if argv is None else argv)])
    result = measure(
        templates=args.templates,
        commands=args.commands,
        threads=args.threads,
        runs=args.runs,
        events=args.events,
        searches=args.searches,
        clients=args.clients,
        probes=args.probes,
        phase_seconds=args.phase_seconds,
        work_dir=args.work_dir,
        command=command,
        log=lambda m: print(m, flush=True),
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    section = markdown_section(result)
    print(section)
    if args.update is not None:
        from run_all import merged, sections_of

        existing = args.update.read_text(encoding="utf-8") if args.update.exists() else ""
        args.update.write_text(merged(existing, sections_of(existing)[0], [section]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
