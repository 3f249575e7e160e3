"""Choosing the face algorithm by configuration (RFR_ALGORITHM, ADR 0018), and SFace's drawn boxes.

Real components: the composition root builds each engine from the session's model store, and
the photos are the shared LFW ones (skipped without ../shared, failing when CI=true).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rfr.adapters.landmarks.yunet_box import YunetBoxLocator, iou
from rfr.application.errors import NoFaceInBox
from rfr.application.face_engine import AnalysedFace, FaceEngine, face_nearest_centre
from rfr.application.ports import AlignmentPointLocator, DetectedFace, FaceBox, LandmarkLocator
from rfr.application.similarity import SimilarityScale
from rfr.entrypoints.composition import build_face_engine
from rfr.infrastructure.models import ModelStore
from rfr.infrastructure.settings import ALGORITHM_CHOICES, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(model_store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder whose models are the session's store (built once per session)."""
    root = tmp_path_factory.mktemp("algorithms")
    (root / "models").symlink_to(model_store.models_dir, target_is_directory=True)
    return root


def _settings(data_dir: Path, algorithm: str) -> Settings:
    return Settings(data_dir=data_dir, algorithm=algorithm)


@pytest.fixture(scope="module")
def sface_engine(data_dir: Path) -> FaceEngine:
    return build_face_engine(_settings(data_dir, "sface"))


@pytest.fixture(scope="module")
def photo(shared_faces: Path) -> np.ndarray:
    path = sorted((shared_faces / "lfw" / "andre_agassi").glob("*.jpg"))[0]
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _subject(faces: list[AnalysedFace], photo: np.ndarray) -> AnalysedFace:
    """The photo's subject, the face nearest its centre: from YuNet's score of 0.75 (ADR 0022) a
    bystander behind Andre Agassi is found as well."""
    assert faces
    return faces[face_nearest_centre([f.face for f in faces], photo.shape[1], photo.shape[0])]


# -- configuration -----------------------------------------------------------------------------


def test_RFR_ALGORITHM_defaults_to_dlib_and_accepts_sface():
    assert Settings.from_env({}).algorithm == "dlib"
    assert Settings.from_env({"RFR_ALGORITHM": "sface"}).algorithm == "sface"
    assert Settings.from_env({"RFR_ALGORITHM": " SFace "}).algorithm == "sface"
    assert ALGORITHM_CHOICES == ("dlib", "sface")


def test_RFR_ALGORITHM_refuses_an_unknown_value_naming_the_variable_and_the_choices():
    with pytest.raises(ValueError, match=r"RFR_ALGORITHM must be one of \('dlib', 'sface'\).*'arcface'"):
        Settings.from_env({"RFR_ALGORITHM": "arcface"})
    with pytest.raises(ValueError):
        Settings(data_dir=Path("/nonexistent"), algorithm="arcface")


