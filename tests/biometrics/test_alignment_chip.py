"""dlib's 5-point face chip (DLIB_MODEL_FORMAT.md, section 6).

No reference chips exist, so the vectorised code is checked against plain per-pixel loops
written from the spec here, on invariants (size, black border, determinism, the pyramid path
for large faces), and end to end: chips from dlib's landmarks give dlib's descriptors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from rfr.adapters.alignment.dlib_chip import ChipPlacement, DlibChipAligner, _pyramid_down_2
from rfr.application.ports import DetectedFace, FaceAligner, FaceBox


def _face(record_face) -> DetectedFace:
    return DetectedFace(
        box=FaceBox(*record_face["box_ltrb"]),
        score=record_face["confidence"],
        landmarks=tuple((int(x), int(y)) for x, y in record_face["landmarks5"]),
    )


def _decode(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def aligner() -> DlibChipAligner:
    return DlibChipAligner(size=150, padding=0.25)


# -- per-pixel references written from the spec -------------------------------------------
def slow_bilinear(source: np.ndarray, affine, size: int) -> np.ndarray:
    a00, a01, b0, a10, a11, b1 = affine
    rows, cols = source.shape[:2]
    chip = np.zeros((size, size, 3), dtype=np.uint8)
    for r in range(size):
        for c in range(size):
            x = a00 * c + a01 * r + b0
            y = a10 * c + a11 * r + b1
            left, top = math.floor(x), math.floor(y)
            if not (left >= 0 and top >= 0 and left + 1 < cols and top + 1 < rows):
                continue
            fx, fy = x - left, y - top
            for k in range(3):
                tl, tr = float(source[top, left, k]), float(source[top, left + 1, k])
                bl, br = float(source[top + 1, left, k]), float(source[top + 1, left + 1, k])
                value = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
                chip[r, c, k] = int(min(max(value, 0.0), 255.0))
    return chip


def slow_pyramid_down(image: np.ndarray) -> np.ndarray:
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    weights = (1, 4, 6, 4, 1)
    out = np.zeros(((rows - 3) // 2, (cols - 3) // 2, 3), dtype=np.uint8)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            for k in range(3):
                total = sum(
                    weights[a] * weights[b] * int(image[2 * i + a, 2 * j + b, k])
                    for a in range(5)
                    for b in range(5)
                )
                out[i, j, k] = total // 256
    return out


@pytest.mark.parametrize("shape", [(9, 9), (10, 13), (23, 17), (40, 31)])
def test_pyramid_down_matches_the_per_pixel_filter(shape):
    image = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_pyramid_down_2(image), slow_pyramid_down(image))


def test_pyramid_down_of_a_tiny_image_is_empty():
    assert _pyramid_down_2(np.zeros((8, 50, 3), dtype=np.uint8)).size == 0


def test_rotated_chip_matches_per_pixel_bilinear(aligner):
    image = np.random.default_rng(7).integers(0, 256, (220, 260, 3), dtype=np.uint8)
    # A small rotated face: sampled directly, no pre-shrink.
    placement = ChipPlacement(60.3, 40.7, 190.1, 170.5, 0.3)
    plan = aligner.plan(image.shape, placement)
    assert plan.level == -1 and plan.depth == 0
    left, top, right, bottom = plan.crop
    expected = slow_bilinear(image[top : bottom + 1, left : right + 1], plan.affine, 150)
    np.testing.assert_array_equal(aligner.extract(image, placement), expected)


def test_unrotated_chip_of_exact_size_is_a_plain_copy(aligner):
    image = np.random.default_rng(8).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    chip = aligner.extract(image, ChipPlacement(10.0, 20.0, 159.0, 169.0, 0.0))
    np.testing.assert_array_equal(chip, image[20:170, 10:160])
    # Partly outside: the outside part is black.
    chip = aligner.extract(image, ChipPlacement(100.0, -50.0, 249.0, 99.0, 0.0))
    np.testing.assert_array_equal(chip[50:, :100], image[:100, 100:])
    assert not chip[:50].any() and not chip[:, 100:].any()


def test_landmarks_on_the_template_place_the_chip_square(aligner):
    # Landmarks that are the chip template scaled by 2 and shifted by (40, 30): the chip covers
    # the doubled square, centred at T(75, 75) = (190, 180), inclusive side 300.
    points = aligner.template * 2 + np.array([40.0, 30.0])
    placement = aligner.placement(tuple(map(tuple, points)))
    assert placement.angle == pytest.approx(0.0, abs=1e-12)
    assert placement.left == pytest.approx(40.5, abs=1e-9)
    assert placement.right == pytest.approx(339.5, abs=1e-9)
    assert placement.top == pytest.approx(30.5, abs=1e-9)
    assert placement.bottom == pytest.approx(329.5, abs=1e-9)
    turned = aligner.placement(tuple((-y, x) for x, y in points))
    assert turned.angle == pytest.approx(math.pi / 2, abs=1e-12)


def test_is_a_face_aligner_with_an_algorithm_id(aligner):
    assert isinstance(aligner, FaceAligner)
    assert aligner.size == 150
    assert aligner.algorithm_id == "dlib-chip-5pt-150-0.25"
    with pytest.raises(ValueError):
        DlibChipAligner(size=1)
    with pytest.raises(ValueError):
        aligner.placement(((1, 2), (3, 4)))


@pytest.fixture(scope="module")
def reference_faces(shared_faces, dlib_reference):
    """(image, face, record path) for a spread of reference faces: small LFW ones and every
    face of the larger photos, which exercise the pyramid pre-shrink."""
    picked, small = [], 0
    for record in dlib_reference:
        if not record["faces"]:
            continue
        large = max(record["width"], record["height"]) > 1000
        lfw = record["source"] == "lfw" and small < 15
        if large or lfw:
            small += lfw
            image = _decode(shared_faces / record["path"])
            picked += [(image, _face(face), record["path"], face) for face in record["faces"]]
    return picked


@pytest.mark.dataset
def test_chips_are_150_square_uint8_and_deterministic(aligner, reference_faces):
    for image, face, path, _ in reference_faces[:10]:
        chip = aligner.align(image, face)
        assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8, path
        np.testing.assert_array_equal(chip, aligner.align(image.copy(), face))


@pytest.mark.dataset
def test_large_faces_take_the_pyramid_path(aligner, reference_faces):
    levels = {}
    for image, face, path, _ in reference_faces:
        plan = aligner.plan(image.shape, aligner.placement(face.landmarks))
        levels[path] = plan.level
        assert plan.level < plan.depth or plan.level == -1
    assert any(level >= 1 for level in levels.values()), levels
    assert any(level == -1 for level in levels.values())
    # The 3061x4600 photo with a face over 1000 px wide needs the pyramid.
    assert levels["deepface/person_08/img40.jpg"] >= 1


@pytest.mark.dataset
def test_face_at_the_image_edge_gets_a_black_border(aligner, reference_faces):
    image, face, _, _ = next(item for item in reference_faces if item[2].startswith("lfw/"))
    chip = aligner.align(image, face)
    # Cut the image through the face: everything the chip would take from beyond the cut is black.
    cut = image.copy()
    centre_x = int(np.mean([p[0] for p in face.landmarks]))
    cropped = np.ascontiguousarray(cut[:, :centre_x])
    edge_chip = aligner.align(cropped, face)
    assert edge_chip.shape == chip.shape
    assert not edge_chip[:, -20:].any(), "samples beyond the image must be black"
    assert edge_chip[:, :40].any() and np.array_equal(edge_chip[:, :40], chip[:, :40])


@pytest.mark.slow
@pytest.mark.dataset
def test_chips_give_dlibs_descriptors(aligner, reference_faces, resnet_embedder):
    """The RESNET part owns the full parity test; here, chips of both paths, including the
    pyramid levels, must give dlib's descriptors (without the pre-shrink they move by ~0.05)."""
    chips = [aligner.align(image, face) for image, face, _, _ in reference_faces]
    expected = np.asarray([face["descriptor"] for _, _, _, face in reference_faces], dtype=np.float32)
    got = resnet_embedder.embed(chips)
    difference = np.abs(got - expected).max(axis=1)
    worst = int(np.argmax(difference))
    assert difference[worst] < 1e-4, f"{reference_faces[worst][2]}: {difference[worst]:.2e}"
