"""`rfr demo` as a newcomer runs it: a real process, a real server, real photos, a real audit trail.

The slice of LFW is the first identities in name order; the probe is the last photo of the
first of them with two photos (adam_sandler), whose other photos are enrolled.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from http_harness import REPO_ROOT, start_server

SLICE = "6"  # identities: enough for wrong candidates to rank below the right one, and quick
PROBE = "adam_sandler"


def _rfr(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", *args],
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _explain(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )


@pytest.fixture(scope="module")
def demo_run(
    shared_faces: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    lfw = shared_faces / "lfw"
    return data_dir, _rfr(
        "demo", "--images", str(lfw), "--max-identities", SLICE, "--data-dir", str(data_dir)
    )


def test_the_demo_runs_every_step_and_puts_the_right_person_first(demo_run):
    _, result = demo_run
    assert result.returncode == 0, _explain(result)
    out = result.stdout
    assert f"Correct identity first: yes ({PROBE} at rank 1)" in out, _explain(result)
    steps = re.findall(r"^\s*(\d+)/(\d+) ", out, flags=re.MULTILINE)
    assert [int(n) for n, _ in steps] == list(range(1, 13)), steps
    # Each lesson names the rules it shows, and the search shows the candidate listing (S-04).
    for rule in (
        "A-05",
        "L-02",
        "L-01",
        "R-01",
        "P-01",
        "P-11",
        "S-03",
        "S-04",
        "S-05",
        "S-06",
        "S-07",
        "A-02",
    ):
        assert f"{rule}" in out, rule
    assert re.search(rf"rank\s+1\s+score 0\.\d+\s+{PROBE}$", out, flags=re.MULTILINE), _explain(result)
    assert "audit trail intact" in out


def test_the_saved_match_report_carries_the_caveat_and_the_case(demo_run):
    _, result = demo_run
    assert result.returncode == 0, _explain(result)
    path = Path(re.search(r"^Match report: (.+)$", result.stdout, flags=re.MULTILINE).group(1))
    page = path.read_text(encoding="utf-8")
    assert "DEMO/2025/0001" in page
    # S-06: the 8.27 caveat, word for word as the API gave it to the demo.
    caveat = re.search(r"caveat \(8\.27\): (.+?)\n\s+Shown:    printable", result.stdout, flags=re.DOTALL)
    assert caveat is not None
    assert " ".join(caveat.group(1).split()) in " ".join(page.split())


def test_the_audit_trail_the_demo_left_verifies(demo_run):
    data_dir, result = demo_run
    assert result.returncode == 0, _explain(result)
    verified = _rfr("audit", "verify", env={"RFR_DATA_DIR": str(data_dir), "RFR_PERSISTENCE": "sqlite"})
    assert verified.returncode == 0, _explain(verified)
    count = int(re.search(r"audit trail intact: (\d+) events verified", verified.stdout).group(1))
    # Users, approval, library, enrolment, probe, search, report, dissemination, audit access.
    assert count > 40


@pytest.mark.parametrize(
    ("probe", "lesson"),
    [
        # P-10: the last photo of anthony_fauci is flagged for its roll; the decision is recorded.
        ("anthony_fauci", "quality flags pose_roll shown; decision to proceed recorded"),
        # P-11: bill_simon's last photo shows a second, small face, which is never templated.
        ("bill_simon", "face-1 selected; templates now: 1 "),
    ],
)
def test_flagged_and_crowded_probes_get_the_decision_and_the_selection_the_policy_asks(
    shared_faces, tmp_path, probe, lesson
):
    result = _rfr(
        "demo", "--images", str(shared_faces / "lfw"), "--max-identities", "3",
        "--probe-identity", probe, "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    assert result.returncode == 0, _explain(result)
    assert lesson in result.stdout, _explain(result)
    if probe == "bill_simon":
        assert "2 face(s) detected" in result.stdout
        assert "the 1 other face(s) are never templated" in result.stdout
    assert "ready for search" in result.stdout


def test_the_demo_drives_a_running_server_from_its_bootstrap_token(shared_faces, tmp_path):
    # This server takes small bodies only (the harness's limit): the demo splits its uploads.
    server = start_server(tmp_path / "data")
    try:
        token_file = server.data_dir / "bootstrap-admin.token"
        result = _rfr(
            "demo",
            "--images",
            str(shared_faces / "lfw"),
            "--max-identities",
            "3",
            "--server",
            server.base_url,
            "--token-file",
            str(token_file),
            "--output",
            str(tmp_path / "out"),
        )
    finally:
        server.stop()
    assert result.returncode == 0, _explain(result)
    assert f"Correct identity first: yes ({PROBE} at rank 1)" in result.stdout
    assert list((tmp_path / "out").glob("match-report-*.html"))


def test_a_refused_step_stops_the_demo_with_the_apis_reason(shared_faces, tmp_path):
    # The bootstrap token works once: a second demo with it is refused at the first request.
    server = start_server(tmp_path / "data")
    try:
        token_file = server.data_dir / "bootstrap-admin.token"
        server.exchange(server.bootstrap_token)
        result = _rfr(
            "demo", "--images", str(shared_faces / "lfw"), "--max-identities", "2",
            "--server", server.base_url, "--token-file", str(token_file),
        )  # fmt: skip
    finally:
        server.stop()
    assert result.returncode == 1, _explain(result)
    assert "rfr demo FAILED: POST /tokens/exchange answered 401" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-identities", "0"], "--max-identities must be at least 1"),
        (["--server", "http://127.0.0.1:9"], "--server needs --token-file"),
        (["--probe-identity", "ann_landers"], "'ann_landers' has one"),
        (["--probe-identity", "nobody_at_all"], "no folder 'nobody_at_all'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(shared_faces, args, message):
    result = _rfr("demo", "--images", str(shared_faces / "lfw"), *args, timeout=60)
    assert result.returncode == 2, _explain(result)
    assert message in result.stderr
