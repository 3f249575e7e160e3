"""Parity with the original dlib 20.0.1: every face of the reference file, same chip, same descriptor.

Each chip is cut from dlib's own landmarks (not ours), so this isolates alignment plus the
converted network; the descriptor must be within 1e-4 of dlib's on every face.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rfr.adapters.alignment.dlib_chip import DlibChipAligner
from rfr.application.ports import DetectedFace, FaceBox

TOLERANCE = 1e-4


@pytest.mark.slow
@pytest.mark.dataset
def test_every_reference_descriptor_is_reproduced(resnet_embedder, shared_faces, dlib_reference):
    aligner = DlibChipAligner(size=150, padding=0.25)
    chips, expected, where = [], [], []
    for record in dlib_reference:
        if not record["faces"]:
            continue
        # Decoded exactly as the reference was: Pillow, RGB, no EXIF rotation.
        image = np.asarray(Image.open(shared_faces / record["path"]).convert("RGB"))
        for number, face in enumerate(record["faces"]):
            detected = DetectedFace(
                box=FaceBox(*face["box_ltrb"]),
                score=face["confidence"],
                landmarks=tuple((int(x), int(y)) for x, y in face["landmarks5"]),
            )
            chips.append(aligner.align(image, detected))
            expected.append(face["descriptor"])
            where.append(f"{record['path']}#{number}")
    assert len(chips) == sum(len(r["faces"]) for r in dlib_reference) > 500

    got = resnet_embedder.embed(chips)
    difference = np.abs(got - np.asarray(expected, dtype=np.float32)).max(axis=1)
    worst = int(np.argmax(difference))
    assert difference[worst] < TOLERANCE, f"{where[worst]}: max abs difference {difference[worst]:.2e}"
    # The descriptors keep dlib's decision: same-threshold distances between faces are unchanged.
    ref = np.asarray(expected, dtype=np.float32)[:50]
    ours = got[:50]
    ref_d = np.linalg.norm(ref[:, None] - ref[None], axis=2)
    our_d = np.linalg.norm(ours[:, None] - ours[None], axis=2)
    assert np.array_equal(ref_d < 0.6, our_d < 0.6)
