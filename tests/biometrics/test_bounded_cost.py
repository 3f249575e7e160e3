"""Every image input has a bounded cost (issue 8): decoding, then detection on a bounded copy.

A 4.4 KB PNG of 6000x6000 black 1-bit pixels (36 Mpx, under RFR_MAX_IMAGE_PIXELS) used to
cost about 42 s of CPU and 6 GiB: it was decoded, then run through the detector at full
size. Here each tiny-but-huge image goes through what the API does with an upload, in a
process of its own so that its peak memory is its own: ``decode_image`` with the API's
default limit, then ``FaceEngine.detect`` of the engine ``build_face_engine`` wires (the
detector bounded by RFR_DETECTION_MAX_PIXELS, left at its default). The bounds (20 s of CPU,
45 s of wall-clock time, 1.5 GiB peak RSS for the whole process, models included) are far
above what it takes (about 3 s of CPU and 1 GiB) and far below what it took.

A bounded detector must still find a face in a large photo, in the photo's coordinates, and
detect every image within the bound exactly as dlib does.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from rfr.adapters.detection.dlib_mmod import DEFAULT_DETECTION_MAX_PIXELS, MmodFaceDetector, scale_box
from rfr.adapters.landmarks.dlib_shape_predictor import ShapePredictorLocator
from rfr.application.face_engine import FaceEngine
from rfr.application.ports import FaceBox
from rfr.entrypoints.composition import build_face_engine
from rfr.infrastructure.dlib.shape_predictor import ShapePredictorModel
from rfr.infrastructure.models import MMOD, RESNET, SHAPE_PREDICTOR_5, ModelStore
from rfr.infrastructure.settings import Settings

GIB = 1 << 30
MAX_CPU_SECONDS = 20.0
MAX_WALL_SECONDS = 45.0
MAX_PEAK_RSS = 1.5 * GIB
SIDE = 6000  # 36 Mpx: under the API's 40 Mpx decoding limit


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_bilevel() -> bytes:
    """The image of the report: 6000x6000, 1 bit a pixel, all zeros."""
    return encode(Image.fromarray(np.zeros((SIDE, SIDE), dtype=bool)), "PNG", optimize=True)


def _png_transparent_palette() -> bytes:
    """A 1-bit palette whose colour 0 is transparent: decoded through compositing over white."""
    image = Image.new("P", (SIDE, SIDE), 0)
    image.putpalette([0, 0, 0, 255, 255, 255])
    return encode(image, "PNG", bits=1, transparency=0, optimize=True)


def _png_sixteen_bit() -> bytes:
    return encode(Image.new("I;16", (SIDE, SIDE)), "PNG", compress_level=9)


def _webp_lossless_rgba() -> bytes:
    return encode(Image.new("RGBA", (SIDE, SIDE)), "WEBP", lossless=True)


def _jpeg_progressive_grey() -> bytes:
    return encode(Image.new("L", (SIDE, SIDE)), "JPEG", quality=1, progressive=True)


def _jpeg_declaring_a_huge_frame() -> bytes:
    """A 16x16 JPEG whose frame header is rewritten to 6000x6000: a few hundred bytes that
    libjpeg decodes to a full-size (grey) image."""
    data = encode(Image.new("RGB", (16, 16)), "JPEG")
    sof = data.index(b"\xff\xc0")
    size = SIDE.to_bytes(2, "big") * 2  # height, then width
    return data[: sof + 5] + size + data[sof + 9 :]


TINY_BUT_HUGE = {
    "png-1bit": (_png_bilevel, 10_000),
    "png-palette-transparent": (_png_transparent_palette, 10_000),
    "png-16bit-grey": (_png_sixteen_bit, 200_000),
    "webp-lossless-rgba": (_webp_lossless_rgba, 10_000),
    "jpeg-progressive-grey": (_jpeg_progressive_grey, 300_000),
    "jpeg-huge-frame-header": (_jpeg_declaring_a_huge_frame, 2_000),
}

# Run in a fresh interpreter: build the engine as the API does, then time and measure one
# upload's decode + detect. ru_maxrss is the peak of the whole process (KiB on Linux).
_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path

    from rfr.adapters.image_decoding import decode_image
    from rfr.application.errors import ImageRejected
    from rfr.entrypoints.composition import build_face_engine
    from rfr.infrastructure.settings import Settings

    engine = build_face_engine(Settings(data_dir=Path(sys.argv[1])))
    data = Path(sys.argv[2]).read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    try:
        image = decode_image(data)
        faces = engine.detect(image)
        outcome = {"shape": list(image.shape), "faces": len(faces)}
    except ImageRejected as error:
        outcome = {"rejected": error.code}
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({
        **outcome,
        "wall": wall,
        "cpu": cpu,
        "engine_rss": before.ru_maxrss * 1024,
        "peak_rss": after.ru_maxrss * 1024,
        "max_pixels": engine.detector.max_pixels,
    }))
    """
)


