"""From enrolment to ranked candidates on real photos (S-02, S-04, P-10, P-11, T-01, L-13)."""

from __future__ import annotations

from uuid import UUID

import attrs
import cv2
import numpy as np
import pytest
from domain_builders import form3
from service_builders import IDENTITIES, World, gallery_items, side_by_side

from rfr.adapters.alignment.dlib_chip import DlibChipAligner
from rfr.application.face_engine import FaceEngine
from rfr.application.ports import FaceBox, RecordKind
from rfr.application.services.search_execution import SearchExecution
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.images import ImageLevel
from rfr.domain.probe_image import ProbeImage
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.search_request import SearchRequest


def _ready_probe(world: World, image: bytes, face_index: int = 0) -> tuple[str, str]:
    """Submit, select one detected face, decide on any quality flags: the analyst's steps."""
    view = world.probes.submit("analyst", form3(), image)
    face_id = view.faces[face_index].face_id
    view = world.probes.select_faces("analyst", view.probe_id, [face_id], "the suspect in the CCTV still")
    if view.quality_flags:
        view = world.probes.decide_on_quality("analyst", view.probe_id, True, "face clear enough to try")
    assert view.ready_for_search, view.not_ready_because
    return view.probe_id, face_id


@pytest.fixture
def enrolled(world: World, photos):
    _, library = world.library()
    report = world.enrolment.enrol("admin", str(library.id), gallery_items(photos))
    assert len(report.enrolled) == 2 * len(IDENTITIES), report.not_enrolled
    return library


@pytest.mark.parametrize("identity", ["adam_sandler", "bill_simon", "carlos_moya"])
def test_S04_held_back_photo_finds_its_identity_at_rank_1(world: World, photos, enrolled, identity):
    """S-04: ranked candidates with scores, the right person first, all from the searched library."""
    probe_id, _ = _ready_probe(world, photos[identity][2].read_bytes())
    request = world.open_request(probe_id, enrolled)

    result = world.search.search_next("analyst", request.id)

    assert result is not None and result.library_id == str(enrolled.id)
    ranks = [c.rank for c in result.candidates]
    assert ranks == list(range(1, 21))
    assert result.candidates[0].subject == identity
    assert result.candidates[0].score > 0.5
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    stored = world.app.get(request.id, SearchRequest)
    assert [c.candidate_id for c in stored.candidates("rank")] == [c.candidate_id for c in result.candidates]
    assert all(c.algorithm_id == world.bio.algorithm_id for c in stored.candidates())
    assert world.search.search_next("analyst", request.id) is None


def test_P11_unselected_faces_are_never_templated(world: World, photos, enrolled):
    """P-11: detection makes boxes only; a template exists only for the face the user selected."""
    image = side_by_side(photos["clare_short"][0], photos["bob_graham"][2])
    view = world.probes.submit("analyst", form3(), image)
    assert len(view.faces) == 2 and view.template_count == 0
    assert world.bio.store.records(view.probe_id, RecordKind.TEMPLATE) == []
    assert all(f.measures for f in view.faces), "P-10 measures are shown before any selection"

    right = max(view.faces, key=lambda f: f.left)
    view = world.probes.select_faces("analyst", view.probe_id, [right.face_id], "the man on the right")
    if view.quality_flags:
        view = world.probes.decide_on_quality("analyst", view.probe_id, True, "clear enough")

    templates = world.bio.store.records(view.probe_id, RecordKind.TEMPLATE)
    probe = world.app.get(UUID(view.probe_id), ProbeImage)
    assert len(templates) == 1 and [t.face_id for t in probe.templates] == [right.face_id]
    assert {f.face_id: f.templated for f in view.faces} == {
        f.face_id: f.face_id == right.face_id for f in view.faces
    }
    request = world.open_request(view.probe_id, enrolled)
    result = world.search.search_next("analyst", request.id)
    assert result.candidates[0].subject == "bob_graham"


def test_P11_a_drawn_box_is_templated_and_searched(world: World, photos, enrolled):
    """P-11: when the detector misses the face, the user's box is the face searched."""
    image = side_by_side(photos["andy_roddick"][2], photos["clare_short"][0])
    view = world.probes.submit("analyst", form3(), image)
    left = min(view.faces, key=lambda f: f.left)
    box = FaceBox(left.left - 4, left.top - 3, left.right + 5, left.bottom + 2)

    view = world.probes.draw_face("analyst", view.probe_id, box, "the detector's box was too tight")

    drawn = [f for f in view.faces if f.drawn]
    assert len(drawn) == 1 and drawn[0].selected and drawn[0].templated and view.template_count == 1
    if view.quality_flags:
        world.probes.decide_on_quality("analyst", view.probe_id, True, "clear enough")
    request = world.open_request(view.probe_id, enrolled)
    assert world.search.search_next("analyst", request.id).candidates[0].subject == "andy_roddick"


