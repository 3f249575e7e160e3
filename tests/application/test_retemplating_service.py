"""Re-templating a library through the use case (T-02, T-01, R-05), with two fake algorithms over
the real encrypted store and indexes: the switch, the probe templated for the library it is
searched against, the old templates erased from store and index, the job resumed by another
runner, and a batch that costs the same in a library of 120 or 600 images."""

from __future__ import annotations

import io
import tempfile
from datetime import date
from pathlib import Path

import attrs
import pytest
from app_world import FixedClock, World, memory_app, postgres_app, sqlite_app
from fake_biometrics import FACE_MARGIN, FIRST_GREY, IMAGE_SIDE, fake_biometrics, fake_engine
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from test_cost_does_not_grow import events_read

from rfr.application.app import RfrApplication
from rfr.application.face_engine import FaceEngines, UnknownAlgorithm
from rfr.application.ports import RecordKind
from rfr.application.services.enrolment import EnrolmentItem
from rfr.application.services.retemplating import Retemplating
from rfr.application.services.searches import LibrarySelection
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.images import MopiGroup, PerceivedAgeBand

OLD, NEW = fake_engine("1"), fake_engine("2")


class Runners:
    """Runner liveness as a test sets it (the lock files are proven in the HTTP tests)."""

    def __init__(self) -> None:
        self.live: set[str] = set()

    def alive(self, runner_id: str) -> bool:
        return runner_id in self.live


def face(n: int) -> bytes:
    """A distinct image (its PNG text differs) of the same fake face: the same template."""
    pixels = Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE))
    grey = (FIRST_GREY,) * 3
    for x in range(FACE_MARGIN, IMAGE_SIDE - FACE_MARGIN):
        for y in range(FACE_MARGIN, IMAGE_SIDE - FACE_MARGIN):
            pixels.putpixel((x, y), grey)
    info = PngInfo()
    info.add_text("n", str(n))
    out = io.BytesIO()
    pixels.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def two_algorithm_world(app: RfrApplication | None = None) -> tuple[World, Retemplating, Runners]:
    engines = FaceEngines(OLD, default_name="old", names=("old", "new"), build={"old": OLD, "new": NEW}.get)
    folder = Path(tempfile.mkdtemp(prefix="rfr-retemplate-"))
    bio = attrs.evolve(fake_biometrics(folder), engines=engines)
    world = World(app or memory_app(), FixedClock(), bio=bio).populate()
    runners = Runners()
    return world, Retemplating(world.app, world.clock, bio, runners), runners


