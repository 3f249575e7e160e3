"""The composition root: the one place that chooses adapters and wires them to the ports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache, partial
from pathlib import Path

import attrs

from rfr.adapters.image_decoding import DEFAULT_MAX_PIXELS
from rfr.application.face_engine import FaceEngine
from rfr.application.services.biometric_support import DEFAULT_TOP_K, Biometrics
from rfr.infrastructure.settings import Settings, positive_int_from_env


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
        quality=OpenCvQualityAssessor(
            QualityThresholds.from_file(settings.quality_thresholds)
            if settings.quality_thresholds is not None
            else QualityThresholds()
        ),
    )


@lru_cache(maxsize=4)
def cached_face_engine(settings: Settings, upsample: int | None = None) -> FaceEngine:
    """One engine per process and settings: the onnxruntime sessions are expensive to open."""
    return build_face_engine(settings, upsample=upsample)


# The decoder's and the search's own defaults, repeated here so reading settings loads no model code.
DEFAULT_MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
DEFAULT_SEARCH_TOP_K = DEFAULT_TOP_K


@attrs.frozen
class BiometricOptions:
    """What the HTTP API and the worker choose about biometrics, read from the environment.

    | variable | default | meaning |
    |---|---|---|
    | RFR_MAX_IMAGE_PIXELS | 40000000 | largest image (width x height) decoded; more is refused (413) |
    | RFR_SEARCH_TOP_K | 20 | potential matches kept per library searched (S-04) |

    The folder bulk enrolment may read is ``Settings.import_root`` (RFR_IMPORT_ROOT).
    """

    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    top_k: int = DEFAULT_SEARCH_TOP_K

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BiometricOptions:
        env = os.environ if environ is None else environ
        return cls(
            max_pixels=positive_int_from_env(env, "RFR_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS),
            top_k=positive_int_from_env(env, "RFR_SEARCH_TOP_K", DEFAULT_SEARCH_TOP_K),
        )


def build_biometrics(settings: Settings, options: BiometricOptions | None = None) -> Biometrics:
    """The embedded default biometrics (engine, encrypted store, usearch indexes) under RFR_DATA_DIR."""
    options = options or BiometricOptions.from_env()
    return embedded_biometrics(
        settings,
        cached_face_engine(settings),
        top_k=options.top_k,
        max_pixels=options.max_pixels,
        import_root=settings.import_root,
    )


def embedded_biometrics(
    settings: Settings,
    engine: FaceEngine,
    *,
    top_k: int = DEFAULT_TOP_K,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    import_root: Path | None = None,
) -> Biometrics:
    """Biometrics under the data folder: ``biometrics/`` (the encrypted store), ``keys/`` (its
    master key) and ``indexes/`` (one usearch index per library and algorithm)."""
    from rfr.adapters.biometric_store.encrypted_files import EncryptedFileStore
    from rfr.adapters.biometric_store.thumbnails import encode_jpeg
    from rfr.adapters.image_decoding import decode_image
    from rfr.adapters.indexes.registry import IndexRegistry
    from rfr.adapters.indexes.usearch_index import UsearchIndex

    store = EncryptedFileStore.in_data_dir(settings.data_dir)
    threads = settings.ort_threads

    def usearch(path: Path, dimension: int, metric: str) -> UsearchIndex:
        return UsearchIndex(path, dimension, metric, threads=threads)

    return Biometrics(
        engine=engine,
        store=store,
        indexes=IndexRegistry(settings.data_dir / "indexes", usearch, store=store),
        decode=partial(decode_image, max_pixels=max_pixels),
        encode_jpeg=encode_jpeg,
        top_k=top_k,
        import_root=import_root,
    )
