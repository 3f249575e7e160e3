"""Settings, read from the environment only (so the same code runs embedded and in production).

| variable | default | meaning |
|---|---|---|
| RFR_DATA_DIR | ./var | event store, biometric store, indexes and built models live under it |
| RFR_PERSISTENCE | sqlite | "sqlite" (embedded, under RFR_DATA_DIR), "postgres" or "memory" (tests) |
| RFR_POSTGRES_DSN | (none) | with "postgres": ``postgresql://user:pw@host:port/db``; never logged |
| RFR_POSTGRES_SCHEMA | public | with "postgres": the schema holding the event store, chain and projections |
| RFR_ORT_THREADS | 2 | intra-op threads for each onnxruntime session |
| RFR_IMPORT_ROOT | $RFR_DATA_DIR/import | the only server-side folder tree bulk enrolment may read |
| RFR_QUALITY_THRESHOLDS | (none: built-in defaults) | TOML file of probe quality thresholds (P-10) |
| RFR_ALGORITHM | dlib | algorithm of new templates: "dlib", "sface" (ADR 0018), or a force's own |
| RFR_ALGORITHMS_FILE | (none) | TOML of a force's own algorithms, ONNX models pinned by sha256 (ADR 0021) |
| RFR_VIDEO_MAX_BYTES | 16777216 | largest short video (16 MiB, below RFR_MAX_REQUEST_BYTES); more: 413 |
| RFR_VIDEO_MAX_SECONDS | 30 | longest short video, by its container's frame count and rate (413) |
| RFR_VIDEO_MAX_FRAME_PIXELS | 2073600 | largest video frame, width x height (1920 x 1080; 413) |
| RFR_VIDEO_SAMPLES_PER_SECOND | 2 | video frames the face detector looks at per second |
| RFR_VIDEO_MAX_SAMPLES | 40 | video frames the face detector looks at in all, spread over the video |
| RFR_SMTP_* | (none: reports to a folder) | e-mail delivery of scheduled reports: ``smtp_settings`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from rfr.application.video_faces import VideoLimits
from rfr.infrastructure.custom_algorithms import CustomAlgorithm, load_custom_algorithms
from rfr.infrastructure.smtp_settings import SmtpSettings

PERSISTENCE_CHOICES = ("sqlite", "postgres", "memory")
# The built-in algorithms a deployment can choose (ADR 0018); the composition root builds each.
# A force's own (RFR_ALGORITHMS_FILE, ADR 0021) come on top, and may not take these names.
ALGORITHM_CHOICES = ("dlib", "sface")


def positive_int_from_env(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of at least 1 from ``env[name]``, or a ValueError that names the variable."""
    text = env.get(name, str(default)).strip()
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1")
    return value


