"""Scale: one library of 10k, 100k (and 1M) templates, searched and enrolled through the real application.

Run with `rfr bench scale [--sizes 10000,100000] [--json]` (`make bench` runs it too;
`python bench/scale.py ...` takes the same options). For each size, in a new installation in a
temporary folder (SQLite event store, projections, encrypted biometric store, encrypted usearch
index), as `rfr serve` builds it through ``Services``:

1. Real templates: every single-face photo of ``shared/datasets/faces`` (manifest.csv) is
   templated once per run by the real engine (``build_face_engine``), as enrolment does
   (decode, detect, the subject's face, template). A Gaussian (mean and full covariance) is
   fitted to them; the embedder's templates are raw dlib descriptors compared by Euclidean
   distance, so synthetic ones are drawn raw as well (unit length only for a cosine embedder).
2. Fill: synthetic templates drawn from that Gaussian are enrolled in batches of 500 (the
   domain's ``MAX_BATCH_IMAGES``) the way ``tests/application/test_cost_does_not_grow.py``
   does: ``ReferenceLibrary.enrol`` makes an ``EnrolmentBatch``, each template is written to
   the encrypted store (``put_template``), the batch records them and ``app.save`` writes the
   events, the projections and the audit chain in one transaction; then one
   ``IndexRegistry.writing()`` block adds the batch to the index (one journal entry).
3. Real identities: the first photo of every identity is enrolled through
   ``Enrolment.enrol``, one photo per call, timed; the time the engine spends detecting and
   templating inside each call is taken off to give the cost beyond detection and embedding.
   The library then holds exactly ``templates`` templates.
4. Probes: up to ``--probes`` other photos of those identities (held back, never enrolled) are
   submitted with a Form 3, their face selected (templated), endorsed as needed, and a search
   request opened, all through the use cases; then ``SearchExecution.search_library`` is timed
   alone (beyond the probe's templating). A probe's true mates are the enrolled photos of its
   identity.
5. The same probe templates are searched in the index alone (the registry's index as the
   search uses it, ``2 * top_k`` deep), in FAISS (``IndexHNSWFlat`` M=32 at several efSearch,
   and ``IndexFlatL2``) and by exact numpy, on the same vectors (the synthetic ones as stored,
   the real ones read back from the store), one query at a time on one thread.

The audit trail's append and verify rates come from ``bench/audit_throughput.py`` (imported).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

# Last, as audit_throughput does, so that PYTHONPATH can point at another checkout; bench/ itself is
# first on the path when this runs as a script, and `rfr bench` puts it there.
sys.path.append(str(Path(__file__).resolve().parent.parent))

# onnxruntime before usearch: the other order crashes the interpreter (usearch_index.py).
import onnxruntime  # noqa: F401, I001
import numpy as np

from rfr.adapters.image_decoding import decode_image
from rfr.application.face_engine import FaceEngine
from rfr.application.services.enrolment import EnrolmentItem, choose_subject_face
from rfr.application.services.searches import LibrarySelection
from rfr.domain.enrolment_batch import MAX_BATCH_IMAGES
from rfr.domain.forms import AccessRestriction, ApprovalRecord, Form3, LibraryApplication, LibraryKind
from rfr.domain.images import ImageLevel, MopiGroup, PerceivedAgeBand
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Rank, Role
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import LibraryImage, ReferenceLibrary
from rfr.domain.rules_probe import EndorsementKind
from rfr.domain.search_terms import PreRfrChecks, PreRfrOption, SearchGround, SearchPurpose
from rfr.domain.user import User
from rfr.entrypoints.composition import DEFAULT_SEARCH_TOP_K, Services, build_face_engine, embedded_biometrics
from rfr.infrastructure.audit import verify
from rfr.infrastructure.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (10_000, 100_000)
DEFAULT_PROBES = 200
FAISS_EF_SEARCH = (16, 32, 64, 128, 256)
FAISS_EF_HEADLINE = 256  # usearch's expansion_search in UsearchIndex
FAISS_M = 32
TARGETS = {
    "templates": 1_000_000,
    "search_p50_ms": 20.0,
    "index_p50_ms": 1.0,
    "recall_at_1": 0.99,
    "mates_in_top_10": 0.99,
    "enrol_extra_p50_ms": 20.0,
    "enrol_extra_growth": 2.0,
    "index_adds_per_s": 5_000,
    "index_memory_gib": 1.5,
    "commands_per_s": 2_000,
    "verify_events_per_s": 200_000,
}
STAFF: dict[str, tuple[set[Role], Rank | None, set[str]]] = {
    "op-lead": ({Role.OPERATIONAL_LEAD}, None, set()),
    "analyst": ({Role.RFR_USER}, None, {"team-a"}),
    "supt": ({Role.APPROVING_OFFICER}, Rank.SUPERINTENDENT, set()),
    "inspector": ({Role.APPROVING_OFFICER}, Rank.INSPECTOR, {"team-a"}),
}

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- real photos and their templates -------------------------------------------------------------


def shared_faces_dir() -> Path:
    return Path(os.environ.get("RFR_SHARED_DIR", REPO.parent / "shared")) / "datasets" / "faces"


class RealFace:
    """One photo of the shared set with the template the engine makes of its subject's face."""

    __slots__ = ("data", "identity", "path", "vector")

    def __init__(self, identity: str, path: Path, data: bytes, vector: np.ndarray) -> None:
        self.identity, self.path, self.data, self.vector = identity, path, data, vector


def single_face_photos(faces: Path, identities: int | None = None) -> dict[str, list[Path]]:
    """Photos the manifest says show one face, by identity (all sources), in file order."""
    with (faces / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    found: dict[str, list[Path]] = {}
    for row in rows:
        if row["faces_in_image"] == "1" and row["identity"]:
            found.setdefault(f"{row['source']}/{row['identity']}", []).append(faces / row["path"])
    # Identities with a second photo first: they give the probes.
    names = sorted(found, key=lambda k: (len(found[k]) < 2, k))
    if identities is not None:
        names = names[:identities]
    return {k: sorted(found[k]) for k in names}


def real_faces(engine: FaceEngine, photos: dict[str, list[Path]], log: Log) -> list[RealFace]:
    """The subject's template of each photo, as enrolment makes it; photos without one are left out."""
    out = []
    for identity, paths in photos.items():
        for path in paths:
            data = path.read_bytes()
            pixels = decode_image(data)
            faces = engine.detect(pixels)
            chosen, _, _ = choose_subject_face(faces)
            if chosen is None:
                continue
            vector = engine.template(pixels, [faces[chosen].face])[0]
            out.append(RealFace(identity, path, data, np.asarray(vector, dtype=np.float32)))
    log(f"real templates: {len(out)} photos of {len({f.identity for f in out})} identities")
    return out


class Gaussian:
    """A multivariate normal fitted to real templates; drawn raw, or at unit length for cosine."""

    def __init__(self, vectors: np.ndarray, metric: str) -> None:
        data = np.asarray(vectors, dtype=np.float64)
        self.mean = data.mean(axis=0)
        values, axes = np.linalg.eigh(np.cov(data, rowvar=False))
        # Eigen-decomposition rather than Cholesky: fewer photos than dimensions still works.
        self.basis = axes * np.sqrt(np.clip(values, 0.0, None))
        self.metric = metric
        self.samples = len(data)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = self.mean + rng.standard_normal((n, self.mean.size)) @ self.basis.T
        if self.metric == "cosine":
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)


