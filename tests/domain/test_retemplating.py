"""Re-templating a library (T-02) as the domain decides it: who may start it, one at a time, the
switch only once every searchable image is templated, the old templates erased (R-05), and the
job's runner (A-01)."""

from __future__ import annotations

import domain_builders as b
import pytest

from rfr.domain.reference_library import LibraryHoldings
from rfr.domain.retemplating import RetemplatingStatus

NEW = "yunet|yunet-box|arcface-112|sface-2021dec"


def _started(reason: str = "the force adopts SFace"):
    approval, library = b.searchable_library(name="retemplated")
    job = library.start_retemplating(
        b.OP_LEAD, b.T0, approval, algorithm="sface", algorithm_id=NEW, templated_with={b.ALG}, reason=reason
    )
    return approval, library, job


def test_T02_a_library_manager_starts_a_job_named_on_the_library_with_what_it_replaces():
    _, library, job = _started()
    assert library.retemplating == (str(job.id), NEW) and library.last_retemplating == str(job.id)
    assert job.library_id == str(library.id) and job.algorithm_id == NEW and job.replaced == (b.ALG,)
    assert job.status is RetemplatingStatus.TEMPLATING and job.started_by == "op-lead"


def test_A05_an_rfr_user_may_not_retemplate_a_library():
    approval, library = b.searchable_library(name="not-yours")
    b.refused(
        "A-05",
        lambda: library.start_retemplating(
            b.ANALYST, b.T0, approval, algorithm="sface", algorithm_id=NEW, templated_with={b.ALG}, reason="x"
        ),
        library,
    )


def test_T02_one_retemplating_at_a_time_and_never_to_the_algorithm_it_has_only():
    approval, library, _ = _started()
    b.refused(
        "T-02",
        lambda: library.start_retemplating(
            b.ADMIN,
            b.T0,
            approval,
            algorithm="other",
            algorithm_id="other-id",
            templated_with={b.ALG},
            reason="x",
        ),
        library,
    )
    approval, fresh = b.searchable_library(name="already")
    b.refused(
        "T-02",
        lambda: fresh.start_retemplating(
            b.ADMIN, b.T0, approval, algorithm="dlib", algorithm_id=b.ALG, templated_with={b.ALG}, reason="x"
        ),
        fresh,
    )


def test_T02_the_reason_is_required():
    approval, library = b.searchable_library(name="why")
    b.refused(
        "T-02",
        lambda: library.start_retemplating(
            b.ADMIN, b.T0, approval, algorithm="sface", algorithm_id=NEW, templated_with={b.ALG}, reason=" "
        ),
    )


def test_T02_the_library_switches_only_once_every_searchable_image_has_a_template_of_the_new_algorithm():
    _, library, job = _started()
    incomplete = LibraryHoldings(str(library.id), frozenset({b.ALG}), frozenset())
    b.refused("T-02", lambda: library.complete_retemplating(b.T0, job, incomplete, searchable=3), library)
    assert library.algorithm_id is None and library.retemplating is not None

    complete = LibraryHoldings(str(library.id), frozenset({b.ALG, NEW}), frozenset())
    library.complete_retemplating(b.T0, job, complete, searchable=3)
    assert library.algorithm_id == NEW and library.retemplating is None
    # T-01: a search compares with the algorithm the library was switched to, even when the
    # deployment's default still templates every image, until those templates are erased.
    assert library.search_algorithm({b.ALG, NEW}, default=b.ALG) == NEW
    assert library.template_algorithms({b.ALG, NEW}, default=b.ALG) == (NEW,)


def test_T02_while_a_job_runs_new_images_are_templated_with_both_algorithms_and_searched_with_the_old():
    _, library, _ = _started()
    assert library.template_algorithms({b.ALG}, default=b.ALG) == (b.ALG, NEW)
    assert library.search_algorithm({b.ALG}, default=b.ALG) == b.ALG
    # A library no algorithm completes falls back to the default, which the search refuses (T-02).
    assert library.search_algorithm(set(), default=b.ALG) == b.ALG


def test_T02_a_job_that_could_not_template_every_image_ends_incomplete_and_frees_the_library():
    _, library, job = _started()
    job.take_up(b.T0, "runner-1", "op-lead", runner_alive=False)
    job.record_batch(b.T0, position=3, examined=3, templated=2, not_templated={"img-2": "no face in the box"})
    job.end_incomplete(b.T0, 1)
    library.end_retemplating(b.T0, job)
    assert job.status is RetemplatingStatus.INCOMPLETE and job.not_templated == {
        "img-2": "no face in the box"
    }
    assert library.retemplating is None and library.algorithm_id is None
    b.refused("A-01", lambda: job.switch(b.T0), job)


def test_A01_a_job_is_taken_up_by_another_runner_only_once_its_last_one_is_gone():
    _, _, job = _started()
    job.take_up(b.T0, "runner-1", "op-lead", runner_alive=False)
    b.refused("A-01", lambda: job.take_up(b.T0, "runner-2", "admin", runner_alive=True), job)
    job.take_up(b.T0, "runner-2", "admin", runner_alive=False)
    assert job.runner == "runner-2"


def test_R05_erasing_a_replaced_algorithms_templates_removes_them_from_their_batch():
    _, library = b.searchable_library(name="erased")
    batch = b.batch_of(library)
    ids = list(batch.templates[b.ALG].values())
    batch.record_templates(b.OP_LEAD, b.T0, NEW, {i: f"new-{i}" for i in batch.images})
    b.refused("R-05", lambda: batch.erase_templates(b.OP_LEAD, b.T0, b.ALG, ["not-here"], "replaced"), batch)
    batch.erase_templates(b.OP_LEAD, b.T0, b.ALG, ids, "replaced by sface (T-02)")
    assert b.ALG not in batch.templates and len(batch.templates[NEW]) == len(batch.images)


@pytest.mark.parametrize("position", [-1])
def test_progress_never_moves_back(position):
    _, _, job = _started()
    with pytest.raises(ValueError):
        job.record_batch(b.T0, position=position, examined=1, templated=1, not_templated={})