def test_A05_the_pictures_of_a_probe_only_for_its_submitter(world: World, photos):
    """A-05: the probe's faces and its whole image (the web client's face selection) are its
    submitter's alone; another RFR user of the same team is refused and the refusal recorded."""
    photo = photos["adam_sandler"][2].read_bytes()
    view = world.probes.submit("analyst", form3(), photo)
    face_id = view.faces[0].face_id
    jpeg = world.probes.thumbnail("analyst", view.probe_id, face_id)
    assert jpeg[:3] == b"\xff\xd8\xff"
    picture = world.probes.image("analyst", view.probe_id)
    assert picture.jpeg[:3] == b"\xff\xd8\xff"
    decoded = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    assert (picture.height, picture.width) == decoded.shape[:2]
    assert world.probes.image_size("analyst", view.probe_id) == (picture.width, picture.height)
    for read in (
        lambda: world.probes.thumbnail("analyst-2", view.probe_id, face_id),
        lambda: world.probes.image("analyst-2", view.probe_id),
        lambda: world.probes.image_size("analyst-2", view.probe_id),
    ):
        with pytest.raises(PolicyRefusal) as refused:
            read()
        assert refused.value.rule_ids == ("A-05",)
        assert isinstance(refused.value.record, RefusedAttempt)


def test_L13_candidates_and_their_thumbnails_only_within_access(world: World, photos, enrolled):
    """L-13: a user outside the library's restrictions sees neither its candidates nor their faces."""
    probe_id, _ = _ready_probe(world, photos["barbara_walters"][2].read_bytes())
    request = world.open_request(probe_id, enrolled)
    result = world.search.search_next("analyst", request.id)
    first = result.candidates[0].candidate_id

    assert world.search.candidate_thumbnail("analyst-2", request.id, first)[:2] == b"\xff\xd8"
    assert len(world.search.candidates("analyst-2", request.id)) == 20
    assert world.search.candidates("outsider", request.id) == ()
    with pytest.raises(PolicyRefusal) as refused:
        world.search.candidate_thumbnail("outsider", request.id, first)
    assert refused.value.rule_ids == ("L-13",)


def test_S02_libraries_are_searched_lowest_level_first(world: World, photos, enrolled):
    """S-02: the next library is the lowest level; a higher one first is refused and recorded."""
    _, higher = world.library("public appeal images", ImageLevel.PUBLIC_WOULD_EXPECT)
    world.enrolment.enrol("admin", str(higher.id), gallery_items(photos, ["colin_powell"]))
    probe_id, _ = _ready_probe(world, photos["colin_powell"][2].read_bytes())
    request = world.open_request(probe_id, higher, enrolled)

    assert world.search.next_library(request.id) == str(enrolled.id)
    with pytest.raises(PolicyRefusal) as refused:
        world.search.search_library("analyst", request.id, str(higher.id))
    assert "S-02" in refused.value.rule_ids
    stored = world.app.get(request.id, SearchRequest)
    assert stored.refusals[-1].rule_ids == refused.value.rule_ids and not stored.searches

    assert world.search.search_next("analyst", request.id).library_id == str(enrolled.id)
    top = world.search.search_next("analyst", request.id)
    assert top.library_id == str(higher.id) and top.candidates[0].subject == "colin_powell"


def test_an_index_lost_after_enrolment_is_rebuilt_from_the_store(world: World, photos, enrolled):
    """The index is a projection: deleted, the next search rebuilds it and still finds the person."""
    world.bio.indexes.drop(str(enrolled.id), world.bio.algorithm_id)
    probe_id, _ = _ready_probe(world, photos["angelo_reyes"][2].read_bytes())
    request = world.open_request(probe_id, enrolled)
    result = world.search.search_next("analyst", request.id)
    assert result.candidates[0].subject == "angelo_reyes"
    assert len(world.bio.index(str(enrolled.id))) == 2 * len(IDENTITIES)


def test_T01_T02_templates_of_another_algorithm_are_never_compared(world: World, photos, enrolled):
    """T-01/T-02: another aligner makes another algorithm; nothing the first made is searched."""
    probe_id, _ = _ready_probe(world, photos["bill_simon"][2].read_bytes())
    request = world.open_request(probe_id, enrolled)
    engine = world.bio.engine
    other = FaceEngine(
        engine.detector,
        engine.landmarks,
        DlibChipAligner(size=150, padding=0.3),
        engine.embedder,
        engine.quality,
    )
    assert other.algorithm_id != engine.algorithm_id
    # A deployment that can build the other algorithm only (no catalogue of engines beside it).
    search = SearchExecution(world.app, world.clock, attrs.evolve(world.bio, engine=other, engines=None))

    with pytest.raises(PolicyRefusal) as refused:
        search.search_next("analyst", request.id)

    assert {"T-02", "P-11"} <= set(refused.value.rule_ids)
    assert not world.app.get(request.id, SearchRequest).searches
    assert not (world.bio.indexes.folder(str(enrolled.id), other.algorithm_id)).exists()
