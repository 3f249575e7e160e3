"""Face analyses at rest (``FaceAnalysis.to_bytes``/``from_bytes``) keep the aligner's points.

SFace's template of a stored face is made later from its stored analysis (P-11: the face the
user selected, as the detector saw it), so the YuNet points its ArcFace chip needs must survive
the store; dlib's analyses, and every record written before the points existed, read as ().
"""

from __future__ import annotations

import json
import math

from rfr.application.ports import DetectedFace, FaceBox, QualityReport
from rfr.application.services.biometric_support import ANALYSIS_FORMAT, FaceAnalysis

QUALITY = QualityReport({"inter_eye_px": 41.5, "sharpness": 120.0}, ("small_face",))
LANDMARKS = ((120, 90), (120, 90), (80, 91), (80, 91), (100, 110))
POINTS = ((80.25, 91.125), (119.75, 89.5), (100.0, 110.0625), (84.5, 128.0), (116.0, 127.75))


def test_alignment_points_are_kept_as_floats_and_read_back_exactly():
    face = DetectedFace(FaceBox(60, 60, 140, 150), 0.93, LANDMARKS, POINTS)
    analysis = FaceAnalysis("face-1", face, QUALITY)
    stored = json.loads(analysis.to_bytes())
    assert stored["alignment_points"] == [list(p) for p in POINTS]
    back = FaceAnalysis.from_bytes(analysis.to_bytes())
    assert back == analysis and back.face.alignment_points == POINTS
    assert all(isinstance(v, float) for p in back.face.alignment_points for v in p)


def test_a_drawn_face_keeps_its_points_and_no_score():
    face = DetectedFace(FaceBox(60, 60, 140, 150), math.nan, LANDMARKS, POINTS)
    back = FaceAnalysis.from_bytes(FaceAnalysis("drawn-1", face, QUALITY, drawn=True).to_bytes())
    assert back.drawn and back.score is None and back.face.alignment_points == POINTS


def test_a_dlib_analysis_is_written_as_before_without_the_key():
    face = DetectedFace(FaceBox(60, 60, 140, 150), 1.02, LANDMARKS)
    stored = json.loads(FaceAnalysis("face-1", face, QUALITY).to_bytes())
    assert "alignment_points" not in stored
    assert sorted(stored) == ["box", "drawn", "face_id", "flags", "format", "landmarks", "measures", "score"]
    assert FaceAnalysis.from_bytes(json.dumps(stored).encode()).face.alignment_points == ()


def test_a_record_in_the_format_written_before_alignment_points_loads_with_none():
    # Exactly what to_bytes wrote before this change (rfr-face-analysis/1, no alignment_points).
    old = (
        b'{"format": "rfr-face-analysis/1", "face_id": "face-2", "box": [10, 20, 89, 99], '
        b'"score": 1.0417, "landmarks": [[70, 45], [62, 46], [30, 47], [38, 47], [50, 70]], '
        b'"measures": {"inter_eye_px": 32.0, "yaw": 0.01}, "flags": ["small_face"], "drawn": false}'
    )
    assert ANALYSIS_FORMAT == "rfr-face-analysis/1"
    analysis = FaceAnalysis.from_bytes(old)
    assert analysis.face.alignment_points == ()
    assert analysis.face.landmarks == ((70, 45), (62, 46), (30, 47), (38, 47), (50, 70))
    assert analysis.box == FaceBox(10, 20, 89, 99) and analysis.score == 1.0417
    assert analysis.quality.flags == ("small_face",)
