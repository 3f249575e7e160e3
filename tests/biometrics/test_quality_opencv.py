"""P-10: the probe's quality is measured and problems are flagged before a search.

Real photos of the shared dataset, and the same photos degraded on purpose (blur, darkening,
over-exposure, rotation, shrinking): each degradation must raise its flag, and the good photo
none.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from rfr.adapters.landmarks.dlib_shape_predictor import ShapePredictorLocator
from rfr.adapters.quality.opencv_quality import OpenCvQualityAssessor, QualityThresholds
from rfr.application.ports import DetectedFace, FaceBox, QualityAssessor
from rfr.infrastructure.dlib.shape_predictor import ShapePredictorModel
from rfr.infrastructure.models import SHAPE_PREDICTOR_5

GOOD_PHOTO = "face_recognition/rose_leslie/knn_train_rose_leslie_img2.jpg"


@pytest.fixture(scope="module")
def assessor() -> OpenCvQualityAssessor:
    return OpenCvQualityAssessor(QualityThresholds())


@pytest.fixture(scope="module")
def good(shared_faces, dlib_reference) -> tuple[np.ndarray, DetectedFace]:
    record = next(r for r in dlib_reference if r["path"] == GOOD_PHOTO)
    image = np.asarray(Image.open(shared_faces / GOOD_PHOTO).convert("RGB"))
    (face,) = record["faces"]
    return image, DetectedFace(
        box=FaceBox(*face["box_ltrb"]),
        score=face["confidence"],
        landmarks=tuple((int(x), int(y)) for x, y in face["landmarks5"]),
    )


def test_P10_is_a_quality_assessor(assessor):
    """P-10: is a quality assessor."""
    assert isinstance(assessor, QualityAssessor)


@pytest.mark.dataset
def test_P10_good_photos_raise_no_flag(assessor, shared_faces, dlib_reference):
    """P-10: good photos raise no flag."""
    records = [r for r in dlib_reference if r["source"] == "face_recognition" and r["faces"]]
    assert len(records) >= 5
    for record in records:
        image = np.asarray(Image.open(shared_faces / record["path"]).convert("RGB"))
        for face in record["faces"]:
            detected = DetectedFace(
                FaceBox(*face["box_ltrb"]), face["confidence"], tuple(map(tuple, face["landmarks5"]))
            )
            report = assessor.assess(image, detected)
            assert report.flags == (), (record["path"], report)
            assert set(report.measures) == {
                "inter_eye_px",
                "sharpness",
                "brightness",
                "dark_fraction",
                "bright_fraction",
                "yaw",
                "roll_deg",
                "detector_score",
            }


@pytest.mark.dataset
def test_P10_gaussian_blur_is_flagged_blurred(assessor, good):
    """P-10: gaussian blur is flagged blurred."""
    image, face = good
    before = assessor.assess(image, face)
    blurred = cv2.GaussianBlur(image, (0, 0), 4 * face.box.width / 128)
    report = assessor.assess(blurred, face)
    assert report.flags == ("blurred",)
    assert report.measures["sharpness"] < before.measures["sharpness"] / 10


@pytest.mark.dataset
def test_P10_darkened_photo_is_flagged_under_exposed(assessor, good):
    """P-10: darkened photo is flagged under exposed."""
    image, face = good
    report = assessor.assess((image * 0.2).astype(np.uint8), face)
    assert "under_exposed" in report.flags
    assert "over_exposed" not in report.flags


@pytest.mark.dataset
def test_P10_burnt_out_photo_is_flagged_over_exposed(assessor, good):
    """P-10: burnt out photo is flagged over exposed."""
    image, face = good
    burnt = np.clip(image.astype(np.int32) * 2.5 + 60, 0, 255).astype(np.uint8)
    report = assessor.assess(burnt, face)
    assert "over_exposed" in report.flags
    assert report.measures["bright_fraction"] > 0.25


@pytest.mark.dataset
def test_P10_rotated_face_is_flagged_pose_roll(assessor, good):
    """P-10: rotated face is flagged pose roll."""
    image, face = good
    centre = ((face.box.left + face.box.right) / 2, (face.box.top + face.box.bottom) / 2)
    turn = cv2.getRotationMatrix2D(centre, 35, 1.0)  # counter-clockwise on screen
    rotated = cv2.warpAffine(image, turn, (image.shape[1], image.shape[0]))
    points = np.hstack([np.asarray(face.landmarks, dtype=np.float64), np.ones((5, 1))]) @ turn.T
    moved = DetectedFace(face.box, face.score, tuple((round(x), round(y)) for x, y in points))
    before = assessor.assess(image, face).measures["roll_deg"]
    report = assessor.assess(rotated, moved)
    assert "pose_roll" in report.flags
    assert report.measures["roll_deg"] == pytest.approx(before - 35, abs=1.5)


@pytest.mark.dataset
def test_P10_shrunk_photo_is_flagged_small_face(assessor, good, model_store):
    """P-10: shrunk photo is flagged small face."""
    image, face = good
    locator = ShapePredictorLocator(ShapePredictorModel.load_npz(model_store.path(SHAPE_PREDICTOR_5)))
    factor = 8
    small = cv2.resize(
        image, (image.shape[1] // factor, image.shape[0] // factor), interpolation=cv2.INTER_AREA
    )
    box = FaceBox(
        *(round(v / factor) for v in (face.box.left, face.box.top, face.box.right, face.box.bottom))
    )
    shrunk = DetectedFace(box, face.score, locator.locate(small, box))
    report = assessor.assess(small, shrunk)
    assert "small_face" in report.flags
    assert report.measures["inter_eye_px"] == pytest.approx(
        assessor.assess(image, face).measures["inter_eye_px"] / factor, rel=0.15
    )


def test_P10_turned_head_is_flagged_pose_yaw(assessor):
    """P-10: turned head is flagged pose yaw."""
    image = np.full((200, 200, 3), 128, dtype=np.uint8)
    image[::4] = 90  # some texture, so only pose is in question
    eyes = ((130, 80), (110, 80), (70, 80), (90, 80))
    frontal = DetectedFace(FaceBox(50, 40, 150, 140), 1.0, (*eyes, (100, 115)))
    turned = DetectedFace(FaceBox(50, 40, 150, 140), 1.0, (*eyes, (125, 115)))
    assert "pose_yaw" not in assessor.assess(image, frontal).flags
    report = assessor.assess(image, turned)
    assert "pose_yaw" in report.flags
    assert report.measures["yaw"] == pytest.approx(25 / 40)


def test_P10_detector_score_is_flagged_when_low_and_absent_for_a_drawn_box(assessor):
    """P-10: detector score is flagged when low and absent for a drawn box."""
    image = np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    landmarks = ((85, 50), (70, 50), (35, 50), (50, 50), (60, 75))
    weak = assessor.assess(image, DetectedFace(FaceBox(20, 20, 100, 100), 0.05, landmarks))
    assert "low_detector_score" in weak.flags
    drawn = assessor.assess(image, DetectedFace(FaceBox(20, 20, 100, 100), math.nan, landmarks))
    assert "detector_score" not in drawn.measures
    assert "low_detector_score" not in drawn.flags


@pytest.mark.dataset
def test_P10_thresholds_are_configurable(good):
    """P-10: thresholds are configurable."""
    image, face = good
    strict = OpenCvQualityAssessor(QualityThresholds(min_inter_eye_px=500, min_sharpness=10_000))
    assert strict.assess(image, face).flags == ("small_face", "blurred")


def test_thresholds_refuse_nonsense():
    with pytest.raises(ValueError):
        QualityThresholds(min_inter_eye_px=0)
    with pytest.raises(ValueError):
        QualityThresholds(max_clipped_fraction=1.5)
    with pytest.raises(ValueError):
        QualityThresholds(min_brightness=200, max_brightness=100)


def test_box_outside_the_image_is_refused(assessor):
    image = np.zeros((50, 50, 3), dtype=np.uint8)
    landmarks = ((85, 50), (70, 50), (35, 50), (50, 50), (60, 75))
    with pytest.raises(ValueError, match="outside"):
        assessor.assess(image, DetectedFace(FaceBox(60, 60, 90, 90), 1.0, landmarks))


def test_P10_thresholds_come_from_a_configuration_file(tmp_path):
    """P-10: thresholds come from a configuration file."""
    from rfr.adapters.quality.opencv_quality import QualityThresholds

    config = tmp_path / "quality.toml"
    config.write_text("min_inter_eye_px = 64\nmax_abs_roll_deg = 10\n", encoding="utf-8")
    thresholds = QualityThresholds.from_file(config)
    assert thresholds.min_inter_eye_px == 64.0 and thresholds.max_abs_roll_deg == 10.0
    assert thresholds.min_sharpness == QualityThresholds().min_sharpness

    config.write_text("min_inter_eye = 64\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown min_inter_eye"):
        QualityThresholds.from_file(config)
    config.write_text('min_inter_eye_px = "big"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="number"):
        QualityThresholds.from_file(config)
    config.write_text("min_brightness = 220\n", encoding="utf-8")
    with pytest.raises(ValueError, match="below max_brightness"):
        QualityThresholds.from_file(config)


def test_P10_the_composed_engine_uses_the_configured_thresholds(tmp_path, model_store, shared_faces):
    """P-10: RFR_QUALITY_THRESHOLDS reaches the engine: a strict inter-eye minimum flags every LFW face."""
    import numpy as np
    from PIL import Image

    from rfr.entrypoints.composition import build_face_engine
    from rfr.infrastructure.settings import Settings

    config = tmp_path / "quality.toml"
    config.write_text("min_inter_eye_px = 500\n", encoding="utf-8")
    settings = Settings.from_env(
        {"RFR_DATA_DIR": str(model_store.models_dir.parent), "RFR_QUALITY_THRESHOLDS": str(config)}
    )
    engine = build_face_engine(settings)
    photo = next((shared_faces / "lfw" / "tony_blair").iterdir())
    faces = engine.detect(np.asarray(Image.open(photo).convert("RGB")))
    assert faces and all("small_face" in f.quality.flags for f in faces)