@attrs.frozen
class Settings:
    data_dir: Path
    persistence: str = "sqlite"
    ort_threads: int = 2
    import_root: Path | None = None
    quality_thresholds: Path | None = None
    # The DSN may carry a password: kept out of every repr, and so out of logs and errors.
    postgres_dsn: str | None = attrs.field(default=None, repr=False)
    postgres_schema: str = "public"
    algorithm: str = attrs.field(default="dlib")
    # A force's own algorithms, from RFR_ALGORITHMS_FILE, their model files checked (ADR 0021).
    custom_algorithms: tuple[CustomAlgorithm, ...] = attrs.field(default=(), converter=tuple)
    # What a short video may be (issue 13, ADR 0026).
    video_limits: VideoLimits = attrs.field(factory=VideoLimits)
    # Scheduled reports by e-mail (ADR 0027); None: written under RFR_DATA_DIR/reports.
    smtp: SmtpSettings | None = None

    @custom_algorithms.validator
    def _check_custom_algorithms(
        self, attribute: attrs.Attribute, value: tuple[CustomAlgorithm, ...]
    ) -> None:
        names = [a.name for a in value]
        if len(set(names)) != len(names) or set(names) & set(ALGORITHM_CHOICES):
            raise ValueError(f"a force's algorithms need names of their own, not {names}")

    @algorithm.validator
    def _check_algorithm(self, attribute: attrs.Attribute, value: str) -> None:
        if value not in self.algorithm_names:
            raise ValueError(f"algorithm must be one of {self.algorithm_names}, not {value!r}")

    @property
    def algorithm_names(self) -> tuple[str, ...]:
        """Every algorithm this deployment can build, by name: what ``--algorithm`` options and
        re-templating (T-02) may name. ``algorithm`` is the default among them. The built-in
        ones first, then a force's own in the order RFR_ALGORITHMS_FILE declares them."""
        return (*ALGORITHM_CHOICES, *(a.name for a in self.custom_algorithms))

    def custom_algorithm(self, name: str) -> CustomAlgorithm | None:
        """The force's own algorithm of that name, or None (a built-in one, or unknown)."""
        return next((a for a in self.custom_algorithms if a.name == name), None)

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def event_store_path(self) -> Path:
        return self.data_dir / "events.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        persistence = env.get("RFR_PERSISTENCE", "sqlite").strip().lower()
        if persistence not in PERSISTENCE_CHOICES:
            raise ValueError(f"RFR_PERSISTENCE must be one of {PERSISTENCE_CHOICES}, not {persistence!r}")
        threads = positive_int_from_env(env, "RFR_ORT_THREADS", 2)
        data_dir = Path(env.get("RFR_DATA_DIR", "./var")).expanduser().resolve()
        import_root = Path(env.get("RFR_IMPORT_ROOT", data_dir / "import")).expanduser().resolve()
        quality = env.get("RFR_QUALITY_THRESHOLDS", "").strip()
        dsn = env.get("RFR_POSTGRES_DSN", "").strip() or None
        if persistence == "postgres" and dsn is None:
            raise ValueError("RFR_PERSISTENCE=postgres needs RFR_POSTGRES_DSN=postgresql://...")
        algorithms_file = env.get("RFR_ALGORITHMS_FILE", "").strip()
        # Read, and every model file hashed, now: a wrong file is refused at start (T-01).
        custom = (
            load_custom_algorithms(Path(algorithms_file), reserved=ALGORITHM_CHOICES)
            if algorithms_file
            else ()
        )
        algorithm = env.get("RFR_ALGORITHM", "dlib").strip().lower() or "dlib"
        names = (*ALGORITHM_CHOICES, *(a.name for a in custom))
        if algorithm not in names:
            hint = "" if custom else "; a force's own are declared in RFR_ALGORITHMS_FILE"
            raise ValueError(
                f"RFR_ALGORITHM must be one of {names} (the face algorithm templates are made "
                f"with{hint}), not {algorithm!r}"
            )
        schema = env.get("RFR_POSTGRES_SCHEMA", "public").strip() or "public"
        if not schema.replace("_", "").isalnum() or not schema.isascii() or len(schema) > 63:
            raise ValueError("RFR_POSTGRES_SCHEMA must be a plain name of letters, digits and _")
        defaults = VideoLimits()
        video_limits = VideoLimits(
            max_bytes=positive_int_from_env(env, "RFR_VIDEO_MAX_BYTES", defaults.max_bytes),
            max_seconds=positive_int_from_env(env, "RFR_VIDEO_MAX_SECONDS", defaults.max_seconds),
            max_frame_pixels=positive_int_from_env(
                env, "RFR_VIDEO_MAX_FRAME_PIXELS", defaults.max_frame_pixels
            ),
            samples_per_second=positive_int_from_env(
                env, "RFR_VIDEO_SAMPLES_PER_SECOND", defaults.samples_per_second
            ),
            max_samples=positive_int_from_env(env, "RFR_VIDEO_MAX_SAMPLES", defaults.max_samples),
        )
        return cls(
            data_dir=data_dir,
            persistence=persistence,
            ort_threads=threads,
            import_root=import_root,
            quality_thresholds=Path(quality).expanduser().resolve() if quality else None,
            postgres_dsn=dsn,
            postgres_schema=schema,
            algorithm=algorithm,
            custom_algorithms=custom,
            video_limits=video_limits,
            smtp=SmtpSettings.from_env(env),
        )
