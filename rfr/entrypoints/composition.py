"""The composition root: the one place that chooses adapters and wires them to the ports."""

from __future__ import annotations

from functools import lru_cache

from rfr.application.face_engine import FaceEngine
from rfr.infrastructure.settings import Settings


def build_face_engine(settings: Settings, *, upsample: int | None = None) -> FaceEngine:
    """The embedded default engine: dlib's CC0 models, converted by our own code, on onnxruntime."""
    # Imported here so that commands which need no biometrics (audit, users) start fast.
    from rfr.adapters.alignment.dlib_chip import DlibChipAligner
    from rfr.adapters.detection.dlib_mmod import MmodFaceDetector
    from rfr.adapters.embedding.dlib_resnet import DlibResnetEmbedder
    from rfr.adapters.landmarks.dlib_shape_predictor import ShapePredictorLocator
    from rfr.adapters.quality.opencv_quality import OpenCvQualityAssessor, QualityThresholds
    from rfr.infrastructure.dlib.shape_predictor import ShapePredictorModel
    from rfr.infrastructure.models import ModelStore

    store = ModelStore(settings.models_dir)
    landmarks = ShapePredictorLocator(ShapePredictorModel.load_npz(store.path("shape_predictor_5.npz")))
    detector = MmodFaceDetector(
        store.path("mmod_human_face.onnx"), landmarks, upsample=upsample, threads=settings.ort_threads
    )
    embedder = DlibResnetEmbedder(store.path("dlib_resnet_v1.onnx"), threads=settings.ort_threads)
    return FaceEngine(
        detector=detector,
        landmarks=landmarks,
        aligner=DlibChipAligner(size=150, padding=0.25),
        embedder=embedder,
        quality=OpenCvQualityAssessor(QualityThresholds()),
    )


@lru_cache(maxsize=4)
def cached_face_engine(settings: Settings, upsample: int | None = None) -> FaceEngine:
    """One engine per process and settings: the onnxruntime sessions are expensive to open."""
    return build_face_engine(settings, upsample=upsample)
