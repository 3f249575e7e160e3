"""Audit trail throughput on SQLite: audited commands appended per second, chain verification.

Run with `python bench/audit_throughput.py [--events N] [--commands C] [--runs R] [--json]`
(`make bench` runs it too). Everything goes through the real `RfrApplication` on an SQLite file
in a temporary folder, as `rfr serve` and `rfr audit verify` use it:

- Appending: one audited command is one real domain command, `AuditAccess.record` (the record an
  Auditor's query leaves, A-03: its rules decide, it raises one event), saved on its own, so one
  transaction per command holding the event, its chain link and the moved chain head. C commands
  per run; the median of R runs is reported.
- Verification: the store is then filled to N events (untimed; many aggregates per save, only to
  fill quickly) and `verify` recomputes the whole chain from a freshly opened application, as the
  CLI does; the median of R runs is reported.

Without `--json` it prints the Markdown section kept in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Last, so that PYTHONPATH can point the script at another checkout (to measure a before).
sys.path.append(str(Path(__file__).resolve().parent.parent))

from rfr.application.app import RfrApplication
from rfr.domain.audit_access import AuditAccess
from rfr.domain.people import Actor, Role
from rfr.infrastructure.audit import verify
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

AGGREGATE = "AuditAccess.record (rfr.domain.audit_access): 1 event per command, 1 save per command"
AUDITOR = Actor("bench-auditor", roles=[Role.AUDITOR])
SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
TARGETS = {"commands_per_s": 2_000, "verify_events_per_s": 200_000}


def open_app(data_dir: Path, *, create_tables: bool = True) -> RfrApplication:
    settings = Settings(data_dir=data_dir, persistence="sqlite")
    return RfrApplication(env=application_env(settings, create_tables=create_tables))


def audited_command(app: RfrApplication, at: datetime, n: int) -> None:
    """What the audit service does for one query: the domain decides and records, one save."""
    record = AuditAccess.record(
        AUDITOR,
        at,
        "history",
        parameters={"aggregate": f"{n:032x}"},
        items=[f"{n:032x}:1"],
        reason="benchmark of the audit trail",
    )
    app.save(record)


def store_settings(app: RfrApplication) -> dict[str, str]:
    """journal_mode and synchronous as a connection of the application's own pool reports them."""
    with app.recorder.datastore.get_connection(commit=False) as conn, conn.cursor() as cursor:
        (journal_mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
        (synchronous,) = cursor.execute("PRAGMA synchronous").fetchone()
    return {"journal_mode": journal_mode, "synchronous": SYNCHRONOUS_NAMES.get(synchronous, str(synchronous))}


def fill(app: RfrApplication, at: datetime, events: int, batch: int = 500) -> None:
    n = app.recorder.chain_head().count
    while n < events:
        size = min(batch, events - n)
        app.save(
            *(
                AuditAccess.record(AUDITOR, at, "verify", parameters={}, items=[], reason="fill")
                for _ in range(size)
            )
        )
        n += size


def fsync_ms(folder: Path, writes: int = 50) -> float:
    """Median time of one 4 KiB write and fsync in ``folder``: what a commit costs with synchronous=FULL."""
    path = folder / "fsync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(writes):
            started = time.perf_counter()
            os.write(fd, bytes(4096))
            os.fsync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times) * 1e3


