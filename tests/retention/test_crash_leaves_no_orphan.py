"""A process killed at each step of an enrolment or a probe submission leaves, after a restart and
one worker round, no biometric record that no event names (issue 9, ADR 0015).

Each case runs the command in a child interpreter on a SQLite data folder (the production
use case through ``Services``, with the fake face engine of ``tests/application`` over the
real encrypted store and index registry). A test hook in the child only, never in the product,
wraps the store so that it stops at a named point: after its N-th record (``put:N``), between
the N-th record's file and its key row (``file:N``), just before the command's save or just
after it. The test then kills the child with SIGKILL, rebuilds the library's index from the
store as a search finding it short would (so an orphan template reaches the index too), and
runs ``rfr worker --once`` with a grace period of one second (``RFR_ORPHAN_GRACE_SECONDS``).

Afterwards: the store holds exactly the records the events name (nothing unnamed is left,
nothing acknowledged is lost: a save that completed keeps every record), every stored file is
named by a key row, and the index holds no template the store does not.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from uuid import UUID

import numpy as np
import pytest
from service_builders import make_world

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "application"))
from fake_biometrics import face_image, fake_biometrics, fake_engine

from rfr.application.app import RfrApplication
from rfr.application.services.base import list_ids
from rfr.application.services.biometric_support import (
    library_image_records,
    library_video_record,
    probe_face_record,
    probe_image_record,
)
from rfr.application.services.enrolment import Enrolment, EnrolmentItem
from rfr.application.services.policy import PolicySettingsService
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS = REPO_ROOT / "tests"
GRACE_S = 1
STOP_TIMEOUT_S = 60


def still_image_records(image_id: str) -> set[str]:
    """The records a still image's enrolment writes and its events name: every record of a
    library image but a video's, which only a video item has (ADR 0026); these tests enrol stills."""
    return set(library_image_records(image_id)) - {library_video_record(image_id)}


# The child: a command (``enrol``, ``probe``) stopped where CRASH_AT says, or ``rfr worker --once``
# (``worker``) with the fake engine in place of the models.
CHILD = r"""
import os, sys, time
from datetime import date, timedelta
from pathlib import Path
from uuid import UUID

tests = Path(sys.argv[1])
sys.path[:0] = [str(tests / "application"), str(tests / "domain"), str(tests / "biometric_services")]
import onnxruntime  # noqa: F401  (before usearch, as the test conftests do)

import domain_builders
from fake_biometrics import face_image, fake_biometrics
from service_builders import T0, FixedClock

from rfr.adapters.biometric_store import encrypted_files
from rfr.application.app import RfrApplication
from rfr.application.services.enrolment import EnrolmentItem
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.entrypoints import composition
from rfr.infrastructure.settings import Settings

mode = sys.argv[2]
data_dir = Path(os.environ["RFR_DATA_DIR"])
step = os.environ.get("CRASH_AT", "")
marker = Path(os.environ["CRASH_MARKER"])



def stop(name):
    marker.write_text(name)
    while True:
        time.sleep(60)


def stop_after(owner, attr, n):
    original, calls = getattr(owner, attr), [0]

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        calls[0] += 1
        if calls[0] == n:
            stop(step)
        return result

    setattr(owner, attr, wrapped)


def stop_before_save():
    def wrapped(*args, **kwargs):
        stop(step)

    RfrApplication.save = wrapped


kind, _, n = step.partition(":")
if kind == "put":
    stop_after(encrypted_files.EncryptedFileStore, "put", int(n))
elif kind == "file":
    stop_after(encrypted_files, "_write_new_file", int(n))
elif kind == "save-before":
    stop_before_save()
elif kind == "save-after":
    stop_after(RfrApplication, "save", 1)

if mode == "worker":
    composition.build_biometrics = lambda settings, options=None: fake_biometrics(settings.data_dir)
    from rfr.entrypoints.cli import main

    sys.exit(main(["worker", "--once"]))

settings = Settings(data_dir=data_dir, persistence="sqlite")
clock = FixedClock(T0 + timedelta(hours=1))
with composition.Services(settings, clock=clock, biometrics=lambda: fake_biometrics(data_dir)) as services:
    if mode == "enrol":
        items = [
            EnrolmentItem(face_image(k), date(2024, 5, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_2,
                          f"custody {k}", f"{k}.png")
            for k in (3, 6)
        ]
        report = services.enrolment.enrol("admin", os.environ["LIBRARY_ID"], items)
        assert len(report.enrolled) == 2, report
    elif mode == "probe":
        services.probes.submit("analyst", domain_builders.form3(), face_image(7))
marker.write_text("done")
"""