def test_rfr_serve_refuses_to_start_on_an_unknown_RFR_ALGORITHM(tmp_path):
    env = {"RFR_DATA_DIR": str(tmp_path), "RFR_ALGORITHM": "facenet", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "serve", "--port", "1"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "RFR_ALGORITHM must be one of ('dlib', 'sface')" in done.stderr
    assert "'facenet'" in done.stderr


# -- the engines ---------------------------------------------------------------------------------


def test_T01_the_two_algorithms_have_different_ids_and_their_own_metric(data_dir, sface_engine):
    dlib_engine = build_face_engine(_settings(data_dir, "dlib"))
    assert dlib_engine.algorithm_id != sface_engine.algorithm_id
    assert "sface" in sface_engine.algorithm_id and "yunet" in sface_engine.algorithm_id
    assert "dlib" in dlib_engine.algorithm_id and "sface" not in dlib_engine.algorithm_id
    assert (sface_engine.embedder.metric, sface_engine.embedder.dimension) == ("cosine", 128)
    assert dlib_engine.embedder.metric == "euclidean"
    scale = SimilarityScale.for_embedder(sface_engine.embedder)
    assert scale.metric == "cosine" and scale.score(sface_engine.embedder.threshold) == pytest.approx(0.5)
    # The dlib engine is today's: its locator offers no alignment points, its faces carry none.
    assert not isinstance(dlib_engine.landmarks, AlignmentPointLocator)
    assert isinstance(sface_engine.landmarks, AlignmentPointLocator)
    assert isinstance(sface_engine.landmarks, LandmarkLocator)


def test_upsampling_is_refused_for_sface_rather_than_ignored(data_dir):
    with pytest.raises(ValueError, match="upsampling"):
        build_face_engine(_settings(data_dir, "sface"), upsample=1)


@pytest.mark.dataset
def test_sface_faces_carry_alignment_points_and_are_assessed_for_quality(sface_engine, photo):
    analysed = _subject(sface_engine.detect(photo), photo)
    assert len(analysed.face.alignment_points) == 5 and len(analysed.face.landmarks) == 5
    measures = analysed.quality.measures
    assert measures["inter_eye_px"] > 20 and abs(measures["yaw"]) < 0.5 and abs(measures["roll_deg"]) < 20
    templates = sface_engine.template(photo, [analysed.face])
    assert templates.shape == (1, 128) and np.isclose(np.linalg.norm(templates[0]), 1.0, atol=1e-5)


@pytest.mark.dataset
def test_P11_a_box_drawn_around_a_face_is_located_by_yunet_and_templated_like_the_detected_face(
    sface_engine, photo
):
    detected = _subject(sface_engine.detect(photo), photo)
    b = detected.face.box
    drawn_box = FaceBox(b.left - 6, b.top + 4, b.right + 5, b.bottom - 3)  # a box drawn by hand
    drawn = sface_engine.face_from_box(photo, drawn_box)
    assert drawn.face.box == drawn_box and math.isnan(drawn.face.score)
    assert len(drawn.face.alignment_points) == 5
    # YuNet on the crop finds the same points as on the whole photo, within a pixel or so.
    gap = np.abs(np.asarray(drawn.face.alignment_points) - np.asarray(detected.face.alignment_points))
    assert gap.max() < 2.0, gap
    vectors = sface_engine.template(photo, [detected.face, drawn.face])
    assert float(vectors[0] @ vectors[1]) > 0.95
    assert "inter_eye_px" in drawn.quality.measures


@pytest.mark.dataset
def test_P11_a_box_with_no_face_inside_is_refused_clearly_not_templated_on_a_guess(sface_engine, photo):
    detected = _subject(sface_engine.detect(photo), photo)
    # A box in the photo's corner, away from the face.
    empty = FaceBox(0, 0, 40, 40)
    assert iou(empty, detected.face.box) == 0.0
    with pytest.raises(NoFaceInBox, match="no face was found inside the drawn box"):
        sface_engine.face_from_box(photo, empty)
    # NoFaceInBox is a ValueError, as the engine's other objections to a box, so callers
    # (the HTTP API's 422) handle it the same way.
    with pytest.raises(ValueError):
        sface_engine.face_from_box(np.zeros((200, 200, 3), np.uint8), FaceBox(50, 50, 150, 150))


@pytest.mark.dataset
def test_T01_a_face_another_algorithm_detected_is_templated_from_yunets_points_in_its_box(
    sface_engine, photo
):
    """A probe detected under dlib and selected after the switch to SFace (ADR 0018)."""
    detected = _subject(sface_engine.detect(photo), photo)
    b = detected.face.box
    dlib_like = DetectedFace(
        FaceBox(b.left + 8, b.top + 12, b.right - 8, b.bottom - 4), 1.02, detected.face.landmarks
    )
    assert dlib_like.alignment_points == ()
    vectors = sface_engine.template(photo, [detected.face, dlib_like])
    assert float(vectors[0] @ vectors[1]) > 0.95
    with pytest.raises(NoFaceInBox):
        sface_engine.template(photo, [DetectedFace(FaceBox(0, 0, 40, 40), 1.0, ((20, 20),) * 5)])


# -- the box locator's choice, with a scripted detector ---------------------------------------


class _Scripted:
    """A detector returning fixed faces (given in image pixels) in the coordinates of the crop
    whose top-left corner in the image is ``origin``, and noting the crops' sizes."""

    algorithm_id = "scripted"
    score_threshold = 0.5

    def __init__(self, faces_in_image: list[FaceBox], origin: tuple[int, int] = (0, 0)) -> None:
        self.faces_in_image = faces_in_image
        self.origin = origin
        self.crops: list[tuple[int, int]] = []

    def detect(self, image):
        self.crops.append(image.shape[:2])
        ox, oy = self.origin
        found = []
        for box in self.faces_in_image:
            shifted = FaceBox(box.left - ox, box.top - oy, box.right - ox, box.bottom - oy)
            centre = ((shifted.left + shifted.right) / 2, (shifted.top + shifted.bottom) / 2)
            found.append(DetectedFace(shifted, 0.9, ((int(centre[0]), int(centre[1])),) * 5, (centre,) * 5))
        return found


def test_the_box_locator_takes_the_face_centred_in_the_box_overlapping_it_most():
    image = np.zeros((400, 400, 3), np.uint8)
    drawn = FaceBox(95, 95, 185, 185)  # 91 px: widened by 46 px each side, the crop starts at 49
    wanted = FaceBox(100, 100, 179, 179)
    neighbour = FaceBox(185, 100, 264, 179)  # in the padding, its centre outside the drawn box
    smaller = FaceBox(120, 120, 139, 139)  # centred inside but overlapping less
    detector = _Scripted([neighbour, smaller, wanted], origin=(49, 49))
    locator = YunetBoxLocator(detector, padding=0.5)
    landmarks, points = locator.locate_face(image, drawn)
    # mapped back to image pixels: the chosen face's centre (the scripted points are its centre)
    assert points == ((139.5, 139.5),) * 5
    assert landmarks == locator.locate(image, drawn) == ((139, 139),) * 5
    assert locator.algorithm_id == "scripted/in-drawn-box/pad0.5/score0.5"
    assert detector.crops[0] == (232 - 49, 232 - 49)


def test_the_box_locator_refuses_when_only_a_neighbours_face_is_near():
    image = np.zeros((400, 400, 3), np.uint8)
    locator = YunetBoxLocator(_Scripted([FaceBox(185, 100, 264, 179)], origin=(49, 49)))
    with pytest.raises(NoFaceInBox, match="no face was found inside the drawn box"):
        locator.locate_face(image, FaceBox(95, 95, 185, 185))
    with pytest.raises(ValueError, match="padding"):
        YunetBoxLocator(_Scripted([]), padding=-1)