def enrolled(world: World, images: int, *, chunk: int = 30) -> str:
    approval_id = world.approved()
    library_id = str(world.libraries.create("op-lead", f"lib-{images}", approval_id).id)
    for start in range(0, images, chunk):
        items = [
            EnrolmentItem(face(n), date(2022, 1, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_2)
            for n in range(start, min(images, start + chunk))
        ]
        assert len(world.enrolment.enrol("op-lead", library_id, items).enrolled) == len(items)
    return library_id


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RfrApplication:
    """Each event store, so the projection's statements for re-templating run on each."""
    if request.param == "memory":
        return memory_app()
    if request.param == "sqlite":
        return sqlite_app(tmp_path)
    request.getfixturevalue("postgres_store")
    return postgres_app(tmp_path)


def test_T02_T01_R05_a_library_switches_when_complete_and_keeps_no_template_of_the_old_algorithm(store):
    world, jobs, runners = two_algorithm_world(store)
    library_id = enrolled(world, 12)
    probe_id = world.probe()
    view = jobs.start("op-lead", library_id, "new", "the force adopts the new algorithm")
    assert view.status == "templating" and view.replaced == (OLD.algorithm_id,) and view.templated_now == 0
    with pytest.raises(UnknownAlgorithm):
        jobs.start("op-lead", library_id, "other", "no such algorithm")
    # Asked again while under way: the same job, not a second one.
    assert jobs.start("op-lead", library_id, "new", "again").job_id == view.job_id

    runners.live.add("runner-1")
    assert jobs.take_up("op-lead", view.job_id, "runner-1")
    seen = []
    done = jobs.run("op-lead", view.job_id, "runner-1", batch=5, after_batch=seen.append)
    assert done.status == "completed" and done.erased == 12 and done.templated_now == 12
    # T-02: searchable with the new algorithm only from the batch that switched it.
    assert [v.status for v in seen].count("templating") == 3  # 5 + 5 + 2 images
    totals = world.app.library_images.totals(library_id, world.clock.now())
    assert totals.searchable_with == (NEW.algorithm_id,) and totals.algorithms == (NEW.algorithm_id,)

    # the old templates are gone from the store and the old index with them.
    kinds = {r.algorithm_id for r in world.bio.store.records(library_id, RecordKind.TEMPLATE)}
    assert kinds == {NEW.algorithm_id}
    assert not world.bio.indexes.folder(library_id, OLD.algorithm_id).exists()

    # T-01: the probe, templated with the old algorithm, is templated with the new one for the
    # search, which compares new templates only.
    request = world.searches.open("analyst", probe_id, [LibrarySelection(library_id, "may be held here")])
    found = world.execution.search_library("analyst", request.id, library_id)
    assert found.algorithm_id == NEW.algorithm_id and found.candidates
    assert {c.algorithm_id for c in found.candidates} == {NEW.algorithm_id}

    # New images now get the library's algorithm alone, whatever the deployment's default.
    item = EnrolmentItem(face(99), date(2022, 1, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_2)
    assert world.enrolment.enrol("op-lead", library_id, [item]).algorithm_id == NEW.algorithm_id
    totals = world.app.library_images.totals(library_id, world.clock.now())
    assert totals.algorithms == (NEW.algorithm_id,) and totals.searchable == 13


def test_T02_images_enrolled_while_a_job_runs_are_templated_with_both_and_the_job_completes():
    world, jobs, runners = two_algorithm_world()
    library_id = enrolled(world, 4)
    started = jobs.start("op-lead", library_id, "new", "moving")
    runners.live.add("r")
    assert jobs.take_up("op-lead", started.job_id, "r")
    item = EnrolmentItem(face(50), date(2022, 1, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_2)
    report = world.enrolment.enrol("op-lead", library_id, [item])
    assert report.algorithm_id == OLD.algorithm_id  # still searched with the old one (T-02)
    totals = world.app.library_images.totals(library_id, world.clock.now())
    assert totals.templated_by(NEW.algorithm_id) == 1 and totals.templated_by(OLD.algorithm_id) == 5
    assert totals.searchable_with == (OLD.algorithm_id,)
    assert jobs.run("op-lead", started.job_id, "r", batch=2).status == "completed"
    totals = world.app.library_images.totals(library_id, world.clock.now())
    assert totals.searchable_with == (NEW.algorithm_id,) and totals.templated_by(NEW.algorithm_id) == 5


def test_A01_a_job_is_resumed_by_another_runner_only_once_its_runner_is_gone():
    world, jobs, runners = two_algorithm_world()
    library_id = enrolled(world, 8)
    view = jobs.start("op-lead", library_id, "new", "moving")
    runners.live.update({"first", "second"})
    assert jobs.take_up("op-lead", view.job_id, "first")
    assert not jobs.take_up("admin", view.job_id, "second")  # refused and recorded: first lives
    runners.live.discard("first")
    assert jobs.take_up("admin", view.job_id, "second")
    # The first runner, wrongly thought gone, stops at its next batch rather than run unrecorded.
    assert jobs.run("op-lead", view.job_id, "first", batch=3).status == "templating"
    assert jobs.run("admin", view.job_id, "second", batch=3).status == "completed"
    with pytest.raises(PolicyRefusal) as refused:
        jobs.start("op-lead", library_id, "new", "again")
    assert "T-02" in refused.value.rule_ids


def batch_costs(images: int) -> list[int]:
    """Events read by each templating batch of a re-templating of ``images`` images."""
    world, jobs, runners = two_algorithm_world()
    library_id = enrolled(world, images)
    view = jobs.start("op-lead", library_id, "new", "moving")
    runners.live.add("r")
    assert jobs.take_up("op-lead", view.job_id, "r")
    costs: list[int] = []
    with events_read(world) as count:
        last = [0]

        def measured(v) -> None:
            if v.status == "templating":
                costs.append(count[0] - last[0])
            last[0] = count[0]

        jobs.run("op-lead", view.job_id, "r", batch=30, after_batch=measured)
    return costs[1:-1]  # the first loads the job, the last decides


@pytest.mark.slow
def test_a_retemplating_batch_reads_as_many_events_in_a_library_of_120_or_600():
    small, large = batch_costs(120), batch_costs(600)
    assert small and large and max(large) == max(small) < 20, (small, large)
