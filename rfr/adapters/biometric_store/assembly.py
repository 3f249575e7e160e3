"""The embedded default ``Biometrics``: encrypted files, usearch indexes and Pillow, under RFR_DATA_DIR.

The composition root calls ``embedded_biometrics`` with the engine it built; everything
biometric then lives under the data folder: ``biometrics/`` (the store), ``keys/`` (the
master key) and ``indexes/`` (one usearch index per library and algorithm).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

# Loaded before usearch on purpose: importing onnxruntime 1.32 after usearch 2.26 crashes
# the interpreter (segmentation fault), and the engine imports onnxruntime lazily.
import onnxruntime  # noqa: F401

from rfr.adapters.biometric_store.encrypted_files import EncryptedFileStore
from rfr.adapters.biometric_store.thumbnails import encode_jpeg
from rfr.adapters.image_decoding import DEFAULT_MAX_PIXELS, decode_image
from rfr.adapters.indexes.registry import IndexRegistry
from rfr.adapters.indexes.usearch_index import UsearchIndex
from rfr.application.face_engine import FaceEngine
from rfr.application.services.biometric_support import DEFAULT_TOP_K, Biometrics
from rfr.infrastructure.settings import Settings


def embedded_biometrics(
    settings: Settings,
    engine: FaceEngine,
    *,
    top_k: int = DEFAULT_TOP_K,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    import_root: Path | None = None,
) -> Biometrics:
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
