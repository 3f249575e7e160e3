"""The vectorised 5-point locator against the original dlib: every reference face, exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from rfr.adapters.landmarks.dlib_shape_predictor import ShapePredictorLocator
from rfr.application.ports import FaceBox, LandmarkLocator
from rfr.infrastructure.dlib.shape_predictor import ShapePredictorModel
from rfr.infrastructure.models import SHAPE_PREDICTOR_5


@pytest.fixture(scope="module")
def model(model_store) -> ShapePredictorModel:
    # Built from the .dat by the model store (our reader), then loaded from its npz cache.
    return ShapePredictorModel.load_npz(model_store.path(SHAPE_PREDICTOR_5))


@pytest.fixture(scope="module")
def locator(model) -> ShapePredictorLocator:
    return ShapePredictorLocator(model)


def _decode(path) -> np.ndarray:
    # Exactly as the reference was made: Pillow, RGB, no EXIF rotation.
    return np.asarray(Image.open(path).convert("RGB"))


def test_is_a_landmark_locator(locator):
    assert isinstance(locator, LandmarkLocator)
    assert locator.algorithm_id


@pytest.mark.slow
@pytest.mark.dataset
def test_every_reference_face_gets_dlibs_landmarks(locator, shared_faces, dlib_reference):
    checked, wrong = 0, []
    for record in dlib_reference:
        if not record["faces"]:
            continue
        image = _decode(shared_faces / record["path"])
        boxes = [FaceBox(*face["box_ltrb"]) for face in record["faces"]]
        found = locator.locate_many(image, boxes)
        for number, (face, points) in enumerate(zip(record["faces"], found, strict=True)):
            checked += 1
            if [list(p) for p in points] != face["landmarks5"]:
                wrong.append(f"{record['path']}#{number}: {points} != {face['landmarks5']}")
    assert checked == sum(len(r["faces"]) for r in dlib_reference) > 700
    assert not wrong, f"{len(wrong)} of {checked} faces differ, e.g. {wrong[:3]}"


@pytest.fixture(scope="module")
def crowd(shared_faces, dlib_reference):
    """The reference image with the most faces (24 in dlib's bald_guys.jpg)."""
    record = max(dlib_reference, key=lambda r: len(r["faces"]))
    return _decode(shared_faces / record["path"]), record


@pytest.mark.dataset
def test_batch_and_single_face_agree_to_the_last_float(locator, crowd):
    image, record = crowd
    boxes = [FaceBox(*face["box_ltrb"]) for face in record["faces"]]
    together = locator.predict(image, boxes)
    for number, box in enumerate(boxes):
        alone = locator.predict(image, [box])[0]
        np.testing.assert_array_equal(together[number], alone)
    assert locator.locate_many(image, boxes) == [locator.locate(image, b) for b in boxes]
    assert locator.locate_many(image, []) == []


@pytest.mark.dataset
def test_table_lookup_and_level_walk_give_the_same_float_shapes(model, locator, crowd):
    image, record = crowd
    boxes = [FaceBox(*face["box_ltrb"]) for face in record["faces"]]
    walker = ShapePredictorLocator(model, max_table_splits=0)
    np.testing.assert_array_equal(walker.predict(image, boxes), locator.predict(image, boxes))


@pytest.mark.dataset
def test_grey_input_is_dlibs_integer_mean_of_rgb(locator, crowd):
    image, record = crowd
    grey = (image.astype(np.int32).sum(axis=2) // 3).astype(np.uint8)
    boxes = [FaceBox(*face["box_ltrb"]) for face in record["faces"][:4]]
    assert locator.locate_many(grey, boxes) == locator.locate_many(image, boxes)


def test_strided_view_is_read_like_its_copy(locator):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    view = np.asfortranarray(image)[:, ::-1][:, ::-1]
    box = FaceBox(30, 20, 110, 100)
    assert locator.locate(view, box) == locator.locate(np.ascontiguousarray(image), box)


def test_box_reaching_outside_the_image_reads_black_there(locator):
    # Pixels outside read 0, so padding the image with black must not change anything.
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)
    box = FaceBox(-30, -25, 70, 75)
    padded = np.zeros((80 + 200, 90 + 200, 3), dtype=np.uint8)
    padded[100:180, 100:190] = image
    shifted = FaceBox(box.left + 100, box.top + 100, box.right + 100, box.bottom + 100)
    here = locator.locate(image, box)
    there = locator.locate(padded, shifted)
    assert [(x + 100, y + 100) for x, y in here] == list(there)


def test_rejects_non_uint8_images(locator):
    with pytest.raises(ValueError, match="uint8"):
        locator.locate(np.zeros((10, 10, 3), dtype=np.float32), FaceBox(0, 0, 5, 5))


def slow_predict(model: ShapePredictorModel, image: np.ndarray, box: FaceBox) -> np.ndarray:
    """Section 5 of the spec, one tree and one pixel at a time, with dlib's SVD similarity."""
    grey = image.astype(np.int32).sum(axis=2) // 3
    height, width = grey.shape
    initial = model.initial_shape.astype(np.float64)
    shape = model.initial_shape.copy()
    f32 = np.float32
    for cascade in range(model.num_cascades):
        target = shape.astype(np.float64)
        mean_from, mean_to = initial.mean(axis=0), target.mean(axis=0)
        sigma_from = float(np.sum((initial - mean_from) ** 2)) / len(initial)
        cov = (target - mean_to).T @ (initial - mean_from) / len(initial)
        u, d, vt = np.linalg.svd(cov)
        s = np.eye(2)
        if np.linalg.det(cov) < 0:
            s[1, 1] = -1
        m = (1.0 / sigma_from * float(np.sum(d * np.diag(s))) * (u @ s @ vt)).astype(np.float32)
        values = []
        for anchor, (dx, dy) in zip(model.anchor_idx[cascade], model.deltas[cascade], strict=True):
            px = f32(f32(m[0, 0] * dx) + f32(m[0, 1] * dy)) + shape[anchor, 0]
            py = f32(f32(m[1, 0] * dx) + f32(m[1, 1] * dy)) + shape[anchor, 1]
            x = math.floor((box.right - box.left) * float(px) + box.left + 0.5)
            y = math.floor((box.bottom - box.top) * float(py) + box.top + 0.5)
            values.append(f32(grey[y, x]) if 0 <= x < width and 0 <= y < height else f32(0))
        for tree in range(model.trees_per_cascade):
            node, splits = 0, model.split_idx1.shape[2]
            while node < splits:
                left = (
                    values[model.split_idx1[cascade, tree, node]]
                    - values[model.split_idx2[cascade, tree, node]]
                )
                node = 2 * node + 1 if left > model.thresholds[cascade, tree, node] else 2 * node + 2
            shape = shape + model.leaves[cascade, tree, node - splits]
    return shape


@pytest.mark.dataset
def test_float_shapes_equal_a_per_tree_walk_with_svd_similarity(model, locator, crowd):
    image, record = crowd
    for face in record["faces"][:3]:
        box = FaceBox(*face["box_ltrb"])
        np.testing.assert_array_equal(locator.predict(image, [box])[0], slow_predict(model, image, box))