def distance_profile(
    real: Sequence[RealFace], gaussian: Gaussian, rng: np.random.Generator
) -> dict[str, Any]:
    """Median Euclidean distances: same person, different people, synthetic to synthetic, norms."""
    vectors = np.stack([f.vector for f in real])
    ids = np.array([f.identity for f in real])
    d = np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=2)
    same = ids[:, None] == ids[None, :]
    off = ~np.eye(len(real), dtype=bool)
    synth = gaussian.draw(rng, 1000)
    ds = np.linalg.norm(synth[:500] - synth[500:], axis=1)

    def median(x: np.ndarray) -> float | None:
        return round(float(np.median(x)), 3) if x.size else None

    return {
        "same_identity_median": median(d[same & off]),
        "different_identity_median": median(d[~same]),
        "synthetic_pair_median": median(ds),
        "real_norm_median": median(np.linalg.norm(vectors, axis=1)),
        "synthetic_norm_median": median(np.linalg.norm(synth, axis=1)),
    }


# -- the application -------------------------------------------------------------------------------


class TimedEngine(FaceEngine):
    """The real engine, counting the seconds spent detecting and templating."""

    def __init__(self, engine: FaceEngine) -> None:
        super().__init__(engine.detector, engine.landmarks, engine.aligner, engine.embedder, engine.quality)
        self.seconds = 0.0

    def detect(self, image: np.ndarray) -> Any:
        started = time.perf_counter()
        try:
            return super().detect(image)
        finally:
            self.seconds += time.perf_counter() - started

    def template(self, image: np.ndarray, faces: Any) -> np.ndarray:
        started = time.perf_counter()
        try:
            return super().template(image, faces)
        finally:
            self.seconds += time.perf_counter() - started


def form3() -> Form3:
    return Form3(
        case_reference="BENCH-SCALE",
        purposes={SearchPurpose.IDENTIFY},
        grounds={SearchGround.OFFENCE},
        offence_code="burglary",
        image_level=ImageLevel.PUBLIC_WOULD_EXPECT,
        necessity_and_proportionality="suspect unidentified after CCTV trawl",
        image_source="shop CCTV",
        source_sensitivity="none",
        most_current_image_confirmed=True,
        perceived_age=PerceivedAgeBand.ADULT,
        pre_rfr_checks=PreRfrChecks({PreRfrOption.LOCAL_ENQUIRIES}, "nobody recognised the suspect"),
    )


def library_application() -> LibraryApplication:
    return LibraryApplication(
        kind=LibraryKind.TEMPORARY,
        library_name="Scale benchmark custody images",
        legal_basis="common law policing purpose; held under DPA 2018 Part 3",
        how_obtained_and_privacy_expectations="custody images taken on arrest",
        composition_quality_and_suitability="frontal custody photographs",
        elevated_privacy_or_human_rights="none identified beyond Article 8",
        necessity_and_proportionality="a benchmark of the system at force scale",
        monitoring_and_assurance="audit review monthly by the FR team",
    )


def open_installation(data_dir: Path, engine: TimedEngine, top_k: int) -> tuple[Services, str]:
    """A new installation: staff registered and trained, an approved library created, all by use case."""
    settings = Settings(data_dir=data_dir, persistence="sqlite")
    bio = embedded_biometrics(settings, engine, top_k=top_k)
    services = Services(settings, biometrics=lambda: bio)
    return services, staffed_library(services, "scale")


def staffed_library(services: Services, name: str) -> str:
    """The staff registered and trained and an approved library named ``name``, by use case;
    returns the library's id."""
    from rfr.application.services.bootstrap import bootstrap_administrator

    bootstrap_administrator(services.app, services.clock, "admin")
    users = services.users
    for user_id, (roles, rank, teams) in STAFF.items():
        users.register("admin", user_id, roles, rank=rank, teams=teams)
        users.record_training("admin", user_id, True, "completed RFR training")
    now = services.clock.now()
    applied = services.library_approvals.apply("analyst", library_application())
    record = ApprovalRecord(
        rationale="needed to measure the system at force scale",
        access=AccessRestriction(teams={"team-a"}),
        image_level=ImageLevel.NON_COMPLIANT_POLICE,
        conditions="search by team A only",
        purposes=frozenset(SearchPurpose),
        review_due=now + timedelta(days=30),
    )
    approval = services.library_approvals.approve("supt", applied.id, record)
    library = services.libraries.create("op-lead", name, approval.id)
    return str(library.id)


class Fill:
    """The synthetic templates enrolled, and what each step of enrolling them cost."""

    def __init__(self) -> None:
        self.template_ids: list[str] = []
        self.vectors: list[np.ndarray] = []
        self.domain_s = self.store_s = self.save_s = self.index_s = self.add_s = 0.0
        self.index_blocks: list[float] = []
        self.seconds = 0.0