@pytest.fixture(scope="module")
def data_dir(model_store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RFR_DATA_DIR whose models/ is the session's model store, every artefact built."""
    for artefact in (MMOD, SHAPE_PREDICTOR_5, RESNET):
        model_store.path(artefact)
    root = tmp_path_factory.mktemp("data")
    (root / "models").symlink_to(model_store.models_dir.resolve(), target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def engine(data_dir: Path) -> FaceEngine:
    return build_face_engine(Settings(data_dir=data_dir))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
@pytest.mark.parametrize("name", sorted(TINY_BUT_HUGE))
def test_a_tiny_file_announcing_36_megapixels_costs_little_time_and_memory(name, data_dir, tmp_path):
    make, max_file_size = TINY_BUT_HUGE[name]
    data = make()
    assert len(data) <= max_file_size  # the point: a small upload
    path = tmp_path / name
    path.write_bytes(data)
    env = {key: value for key, value in os.environ.items() if key != "RFR_DETECTION_MAX_PIXELS"}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(data_dir), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"\n{name}: {len(data)} bytes -> {report.get('shape')} {report.get('rejected', '')} "
        f"wall {report['wall']:.2f} s, cpu {report['cpu']:.2f} s, "
        f"peak RSS {report['peak_rss'] / GIB:.2f} GiB (engine loaded: {report['engine_rss'] / GIB:.2f})"
    )
    assert report["max_pixels"] == DEFAULT_DETECTION_MAX_PIXELS
    assert report.get("shape") == [SIDE, SIDE, 3]  # decoded in full: evidence is kept whole
    assert report["faces"] == 0
    assert report["cpu"] < MAX_CPU_SECONDS
    assert report["wall"] < MAX_WALL_SECONDS
    assert report["peak_rss"] < MAX_PEAK_RSS


def test_the_api_engine_reads_its_detection_bound_from_the_environment(data_dir, monkeypatch):
    monkeypatch.delenv("RFR_DETECTION_MAX_PIXELS", raising=False)
    assert build_face_engine(Settings(data_dir=data_dir)).detector.max_pixels == 2048 * 2048
    monkeypatch.setenv("RFR_DETECTION_MAX_PIXELS", "1000000")
    assert build_face_engine(Settings(data_dir=data_dir)).detector.max_pixels == 1_000_000
    monkeypatch.setenv("RFR_DETECTION_MAX_PIXELS", "0")
    with pytest.raises(ValueError, match="RFR_DETECTION_MAX_PIXELS"):
        build_face_engine(Settings(data_dir=data_dir))


# ---- the bound ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bounded(model_store: ModelStore) -> MmodFaceDetector:
    return MmodFaceDetector(model_store.path(MMOD), _NoLandmarks(), max_pixels=DEFAULT_DETECTION_MAX_PIXELS)


class _NoLandmarks:
    algorithm_id = "none"

    def locate(self, image: np.ndarray, box: FaceBox) -> tuple[tuple[int, int], ...]:
        return ()


def test_an_image_that_fits_once_upsampled_is_detected_as_it_is(bounded, model_store):
    bound = DEFAULT_DETECTION_MAX_PIXELS
    assert bounded.working_size(400, 300) is None  # upsampled once: 803 x 604
    assert bounded.working_size(2048, 2048) is None
    assert bounded.working_size(1, bound) is None
    assert bounded.working_size(0, 10**9) is None
    unbounded = MmodFaceDetector(model_store.path(MMOD), _NoLandmarks())
    assert unbounded.max_pixels is None  # the adapter's default: dlib's behaviour at any size
    assert unbounded.working_size(60_000, 60_000) is None
    with pytest.raises(ValueError):
        MmodFaceDetector(model_store.path(MMOD), _NoLandmarks(), max_pixels=0)


def test_a_larger_image_is_detected_on_a_copy_within_the_bound_with_its_aspect_ratio(bounded):
    bound = DEFAULT_DETECTION_MAX_PIXELS
    sizes = [(6000, 6000), (4000, 6000), (2049, 2048), (4600, 3061), (1, 40_000_000), (7, 9_000_000)]
    for rows, cols in sizes:
        work = bounded.working_size(rows, cols)
        assert work is not None, (rows, cols)
        work_rows, work_cols = work
        assert 1 <= work_rows * work_cols <= bound
        assert work_rows * work_cols > bound * 0.99 or min(work) == 1
        assert abs(work_cols / work_rows - cols / rows) <= cols / rows * 0.01 or min(work) == 1
    assert bounded.working_size(6000, 6000) == (2048, 2048)


def test_upsampling_is_only_applied_where_the_result_fits(bounded, model_store):
    # Asked to upsample a 1500 px square (to 3000 px, 9 Mpx), the detector instead enlarges
    # it once to the bound; a 1000 px square still gets its exact pyramid_up.
    twice = MmodFaceDetector(model_store.path(MMOD), _NoLandmarks(), upsample=1, max_pixels=2048 * 2048)
    assert twice.working_size(1500, 1500) == (2048, 2048)
    assert twice.working_size(1000, 1000) is None  # 2003 x 2003 after pyramid_up


def test_a_box_is_mapped_back_by_its_pixel_edges():
    assert scale_box(FaceBox(10, 20, 29, 59), 1.0, 1.0) == FaceBox(10, 20, 29, 59)
    # pixel i of a half-size copy is pixels 2i and 2i + 1 of the image
    assert scale_box(FaceBox(10, 20, 29, 59), 2.0, 2.0) == FaceBox(20, 40, 59, 119)
    assert scale_box(FaceBox(-3, 0, 4, 4), 3.0, 0.5) == FaceBox(-9, 0, 14, 2)


# ---- faces are still found, in the image's coordinates --------------------------------------


def _iou(a: FaceBox, b: FaceBox) -> float:
    width = min(a.right, b.right) - max(a.left, b.left) + 1
    height = min(a.bottom, b.bottom) - max(a.top, b.top) + 1
    inner = max(width, 0) * max(height, 0)
    return inner / (a.width * a.height + b.width * b.height - inner)


@pytest.mark.dataset
def test_a_face_in_a_large_photo_is_found_and_reported_in_the_photos_coordinates(engine, shared_faces):
    face = np.asarray(Image.open(sorted((shared_faces / "lfw").rglob("*.jpg"))[0]).convert("RGB"))
    patch = cv2.resize(face, (1000, 1000), interpolation=cv2.INTER_CUBIC)
    photo = np.full((4000, 6000, 3), 128, dtype=np.uint8)  # 24 Mpx: detected at 2508 x 1672
    left, top = 3700, 1800
    photo[top : top + 1000, left : left + 1000] = patch
    assert engine.detector.working_size(4000, 6000) is not None

    [found] = engine.detect(photo)
    # The patch alone (1 Mpx) is detected exactly, as dlib would; the same face in the photo
    # is found at a coarser scale, so its box differs by up to one pyramid step (6/5).
    [alone] = engine.detect(patch)
    expected = FaceBox(
        alone.face.box.left + left,
        alone.face.box.top + top,
        alone.face.box.right + left,
        alone.face.box.bottom + top,
    )
    assert _iou(found.face.box, expected) > 0.6
    assert 5 / 6 <= found.face.box.width / expected.width <= 6 / 5 * 1.05
    # Landmarks are located on the original pixels: within a few pixels of the exact ones.
    shifted = np.array(alone.face.landmarks) + np.array([left, top])
    assert np.abs(np.array(found.face.landmarks) - shifted).max() <= 5
    assert found.quality.measures["inter_eye_px"] == pytest.approx(
        alone.quality.measures["inter_eye_px"], rel=0.05
    )
    # The chip is cut from the full-quality photo: the same template as from the patch.
    templates = engine.template(photo, [found.face])
    reference = engine.template(patch, [alone.face])
    assert float(np.linalg.norm(templates[0] - reference[0])) < 0.1


@pytest.mark.slow
@pytest.mark.dataset
def test_the_bound_changes_only_the_reference_images_above_it_and_they_keep_their_faces(
    bounded, dlib_reference, shared_faces, model_store
):
    over = [e for e in dlib_reference if bounded.working_size(e["height"], e["width"]) is not None]
    # Every other reference image is detected by the exact path the parity test checks.
    assert all(e["width"] * e["height"] > DEFAULT_DETECTION_MAX_PIXELS for e in over)
    assert len(dlib_reference) - len(over) >= 600
    assert {e["path"] for e in over} == {
        "deepface/person_04/img54.jpg",  # 2000 x 2400
        "deepface/person_08/img40.jpg",  # 3061 x 4600
        "deepface/person_08/img41.jpg",  # 2500 x 2070
    }
    locator = ShapePredictorLocator(ShapePredictorModel.load_npz(model_store.path(SHAPE_PREDICTOR_5)))
    detector = MmodFaceDetector(model_store.path(MMOD), locator, max_pixels=DEFAULT_DETECTION_MAX_PIXELS)
    for entry in over:
        image = np.asarray(Image.open(shared_faces / entry["path"]).convert("RGB"))
        faces = detector.detect(image)
        assert len(faces) == len(entry["faces"]), entry["path"]
        for face, ref in zip(faces, entry["faces"], strict=True):
            want = FaceBox(*ref["box_ltrb"])
            assert _iou(face.box, want) > 0.6, (entry["path"], face.box, want)
            error = np.abs(np.array(face.landmarks) - np.array(ref["landmarks5"])).max()
            assert error <= 0.02 * want.width, (entry["path"], face.landmarks, ref["landmarks5"])