def measure(events: int = 200_000, commands: int = 2_000, runs: int = 5) -> dict[str, Any]:
    at = datetime.now(UTC)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="rfr-audit-bench-") as tmp:
        data_dir = Path(tmp) / "var"
        fsync = fsync_ms(Path(tmp))
        app = open_app(data_dir)
        settings = store_settings(app)
        audited_command(app, at, 0)  # warm-up: connection, prepared statements
        append_rates, append_cpu_rates = [], []
        for run in range(runs):
            started, cpu = time.perf_counter(), time.process_time()
            for n in range(commands):
                audited_command(app, at, run * commands + n + 1)
            append_rates.append(commands / (time.perf_counter() - started))
            append_cpu_rates.append(commands / (time.process_time() - cpu))
        fill(app, at, events)
        stored = app.recorder.chain_head().count
        app.close()

        auditor = open_app(data_dir, create_tables=False)
        verify_rates, verify_cpu_rates = [], []
        for _ in range(runs):
            started, cpu = time.perf_counter(), time.process_time()
            result = verify(auditor.recorder)
            elapsed, cpu_elapsed = time.perf_counter() - started, time.process_time() - cpu
            if not result.ok or result.checked != stored:
                raise SystemExit(f"verification failed on the benchmark store: {result.summary()}")
            verify_rates.append(result.checked / elapsed)
            verify_cpu_rates.append(result.checked / cpu_elapsed)
        auditor.close()
    return {
        "aggregate": AGGREGATE,
        "commands": commands,
        "runs": runs,
        "commands_per_s": round(statistics.median(append_rates)),
        "commands_per_s_runs": [round(r) for r in append_rates],
        "commands_per_cpu_s": round(statistics.median(append_cpu_rates)),
        "events": stored,
        "verify_events_per_s": round(statistics.median(verify_rates)),
        "verify_events_per_s_runs": [round(r) for r in verify_rates],
        "verify_events_per_cpu_s": round(statistics.median(verify_cpu_rates)),
        **settings,
        "targets": TARGETS,
        "run": {
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_1min": None if load is None else round(load, 2),
            "fsync_ms": round(fsync, 2),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
        },
    }


def markdown_section(result: dict[str, Any]) -> str:
    run = result["run"]
    load = "" if run["load_average_1min"] is None else f", load average {run['load_average_1min']} at start"

    def runs(rates: list[int]) -> str:
        return ", ".join(f"{r:,}" for r in rates)

    lines = [
        "## Audit trail: append and verify",
        "",
        "Made by `python bench/audit_throughput.py` (also run by `make bench`): the real application on",
        "an SQLite file in a temporary folder. Medians of the runs, all from one run of the script.",
        "Wall-clock rates are the measure; rates per second of the process's own CPU time show what",
        "the code costs when other work shares the machine. Before and after the changes made for",
        "issue 9, one run each: docs/adr/0012-audit-append-and-verify-speed.md.",
        "",
        f"- Run: {run['at']}, {run['machine']}, {run['cores']} cores{load}, Python {run['python']}, "
        f"SQLite {run['sqlite']}",
        f"- Store: journal_mode={result['journal_mode']}, synchronous={result['synchronous']}; "
        f"one 4 KiB write and fsync in its folder took {run['fsync_ms']} ms (median of 50)",
        f"- Command: {result['aggregate']}",
        "",
        "| measure | median, wall clock | median, per CPU second | wall-clock runs | target (issue 9) |",
        "|---|---|---|---|---|",
        f"| audited commands appended, {result['runs']} runs of {result['commands']:,} "
        "(event, chain link and head in one transaction each) "
        f"| {result['commands_per_s']:,} commands/s | {result['commands_per_cpu_s']:,} "
        f"| {runs(result['commands_per_s_runs'])} | {TARGETS['commands_per_s']:,} commands/s |",
        f"| chain verification (`rfr audit verify`) of {result['events']:,} events, "
        f"{result['runs']} runs "
        f"| {result['verify_events_per_s']:,} events/s | {result['verify_events_per_cpu_s']:,} "
        f"| {runs(result['verify_events_per_s_runs'])} | {TARGETS['verify_events_per_s']:,} events/s |",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="events in the verified store")
    parser.add_argument("--commands", type=int, default=2_000, help="audited commands per append run")
    parser.add_argument("--runs", type=int, default=5, help="runs of each measure (median reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(events=args.events, commands=args.commands, runs=args.runs)
    print(json.dumps(result, indent=2) if args.json else markdown_section(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