# (where the child stops, records written and not named when it dies, files without a key row)
ENROLMENT_STEPS = [
    ("put:1", 1, 0),  # the first image
    ("put:2", 2, 0),  # its face analysis
    ("put:3", 3, 0),  # its subject reference
    ("put:4", 4, 0),  # its template
    ("put:6", 6, 0),  # the second image and its face analysis: 2 images, 1 template, ...
    ("file:5", 4, 1),  # the second image's file, before its key row
    ("save-before", 8, 0),  # every record, the save not begun
    ("save-after", 0, 0),  # the save done, the index not yet updated
    ("", 0, 0),  # not killed
]
PROBE_STEPS = [
    ("put:1", 1, 0),  # the probe image
    ("save-before", 2, 0),  # the image and its face analysis
    ("save-after", 0, 0),
]


def _item(steps: int) -> EnrolmentItem:
    return EnrolmentItem(
        face_image(steps),
        date(2024, 5, 1),
        PerceivedAgeBand.ADULT,
        MopiGroup.GROUP_2,
        "custody",
        f"{steps}.png",
    )


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RFR_DATA_DIR": str(data_dir),
        "RFR_PERSISTENCE": "sqlite",
        "RFR_ORT_THREADS": "1",
        "RFR_ORPHAN_GRACE_SECONDS": str(GRACE_S),
        "CRASH_MARKER": str(data_dir.parent / "stopped-at"),
        **extra,
    }


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, persistence="sqlite")


def _library_with_one_image(tmp_path: Path) -> tuple[Path, str, set[str]]:
    """A SQLite deployment with an approved library holding one acknowledged enrolled image."""
    world = make_world(tmp_path, fake_engine(), persistence="sqlite")
    # The worker runs on the real clock, long after this store's 2025: a probe the child submits
    # would be due under R-03a, and this test is of crashes, not of retention.
    PolicySettingsService(world.app, world.clock).change(
        "sro", PolicyConfig(never_searched_probe_days=36500), "crashes under test"
    )
    _, library = world.library()
    bio = fake_biometrics(world.data_dir)
    report = Enrolment(world.app, world.clock, bio).enrol("admin", str(library.id), [_item(1)])
    ((image_id, template_id),) = [(r.image_id, r.template_id) for r in report.enrolled]
    world.app.close()
    return world.data_dir, str(library.id), {*still_image_records(str(image_id)), str(template_id)}


def _run_and_kill(child: Path, data_dir: Path, mode: str, step: str, **env: str) -> None:
    marker = data_dir.parent / "stopped-at"
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, str(child), str(TESTS), mode],
        cwd=REPO_ROOT,
        env=_env(data_dir, CRASH_AT=step, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + STOP_TIMEOUT_S
    try:
        while not marker.exists():
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"the {mode} child ended ({proc.returncode}) before {step or 'its end'}: {err}")
            if time.monotonic() > deadline:
                pytest.fail(f"the {mode} child did not reach {step or 'its end'}")
            time.sleep(0.02)
        assert marker.read_text() == (step or "done")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


def _worker_once(child: Path, data_dir: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(child), str(TESTS), "worker"],
        cwd=REPO_ROOT,
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _stored(data_dir: Path) -> tuple[set[str], set[str], set[str]]:
    """(record ids, template ids, blob file names the key table names) as the store's files hold them."""
    with sqlite3.connect(data_dir / "biometrics" / "keys.sqlite3") as db:
        rows = db.execute("SELECT record_id, kind, blob_name FROM biometric_records").fetchall()
    db.close()
    return {r[0] for r in rows}, {r[0] for r in rows if r[1] == "template"}, {r[2] for r in rows}


def _blob_files(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "biometrics" / "blobs").rglob("*") if p.is_file()}


