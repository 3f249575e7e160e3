"""Each stage of both face algorithms, and onnxruntime's thread spinning (issue 11 item 6).

Run with `python bench/face_stages.py [--images 12] [--repeats 7] [--rounds 3] [--requests 48]
[--gap-ms 200] [--blocks 6] [--out docs/benchmarks.md] [--json bench/results/face-stages.json]`;
`--from-json FILE` writes the section of a saved run again without measuring.

For dlib (MMOD, shape predictor, dlib chip, ResNet) and SFace (YuNet, ArcFace 112 px chip, SFace),
built as the composition root builds them (`build_face_engine`, `RFR_ORT_THREADS` threads a
session), on shared photos (deepface, face_recognition) scaled to 640 px on the longer side:

- detect: the detector alone (dlib: boxes without landmarks, `find_boxes`; YuNet gives its five
  points with its boxes, so its landmarks are inside this figure), per image;
- landmarks: dlib's shape predictor on the faces found, per face (none for SFace);
- align: the chip of one face, per face;
- embed, batch 1 and batch 32: per face, on the chips of the photos (32 of them cycled); SFace's
  graph has a free batch axis, dlib's converted ResNet too (its input shape is printed);
- pipeline: detect with landmarks, then template every face found (`FaceEngine.template`), per
  image: what a request pays for a 640 px photo.

Every figure is a median over photos (or chips) of the median over `--repeats` runs after one
warm-up, wall clock, with the process's CPU time beside it. Both spinning settings
(`session.intra_op.allow_spinning` "1", onnxruntime's default, and "0") are measured with their own
engines, alternating round by round so both meet the same load. Then the pipeline as requests:
back to back, with an idle gap (`--gap-ms`, as requests reach a server one at a time), and two at
once from two threads (as `RFR_HEAVY_WORKERS=2` serves them), in short blocks alternating the
settings; for each, the latency percentiles and the process's CPU time per request, gaps included
(a spinning thread burns CPU after its work).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent.parent))

from run_all import load_rgb, photo_paths

from rfr.adapters.onnx_session import SPINNING_VARIABLE
from rfr.application.face_engine import FaceEngine
from rfr.entrypoints.composition import build_face_engine
from rfr.infrastructure.settings import Settings

REPO = Path(__file__).resolve().parent.parent
ALGORITHMS = ("dlib", "sface")
SPINNING = {"on": "1", "off": "0"}
SECTION_TITLE = "## Face stages of both algorithms, and onnxruntime spinning (issue 11)"
PIPELINE_TARGET_MS = 60.0  # issue 11: SFace's full pipeline per 640 px image on 2 cores


def load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn`` over ``repeats`` calls after one warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def median_over(items: list[Any], fn: Callable[[Any], Callable[[], object]], repeats: int,
                per: Callable[[Any], int] = lambda _: 1) -> dict[str, float]:
    """Median over ``items`` of each item's median (ms, per ``per(item)`` units)."""
    walls, cpus = [], []
    for item in items:
        wall, cpu = timed(fn(item), repeats)
        walls.append(wall / per(item))
        cpus.append(cpu / per(item))
    return {"ms": statistics.median(walls) * 1e3, "cpu_ms": statistics.median(cpus) * 1e3}


