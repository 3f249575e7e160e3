"""`rfr bench scale` as an operator runs it, at a tiny size: one JSON object of sane figures.

No timing thresholds (issue 9: a benchmark reports the targets); this checks that the command
runs the whole path (real photos, fill, enrolments, probes, searches, FAISS, numpy, audit) and
prints what `docs/benchmarks.md` is made from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRED = (
    "templates",
    "search_p50_ms",
    "index_p50_ms",
    "enrol_extra_p50_ms",
    "recall_at_1",
    "faiss_hnsw_p50_ms",
    "exact_numpy_p50_ms",
)
TIMINGS = (
    "search_p50_ms",
    "search_p99_ms",
    "index_p50_ms",
    "index_p99_ms",
    "exact_numpy_p50_ms",
    "enrol_p50_ms",
    "enrol_detect_embed_p50_ms",
    "enrol_extra_p50_ms",
)
RATIOS = (
    "recall_at_1",
    "mates_in_top_10",
    "index_recall_at_1",
    "index_neighbour_recall_at_10",
    "exact_recall_at_1",
)


def _faiss_installed() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.dataset
def test_bench_scale_json_at_500_templates(shared_faces: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RFR_DATA_DIR": str(tmp_path / "var"),
        "RFR_SHARED_DIR": str(shared_faces.parents[1]),
    }
    command = [
        sys.executable, "-m", "rfr.entrypoints.cli", "bench", "scale", "--sizes", "500", "--json",
        "--identities", "8", "--probes", "8", "--work-dir", str(tmp_path),
        "--audit-events", "1000", "--audit-commands", "50", "--audit-runs", "1",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    result = json.loads(done.stdout)  # one JSON object and nothing else on stdout
    assert isinstance(result, dict)
    assert result["command"].startswith("rfr bench scale --sizes 500")
    (size,) = result["sizes"]
    for key in REQUIRED:
        assert key in size, key
    assert size["templates"] == 500 == size["synthetic"] + size["real_enrolled"]
    assert size["real_enrolled"] >= 2 and size["probes"] >= 2
    for key in TIMINGS:
        assert size[key] > 0, (key, size[key])
    for key in RATIOS:
        assert 0.0 <= size[key] <= 1.0, (key, size[key])
    assert size["index_adds_per_s"] > 0 and size["fill_templates_per_s"] > 0
    assert size["rss_end"]["peak_rss_mib"] > 0
    if _faiss_installed():
        assert size["faiss_hnsw_p50_ms"] > 0 and size["faiss_flat_p50_ms"] > 0
        assert 0.0 <= size["faiss_hnsw_recall_at_1"] <= 1.0
    else:  # the `bench` extra is not installed: FAISS is reported missing, not guessed
        assert size["faiss_hnsw_p50_ms"] is None and "faiss-cpu is not installed" in size["faiss"]
    audit = result["audit"]
    assert audit["commands_per_s"] > 0 and audit["verify_events_per_s"] > 0
    assert result["real"]["identities"] == 8


def test_bench_scale_refuses_bad_sizes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "bench", "scale", "--sizes", "ten"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "not a comma-separated list" in done.stderr
