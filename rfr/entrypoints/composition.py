"""The composition root: the one place that chooses adapters and wires them to the ports.

``Services`` is what every entrypoint runs on: the HTTP API (``HttpContext.services``), the
worker and the CLI commands each build one from ``Settings`` and take from it the one
``RfrApplication``, the clock, the biometrics and every use case, so none of them wires an
application, a clock or an adapter of its own (ADR 0009). A developer swapping a matcher, a
store or an index changes ``build_face_engine`` or ``embedded_biometrics`` here, and every
entrypoint gets it.

    with Services(settings) as services:
        page = services.searches.list(user_id)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import lru_cache, partial
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs

from rfr.adapters.clock import SystemClock
from rfr.adapters.image_decoding import DEFAULT_MAX_PIXELS
from rfr.adapters.report_delivery.files import FileReportSink
from rfr.adapters.report_delivery.smtp import SmtpReportSink
from rfr.adapters.reporting.html_report import render_html
from rfr.adapters.runner_locks import RunnerLocks
from rfr.application.app import RfrApplication
from rfr.application.face_engine import FaceEngine, FaceEngines
from rfr.application.heavy_work import HeavyWork, HeavyWorkLimits
from rfr.application.ports import BiometricStore, Clock, QualityAssessor
from rfr.application.services.access import DEFAULT_BEARER_TTL, AccessService, AuditService
from rfr.application.services.biometric_erasure import BiometricErasure
from rfr.application.services.biometric_support import DEFAULT_TOP_K, Biometrics
from rfr.application.services.calibrations import ScoreCalibrations
from rfr.application.services.endorsements import ProbeEndorsements
from rfr.application.services.enrolment import Enrolment
from rfr.application.services.exceptions import PolicyExceptions
from rfr.application.services.import_jobs import ImportJobs
from rfr.application.services.legal_holds import LegalHolds
from rfr.application.services.libraries import ReferenceLibraries
from rfr.application.services.library_approvals import LibraryApprovals
from rfr.application.services.offences import OffenceCodes
from rfr.application.services.overdue_flags import OverdueFlagging
from rfr.application.services.policy import PolicySettingsService
from rfr.application.services.probes import Probes
from rfr.application.services.reconciliation import DEFAULT_GRACE, BiometricReconciliation
from rfr.application.services.retemplating import Retemplating
from rfr.application.services.retention import RetentionSweep
from rfr.application.services.search_execution import SearchExecution
from rfr.application.services.searches import SearchRequests
from rfr.application.services.ucc import UccEntries
from rfr.application.services.ucc_screening import UccScreening
from rfr.application.services.usage_reports import ReportSchedules, ScheduledReportDelivery, UsageReports
from rfr.application.services.users import UserAdministration
from rfr.infrastructure.audit.trail import RecorderAuditTrail
from rfr.infrastructure.custom_algorithms import CustomAlgorithm
from rfr.infrastructure.metrics import count_stored_events
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings, positive_int_from_env


def build_face_engine(settings: Settings, *, upsample: int | None = None) -> FaceEngine:
    """The engine of the configured algorithm (``Settings.algorithm``, RFR_ALGORITHM; ADR 0018).

    ``dlib`` (the default): dlib's CC0 models, converted by our own code, on onnxruntime.
    ``sface``: OpenCV Zoo's YuNet detector and SFace embedder (``build_sface_engine``).
    A force's own, declared in RFR_ALGORITHMS_FILE: ``build_custom_engine`` (ADR 0021).
    ``upsample`` is dlib's detector's; YuNet has none and refuses one above 0.
    """
    if settings.algorithm == "sface":
        if upsample:
            raise ValueError("upsampling is the dlib detector's; YuNet (RFR_ALGORITHM=sface) has none")
        return build_sface_engine(settings)
    custom = settings.custom_algorithm(settings.algorithm)
    if custom is not None:
        if upsample:
            raise ValueError(f"upsampling is the dlib detector's; YuNet ({custom.name}) has none")
        return build_custom_engine(settings, custom)
    if settings.algorithm != "dlib":
        raise ValueError(f"no face engine for algorithm {settings.algorithm!r}")
    return build_dlib_engine(settings, upsample=upsample)


def _quality(settings: Settings) -> QualityAssessor:
    from rfr.adapters.quality.opencv_quality import OpenCvQualityAssessor, QualityThresholds

    return OpenCvQualityAssessor(
        QualityThresholds.from_file(settings.quality_thresholds)
        if settings.quality_thresholds is not None
        else QualityThresholds()
    )


# The YuNet detector that looks inside a box the user drew (P-11) accepts a face from this
# score: the box itself says a face is there (rfr/adapters/landmarks/yunet_box.py).
DRAWN_BOX_SCORE_THRESHOLD = 0.5


def build_sface_engine(settings: Settings) -> FaceEngine:
    """YuNet 2023mar (detector with 5 points), the 112 px ArcFace aligner and SFace 2021dec
    (cosine), from the pinned wheel's files rebuilt by the model store (ADR 0006 addendum).

    Quality (P-10) is the same assessor as dlib's: it reads the port's landmarks, which YuNet
    fills with its eye centres and nose tip (rfr/adapters/detection/yunet.py). A drawn box is
    located by YuNet run around it (``YunetBoxLocator``), refused when no face is inside.
    RFR_DETECTION_MAX_PIXELS does not apply: YuNet sees every image shrunk to 640 x 640.
    """
    from rfr.adapters.alignment.arcface_112 import ArcFace112Aligner
    from rfr.adapters.detection.yunet import YunetFaceDetector
    from rfr.adapters.embedding.sface import SFaceEmbedder
    from rfr.adapters.landmarks.yunet_box import YunetBoxLocator
    from rfr.infrastructure.models import SFACE, YUNET, ModelStore

    store = ModelStore(settings.models_dir)
    yunet = store.path(YUNET)
    return FaceEngine(
        detector=YunetFaceDetector(yunet, threads=settings.ort_threads),
        landmarks=YunetBoxLocator(
            YunetFaceDetector(yunet, threads=settings.ort_threads, score_threshold=DRAWN_BOX_SCORE_THRESHOLD)
        ),
        aligner=ArcFace112Aligner(),
        embedder=SFaceEmbedder(store.path(SFACE), threads=settings.ort_threads),
        quality=_quality(settings),
    )


def build_custom_engine(settings: Settings, definition: CustomAlgorithm) -> FaceEngine:
    """A force's own algorithm, declared in RFR_ALGORITHMS_FILE (ADR 0021): the built-in YuNet
    detector and drawn-box locator and the 112 px ArcFace aligner, as SFace's, and the force's
    ONNX model run by the ArcFace-style adapter with the declared preprocessing. The adapter
    hashes the model file again as it opens it and refuses it unless it is the declared one
    (the engine may be built long after the settings were read; T-01)."""
    from rfr.adapters.alignment.arcface_112 import ArcFace112Aligner
    from rfr.adapters.detection.yunet import YunetFaceDetector
    from rfr.adapters.embedding.onnx_arcface import ArcFaceConfig, OnnxArcFaceEmbedder
    from rfr.adapters.landmarks.yunet_box import YunetBoxLocator
    from rfr.infrastructure.models import YUNET, ModelStore

    if (definition.detector, definition.aligner) != ("yunet", "arcface_112"):
        raise ValueError(
            f"algorithm {definition.name!r}: no engine for detector {definition.detector!r} "
            f"with aligner {definition.aligner!r}"
        )
    model = definition.embedder
    config = ArcFaceConfig(
        algorithm=definition.name,
        version=model.version,
        threshold=model.threshold,
        dimension=model.dimension,
        input_size=ArcFace112Aligner.size,
        chip_size=ArcFace112Aligner.size,
        channel_order=model.channel_order.upper(),
        layout=model.layout.upper(),
        mean=model.mean,
        std=model.std,
        metric=model.metric,
        input_name=model.input,
        output_name=model.output if isinstance(model.output, str) else None,
        output_index=model.output if isinstance(model.output, int) else None,
        model_sha256=model.sha256,
    )
    yunet = ModelStore(settings.models_dir).path(YUNET)
    return FaceEngine(
        detector=YunetFaceDetector(yunet, threads=settings.ort_threads),
        landmarks=YunetBoxLocator(
            YunetFaceDetector(yunet, threads=settings.ort_threads, score_threshold=DRAWN_BOX_SCORE_THRESHOLD)
        ),
        aligner=ArcFace112Aligner(),
        embedder=OnnxArcFaceEmbedder(model.file, config, threads=settings.ort_threads),
        quality=_quality(settings),
    )


def build_dlib_engine(settings: Settings, *, upsample: int | None = None) -> FaceEngine:
    """The embedded default engine: dlib's CC0 models, converted by our own code, on onnxruntime.

    RFR_DETECTION_MAX_PIXELS (default 4194304 = 2048 x 2048): the most pixels the face
    detector is given; a larger image is detected on a resized copy (``MmodFaceDetector``).
    """
    # Imported here so that commands which need no biometrics (audit, users) start fast.
    from rfr.adapters.alignment.dlib_chip import DlibChipAligner
    from rfr.adapters.detection.dlib_mmod import DEFAULT_DETECTION_MAX_PIXELS, MmodFaceDetector
    from rfr.adapters.embedding.dlib_resnet import DlibResnetEmbedder
    from rfr.adapters.landmarks.dlib_shape_predictor import ShapePredictorLocator
    from rfr.infrastructure.dlib.shape_predictor import ShapePredictorModel
    from rfr.infrastructure.models import ModelStore

    store = ModelStore(settings.models_dir)
    landmarks = ShapePredictorLocator(ShapePredictorModel.load_npz(store.path("shape_predictor_5.npz")))
    max_pixels = positive_int_from_env(os.environ, "RFR_DETECTION_MAX_PIXELS", DEFAULT_DETECTION_MAX_PIXELS)
    detector = MmodFaceDetector(
        store.path("mmod_human_face.onnx"),
        landmarks,
        upsample=upsample,
        threads=settings.ort_threads,
        max_pixels=max_pixels,
    )
    embedder = DlibResnetEmbedder(store.path("dlib_resnet_v1.onnx"), threads=settings.ort_threads)
    return FaceEngine(
        detector=detector,
        landmarks=landmarks,
        aligner=DlibChipAligner(size=150, padding=0.25),
        embedder=embedder,
        quality=_quality(settings),
    )


@lru_cache(maxsize=4)
def cached_face_engine(settings: Settings, upsample: int | None = None) -> FaceEngine:
    """One engine per process and settings: the onnxruntime sessions are expensive to open."""
    return build_face_engine(settings, upsample=upsample)


# The decoder's and the search's own defaults, repeated here so reading settings loads no model code.
DEFAULT_MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
DEFAULT_SEARCH_TOP_K = DEFAULT_TOP_K


_HEAVY = HeavyWorkLimits()

# Under the data folder, which every process serving one store shares (ADR 0017).
IMPORT_RUNNERS_DIR = "import-runners"


@attrs.frozen
class BiometricOptions:
    """What the HTTP API and the worker choose about biometrics, read from the environment.

    | variable | default | meaning |
    |---|---|---|
    | RFR_MAX_IMAGE_PIXELS | 40000000 | largest image (width x height) decoded; more is refused (413) |
    | RFR_SEARCH_TOP_K | 20 | potential matches kept per library searched (S-04) |
    | RFR_HEAVY_WORKERS | 2 | image requests (decode, detect, template) run at once per process |
    | RFR_HEAVY_QUEUE | 8 | image requests that may wait for a worker; beyond that 503 |
    | RFR_HEAVY_PER_USER | 2 | image requests one user may have running or waiting; beyond that 503 |
    | RFR_HEAVY_MAX_WAIT_SECONDS | 30 | longest wait for a worker before 503 |
    | RFR_ORPHAN_GRACE_SECONDS | 3600 | a biometric record no event names is erased once this old |

    The grace period must exceed what any command takes from its first biometric write to the
    end of its save, lock waits included (ADR 0015).

    The folder bulk enrolment may read is ``Settings.import_root`` (RFR_IMPORT_ROOT).
    """

    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    top_k: int = DEFAULT_SEARCH_TOP_K
    heavy: HeavyWorkLimits = attrs.field(factory=HeavyWorkLimits)
    orphan_grace_s: int = int(DEFAULT_GRACE.total_seconds())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BiometricOptions:
        env = os.environ if environ is None else environ
        return cls(
            max_pixels=positive_int_from_env(env, "RFR_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS),
            top_k=positive_int_from_env(env, "RFR_SEARCH_TOP_K", DEFAULT_SEARCH_TOP_K),
            heavy=HeavyWorkLimits(  # the defaults are _HEAVY's
                workers=positive_int_from_env(env, "RFR_HEAVY_WORKERS", _HEAVY.workers),
                queue=positive_int_from_env(env, "RFR_HEAVY_QUEUE", _HEAVY.queue),
                per_user=positive_int_from_env(env, "RFR_HEAVY_PER_USER", _HEAVY.per_user),
                max_wait=positive_int_from_env(env, "RFR_HEAVY_MAX_WAIT_SECONDS", 30),
            ),
            orphan_grace_s=positive_int_from_env(
                env, "RFR_ORPHAN_GRACE_SECONDS", int(DEFAULT_GRACE.total_seconds())
            ),
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
        heavy=HeavyWork(options.heavy),
    )


def embedded_biometrics(
    settings: Settings,
    engine: FaceEngine,
    *,
    top_k: int = DEFAULT_TOP_K,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    import_root: Path | None = None,
    heavy: HeavyWork | None = None,
) -> Biometrics:
    """Biometrics under the data folder: ``biometrics/`` (the encrypted store), ``keys/`` (its
    master key) and ``indexes/`` (one usearch index per library and algorithm)."""
    from rfr.adapters.biometric_store.encrypted_files import EncryptedFileStore
    from rfr.adapters.biometric_store.thumbnails import encode_jpeg
    from rfr.adapters.image_decoding import decode_image
    from rfr.adapters.indexes.registry import IndexRegistry
    from rfr.adapters.indexes.usearch_index import UsearchIndex
    from rfr.adapters.video_decoding import OpenCvVideoSampler

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
        heavy=heavy or HeavyWork(),
        engines=face_engines(settings, engine),
        # Clear copies of videos being decoded live only in tmp/ and only while decoded.
        video=OpenCvVideoSampler(settings.data_dir / "tmp", settings.video_limits),
    )


def face_engines(settings: Settings, default: FaceEngine) -> FaceEngines:
    """Every engine the deployment can build (``Settings.algorithm_names``), ``default`` as the
    configured one; the others are built when a library or a re-templating first needs them."""
    return FaceEngines(
        default,
        default_name=settings.algorithm,
        names=settings.algorithm_names,
        build=lambda name: cached_face_engine(attrs.evolve(settings, algorithm=name)),
    )


class Services:
    """One installation's application, clock, biometrics and use cases, built from ``Settings``.

    - ``app``: the one ``RfrApplication``, opened on the configured store when this is built.
      It belongs to whoever built this ``Services`` (``close()``, or use it as a context
      manager), unless ``application`` was passed in: then its caller closes it.
    - ``clock``: ``SystemClock()`` unless ``clock`` is passed in (tests).
    - ``biometrics``: the face engine, encrypted store and indexes, built on first use, once per
      ``Services`` (opening the models takes seconds; a process that needs none opens none),
      thread-safe. ``biometrics`` may be passed as a factory (tests); ``biometric_options``
      are read from the environment when the biometrics are built unless given.
    - every use case: a property that builds it over this application and clock (and the
      biometrics where it needs them) on each access. Use cases are cheap; ``access()`` is a
      method because the API chooses its bearer token lifetime.

    ``create_tables=False`` opens an existing store without changing it (audit, reports).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        application: RfrApplication | None = None,
        clock: Clock | None = None,
        biometrics: Callable[[], Biometrics] | None = None,
        biometric_options: BiometricOptions | None = None,
        create_tables: bool = True,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.owns_app = application is None
        self.app = (
            application
            if application is not None
            else RfrApplication(env=application_env(settings, create_tables=create_tables))
        )
        # Live metrics count what each save stored, in whichever process saved it (ADR 0024).
        self.app.observe(count_stored_events)
        self.biometric_options = biometric_options
        self._build_biometrics = biometrics
        self._biometrics: Biometrics | None = None
        self._store: BiometricStore | None = None
        self._lock = threading.Lock()

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the application if this ``Services`` opened it."""
        if self.owns_app:
            self.app.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- biometrics ----------------------------------------------------------------------------

    @property
    def biometrics(self) -> Biometrics:
        """The biometrics, built on the first call from any thread and kept."""
        built = self._biometrics
        if built is None:
            with self._lock:
                if self._biometrics is None:
                    self._biometrics = (
                        self._build_biometrics()
                        if self._build_biometrics is not None
                        else build_biometrics(self.settings, self.biometric_options)
                    )
                built = self._biometrics
        return built

    @property
    def built_biometrics(self) -> Biometrics | None:
        """The biometrics if this process has built them, else None; never builds them (a health
        report must not load the models)."""
        return self._biometrics

    def open_biometrics(self) -> Biometrics:
        """``biometrics`` as a callable, for a use case that opens them only when it must."""
        return self.biometrics

    def biometric_store(self) -> BiometricStore:
        """The biometric store alone, without the models: that of ``biometrics`` when they are
        built (or a factory was passed in), else the embedded encrypted store, opened once and
        kept (a second connection to the same files, which the store allows)."""
        if self._store is None and (self._biometrics is not None or self._build_biometrics is not None):
            return self.biometrics.store
        with self._lock:
            if self._store is None:
                from rfr.adapters.biometric_store.encrypted_files import EncryptedFileStore

                self._store = EncryptedFileStore.in_data_dir(self.settings.data_dir)
            return self._store

    # -- use cases -----------------------------------------------------------------------------

    def access(self, *, bearer_ttl: timedelta = DEFAULT_BEARER_TTL) -> AccessService:
        return AccessService(self.app, self.clock, bearer_ttl=bearer_ttl)

    @property
    def audit(self) -> AuditService:
        return AuditService(self.app, self.clock, RecorderAuditTrail(self.app))

    @property
    def users(self) -> UserAdministration:
        return UserAdministration(self.app, self.clock)

    @property
    def policy_settings(self) -> PolicySettingsService:
        return PolicySettingsService(self.app, self.clock)

    @property
    def score_calibrations(self) -> ScoreCalibrations:
        """Each algorithm's calibrated scores (ADR 0020): an administrator records them (`rfr
        calibrate`); a search reads ``scale_for`` and ``current`` (its non-mate chances)."""
        return ScoreCalibrations(self.app, self.clock)

    @property
    def policy_exceptions(self) -> PolicyExceptions:
        return PolicyExceptions(self.app, self.clock)

    @property
    def offences(self) -> OffenceCodes:
        return OffenceCodes(self.app, self.clock)

    @property
    def legal_holds(self) -> LegalHolds:
        return LegalHolds(self.app, self.clock)

    @property
    def libraries(self) -> ReferenceLibraries:
        return ReferenceLibraries(self.app, self.clock)

    @property
    def library_approvals(self) -> LibraryApprovals:
        return LibraryApprovals(self.app, self.clock)

    @property
    def enrolment(self) -> Enrolment:
        return Enrolment(self.app, self.clock, self.biometrics)

    @property
    def import_jobs(self) -> ImportJobs:
        """Bulk enrolment jobs, stored; a job's runner is alive while it holds its lock (ADR 0017)."""
        return ImportJobs(self.app, self.clock, self.import_runners)

    @property
    def retemplating(self) -> Retemplating:
        return Retemplating(self.app, self.clock, self.biometrics, self.import_runners)

    @property
    def import_runners(self) -> RunnerLocks:
        """The locks of the processes running bulk enrolment jobs, in ``$RFR_DATA_DIR/import-runners``."""
        return RunnerLocks(self.settings.data_dir / IMPORT_RUNNERS_DIR)

    @property
    def probes(self) -> Probes:
        return Probes(self.app, self.clock, self.biometrics)

    @property
    def endorsements(self) -> ProbeEndorsements:
        return ProbeEndorsements(self.app, self.clock)

    @property
    def searches(self) -> SearchRequests:
        return SearchRequests(self.app, self.clock)

    @property
    def search_execution(self) -> SearchExecution:
        return SearchExecution(self.app, self.clock, self.biometrics)

    @property
    def ucc(self) -> UccEntries:
        return UccEntries(self.app, self.clock)

    @property
    def ucc_screening(self) -> UccScreening:
        return UccScreening(self.app, self.clock, self.biometrics)

    @property
    def erasure(self) -> BiometricErasure:
        return BiometricErasure(self.app, self.clock, self.biometrics)

    @property
    def usage_reports(self) -> UsageReports:
        return UsageReports(self.app, self.clock)

    @property
    def report_schedules(self) -> ReportSchedules:
        return ReportSchedules(self.app, self.clock)

    @property
    def report_delivery(self) -> ScheduledReportDelivery:
        """Scheduled reports e-mailed when RFR_SMTP_HOST is set, else written under
        ``$RFR_DATA_DIR/reports`` (the worker; ADR 0027)."""
        smtp = self.settings.smtp
        sink = SmtpReportSink(smtp) if smtp is not None else FileReportSink(self.settings.data_dir)
        return ScheduledReportDelivery(self.app, self.clock, sink, render_html)

    @property
    def retention_sweep(self) -> RetentionSweep:
        """One round of scheduled deletion (the worker); opens the biometrics only to erase."""
        return RetentionSweep(self.app, self.clock, self.open_biometrics)

    @property
    def overdue_flagging(self) -> OverdueFlagging:
        """Records the flags that fell due (L-06, L-09, L-10, U-03; the worker)."""
        return OverdueFlagging(self.app, self.clock)

    @property
    def reconciliation(self) -> BiometricReconciliation:
        """Erases biometric records no event names (the worker, ADR 0015); opens the store, and
        the biometrics only to take an erased template out of an index."""
        options = self.biometric_options or BiometricOptions.from_env()
        return BiometricReconciliation(
            self.app,
            self.clock,
            self.biometric_store,
            self.open_biometrics,
            grace=timedelta(seconds=options.orphan_grace_s),
        )
