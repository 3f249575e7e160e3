"""Side experiment: usearch settings against FAISS HNSW32 on synthetic dlib-like templates.

Run with `.venv/bin/python bench/index_settings.py --size 100000 [--json]`; `--settings
32/40/f16,32/128/f16` limits the grid (connectivity/expansion_add/dtype) for a larger `--size`;
`--out result.json` writes the result after every setting, `--report result.json` prints its table.

1. Fit: every single-face photo of ``shared/datasets/faces`` is templated once per run by the
   real engine, and a Gaussian is fitted to the templates exactly as ``bench/scale.py`` does
   (its code, imported). Nothing is cached.
2. Stored vectors: ``--size`` draws of that Gaussian (raw dlib descriptors, Euclidean).
3. Queries (never stored): half fresh draws of the Gaussian, half *mates*: a stored vector (its
   true mate) plus noise whose direction follows the real templates' within-person scatter
   (each photo minus the mean of its identity) and whose length is drawn from the real
   same-person distances (every pair of photos of one identity; median 0.441 in the scale run).
4. Exact search (numpy, float32, blocked) gives every query's true neighbours.
5. For each setting (connectivity, expansion_add, dtype) a usearch ``Index`` (L2sq, as
   ``UsearchIndex`` builds it, without the application) is built by adding 500 vectors a call
   on 2 threads, as the registry adds a batch; then it is searched at each
   ``expansion_search``, one query at a time on one thread, ``2 * top_k`` (40) deep as the
   application asks the index. Neighbour recall@10 is the share of the exact top 10 in the
   index's top 10; mate recall@1 the share of mates whose first hit is their true mate.
   usearch searches at least as wide as it is asked deep (an expansion_search below 40 gives the
   same hits as 40); FAISS does not (an efSearch below 40 searches less).
6. FAISS ``IndexHNSWFlat`` (M=32, efConstruction 40, built once in one call on 2 threads) over
   the same vectors is searched the same way at a sweep of efSearch *beside each setting*: the
   passes of usearch and FAISS alternate, so both meet the same load. FAISS "at equal recall"
   to a usearch row is its p50 interpolated linearly in recall between the two efSearch whose
   recall brackets the row's.

Timing, on a shared machine: a pass runs every query once with one searcher (a usearch
expansion_search or a FAISS efSearch); ``--rounds`` rounds run every searcher's pass in a
shuffled order, and each query keeps its fastest round. Each search is timed by the clock and
by the thread's CPU time (which leaves out the time other jobs hold the core). Builds are timed
by the clock (adds/s) and by the process's CPU time (adds per CPU second: 2 threads on 2 idle
cores make up to twice that a second). The load average is recorded around every build and
every setting's searches.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# bench/ is first on the path when this runs as a script; the checkout's root last, as scale does.
sys.path.append(str(Path(__file__).resolve().parent.parent))

import scale  # noqa: I001  (first: it loads onnxruntime before usearch, see usearch_index.py)
import numpy as np
from usearch.index import Index, MetricKind

DIMENSION = 128
DEPTH = 2 * scale.DEFAULT_SEARCH_TOP_K  # how deep the application asks the index (40)
BATCH = scale.MAX_BATCH_IMAGES  # vectors per add call, as the registry adds a batch (500)
BUILD_THREADS = 2
CONNECTIVITY = (16, 32)
EXPANSION_ADD = (40, 128)
DTYPES = ("f32", "f16", "i8")
EXPANSION_SEARCH = (32, 64, 128, 256)
FAISS_EF_SEARCH = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
WARM_UP = 20  # queries each searcher runs untimed first
FAISS_M = 32

Log = Callable[[str], None]
Setting = tuple[int, int, str]


def load() -> float:
    return round(os.getloadavg()[0], 2)


# -- data ------------------------------------------------------------------------------------------


class MateNoise:
    """Noise in the directions of the real templates' within-person scatter, as long as real
    same-person distances."""

    def __init__(self, real: Sequence[scale.RealFace]) -> None:
        by_identity: dict[str, list[np.ndarray]] = {}
        for face in real:
            by_identity.setdefault(face.identity, []).append(face.vector.astype(np.float64))
        groups = [np.stack(vs) for vs in by_identity.values() if len(vs) > 1]
        deviations = np.vstack([g - g.mean(axis=0) for g in groups])
        values, axes = np.linalg.eigh(deviations.T @ deviations / len(deviations))
        self.basis = axes * np.sqrt(np.clip(values, 0.0, None))
        self.lengths = np.concatenate(
            [
                np.linalg.norm(g[:, None, :] - g[None, :, :], axis=2)[np.triu_indices(len(g), 1)]
                for g in groups
            ]
        )
        self.identities, self.photos = len(groups), len(deviations)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        directions = rng.standard_normal((n, DIMENSION)) @ self.basis.T
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        return (directions * rng.choice(self.lengths, size=n)[:, None]).astype(np.float32)


def fit(log: Log, seed: int) -> tuple[scale.Gaussian, MateNoise, dict[str, Any]]:
    """The scale bench's Gaussian and the same-person noise, from the real photos (templated now)."""
    started = time.perf_counter()
    engine = scale.build_face_engine(scale.Settings.from_env(), upsample=None)
    if engine.embedder.metric != "euclidean" or engine.embedder.dimension != DIMENSION:
        raise SystemExit(f"expected a {DIMENSION}-d Euclidean embedder, got {engine.algorithm_id}")
    real = scale.real_faces(engine, scale.single_face_photos(scale.shared_faces_dir()), log)
    gaussian = scale.Gaussian(np.stack([f.vector for f in real]), engine.embedder.metric)
    profile = scale.distance_profile(real, gaussian, np.random.default_rng(seed))
    noise = MateNoise(real)
    quartiles = np.percentile(noise.lengths, [25, 50, 75]).round(3).tolist()
    info = {
        "algorithm_id": engine.algorithm_id,
        "photos": len(real),
        "identities": len({f.identity for f in real}),
        "distances": profile,
        "mate_noise": {
            "fitted_on_photos": noise.photos,
            "fitted_on_identities": noise.identities,
            "same_person_pairs": len(noise.lengths),
            "length_quartiles": quartiles,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    log(
        f"fitted on {len(real)} real templates in {info['seconds']:.0f} s; distances {profile}; "
        f"mate noise length quartiles {quartiles}"
    )
    return gaussian, noise, info


def draw_stored(gaussian: scale.Gaussian, size: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((size, DIMENSION), dtype=np.float32)
    for start in range(0, size, 100_000):
        end = min(size, start + 100_000)
        out[start:end] = gaussian.draw(rng, end - start)
    return out


def draw_queries(
    stored: np.ndarray, gaussian: scale.Gaussian, noise: MateNoise, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` queries, half fresh draws, half mates; and each one's mate row (-1 for a fresh draw)."""
    mates = n // 2
    origins = rng.choice(len(stored), size=mates, replace=False)
    queries = np.vstack([gaussian.draw(rng, n - mates), stored[origins] + noise.draw(rng, mates)])
    return np.ascontiguousarray(queries, dtype=np.float32), np.concatenate(
        [np.full(n - mates, -1, dtype=np.int64), origins.astype(np.int64)]
    )


def exact_neighbours(stored: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest stored rows of every query, nearest first (squared L2, float32, blocked)."""
    best_d = np.full((len(queries), 0), np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    q_norms = np.einsum("ij,ij->i", queries, queries)[:, None]
    for start in range(0, len(stored), 100_000):
        block = stored[start : start + 100_000]
        d = q_norms + np.einsum("ij,ij->i", block, block)[None, :] - 2.0 * (queries @ block.T)
        part = np.argpartition(d, min(k, d.shape[1] - 1), axis=1)[:, :k]
        best_d = np.hstack([best_d, np.take_along_axis(d, part, axis=1)])
        best_i = np.hstack([best_i, part + start])
        keep = np.argsort(best_d, axis=1, kind="stable")[:, :k]
        best_d = np.take_along_axis(best_d, keep, axis=1)
        best_i = np.take_along_axis(best_i, keep, axis=1)
    return best_i


# -- measures --------------------------------------------------------------------------------------


class Searcher:
    """One way to search: ``prepare`` (untimed, e.g. set expansion_search) then ``search`` a query."""

    def __init__(
        self, name: str, prepare: Callable[[], None], search: Callable[[np.ndarray], list[int]]
    ) -> None:
        self.name, self.prepare, self.search = name, prepare, search


def timed_passes(
    searchers: Sequence[Searcher], queries: np.ndarray, rounds: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Per searcher: each query's fastest wall and thread-CPU time (ms) over ``rounds``, and its hits.

    A round runs one pass (every query once) per searcher, the searchers in a shuffled order."""
    for searcher in searchers:
        searcher.prepare()
        for q in queries[:WARM_UP]:
            searcher.search(q)
    wall = np.full((len(searchers), rounds, len(queries)), np.inf)
    cpu = np.full_like(wall, np.inf)
    rows: list[list[list[int]]] = [[] for _ in searchers]
    for r in range(rounds):
        for s in rng.permutation(len(searchers)):
            searcher = searchers[s]
            searcher.prepare()
            for i, q in enumerate(queries):
                c0 = time.thread_time()
                t0 = time.perf_counter()
                found = searcher.search(q)
                wall[s, r, i] = (time.perf_counter() - t0) * 1e3
                cpu[s, r, i] = (time.thread_time() - c0) * 1e3
                if r == 0:
                    rows[s].append(found)
    return [
        {"wall": wall[s].min(axis=0), "cpu": cpu[s].min(axis=0), "rows": rows[s]}
        for s in range(len(searchers))
    ]


def recall_measures(rows: Sequence[Sequence[int]], exact: np.ndarray, origins: np.ndarray) -> dict[str, Any]:
    """Neighbour recall@10 against exact search (all, fresh, mates) and true-mate recall."""
    n10 = np.array([len(set(r[:10]) & set(e[:10].tolist())) / 10 for r, e in zip(rows, exact, strict=True)])
    mate = origins >= 0
    mate_rows = [r for r, m in zip(rows, mate, strict=True) if m]
    return {
        "neighbour_recall_at_10": round(float(n10.mean()), 4),
        "neighbour_recall_at_10_fresh": round(float(n10[~mate].mean()), 4),
        "neighbour_recall_at_10_mates": round(float(n10[mate].mean()), 4),
        "mate_recall_at_1": round(
            float(np.mean([bool(r) and r[0] == o for r, o in zip(mate_rows, origins[mate], strict=True)])), 4
        ),
        "mate_in_top_10": round(
            float(np.mean([o in r[:10] for r, o in zip(mate_rows, origins[mate], strict=True)])), 4
        ),
    }


def p(values: Sequence[float] | np.ndarray, q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 3)


def timing(passed: dict[str, Any]) -> dict[str, float]:
    return {
        "p50_ms": p(passed["wall"], 50),
        "p99_ms": p(passed["wall"], 99),
        "cpu_p50_ms": p(passed["cpu"], 50),
    }


class Faiss:
    """FAISS HNSW32 over the stored vectors, built once; searched beside every usearch setting."""

    def __init__(self, stored: np.ndarray, log: Log) -> None:
        import faiss

        self.faiss = faiss
        self.threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(BUILD_THREADS)
        self.hnsw = faiss.IndexHNSWFlat(DIMENSION, FAISS_M)
        load_before = load()
        cpu = time.process_time()
        started = time.perf_counter()
        self.hnsw.add(stored)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        faiss.omp_set_num_threads(1)
        self.info: dict[str, Any] = {
            "m": FAISS_M,
            "ef_construction": int(self.hnsw.hnsw.efConstruction),
            "build_seconds": round(seconds, 1),
            "build_adds_per_s": round(len(stored) / seconds),
            "build_adds_per_cpu_s": round(len(stored) / cpu),
            "build_load": [load_before, load()],
            "serialized_mib": round(len(faiss.serialize_index(self.hnsw)) / 2**20, 1),
            "sweep": None,  # recall by efSearch, from the first setting's passes (the same every time)
        }
        log(
            f"  FAISS HNSW{FAISS_M}: {self.info['build_adds_per_s']:,} adds/s "
            f"({self.info['build_adds_per_cpu_s']:,} per CPU s, {seconds:.0f} s, "
            f"load {self.info['build_load']})"
        )

    def searchers(self) -> list[Searcher]:
        def at(ef: int) -> Searcher:
            def prepare() -> None:
                self.hnsw.hnsw.efSearch = ef

            def search(q: np.ndarray) -> list[int]:
                return [int(i) for i in self.hnsw.search(q[None, :], DEPTH)[1][0] if i >= 0]

            return Searcher(f"faiss ef {ef}", prepare, search)

        return [at(ef) for ef in FAISS_EF_SEARCH]

    def close(self) -> None:
        self.faiss.omp_set_num_threads(self.threads)


def faiss_available(log: Log) -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        log("faiss-cpu is not installed (pip install faiss-cpu): FAISS left out")
        return False
    return True


def measure_setting(
    stored: np.ndarray,
    queries: np.ndarray,
    exact: np.ndarray,
    origins: np.ndarray,
    setting: Setting,
    expansion_search: Sequence[int],
    faiss: Faiss | None,
    rounds: int,
    rng: np.random.Generator,
    log: Log,
) -> dict[str, Any]:
    """Build one usearch index, then search it at each expansion_search, FAISS's passes between."""
    connectivity, expansion_add, dtype = setting
    index = Index(
        ndim=DIMENSION,
        metric=MetricKind.L2sq,
        dtype=dtype,
        connectivity=connectivity,
        expansion_add=expansion_add,
        expansion_search=expansion_search[0],
    )
    load_before = load()
    cpu = time.process_time()
    started = time.perf_counter()
    for start in range(0, len(stored), BATCH):
        end = min(len(stored), start + BATCH)
        index.add(np.arange(start, end, dtype=np.uint64), stored[start:end], threads=BUILD_THREADS)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    out: dict[str, Any] = {
        "connectivity": connectivity,
        "expansion_add": expansion_add,
        "dtype": dtype,
        "build_seconds": round(seconds, 1),
        "build_adds_per_s": round(len(stored) / seconds),
        "build_adds_per_cpu_s": round(len(stored) / cpu),
        "build_load": [load_before, load()],
        "memory_mib": round(int(index.memory_usage) / 2**20, 1),
        "serialized_mib": round(int(index.serialized_length) / 2**20, 1),
    }
    log(
        f"  usearch {connectivity}/{expansion_add}/{dtype}: {out['build_adds_per_s']:,} adds/s "
        f"({out['build_adds_per_cpu_s']:,} per CPU s, {seconds:.0f} s, load {out['build_load']}), "
        f"{out['memory_mib']} MiB, {out['serialized_mib']} MiB serialised"
    )

    def at(ef: int) -> Searcher:
        def prepare() -> None:
            index.expansion_search = ef

        return Searcher(
            f"usearch ef {ef}", prepare, lambda q: index.search(q, DEPTH, threads=1).keys.tolist()
        )

    ours = [at(ef) for ef in expansion_search]
    theirs = [] if faiss is None else faiss.searchers()
    load_before = load()
    passes = timed_passes(ours + theirs, queries, rounds, rng)
    out["search_load"] = [load_before, load()]
    out["searches"] = [
        {"expansion_search": ef, **timing(passed), **recall_measures(passed["rows"], exact, origins)}
        for ef, passed in zip(expansion_search, passes, strict=False)
    ]
    if faiss is not None:
        beside = [
            {"ef_search": ef, **timing(passed), **recall_measures(passed["rows"], exact, origins)}
            for ef, passed in zip(FAISS_EF_SEARCH, passes[len(ours) :], strict=True)
        ]
        if faiss.info["sweep"] is None:
            faiss.info["sweep"] = [{k: v for k, v in e.items() if not k.endswith("_ms")} for e in beside]
        out["faiss_beside"] = [
            {k: e[k] for k in ("ef_search", "p50_ms", "p99_ms", "cpu_p50_ms", "neighbour_recall_at_10")}
            for e in beside
        ]
        for entry in out["searches"]:
            entry["faiss_at_equal_recall"] = at_equal_recall(
                out["faiss_beside"], entry["neighbour_recall_at_10"]
            )
    for e in out["searches"]:
        m = e.get("faiss_at_equal_recall")
        log(
            f"    expansion_search {e['expansion_search']}: p50 {e['p50_ms']} ms (CPU {e['cpu_p50_ms']}), "
            f"p99 {e['p99_ms']} ms, recall@10 {e['neighbour_recall_at_10']}, mate@1 {e['mate_recall_at_1']}; "
            f"FAISS at equal recall {m}"
        )
    log(f"    searches under load {out['search_load']}")
    return out


def at_equal_recall(sweep: Sequence[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """FAISS's p50 (clock and CPU) at neighbour recall@10 ``target``: interpolated linearly in recall
    between the two efSearch of the sweep around it (the cheapest one's own if even that one reaches
    ``target``); None if no efSearch reaches it."""
    ordered = sorted(sweep, key=lambda s: s["ef_search"])
    for i, hi in enumerate(ordered):
        if hi["neighbour_recall_at_10"] < target:
            continue
        lo = ordered[i - 1] if i else None
        if lo is None or hi["neighbour_recall_at_10"] <= lo["neighbour_recall_at_10"]:
            return {"p50_ms": hi["p50_ms"], "cpu_p50_ms": hi["cpu_p50_ms"], "ef_search": [hi["ef_search"]]}
        t = (target - lo["neighbour_recall_at_10"]) / (
            hi["neighbour_recall_at_10"] - lo["neighbour_recall_at_10"]
        )
        return {
            "p50_ms": round(lo["p50_ms"] + t * (hi["p50_ms"] - lo["p50_ms"]), 3),
            "cpu_p50_ms": round(lo["cpu_p50_ms"] + t * (hi["cpu_p50_ms"] - lo["cpu_p50_ms"]), 3),
            "ef_search": [lo["ef_search"], hi["ef_search"]],
        }
    return None


# -- the run ---------------------------------------------------------------------------------------


def parse_settings(text: str | None) -> list[Setting]:
    if not text:
        return [(c, e, d) for c in CONNECTIVITY for e in EXPANSION_ADD for d in DTYPES]
    out = []
    for item in text.split(","):
        c, e, d = item.strip().split("/")
        if d not in DTYPES:
            raise SystemExit(f"--settings: dtype {d!r} is not one of {', '.join(DTYPES)}")
        out.append((int(c), int(e), d))
    return out


def run(args: argparse.Namespace, log: Log) -> dict[str, Any]:
    began = time.perf_counter()
    began_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = load()
    gaussian, noise, fitted = fit(log, args.seed)
    rng = np.random.default_rng(args.seed + args.size)
    stored = draw_stored(gaussian, args.size, rng)
    queries, origins = draw_queries(stored, gaussian, noise, args.queries, rng)
    started = time.perf_counter()
    exact = exact_neighbours(stored, queries, DEPTH)
    exact_measures = recall_measures(exact.tolist(), exact, origins)
    log(
        f"{args.size:,} stored, {len(queries)} queries; exact search {time.perf_counter() - started:.0f} s, "
        f"exact mate recall@1 {exact_measures['mate_recall_at_1']}; max |x| {float(np.abs(stored).max()):.3f}"
    )
    expansion_search = [int(x) for x in args.expansion_search.split(",")]
    asked = parse_settings(args.settings)
    faiss = None if args.no_faiss or not faiss_available(log) else Faiss(stored, log)
    result: dict[str, Any] = {
        "command": ("python bench/index_settings.py " + " ".join(sys.argv[1:])).strip(),
        "complete": False,
        "run": {
            "at": began_at,
            "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_start": load_start,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "usearch": scale._usearch_version(),
            "faiss": scale._faiss_version(),
            "commit": scale.source_commit(),
        },
        "size": args.size,
        "queries": len(queries),
        "mate_queries": int((origins >= 0).sum()),
        "depth": DEPTH,
        "rounds": args.rounds,
        "fit": fitted,
        "max_abs_component": round(float(np.abs(stored).max()), 3),
        "exact": exact_measures,
        "faiss": None if faiss is None else faiss.info,
        "settings_asked": [list(s) for s in asked],
        "settings": [],
    }
    try:
        for setting in asked:
            result["settings"].append(
                measure_setting(
                    stored, queries, exact, origins, setting, expansion_search, faiss, args.rounds, rng, log
                )
            )
            gc.collect()
            result["complete"] = len(result["settings"]) == len(asked)
            result["run"].update(
                {"load_average_end": load(), "seconds": round(time.perf_counter() - began, 1)}
            )
            if args.out is not None:  # after every setting, in case a long run is stopped
                args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    finally:
        if faiss is not None:
            faiss.close()
    return result


def markdown(result: dict[str, Any]) -> str:
    """The tables of docs/benchmarks.md's side experiment, from one run."""
    run, exact, faiss = result["run"], result["exact"], result["faiss"]
    noise = result["fit"]["mate_noise"]
    lines = [
        f"`{result['command']}`: {result['size']:,} stored vectors, {result['queries']} queries "
        f"({result['mate_queries']} mates, noise length quartiles {noise['length_quartiles']}), "
        f"{result['depth']} deep, fastest of {result['rounds']} rounds a query. Run started {run['at']}, "
        f"{run['machine']}, {run['cores']} cores, load average {run['load_average_start']} at start and "
        f"{run['load_average_end']} at the end, usearch {run['usearch']}, faiss {run['faiss']}, "
        f"{run['seconds']:,.0f} s in all, commit {run['commit']}. Exact search: mate recall@1 "
        f"{exact['mate_recall_at_1']:.3f}, mate in the top 10 {exact['mate_in_top_10']:.3f}."
        + (
            ""
            if result["complete"]
            else f" Stopped after {len(result['settings'])} of the {len(result['settings_asked'])} "
            "settings asked."
        ),
        "",
        "| connectivity / expansion_add / dtype | build adds/s (per CPU s) | memory / serialised MiB "
        "| expansion_search | p50 ms (CPU) | p99 ms | neighbour recall@10 | mate recall@1 "
        "| FAISS HNSW32 at equal recall, p50 ms (CPU; efSearch) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in result["settings"]:
        for i, e in enumerate(s["searches"]):
            first = i == 0
            name = f"{s['connectivity']} / {s['expansion_add']} / {s['dtype']}" if first else ""
            adds = f"{s['build_adds_per_s']:,} ({s['build_adds_per_cpu_s']:,})" if first else ""
            memory = f"{s['memory_mib']:,.0f} / {s['serialized_mib']:,.0f}" if first else ""
            m = e.get("faiss_at_equal_recall")
            if faiss is None:
                at = "n/a"
            elif m is None:
                at = "not reached"
            else:
                faster = "usearch ahead" if e["p50_ms"] <= m["p50_ms"] else "FAISS ahead"
                efs = "-".join(map(str, m["ef_search"]))
                at = f"{m['p50_ms']:.3f} ({m['cpu_p50_ms']:.3f}; {efs}): {faster}"
            lines.append(
                f"| {name} | {adds} | {memory} | {e['expansion_search']} "
                f"| {e['p50_ms']:.3f} ({e['cpu_p50_ms']:.3f}) | {e['p99_ms']:.3f} "
                f"| {e['neighbour_recall_at_10']:.4f} | {e['mate_recall_at_1']:.3f} | {at} |"
            )
    if faiss is not None and faiss["sweep"] is not None:
        beside: dict[int, list[dict[str, Any]]] = {}
        for s in result["settings"]:
            for e in s["faiss_beside"]:
                beside.setdefault(e["ef_search"], []).append(e)

        def spread(ef: int, key: str) -> str:
            values = [e[key] for e in beside.get(ef, [])]
            return f"{min(values):.3f}-{max(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"

        lines += [
            "",
            f"FAISS HNSW{faiss['m']} (efConstruction {faiss['ef_construction']}, one add call on 2 threads): "
            f"{faiss['build_adds_per_s']:,} adds/s ({faiss['build_adds_per_cpu_s']:,} per CPU s), "
            f"{faiss['serialized_mib']:,.1f} MiB serialised. Searched beside each setting: "
            "p50 lowest-highest.",
            "",
            "| FAISS efSearch | p50 ms | CPU p50 ms | neighbour recall@10 | mate recall@1 |",
            "|---:|---:|---:|---:|---:|",
            *(
                f"| {e['ef_search']} | {spread(e['ef_search'], 'p50_ms')} "
                f"| {spread(e['ef_search'], 'cpu_p50_ms')} "
                f"| {e['neighbour_recall_at_10']:.4f} | {e['mate_recall_at_1']:.3f} |"
                for e in faiss["sweep"]
            ),
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000, help="stored vectors (default 100000)")
    parser.add_argument(
        "--settings",
        help="connectivity/expansion_add/dtype,... (default: connectivity 16 and 32, "
        "expansion_add 40 and 128, dtype f32, f16 and i8)",
    )
    parser.add_argument("--expansion-search", default=",".join(map(str, EXPANSION_SEARCH)))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="each query's fastest of this many rounds")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.add_argument(
        "--out", type=Path, help="also write the JSON result to this file (after every setting)"
    )
    parser.add_argument(
        "--report", type=Path, help="measure nothing: print the table of a JSON result written by --out"
    )
    args = parser.parse_args()
    if args.report is not None:
        saved = json.loads(args.report.read_text(encoding="utf-8"))
        print(json.dumps(saved, indent=2) if args.json else markdown(saved))
        return 0

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = run(args, log)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