def fill(
    services: Services, library_id: str, gaussian: Gaussian, count: int, rng: np.random.Generator, log: Log
) -> Fill:
    """``count`` synthetic templates, enrolled in batches of 500 through the domain, store, save and index."""
    app, bio = services.app, services.biometrics
    embedder, algorithm_id = bio.engine.embedder, bio.algorithm_id
    lead = app.get(User.id_for("op-lead"), User).actor()
    library = app.get(UUID(library_id), ReferenceLibrary)
    approval = app.get(UUID(library.approval_id), LibraryApproval)
    config = services.libraries.config()
    captured = (services.clock.now() - timedelta(days=200)).date()
    done, out, started = 0, Fill(), time.perf_counter()
    report = max(MAX_BATCH_IMAGES, (count // 10) // MAX_BATCH_IMAGES * MAX_BATCH_IMAGES)
    while done < count:
        n = min(MAX_BATCH_IMAGES, count - done)
        vectors = gaussian.draw(rng, n)
        t0 = time.perf_counter()
        images = [
            LibraryImage(
                str(uuid4()),
                "sha256:" + hashlib.sha256(v.tobytes()).hexdigest(),
                captured,
                PerceivedAgeBand.ADULT,
                MopiGroup.GROUP_2,
            )
            for v in vectors
        ]
        at = services.clock.now()
        batch = library.enrol(lead, at, images, approval, config)
        t1 = time.perf_counter()
        templates = {}
        for image, vector in zip(images, vectors, strict=True):
            template_id = str(uuid4())
            bio.store.put_template(template_id, vector, owner=library_id, algorithm_id=algorithm_id)
            templates[image.image_id] = template_id
        t2 = time.perf_counter()
        batch.record_templates(lead, at, algorithm_id, templates)
        t3 = time.perf_counter()
        app.save(batch)
        t4 = time.perf_counter()
        ids = list(templates.values())
        with bio.indexes.writing(library_id, algorithm_id, embedder.dimension, embedder.metric) as index:
            a0 = time.perf_counter()
            index.add(ids, vectors)
            out.add_s += time.perf_counter() - a0
        t5 = time.perf_counter()
        out.domain_s += (t1 - t0) + (t3 - t2)
        out.store_s += t2 - t1
        out.save_s += t4 - t3
        out.index_s += t5 - t4
        out.index_blocks.append((t5 - t4) * 1e3)
        out.template_ids += ids
        out.vectors.append(vectors)
        done += n
        if done % report == 0 or done == count:
            rate = done / (time.perf_counter() - started)
            log(f"  filled {done:,} / {count:,} ({rate:,.0f} templates/s)")
    out.seconds = time.perf_counter() - started
    return out


class Enrolled:
    def __init__(self) -> None:
        self.mates: dict[str, set[str]] = {}  # identity -> image ids
        self.mate_templates: dict[str, set[str]] = {}  # identity -> template ids
        self.template_ids: list[str] = []
        self.total_ms: list[float] = []
        self.engine_ms: list[float] = []
        self.failed = 0


def enrol_real(services: Services, library_id: str, faces: Sequence[RealFace], log: Log) -> Enrolled:
    """Each photo enrolled by ``Enrolment.enrol`` on its own, timed; the engine's share taken off."""
    enrolment, engine = services.enrolment, services.biometrics.engine
    assert isinstance(engine, TimedEngine)
    captured = (services.clock.now() - timedelta(days=200)).date()
    out = Enrolled()
    for face in faces:
        item = EnrolmentItem(
            face.data, captured, PerceivedAgeBand.ADULT, MopiGroup.GROUP_2, face.identity, face.path.name
        )
        engine.seconds = 0.0
        started = time.perf_counter()
        report = enrolment.enrol("op-lead", library_id, [item])
        elapsed = time.perf_counter() - started
        if not report.enrolled:
            out.failed += 1
            continue
        result = report.enrolled[0]
        out.total_ms.append(elapsed * 1e3)
        out.engine_ms.append(engine.seconds * 1e3)
        out.mates.setdefault(face.identity, set()).add(str(result.image_id))
        out.mate_templates.setdefault(face.identity, set()).add(str(result.template_id))
        out.template_ids.append(str(result.template_id))
    log(f"  enrolled {len(out.total_ms)} real photos one by one ({out.failed} not enrolled)")
    return out


def ready_probe(services: Services, face: RealFace) -> tuple[str, list[str]] | None:
    """A probe of ``face`` through the P-11 pipeline and its endorsements; (probe id, its template ids)."""
    probes = services.probes
    submitted = probes.submit("analyst", form3(), face.data)
    if not submitted.faces:
        return None
    largest = max(submitted.faces, key=lambda f: (f.right - f.left) * (f.bottom - f.top))
    view = probes.select_faces("analyst", submitted.probe_id, [largest.face_id], "the suspect")
    if view.quality_flags and view.quality_decision is None:
        probes.decide_on_quality(
            "analyst", submitted.probe_id, True, "benchmark: searched whatever the flags"
        )
    probe = services.app.get(UUID(submitted.probe_id), ProbeImage)
    config = services.endorsements.config()
    for kind in sorted(probe.required_endorsements(config)):
        if kind is EndorsementKind.VULNERABILITY:
            services.endorsements.record_technical_advice("analyst", probe.id, "FRT: expect lower scores")
        services.endorsements.endorse("inspector", probe.id, kind, "necessary and proportionate")
    probe = services.app.get(UUID(submitted.probe_id), ProbeImage)
    return submitted.probe_id, list(probe.template_ids(services.biometrics.algorithm_id))


# -- measures --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def ms(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def rss_mib() -> dict[str, float | None]:
    """The process's resident memory now and at its peak since the last ``reset_peak_rss``."""
    found: dict[str, float | None] = {"VmRSS": None, "VmHWM": None}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in found:
                found[key] = round(int(value.split()[0]) / 1024, 1)
    if found["VmHWM"] is None:
        found["VmHWM"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return {"rss_mib": found["VmRSS"], "peak_rss_mib": found["VmHWM"]}


def reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def folder_mib(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def usearch_memory_mib(index: object) -> float | None:
    """usearch's own count of the bytes the index holds (through the registry's private state)."""
    try:
        raw = index._slot.state.index._index  # type: ignore[attr-defined]
        return round(int(raw.memory_usage) / 2**20, 1)
    except AttributeError:
        return None


def usearch_raw_times(index: object, queries: np.ndarray, k: int) -> list[float]:
    """The same searches in usearch's own index, without the adapter and registry around it."""
    try:
        raw = index._slot.state.index._index  # type: ignore[attr-defined]
    except AttributeError:
        return []
    exact = len(raw) <= index._slot.state.index._exact_search_limit  # type: ignore[attr-defined]
    return [timed(lambda q=q: raw.search(q, k, threads=1, exact=exact))[0] for q in queries]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    found = fn()
    return (time.perf_counter() - started) * 1e3, found


@contextlib.contextmanager
def faiss_threads(n: int) -> Iterator[Any]:
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield faiss
    finally:
        faiss.omp_set_num_threads(before)


def faiss_available() -> str | None:
    """None when faiss imports, else why not."""
    try:
        import faiss  # noqa: F401
    except ImportError as exc:
        return f"faiss-cpu is not installed ({exc}); pip install -e '.[bench]'"
    return None


def mate_measures(rows: Sequence[Sequence[Any]], mates: Sequence[set[Any]]) -> dict[str, float]:
    """Of the probes, the share whose first hit is a true mate, and whose top 10 holds one."""
    n = max(1, len(rows))
    return {
        "recall_at_1": round(sum(bool(r) and r[0] in m for r, m in zip(rows, mates, strict=True)) / n, 4),
        "mates_in_top_10": round(
            sum(any(x in m for x in r[:10]) for r, m in zip(rows, mates, strict=True)) / n, 4
        ),
    }


def rank_measures(
    rows: Sequence[Sequence[int]], mates: Sequence[set[int]], exact: Sequence[Sequence[int]]
) -> dict:
    """recall@1 of a true mate, share of probes with a mate in the top 10, neighbours recall vs exact."""
    same1 = [bool(r) and bool(e) and r[0] == e[0] for r, e in zip(rows, exact, strict=True)]
    n10 = [len(set(r[:10]) & set(e[:10])) / max(1, len(e[:10])) for r, e in zip(rows, exact, strict=True)]
    n = max(1, len(rows))
    return {
        **mate_measures(rows, mates),
        "exact_top1_agreement": round(sum(same1) / n, 4),
        "neighbour_recall_at_10": round(sum(n10) / n, 4),
    }


def exact_numpy(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[list[float], list[list[int]]]:
    """Exact Euclidean k nearest, one query at a time (numpy and its BLAS, as installed)."""
    norms = np.einsum("ij,ij->i", matrix, matrix)
    times, rows = [], []
    for q in queries:

        def one(q: np.ndarray = q) -> list[int]:
            d = norms - 2.0 * (matrix @ q)
            part = np.argpartition(d, k - 1)[:k] if k < len(d) else np.arange(len(d))
            return part[np.argsort(d[part], kind="stable")].tolist()

        elapsed, row = timed(one)
        times.append(elapsed)
        rows.append(row)
    return times, rows


def faiss_measures(
    matrix: np.ndarray,
    queries: np.ndarray,
    k: int,
    mates: Sequence[set[int]],
    exact: Sequence[Sequence[int]],
    threads: int,
    log: Log,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with faiss_threads(threads) as faiss:
        hnsw = faiss.IndexHNSWFlat(matrix.shape[1], FAISS_M)
        started = time.perf_counter()
        hnsw.add(matrix)
        build = time.perf_counter() - started
        log(f"  faiss HNSW{FAISS_M} built: {len(matrix) / build:,.0f} adds/s")
        flat = faiss.IndexFlatL2(matrix.shape[1])
        flat.add(matrix)
        out["faiss_hnsw_build_adds_per_s"] = round(len(matrix) / build)
        out["faiss_hnsw_ef_construction"] = int(hnsw.hnsw.efConstruction)
        out["faiss_hnsw_memory_mib"] = round(len(faiss.serialize_index(hnsw)) / 2**20, 1)
    with faiss_threads(1) as faiss:
        sweep = []
        for ef in FAISS_EF_SEARCH:
            hnsw.hnsw.efSearch = ef
            times, rows = [], []
            for q in queries:
                elapsed, (_, found) = timed(lambda q=q: hnsw.search(q[None, :], k))
                times.append(elapsed)
                rows.append([int(i) for i in found[0] if i >= 0])
            sweep.append(
                {
                    "ef_search": ef,
                    "p50_ms": ms(percentile(times, 50)),
                    "p99_ms": ms(percentile(times, 99)),
                    **rank_measures(rows, mates, exact),
                }
            )
        times = []
        flat_rows = []
        for q in queries:
            elapsed, (_, found) = timed(lambda q=q: flat.search(q[None, :], k))
            times.append(elapsed)
            flat_rows.append([int(i) for i in found[0] if i >= 0])
    headline = next(s for s in sweep if s["ef_search"] == FAISS_EF_HEADLINE)
    out.update(
        {
            "faiss_hnsw_p50_ms": headline["p50_ms"],
            "faiss_hnsw_p99_ms": headline["p99_ms"],
            "faiss_hnsw_ef_search": FAISS_EF_HEADLINE,
            "faiss_hnsw_recall_at_1": headline["recall_at_1"],
            "faiss_hnsw_neighbour_recall_at_10": headline["neighbour_recall_at_10"],
            "faiss_hnsw_sweep": sweep,
            "faiss_flat_p50_ms": ms(percentile(times, 50)),
            "faiss_flat_p99_ms": ms(percentile(times, 99)),
            "faiss_flat_recall_at_1": rank_measures(flat_rows, mates, exact)["recall_at_1"],
        }
    )
    return out


def equal_recall(sweep: Sequence[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The cheapest FAISS efSearch whose neighbour recall@10 reaches ``target`` (the index's own)."""
    reached = [s for s in sweep if s["neighbour_recall_at_10"] >= target]
    return min(reached, key=lambda s: s["ef_search"]) if reached else None


def measure_size(
    size: int,
    real: Sequence[RealFace],
    gaussian: Gaussian,
    engine: TimedEngine,
    *,
    probes: int,
    top_k: int,
    seed: int,
    work_dir: Path | None,
    log: Log,
) -> dict[str, Any]:
    began = time.perf_counter()
    gallery, held_back = split(real, probes)
    if size <= len(gallery):
        raise ValueError(f"--sizes: {size} is not more than the {len(gallery)} real photos enrolled")
    rng = np.random.default_rng(seed + size)
    reset_peak_rss()
    with tempfile.TemporaryDirectory(prefix="rfr-bench-scale-", dir=work_dir) as tmp:
        data_dir = Path(tmp) / "var"
        services, library_id = open_installation(data_dir, engine, top_k)
        bio = services.biometrics
        try:
            log(f"size {size:,}: filling {size - len(gallery):,} synthetic templates")
            memory_before = rss_mib()
            filled = fill(services, library_id, gaussian, size - len(gallery), rng, log)
            memory_after_fill = rss_mib()
            memory_growth = (
                None
                if memory_after_fill["rss_mib"] is None or memory_before["rss_mib"] is None
                else round(memory_after_fill["rss_mib"] - memory_before["rss_mib"], 1)
            )
            enrolled = enrol_real(services, library_id, gallery, log)
            templates = services.app.library_images.templated(library_id, bio.algorithm_id)
            index = bio.index(library_id)
            index_memory = usearch_memory_mib(index)
            # The probes: submitted, templated, endorsed and a request opened, untimed.
            started = time.perf_counter()
            ready = []
            for face in held_back:
                if face.identity not in enrolled.mates:
                    continue
                prepared = ready_probe(services, face)
                if prepared is None or not prepared[1]:
                    continue
                request = services.searches.open(
                    "analyst", prepared[0], [LibrarySelection(library_id, "the subject may be held here")]
                )
                ready.append((face, request.id, prepared[1]))
            log(f"  {len(ready)} probes ready in {time.perf_counter() - started:.0f} s")
            search_ms, app_rows = [], []
            for _, request_id, _ in ready:
                elapsed, found = timed(
                    lambda r=request_id: services.search_execution.search_library("analyst", r, library_id)
                )
                search_ms.append(elapsed)
                app_rows.append([c.image_id for c in found.candidates])
            app_mates = [enrolled.mates[face.identity] for face, _, _ in ready]
            # The same probes in the index alone, as the search first asks it.
            depth = 2 * top_k
            queries = np.stack([bio.store.get_template(tids[0]).vector for _, _, tids in ready]).astype(
                np.float32
            )
            index_ms, index_rows = [], []
            for q in queries:
                elapsed, hits = timed(lambda q=q: index.search(q, depth))
                index_ms.append(elapsed)
                index_rows.append([h.template_id for h in hits])
            raw_ms = usearch_raw_times(index, queries, depth)
            # One matrix of every template of the library: the synthetic ones as stored, the real ones
            # read back from the store.
            real_vectors = [bio.store.get_template(t).vector for t in enrolled.template_ids]
            matrix = np.ascontiguousarray(
                np.vstack([*filled.vectors, np.stack(real_vectors)]), dtype=np.float32
            )
            ids = filled.template_ids + enrolled.template_ids
            row_of = {t: i for i, t in enumerate(ids)}
            mates_rows = [{row_of[t] for t in enrolled.mate_templates[face.identity]} for face, _, _ in ready]
            exact_ms, exact_rows = exact_numpy(matrix, queries, depth)
            usearch_rows = [[row_of[t] for t in r] for r in index_rows]
            app_measures = mate_measures(app_rows, app_mates)
            index_measures = rank_measures(usearch_rows, mates_rows, exact_rows)
            exact_measures = rank_measures(exact_rows, mates_rows, exact_rows)
            faiss_why = faiss_available()
            faiss: dict[str, Any] = {"faiss": faiss_why or "faiss-cpu"}
            if faiss_why is None:
                faiss.update(
                    faiss_measures(
                        matrix, queries, depth, mates_rows, exact_rows, services.settings.ort_threads, log
                    )
                )
                matched = equal_recall(faiss["faiss_hnsw_sweep"], index_measures["neighbour_recall_at_10"])
                faiss["faiss_hnsw_at_index_recall"] = matched
            else:
                log(f"  {faiss_why}: FAISS left out")
                faiss.update(
                    {k: None for k in ("faiss_hnsw_p50_ms", "faiss_hnsw_p99_ms", "faiss_flat_p50_ms")}
                )
            memory_end = rss_mib()
            verified = _timed_verify(services)
            extra = [t - e for t, e in zip(enrolled.total_ms, enrolled.engine_ms, strict=True)]
            blocks = sorted(filled.index_blocks)
            result = {
                "templates": templates,
                "synthetic": len(filled.template_ids),
                "real_enrolled": len(enrolled.template_ids),
                "probes": len(ready),
                "search_p50_ms": ms(percentile(search_ms, 50)),
                "search_p99_ms": ms(percentile(search_ms, 99)),
                "index_p50_ms": ms(percentile(index_ms, 50)),
                "index_p99_ms": ms(percentile(index_ms, 99)),
                "usearch_raw_p50_ms": ms(percentile(raw_ms, 50)),
                "recall_at_1": app_measures["recall_at_1"],
                "mates_in_top_10": app_measures["mates_in_top_10"],
                "index_recall_at_1": index_measures["recall_at_1"],
                "index_mates_in_top_10": index_measures["mates_in_top_10"],
                "index_exact_top1_agreement": index_measures["exact_top1_agreement"],
                "index_neighbour_recall_at_10": index_measures["neighbour_recall_at_10"],
                "exact_recall_at_1": exact_measures["recall_at_1"],
                "exact_mates_in_top_10": exact_measures["mates_in_top_10"],
                "exact_numpy_p50_ms": ms(percentile(exact_ms, 50)),
                "exact_numpy_p99_ms": ms(percentile(exact_ms, 99)),
                **{k: v for k, v in faiss.items() if k != "faiss_hnsw_sweep"},
                "faiss_hnsw_sweep": faiss.get("faiss_hnsw_sweep"),
                "enrol_p50_ms": ms(percentile(enrolled.total_ms, 50)),
                "enrol_detect_embed_p50_ms": ms(percentile(enrolled.engine_ms, 50)),
                "enrol_extra_p50_ms": ms(percentile(extra, 50)),
                "enrol_extra_p99_ms": ms(percentile(extra, 99)),
                "enrolments": len(extra),
                "fill_seconds": round(filled.seconds, 1),
                "fill_templates_per_s": round(len(filled.template_ids) / filled.seconds),
                "fill_store_ms_per_template": ms(filled.store_s * 1e3 / len(filled.template_ids)),
                "fill_save_ms_per_batch": ms(filled.save_s * 1e3 / len(blocks)),
                "fill_domain_ms_per_batch": ms(filled.domain_s * 1e3 / len(blocks)),
                "index_adds_per_s": round(len(filled.template_ids) / filled.index_s),
                "index_add_only_adds_per_s": round(len(filled.template_ids) / filled.add_s),
                "index_write_p50_ms": ms(percentile(blocks, 50)),
                "index_write_max_ms": ms(blocks[-1]),
                "index_memory_mib": index_memory,
                "index_files_mib": folder_mib(data_dir / "indexes"),
                "rss_after_fill": memory_after_fill,
                "rss_fill_growth_mib": memory_growth,
                "rss_end": memory_end,
                "store_mib": folder_mib(data_dir / "biometrics"),
                "events_mib": folder_mib(data_dir)
                - folder_mib(data_dir / "biometrics")
                - folder_mib(data_dir / "indexes"),
                "chain_events": verified["events"],
                "chain_verify_events_per_s": verified["events_per_s"],
            }
        finally:
            services.close()
            close = getattr(bio.store, "close", None)
            if close is not None:
                close()
    result["seconds"] = round(time.perf_counter() - began, 1)
    gc.collect()
    log(
        f"size {size:,} done in {result['seconds']:.0f} s: search p50 {result['search_p50_ms']} ms, "
        f"index p50 {result['index_p50_ms']} ms, FAISS HNSW p50 {result['faiss_hnsw_p50_ms']} ms, recall@1 "
        f"{result['recall_at_1']}, enrol beyond detection p50 {result['enrol_extra_p50_ms']} ms, index "
        f"{result['index_adds_per_s']} adds/s"
    )
    return result


def _timed_verify(services: Services) -> dict[str, Any]:
    started = time.perf_counter()
    checked = verify(services.app.recorder)
    elapsed = time.perf_counter() - started
    if not checked.ok:
        raise SystemExit(f"the benchmark's own audit chain does not verify: {checked.summary()}")
    return {"events": checked.checked, "events_per_s": round(checked.checked / elapsed)}


def split(real: Sequence[RealFace], probes: int) -> tuple[list[RealFace], list[RealFace]]:
    """The first photo of each identity (enrolled), and up to ``probes`` of the others (held back)."""
    by_identity: dict[str, list[RealFace]] = {}
    for face in real:
        by_identity.setdefault(face.identity, []).append(face)
    gallery = [faces[0] for faces in by_identity.values()]
    return gallery, _round_robin([faces[1:] for faces in by_identity.values()], probes)


def without_distractors(real: Sequence[RealFace], probes: int) -> dict[str, float]:
    """Exact search of the held-back probes among the enrolled real photos alone: the templates' own
    recall, before any synthetic distractor is added."""
    gallery, held_back = split(real, probes)
    matrix = np.stack([f.vector for f in gallery])
    _, rows = exact_numpy(matrix, np.stack([f.vector for f in held_back]), min(10, len(gallery)))
    mates = [{i for i, g in enumerate(gallery) if g.identity == f.identity} for f in held_back]
    return mate_measures(rows, mates)


def _round_robin(groups: Sequence[Sequence[RealFace]], limit: int) -> list[RealFace]:
    """Up to ``limit`` items, one of each group in turn, so every identity is probed."""
    out: list[RealFace] = []
    for depth in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if depth < len(group) and len(out) < limit:
                out.append(group[depth])
    return out


def measure(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    probes: int = DEFAULT_PROBES,
    identities: int | None = None,
    top_k: int = DEFAULT_SEARCH_TOP_K,
    seed: int = 9,
    work_dir: Path | None = None,
    audit: dict[str, Any] | None = None,
    audit_options: dict[str, int] | None = None,
    command: str = "rfr bench scale",
    log: Log = _quiet,
) -> dict[str, Any]:
    """Every size in turn, in one process; ``audit``: audit_throughput's result if already measured."""
    began = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    faces = shared_faces_dir()
    if not (faces / "manifest.csv").exists():
        raise FileNotFoundError(
            f"{faces}/manifest.csv is missing: the shared face photos live beside the checkout"
        )
    engine_settings = Settings.from_env()
    engine = TimedEngine(build_face_engine(engine_settings, upsample=None))
    photos = single_face_photos(faces, identities)
    real = real_faces(engine, photos, log)
    gaussian = Gaussian(np.stack([f.vector for f in real]), engine.embedder.metric)
    closed_set = without_distractors(real, probes)
    profile = distance_profile(real, gaussian, np.random.default_rng(seed))
    results = []
    for size in sizes:
        results.append(
            measure_size(
                size,
                real,
                gaussian,
                engine,
                probes=probes,
                top_k=top_k,
                seed=seed,
                work_dir=work_dir,
                log=log,
            )
        )
    if audit is None:
        from audit_throughput import measure as measure_audit

        log("audit trail: append and verify (bench/audit_throughput.py)")
        audit = measure_audit(**(audit_options or {}))
    first = results[0]["enrol_extra_p50_ms"] if results else None
    for r in results:
        r["enrol_extra_vs_first"] = (
            round(r["enrol_extra_p50_ms"] / first, 2)
            if first and r["enrol_extra_p50_ms"] is not None
            else None
        )
    return {
        "command": command,
        "run": {
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_1min": None if load is None else round(load, 2),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "faiss": _faiss_version(),
            "usearch": _usearch_version(),
            "seconds": round(time.perf_counter() - began, 1),
            "commit": source_commit(),
            "work_dir": str(work_dir or tempfile.gettempdir()),
        },
        "engine": {
            "algorithm_id": engine.algorithm_id,
            "metric": engine.embedder.metric,
            "dimension": engine.embedder.dimension,
            "threshold": engine.embedder.threshold,
        },
        "real": {
            "photos": len(real),
            "identities": len({f.identity for f in real}),
            "gaussian_fitted_on": gaussian.samples,
            "recall_without_distractors": closed_set,
            "distances": profile,
        },
        "top_k": top_k,
        "index_depth": 2 * top_k,
        "sizes": results,
        "audit": {
            k: audit.get(k)
            for k in (
                "commands_per_s",
                "commands_per_cpu_s",
                "verify_events_per_s",
                "verify_events_per_cpu_s",
                "events",
                "commands",
                "runs",
                "journal_mode",
                "synchronous",
            )
        },
        "targets": TARGETS,
    }


def source_commit() -> str | None:
    """The checkout's commit, marked ``+ uncommitted changes`` if the code measured differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "rfr", "bench")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + (" + uncommitted changes" if dirty else "")


def _faiss_version() -> str | None:
    try:
        import faiss
    except ImportError:
        return None
    return str(faiss.__version__)


def _usearch_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("usearch")
    except PackageNotFoundError:
        return None


# -- the report ------------------------------------------------------------------------------------


def _f(value: Any, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def why(result: dict[str, Any]) -> dict[str, str]:
    """Why a target is missed, from what this run measured (shown only beside a missed target)."""
    top = result["sizes"][-1]
    closed = result["real"]["recall_without_distractors"]
    out = {}
    raw, index = top.get("usearch_raw_p50_ms"), top["index_p50_ms"]
    if raw is not None:
        out["index"] = (
            f"usearch's own search takes {raw:.3f} ms of the {index:.3f} ms (the adapter and the registry's "
            "read lock the rest): the graph walk at expansion_search 256, UsearchIndex's default chosen for "
            "recall, costs that much at this size. A smaller expansion_search saves time and loses recall, "
            "which the templates cannot spare (below)"
        )
    out["ahead"] = (
        "on the same vectors FAISS HNSW32 (32 links a node, 64 on its bottom layer; usearch here 16) reaches "
        "the same or a higher neighbour recall in less time (FAISS rows of the table); the index would need "
        "another configuration or library to be ahead"
    )
    exact, app = top.get("exact_recall_at_1"), top["recall_at_1"]
    if exact is not None:
        out["recall"] = (
            f"not the index: exact search of the same vectors gives recall@1 {exact:.3f} and "
            f"{top['exact_mates_in_top_10']:.3f} in the top 10, the application {app:.3f} and "
            f"{top['mates_in_top_10']:.3f}. Without any synthetic template the real photos alone give "
            f"{closed['recall_at_1']:.3f} and {closed['mates_in_top_10']:.3f}; the distractors take the "
            "rest: dlib's descriptors do not separate a person from this many others drawn from the same "
            "distribution. The lever is a stronger embedder (an ArcFace-class model through the onnx_arcface "
            "adapter), not the index. A real gallery, with several images of many people, is not one Gaussian"
        )
        out["recall_again"] = "as for recall@1"
    store_ms = top.get("fill_store_ms_per_template")
    if store_ms is not None:
        out["enrol"] = (
            "the use case writes four records to the encrypted store (image, face analysis, subject "
            "reference, template), each its own file written and fsynced and its own SQLite transaction "
            f"(rollback journal, synchronous=FULL): {store_ms:.2f} ms a record in this size's fill, "
            f"about {4 * store_ms:.0f} ms "
            f"of the {top['enrol_extra_p50_ms']:.1f}; the rest is loading the library, its approval and the "
            "user, the save (events, projections, chain) and an fsynced index journal entry. None of it "
            "grows with the library (the ratio to the first size): it is per-enrolment work, mostly "
            "durable writes on this disk"
        )
    added, alone = top["index_adds_per_s"], top.get("index_add_only_adds_per_s")
    if alone:
        out["build"] = (
            f"usearch's add alone runs at {alone:,} adds/s: it inserts with expansion_add 128 "
            "(UsearchIndex's default; FAISS here builds with efConstruction 40) on 2 threads, and each "
            "insertion costs more as the graph grows; the registry's encrypted journal and its compactions "
            f"take the rest ({1 - added / alone:.0%}). Built with expansion_add 40, usearch adds 2 to 3 "
            "times as fast (a side measurement at 200,000 and 300,000 templates), with lower recall"
        )
    return out


def target_lines(result: dict[str, Any]) -> list[str]:
    """Each target of issue 9 against the largest size measured: met, or missed by how much."""
    if not result["sizes"]:
        return []
    top, first, audit = result["sizes"][-1], result["sizes"][0], result["audit"]
    at = f"at {top['templates']:,} templates"

    def most(label: str, value: float | None, limit: float, unit: str, digits: int = 2) -> str:
        if value is None:
            return f"- {label}: not measured"
        verdict = (
            "met"
            if value <= limit
            else f"missed by {value - limit:,.{digits}f} {unit} ({value / limit:.1f}x)"
        )
        return f"- {label} {at}: {value:,.{digits}f} {unit} (target at most {limit:,} {unit}): {verdict}"

    def least(label: str, value: float | None, limit: float, unit: str, digits: int = 3) -> str:
        if value is None:
            return f"- {label}: not measured"
        unit = f" {unit}" if unit else ""
        verdict = "met" if value >= limit else f"missed by {limit - value:,.{digits}f}{unit}"
        return f"- {label} {at}: {value:,.{digits}f}{unit} (target at least {limit:,}{unit}): {verdict}"

    matched = top.get("faiss_hnsw_at_index_recall")
    if matched is None:
        ahead = "- index ahead of FAISS HNSW at equal recall: not measured (FAISS missing or never as good)"
    else:
        faster = top["index_p50_ms"] <= matched["p50_ms"]
        ahead = (
            f"- index ahead of FAISS HNSW32 at equal recall {at}: index {top['index_p50_ms']:.3f} ms "
            f"at neighbour recall@10 {top['index_neighbour_recall_at_10']:.4f}, "
            f"FAISS {matched['p50_ms']:.3f} ms at efSearch {matched['ef_search']} "
            f"({matched['neighbour_recall_at_10']:.4f}): "
            + (
                "met"
                if faster
                else f"missed, the index is {top['index_p50_ms'] / matched['p50_ms']:.1f}x slower"
            )
        )
    growth = top.get("enrol_extra_vs_first")
    memory = top.get("index_memory_mib")
    notes = why(result)

    def because(line: str, key: str) -> str:
        return f"{line}. Why: {notes[key]}" if "missed" in line and key in notes else line

    lines = [
        because(most("search through the application, p50", top["search_p50_ms"], 20, "ms"), "search"),
        because(most("index part of a search, p50", top["index_p50_ms"], 1, "ms", 3), "index"),
        because(ahead, "ahead"),
        because(least("recall@1 of a true mate", top["recall_at_1"], 0.99, ""), "recall"),
        because(least("true mates in the top 10", top["mates_in_top_10"], 0.99, ""), "recall_again"),
        because(
            most(
                "enrolling one image beyond detection and embedding, p50",
                top["enrol_extra_p50_ms"],
                20,
                "ms",
                1,
            ),
            "enrol",
        ),
        (
            f"- the same, against {first['templates']:,} templates: {growth:.2f}x (target at most 2x): "
            + ("met" if growth <= 2 else f"missed by {growth - 2:.2f}x")
            if growth is not None
            else "- the same against the first size: not measured"
        ),
        because(least("index build", top["index_adds_per_s"], 5_000, "adds/s", 0), "build"),
        most("index memory", None if memory is None else memory / 1024, 1.5, "GiB", 2),
        least("audited commands appended", audit.get("commands_per_s"), 2_000, "commands/s", 0).replace(
            f" {at}", ""
        ),
        least("chain verification", audit.get("verify_events_per_s"), 200_000, "events/s", 0).replace(
            f" {at}", ""
        ),
    ]
    if top["templates"] < TARGETS["templates"]:
        lines.append(
            f"- The targets are set at {TARGETS['templates']:,} templates; this run's largest library holds "
            f"{top['templates']:,}."
        )
    return lines


def markdown_section(result: dict[str, Any]) -> str:
    """The section kept in docs/benchmarks.md: one table per run, rows by measure, columns by size."""
    run, sizes, real = result["run"], result["sizes"], result["real"]
    load = "" if run["load_average_1min"] is None else f", load average {run['load_average_1min']} at start"
    head = "| measure | " + " | ".join(f"{s['templates']:,}" for s in sizes) + " | target (issue 9, at 1M) |"
    rule = "|---|" + "---:|" * len(sizes) + "---|"

    def row(label: str, get: Callable[[dict[str, Any]], Any] | str, digits: int = 2, target: str = "") -> str:
        read = (lambda s: s.get(get)) if isinstance(get, str) else get
        return f"| {label} | " + " | ".join(_f(read(s), digits) for s in sizes) + f" | {target} |"

    def at_index_recall(s: dict[str, Any]) -> str:
        m = s.get("faiss_hnsw_at_index_recall")
        if not m:
            return "not reached" if s.get("faiss_hnsw_sweep") else "n/a"
        return f"{m['p50_ms']:.3f} (ef {m['ef_search']})"

    audit, distances, closed = result["audit"], real["distances"], real["recall_without_distractors"]
    lines = [
        "## Scale: one library, 10k to 1M templates",
        "",
        f"Made by `{result['command']}` (`bench/scale.py`; `make bench` runs the default sizes, 10k and",
        "100k). All figures below come from that one run. For each size, a new installation in a temporary",
        "folder on disk (SQLite event store with its projections and audit chain, encrypted biometric store,",
        "encrypted and journaled usearch index) is filled through the real application with synthetic",
        "templates drawn from a Gaussian fitted to the real templates of the shared photos, in batches of",
        "500 (domain batch, `put_template`, `app.save`, one `writing()` block); then the first photo of each",
        "real identity is enrolled on its own through `Enrolment.enrol`, and real held-back probes (another",
        "photo of an enrolled identity, submitted with Form 3, templated and endorsed beforehand) are",
        "searched through `SearchExecution.search_library`. The index alone, FAISS and exact numpy search",
        "the same probe templates among the same vectors, one query at a time on one thread (numpy: its",
        f"BLAS), {result['index_depth']} deep as the search first asks the index; the application keeps "
        f"{result['top_k']} candidates.",
        "",
        f"- Run: {run['at']}, {run['machine']}, {run['cores']} cores{load}, Python {run['python']}, "
        f"numpy {run['numpy']}, usearch {run['usearch']}, faiss {run['faiss'] or 'not installed'}; "
        f"{run['seconds']:,.0f} s in all, work folder {run['work_dir']}, "
        f"commit {run.get('commit') or 'unknown'}",
        f"- Engine: `{result['engine']['algorithm_id']}` ({result['engine']['dimension']}-d, "
        f"{result['engine']['metric']}, threshold {result['engine']['threshold']})",
        f"- Real photos: {real['photos']} single-face photos of {real['identities']} identities; the "
        f"Gaussian is fitted to all {real['gaussian_fitted_on']} templates. Median distances: same person "
        f"{distances['same_identity_median']}, different people {distances['different_identity_median']}, "
        f"two synthetic templates {distances['synthetic_pair_median']}; median norm real "
        f"{distances['real_norm_median']}, synthetic {distances['synthetic_norm_median']}.",
        "- Without any synthetic template (exact search among the enrolled real photos alone), recall@1 of "
        f"a true mate is {closed['recall_at_1']:.3f} and {closed['mates_in_top_10']:.3f} of the probes have "
        "their mate in the top 10: the ceiling the templates themselves set.",
        "",
        head,
        rule,
        row("synthetic + real templates", lambda s: f"{s['synthetic']:,} + {s['real_enrolled']:,}"),
        row(
            "search through the application, p50 ms (beyond the probe's templating)",
            "search_p50_ms",
            2,
            "≤ 20",
        ),
        row("search through the application, p99 ms", "search_p99_ms", 2),
        row("index alone (usearch HNSW as the search asks it), p50 ms", "index_p50_ms", 3, "≤ 1"),
        row("index alone, p99 ms", "index_p99_ms", 3),
        row("usearch's own search without the adapter, p50 ms", "usearch_raw_p50_ms", 3),
        row("FAISS HNSW32, efSearch 256, p50 ms", "faiss_hnsw_p50_ms", 3),
        row(
            "FAISS HNSW32 at the index's neighbour recall@10, p50 ms",
            at_index_recall,
            3,
            "slower than the index",
        ),
        row("FAISS Flat, p50 ms", "faiss_flat_p50_ms", 3),
        row("exact numpy, p50 ms", "exact_numpy_p50_ms", 3),
        row("recall@1 of a true mate, through the application", "recall_at_1", 3, "≥ 0.99"),
        row("probes with a true mate in the top 10, through the application", "mates_in_top_10", 3, "≥ 0.99"),
        row("recall@1 of a true mate, exact search", "exact_recall_at_1", 3),
        row("recall@1 of a true mate, FAISS HNSW32 efSearch 256", "faiss_hnsw_recall_at_1", 3),
        row("index neighbour recall@10 against exact search", "index_neighbour_recall_at_10", 4),
        row("FAISS HNSW32 efSearch 256 neighbour recall@10", "faiss_hnsw_neighbour_recall_at_10", 4),
        row("probes searched", "probes", 0),
        row("enrol one real photo, whole use case, p50 ms", "enrol_p50_ms", 1),
        row("of which detection and embedding, p50 ms", "enrol_detect_embed_p50_ms", 1),
        row("enrol one photo beyond detection and embedding, p50 ms", "enrol_extra_p50_ms", 1, "≤ 20"),
        row("enrol beyond detection and embedding, p99 ms", "enrol_extra_p99_ms", 1),
        row("enrol beyond detection and embedding, against the first size", "enrol_extra_vs_first", 2, "≤ 2"),
        row(
            "index build through the registry (500 per write, encrypted journal), adds/s",
            "index_adds_per_s",
            0,
            "≥ 5,000",
        ),
        row("index build, usearch add alone, adds/s", "index_add_only_adds_per_s", 0),
        row(
            "index write of 500, p50 ms / slowest (with compactions)",
            lambda s: f"{s['index_write_p50_ms']:,.0f} / {s['index_write_max_ms']:,.0f}",
        ),
        row("FAISS HNSW32 build (efConstruction 40, 2 threads), adds/s", "faiss_hnsw_build_adds_per_s", 0),
        row("index memory (usearch's own count), MiB", "index_memory_mib", 1, "≤ 1,536"),
        row("index files (encrypted snapshot and journal), MiB", "index_files_mib", 1),
        row("FAISS HNSW32 serialised, MiB", "faiss_hnsw_memory_mib", 1),
        row("process RSS growth over the fill, MiB", "rss_fill_growth_mib", 1),
        row(
            "process peak RSS (engine, index, FAISS and numpy copies), MiB",
            lambda s: s["rss_end"]["peak_rss_mib"],
            0,
        ),
        row("encrypted store on disk, MiB", "store_mib", 0),
        row("fill, templates/s (domain, store, save, index)", "fill_templates_per_s", 0),
        row("fill, encrypted store, ms per template", "fill_store_ms_per_template", 2),
        row(
            "fill, `app.save` of a batch of 500 (events, projections, chain), ms", "fill_save_ms_per_batch", 1
        ),
        row("fill, s", "fill_seconds", 0),
        row("whole size (fill, enrolments, probes, searches, FAISS, numpy), s", "seconds", 0),
        "",
        f"Audit trail, same run (`bench/audit_throughput.py`, {audit.get('runs')} runs of "
        f"{_f(audit.get('commands'), 0)} commands, {_f(audit.get('events'), 0)} events verified): "
        f"{_f(audit.get('commands_per_s'), 0)} audited commands/s "
        f"({_f(audit.get('commands_per_cpu_s'), 0)} per CPU second), "
        f"verification {_f(audit.get('verify_events_per_s'), 0)} events/s "
        f"({_f(audit.get('verify_events_per_cpu_s'), 0)} per CPU second).",
        "",
        "Targets of issue 9, against the largest library of this run:",
        "",
        *target_lines(result),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    from rfr.entrypoints.cli import main as rfr_main

    sys.exit(rfr_main(["bench", "scale", *sys.argv[1:]]))