def _named(data_dir: Path, library_id: str) -> tuple[set[str], set[str]]:
    """(every record the events name, the library's templates among them), read from the events."""
    with RfrApplication(application_env(_settings(data_dir))) as app:
        images = [r.image_id for r in app.library_images.page(library_id, 0, 100) if r.purged_at is None]
        templates = {t for of in app.library_images.templates_of(images).values() for t in of.values()}
        named = {r for i in images for r in still_image_records(i)} | templates
        after = 0
        while True:
            probe_ids, next_after = list_ids(app, ProbeImage.Submitted, after=after, limit=100)
            for probe_id in probe_ids:
                probe = app.get(UUID(str(probe_id)), ProbeImage)
                named.add(probe_image_record(probe_id))
                named.update(probe_face_record(probe_id, f) for f in probe.faces)
                named.update(t.template_id for t in probe.templates)
            if next_after is None:
                break
            after = next_after
    return named, templates


def _indexed(data_dir: Path, library_id: str) -> set[str]:
    bio = fake_biometrics(data_dir)
    index = bio.index(library_id)
    vector = np.zeros(bio.engine.embedder.dimension, np.float32)
    return {h.template_id for h in index.search(vector, max(len(index), 1))} if len(index) else set()


def _rebuild_index(data_dir: Path, library_id: str) -> None:
    """What a search that finds the index short of the library does: a rebuild from the store."""
    bio = fake_biometrics(data_dir)
    embedder = bio.engine.embedder
    bio.indexes.rebuild(library_id, bio.algorithm_id, embedder.dimension, embedder.metric)


@pytest.fixture
def child(tmp_path: Path) -> Path:
    path = tmp_path / "crash_child.py"
    path.write_text(CHILD)
    return path


def _check_after_one_worker_round(
    child: Path, data_dir: Path, library_id: str, acknowledged: set[str], unnamed: int, unkeyed: int
) -> list[str]:
    named, _ = _named(data_dir, library_id)
    records, _, keyed = _stored(data_dir)
    assert acknowledged <= named <= records
    assert len(records - named) == unnamed
    assert len(_blob_files(data_dir) - keyed) == unkeyed
    _rebuild_index(data_dir, library_id)
    time.sleep(GRACE_S + 0.2)

    lines = _worker_once(child, data_dir)

    named_after, templates = _named(data_dir, library_id)
    records, stored_templates, keyed = _stored(data_dir)
    assert named_after == named  # the worker named nothing new and erased nothing named
    assert records == named  # nothing unnamed left; nothing acknowledged lost
    assert _blob_files(data_dir) == keyed  # every file is a record's
    assert _indexed(data_dir, library_id) == templates <= stored_templates
    reported = [line for line in lines if line.startswith("reconciliation:")]
    assert bool(unnamed) == any(" that no event names (" in line for line in reported), lines
    assert bool(unkeyed) == any("stored files that no record names" in line for line in reported), lines
    assert not any("FAILED" in line for line in lines), lines
    return reported


@pytest.mark.parametrize(
    ("step", "unnamed", "unkeyed"), ENROLMENT_STEPS, ids=[s[0] or "done" for s in ENROLMENT_STEPS]
)
def test_an_enrolment_killed_at_any_step_leaves_no_record_no_event_names(
    tmp_path: Path, child: Path, step: str, unnamed: int, unkeyed: int
) -> None:
    data_dir, library_id, acknowledged = _library_with_one_image(tmp_path)

    _run_and_kill(child, data_dir, "enrol", step, LIBRARY_ID=library_id)

    reported = _check_after_one_worker_round(child, data_dir, library_id, acknowledged, unnamed, unkeyed)
    if step == "put:6":  # killed inside the second image, as in issue 9
        assert reported == [
            "reconciliation: erased 2 face analyses, 2 images, 1 subject reference, 1 template that no "
            "event names (10 records written since the last round checked)"
        ]
    named, _ = _named(data_dir, library_id)
    assert len(named) == (12 if step in ("save-after", "") else 4)


@pytest.mark.parametrize(("step", "unnamed", "unkeyed"), PROBE_STEPS, ids=[s[0] for s in PROBE_STEPS])
def test_a_probe_submission_killed_at_any_step_leaves_no_record_no_event_names(
    tmp_path: Path, child: Path, step: str, unnamed: int, unkeyed: int
) -> None:
    data_dir, library_id, acknowledged = _library_with_one_image(tmp_path)

    _run_and_kill(child, data_dir, "probe", step)

    _check_after_one_worker_round(child, data_dir, library_id, acknowledged, unnamed, unkeyed)
    named, _ = _named(data_dir, library_id)
    assert len(named) == (4 + 2 if step == "save-after" else 4)
