"""Parity with the original dlib 20.0.1 on EVERY image of the reference file.

For each image, decoded as the reference was (Pillow, RGB, no EXIF transpose), the detector
must return dlib's box list exactly (count, order, coordinates) with confidences within 1e-4,
and, with the real shape predictor injected, dlib's 5 landmarks. The upsampling is chosen
automatically and must agree with the reference's ``upsample`` field. The images run from
150 px LFW crops (upsampled once) to a 3061x4600 photo; the whole run takes about a minute on
two cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rfr.adapters.detection.dlib_mmod import MmodFaceDetector
from rfr.adapters.landmarks.dlib_shape_predictor import ShapePredictorLocator
from rfr.infrastructure.dlib.shape_predictor import ShapePredictorModel
from rfr.infrastructure.models import MMOD, SHAPE_PREDICTOR_5, ModelStore
from rfr.infrastructure.settings import Settings

CONFIDENCE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def detector(model_store: ModelStore) -> MmodFaceDetector:
    locator = ShapePredictorLocator(ShapePredictorModel.load_npz(model_store.path(SHAPE_PREDICTOR_5)))
    return MmodFaceDetector(model_store.path(MMOD), locator, threads=Settings.from_env({}).ort_threads)


@pytest.mark.slow
@pytest.mark.dataset
def test_every_reference_image_gives_dlibs_detections(detector, dlib_reference, shared_faces: Path):
    assert len(dlib_reference) >= 600
    mismatches: list[str] = []
    boxes = 0
    worst = 0.0
    for entry in dlib_reference:
        image = np.asarray(Image.open(shared_faces / entry["path"]).convert("RGB"))
        assert image.shape[:2] == (entry["height"], entry["width"]), entry["path"]
        assert detector.upsample_for(image) == entry["upsample"], entry["path"]
        faces = detector.detect(image)
        got = [[f.box.left, f.box.top, f.box.right, f.box.bottom] for f in faces]
        want = [f["box_ltrb"] for f in entry["faces"]]
        if got != want:
            mismatches.append(f"{entry['path']}: boxes {got} != {want}")
            continue
        for face, ref in zip(faces, entry["faces"], strict=True):
            worst = max(worst, abs(face.score - ref["confidence"]))
            if abs(face.score - ref["confidence"]) > CONFIDENCE_TOLERANCE:
                mismatches.append(f"{entry['path']}: confidence {face.score} != {ref['confidence']}")
            if [list(p) for p in face.landmarks] != ref["landmarks5"]:
                mismatches.append(f"{entry['path']}: landmarks {face.landmarks} != {ref['landmarks5']}")
        boxes += len(faces)
    assert not mismatches, "\n".join(mismatches[:20])
    assert boxes == sum(len(e["faces"]) for e in dlib_reference)
    print(f"\nMMOD parity: {len(dlib_reference)} images, {boxes} boxes identical, max |dconf| {worst:.2e}")