class Subject:
    """One algorithm's engine built under one spinning setting, with its chips and faces."""

    def __init__(self, algorithm: str, spinning: str, settings: Settings, photos: list[np.ndarray]) -> None:
        os.environ[SPINNING_VARIABLE] = SPINNING[spinning]
        try:
            self.engine: FaceEngine = build_face_engine(attrs_evolve(settings, algorithm))
        finally:
            os.environ.pop(SPINNING_VARIABLE, None)
        self.algorithm, self.spinning, self.photos = algorithm, spinning, photos
        self.faces = [self.engine.detector.detect(image) for image in photos]
        self.chips = [
            self.engine.aligner.align(image, face)
            for image, faces in zip(photos, self.faces, strict=True)
            for face in faces
        ]
        self.batch32 = [self.chips[i % len(self.chips)] for i in range(32)]

    def stages(self, repeats: int) -> dict[str, dict[str, float]]:
        e = self.engine
        out: dict[str, dict[str, float]] = {}
        with_faces = [(img, faces) for img, faces in zip(self.photos, self.faces, strict=True) if faces]
        if self.algorithm == "dlib":
            detector: Any = e.detector
            out["detect"] = median_over(self.photos, lambda img: lambda: detector.find_boxes(img), repeats)
            out["landmarks"] = median_over(
                with_faces, lambda p: lambda: [e.landmarks.locate(p[0], f.box) for f in p[1]], repeats,
                per=lambda p: len(p[1]),
            )
        else:
            out["detect"] = median_over(self.photos, lambda img: lambda: e.detector.detect(img), repeats)
        out["align"] = median_over(
            with_faces, lambda p: lambda: [e.aligner.align(p[0], f) for f in p[1]], repeats,
            per=lambda p: len(p[1]),
        )
        out["embed_b1"] = median_over(self.chips, lambda chip: lambda: e.embedder.embed([chip]), repeats)
        wall, cpu = timed(lambda: e.embedder.embed(self.batch32), repeats)
        out["embed_b32"] = {"ms": wall / 32 * 1e3, "cpu_ms": cpu / 32 * 1e3}
        out["pipeline"] = median_over(self.photos, lambda img: lambda: self.request(img), repeats)
        return out

    def request(self, image: np.ndarray) -> None:
        faces = self.engine.detector.detect(image)
        self.engine.template(image, faces)

    def requests(self, n: int, gap_s: float) -> Block:
        """``n`` pipeline requests over the photos in turn, ``gap_s`` idle before each."""
        self.request(self.photos[0])  # warm
        block = Block()
        c0, t0 = time.process_time(), time.perf_counter()
        for k in range(n):
            if gap_s:
                time.sleep(gap_s)
            start = time.perf_counter()
            self.request(self.photos[k % len(self.photos)])
            block.latencies.append(time.perf_counter() - start)
        block.cpu, block.wall = time.process_time() - c0, time.perf_counter() - t0
        return block

    def concurrent(self, n: int) -> Block:
        """``n`` requests from each of two threads at once, back to back, on the one engine."""
        self.request(self.photos[0])
        block = Block()
        lock = threading.Lock()

        def client(offset: int) -> None:
            for k in range(n):
                start = time.perf_counter()
                self.request(self.photos[(k + offset) % len(self.photos)])
                with lock:
                    block.latencies.append(time.perf_counter() - start)

        threads = [threading.Thread(target=client, args=(offset,)) for offset in (0, len(self.photos) // 2)]
        c0, t0 = time.process_time(), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        block.cpu, block.wall = time.process_time() - c0, time.perf_counter() - t0
        return block


class Block:
    """Requests of one pattern under one setting: their latencies, and the process's CPU and the
    wall-clock time over the block (idle gaps included)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.cpu = 0.0
        self.wall = 0.0


def pooled(blocks: list[Block]) -> dict[str, float]:
    """One pattern's figures over all its blocks: latency percentiles of every request, CPU per
    request and cores kept busy over the blocks' whole time."""
    latencies = [x for b in blocks for x in b.latencies]
    cpu, wall = sum(b.cpu for b in blocks), sum(b.wall for b in blocks)
    return {
        "latency_ms": statistics.median(latencies) * 1e3,
        "latency_p90_ms": float(np.quantile(latencies, 0.9)) * 1e3,
        "requests": len(latencies),
        "requests_per_s": len(latencies) / wall,
        "cpu_ms_per_request": cpu / len(latencies) * 1e3,
        "cores_busy": cpu / wall,
    }


def attrs_evolve(settings: Settings, algorithm: str) -> Settings:
    import attrs

    return attrs.evolve(settings, algorithm=algorithm)


def measure(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    settings = Settings.from_env()
    paths = photo_paths(args.images)
    photos = [load_rgb(p, 640) for p in paths]
    started = datetime.now(UTC)
    result: dict[str, Any] = {
        "run": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "onnxruntime": __import__("onnxruntime").__version__,
        "threads": settings.ort_threads,
        "load_start": load(),
        "blocks": args.blocks,
        "images": [str(p.relative_to(p.parents[2])) for p in paths],
        "repeats": args.repeats,
        "requests": args.requests,
        "gap_ms": args.gap_ms,
        "algorithms": {},
    }
    loads: list[float | None] = []
    for algorithm in ALGORITHMS:
        subjects = {spin: Subject(algorithm, spin, settings, photos) for spin in SPINNING}
        first = subjects["on"]
        embedder: Any = first.engine.embedder
        entry: dict[str, Any] = {
            "id": first.engine.algorithm_id,
            "faces": sum(len(f) for f in first.faces),
            "embedder_input": [str(d) for d in embedder._session.get_inputs()[0].shape],
            "stages": {spin: {} for spin in SPINNING},
            "requests": {spin: {} for spin in SPINNING},
        }
        log(f"{algorithm}: {entry['faces']} faces in {len(photos)} photos; load {load()}")
        # Alternate the settings round by round, so that both meet the same load.
        rounds: dict[str, list[dict[str, dict[str, float]]]] = {spin: [] for spin in SPINNING}
        for r in range(args.rounds):
            for spin in (SPINNING if r % 2 == 0 else reversed(SPINNING)):
                rounds[spin].append(subjects[spin].stages(args.repeats))
            loads.append(load())
        for spin in SPINNING:
            entry["stages"][spin] = {
                stage: {k: statistics.median(rd[stage][k] for rd in rounds[spin]) for k in ("ms", "cpu_ms")}
                for stage in rounds[spin][0]
            }
        log(f"{algorithm} stages: {json.dumps(entry['stages'])}; load {load()}")
        # Short blocks, the settings alternating (on, off, off, on, ...), so that a change in the
        # machine's other load falls on both; each pattern's figures pool all its blocks.
        per_block = max(1, args.requests // args.blocks)
        blocks: dict[str, dict[str, list[Block]]] = {
            spin: {"back_to_back": [], "idle_gap": [], "two_at_once": []} for spin in SPINNING
        }
        for b in range(args.blocks):
            for spin in (SPINNING if b % 2 == 0 else reversed(SPINNING)):
                mine = blocks[spin]
                mine["back_to_back"].append(subjects[spin].requests(per_block, 0.0))
                mine["idle_gap"].append(subjects[spin].requests(per_block, args.gap_ms / 1e3))
                mine["two_at_once"].append(subjects[spin].concurrent(per_block))
            loads.append(load())
        for spin in SPINNING:
            entry["requests"][spin] = {mode: pooled(got) for mode, got in blocks[spin].items()}
        log(f"{algorithm} requests: {json.dumps(entry['requests'])}; load {load()}")
        result["algorithms"][algorithm] = entry
        del subjects
    result["load_end"] = load()
    seen = [x for x in loads if x is not None]
    result["load_range"] = [min(seen), max(seen)] if seen else None
    result["seconds"] = round((datetime.now(UTC) - started).total_seconds())
    return result


def _f(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def markdown_section(result: dict[str, Any], command: str) -> str:
    n = result["requests"]
    lines = [
        SECTION_TITLE,
        "",
        f"Made by `{command}` (`bench/face_stages.py`): the stages of each algorithm as the composition",
        "root builds them, and onnxruntime's `session.intra_op.allow_spinning` for every session, on",
        f"{len(result['images'])} shared photos (deepface, face_recognition) scaled to 640 px on the",
        "longer side. All figures are from this one run; each is a median over the photos (or faces)",
        f"of the median of {result['repeats']} calls after a warm-up, and the median of "
        f"{result.get('rounds', 1)} rounds",
        "alternating the two settings; CPU is the process's CPU time in the same calls. The requests",
        f"are the whole pipeline: {n} back to back, {n} each after {result['gap_ms']} ms idle, and {n} from",
        "each of two threads at once (RFR_HEAVY_WORKERS=2), for each setting, in "
        f"{result.get('blocks', 1)} blocks alternating",
        "the settings (on, off, off, on, ...); latencies are percentiles of all of a pattern's",
        "requests, CPU a request and cores busy are over its blocks' whole time, idle gaps included.",
        "",
        f"- Run: {result['run']}, {result['machine']}, Python {result['python']}, onnxruntime "
        f"{result['onnxruntime']}, {result['threads']} intra-op threads a session; load average "
        f"{result['load_start']} at start, {result['load_end']} at the end, "
        f"{' to '.join(str(x) for x in result.get('load_range') or [])} between rounds and blocks; "
        f"{result['seconds']} s",
    ]
    for algorithm, entry in result["algorithms"].items():
        lines.append(f"- {algorithm}: `{entry['id']}`; {entry['faces']} faces in the photos; embedder "
                     f"input {' x '.join(entry['embedder_input'])}")
    lines += [
        "",
        "| algorithm | stage | unit | spinning on: ms (CPU ms) | spinning off: ms (CPU ms) | off / on |",
        "|---|---|---|---:|---:|---:|",
    ]
    names = {
        "detect": ("detect (YuNet: with its 5 points)", "per image"),
        "landmarks": ("landmarks (shape predictor)", "per face"),
        "align": ("align (chip)", "per face"),
        "embed_b1": ("embed, batch 1", "per face"),
        "embed_b32": ("embed, batch 32", "per face"),
        "pipeline": ("whole pipeline, 640 px image", "per image"),
    }
    for algorithm, entry in result["algorithms"].items():
        on, off = entry["stages"]["on"], entry["stages"]["off"]
        for stage in on:
            label, unit = names[stage]
            if algorithm == "dlib" and stage == "detect":
                label = "detect (boxes only)"
            ratio = off[stage]["ms"] / on[stage]["ms"]
            lines.append(
                f"| {algorithm} | {label} | {unit} | {_f(on[stage]['ms'])} ({_f(on[stage]['cpu_ms'])}) | "
                f"{_f(off[stage]['ms'])} ({_f(off[stage]['cpu_ms'])}) | {ratio:.2f} |"
            )
    lines += [
        "",
        "| algorithm | requests | spinning on: latency p50 / p90 ms | CPU ms a request | cores busy "
        "| spinning off: latency p50 / p90 ms | CPU ms a request | cores busy | latency off / on "
        "| CPU off / on |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    modes = {"back_to_back": "back to back", "idle_gap": f"{result['gap_ms']} ms idle before each",
             "two_at_once": "two at once"}
    for algorithm, entry in result["algorithms"].items():
        for mode, label in modes.items():
            on, off = entry["requests"]["on"][mode], entry["requests"]["off"][mode]
            lines.append(
                f"| {algorithm} | {label} | {_f(on['latency_ms'])} / {_f(on['latency_p90_ms'])} | "
                f"{_f(on['cpu_ms_per_request'])} | {on['cores_busy']:.2f} | "
                f"{_f(off['latency_ms'])} / {_f(off['latency_p90_ms'])} | {_f(off['cpu_ms_per_request'])} | "
                f"{off['cores_busy']:.2f} | {off['latency_ms'] / on['latency_ms']:.2f} | "
                f"{off['cpu_ms_per_request'] / on['cpu_ms_per_request']:.2f} |"
            )
    sface = result["algorithms"].get("sface")
    if sface:
        chosen = sface["stages"]["on" if result.get("spinning_default", True) else "off"]["pipeline"]["ms"]
        verdict = "met" if chosen <= PIPELINE_TARGET_MS else f"missed by {chosen - PIPELINE_TARGET_MS:.1f} ms"
        lines += [
            "",
            f"Target (issue 11): SFace's whole pipeline at most {PIPELINE_TARGET_MS:.0f} ms per 640 px "
            f"image on 2 cores: {chosen:.1f} ms with the default setting: {verdict}.",
        ]
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """``text`` with its section titled like ``section`` replaced (or ``section`` appended); the
    rest kept as it is."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(SECTION_TITLE)), None)
    if start is None:
        return text.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    # Notes written by hand under the tables (from a line beginning "Notes") are kept.
    body = "".join(lines[start:end])
    marker = "\nNotes"
    kept = body[body.index(marker):] if marker in body else ""
    replaced = section.rstrip("\n") + "\n" + kept
    separator = "\n" if end < len(lines) else ""
    return "".join(lines[:start]) + replaced.rstrip("\n") + "\n" + separator + "".join(lines[end:])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=12, help="how many shared photos, at 640 px")
    parser.add_argument("--repeats", type=int, default=7, help="calls a figure's median is taken over")
    parser.add_argument("--rounds", type=int, default=3, help="rounds alternating the spinning settings")
    parser.add_argument("--requests", type=int, default=48, help="pipeline requests per request pattern")
    parser.add_argument("--gap-ms", type=int, default=200, help="idle time before each request")
    parser.add_argument("--blocks", type=int, default=6,
                        help="blocks the requests of each pattern are split into, alternating the settings")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file whose section to replace")
    parser.add_argument("--json", type=Path, default=None, help="write the raw figures here")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="measure nothing: write the section of a run saved with --json")
    args = parser.parse_args()
    from rfr.adapters.onnx_session import SPINNING_DEFAULT

    if args.from_json is not None:
        result = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        result = measure(args, log=lambda m: print(m, file=sys.stderr, flush=True))
        result["rounds"] = args.rounds
        result["command"] = (
            f"python bench/face_stages.py --images {args.images} --repeats {args.repeats} "
            f"--rounds {args.rounds} --requests {args.requests} --gap-ms {args.gap_ms} --blocks {args.blocks}"
        )
    result["spinning_default"] = SPINNING_DEFAULT
    command = result.get("command", "python bench/face_stages.py").strip()
    section = markdown_section(result, command)
    print(section)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.out is not None:
        existing = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        args.out.write_text(replace_section(existing, section), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
