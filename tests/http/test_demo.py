"""`rfr demo` as a newcomer runs it: a real process, a real server, real photos, a real audit trail.

The slice of LFW is the first identities in name order; the probe is the last photo of the
first of them with two photos (adam_sandler), whose other photos are enrolled.

The demo must work on any folder-per-identity set, not only on the LFW it was written
against, so some tests run it on sets generated here from LFW photos (in a temporary folder):
one whose first held-back photo shows a larger bystander beside the centred person, and one
where no person held back has a photo in the library.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
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


# -- generated sets ----------------------------------------------------------------------------

GENERATED_PEOPLE = 4
PHOTOS_EACH = 3
# The bystander's face, pasted beside the person, is this much wider than the person's: the
# largest face in the frame is not the one the folder is named for.
BYSTANDER_SCALE = 2.0
GREY = 128


def _one_face_photos(reference: list[dict]) -> dict[str, list[dict]]:
    """LFW identity -> its photos in which dlib finds exactly one face, in name order."""
    found: dict[str, list[dict]] = {}
    for record in sorted(reference, key=lambda r: r["path"]):
        parts = record["path"].split("/")
        if parts[0] == "lfw" and len(record["faces"]) == 1:
            found.setdefault(parts[1], []).append(record)
    return found


def _with_bystander(person: np.ndarray, person_box, bystander: np.ndarray, bystander_box) -> np.ndarray:
    """``person``'s photo centred on a wider grey canvas, and to its left a bystander's face,
    larger than the person's, as in a crowded still centred on the person of interest."""
    left, top, right, bottom = bystander_box
    margin = (right - left) // 2
    crop = bystander[max(top - margin, 0) : bottom + margin, max(left - margin, 0) : right + margin]
    scale = BYSTANDER_SCALE * (person_box[2] - person_box[0]) / (right - left)
    crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    h, w = person.shape[:2]
    ch, cw = crop.shape[:2]
    side = cw + 10
    canvas = np.full((max(h, ch), w + 2 * side, 3), GREY, np.uint8)
    y = (canvas.shape[0] - h) // 2
    canvas[y : y + h, side : side + w] = person
    y = (canvas.shape[0] - ch) // 2
    canvas[y : y + ch, :cw] = crop
    return canvas


@pytest.fixture(scope="module")
def crowded_first_set(shared_faces: Path, dlib_reference: list[dict], tmp_path_factory) -> Path:
    """Four people with three one-face photos each, the first person's last photo replaced by
    that photo with a larger stranger beside it: the first photo the demo holds back has two faces."""
    photos = _one_face_photos(dlib_reference)
    people = [name for name, records in photos.items() if len(records) >= PHOTOS_EACH]
    *chosen, stranger = people[: GENERATED_PEOPLE + 1]
    root = tmp_path_factory.mktemp("generated") / "faces"
    for name in chosen:
        folder = root / name
        folder.mkdir(parents=True)
        for n, record in enumerate(photos[name][:PHOTOS_EACH], start=1):
            (folder / f"{n}.jpg").write_bytes((shared_faces / record["path"]).read_bytes())
    first = photos[chosen[0]][PHOTOS_EACH - 1]
    other = photos[stranger][0]
    crowded = _with_bystander(
        cv2.imread(str(shared_faces / first["path"])),
        first["faces"][0]["box_ltrb"],
        cv2.imread(str(shared_faces / other["path"])),
        other["faces"][0]["box_ltrb"],
    )
    assert cv2.imwrite(str(root / chosen[0] / f"{PHOTOS_EACH}.jpg"), crowded)
    return root


def _faces_shown(out: str) -> dict[str, int]:
    """face id -> box area, from the demo's "Shown: face-N: box (l, t)-(r, b)" lines."""
    boxes = re.findall(r"(face-\d+): box \((-?\d+), (-?\d+)\)-\((-?\d+), (-?\d+)\)", out)
    return {face: (int(r) - int(left)) * (int(b) - int(t)) for face, left, t, r, b in boxes}


def test_a_first_held_back_photo_with_two_faces_gives_way_to_one_with_a_single_face(
    crowded_first_set, tmp_path
):
    first, second = sorted(p.name for p in crowded_first_set.iterdir())[:2]
    result = _rfr("demo", "--images", str(crowded_first_set), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, _explain(result)
    out = result.stdout
    assert f"probe held back: {first}/{PHOTOS_EACH}.jpg (and {GENERATED_PEOPLE - 1} more" in out
    assert "2 face(s) detected" in out, _explain(result)
    assert "set aside, 2 faces: a held-back photo with one face is looked for first" in out
    assert f"Correct identity first: yes ({second} at rank 1)" in out, _explain(result)
    assert "audit trail intact" in out


def test_a_probe_with_several_faces_is_searched_with_the_face_at_the_centre_not_the_largest(
    crowded_first_set, tmp_path
):
    # Named, the first person's crowded photo is the only one held back: the demo must search it.
    first = sorted(p.name for p in crowded_first_set.iterdir())[0]
    result = _rfr(
        "demo", "--images", str(crowded_first_set), "--probe-identity", first,
        "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    assert result.returncode == 0, _explain(result)
    out = result.stdout
    areas = _faces_shown(out)
    selected = re.search(r"(face-\d+) selected;", out).group(1)
    assert len(areas) == 2, _explain(result)
    assert areas[selected] < max(areas.values())  # the larger face is the stranger's
    assert f"why {selected}: the face nearest the centre of the frame" in out
    assert "the 1 other face(s) are never templated" in out
    assert f"Correct identity first: yes ({first} at rank 1)" in out, _explain(result)


@pytest.fixture
def nobody_to_search_set(shared_faces: Path, dlib_reference: list[dict], tmp_path: Path) -> Path:
    """Two people; the only one with two photos has, besides the one held back, a photo
    without a face, which is not enrolled: no person can be both searched for and found."""
    photos = _one_face_photos(dlib_reference)
    first, second = list(photos)[:2]
    root = tmp_path / "faces"
    (root / first).mkdir(parents=True)
    (root / second).mkdir()
    assert cv2.imwrite(str(root / first / "1.jpg"), np.full((150, 150, 3), GREY, np.uint8))
    (root / first / "2.jpg").write_bytes((shared_faces / photos[first][0]["path"]).read_bytes())
    (root / second / "1.jpg").write_bytes((shared_faces / photos[second][0]["path"]).read_bytes())
    return root


def test_a_set_with_nobody_both_held_back_and_enrolled_stops_the_demo_saying_so(
    nobody_to_search_set, tmp_path
):
    result = _rfr("demo", "--images", str(nobody_to_search_set), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1, _explain(result)
    assert "1 no_face" in result.stdout
    assert "no person held back for the probe is in the library" in result.stderr, _explain(result)
