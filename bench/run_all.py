"""Benchmarks of the biometric engine, and of the original dlib where it is importable.

Run with `make bench` (or `python bench/run_all.py [--out docs/benchmarks.md]`). Every number in
one results table comes from one run on one machine; ratios compare stages measured in that
same run on the same images. Medians, not means: the first call of a session and the odd
scheduler hiccup should not move the result.

The output file is updated, not overwritten: its head (the engine table, before the first `## `
heading) and the audit section are replaced by this run's; every other section is kept. The
Scale section is replaced only by a run that measured every library size its table holds, and
then with the notes written by hand under it, which described the run replaced; so the default
10k and 100k run of `make bench` leaves a committed 1M table and its notes alone, and writes its
own scale figures to bench/results/scale-<sizes>.json instead. The PostgreSQL section
(bench/postgres_service.py, on a private cluster it starts itself; `--skip-postgres`, or no server
binaries, leaves it alone) is replaced only by a run on a library at least as large as its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED_FACES = Path(os.environ.get("RFR_SHARED_DIR", REPO.parent / "shared")) / "datasets" / "faces"


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: session creation, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def load_rgb(path: Path, longest: int | None = None) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    if longest is not None and max(img.size) != longest:
        scale = longest / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BILINEAR)
    return np.asarray(img)


def photo_paths(limit: int) -> list[Path]:
    """Larger photos (not the 150 px LFW crops) to be brought to 640 px for detection timing."""
    out = []
    for source in ("deepface", "face_recognition"):
        out += sorted(p for p in (SHARED_FACES / source).rglob("*") if p.suffix.lower() in {".jpg", ".png"}
                      and not p.parent.name.startswith("_"))
    return out[:limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=12, help="how many 640 px photos to time")
    parser.add_argument("--scale-sizes", default="10000,100000",
                        help="library sizes of bench/scale.py (rfr bench scale); add 1000000 for a million")
    parser.add_argument("--postgres-templates", type=int, default=100_000,
                        help="library size of bench/postgres_service.py (its API searches)")
    parser.add_argument("--skip-postgres", action="store_true",
                        help="leave out bench/postgres_service.py (skipped anyway without server binaries)")
    args = parser.parse_args()

    from rfr.entrypoints.composition import build_face_engine
    from rfr.infrastructure.models import ModelStore
    from rfr.infrastructure.settings import Settings

    settings = Settings.from_env()
    store = ModelStore(settings.models_dir)
    engine = build_face_engine(settings, upsample=0)

    try:
        import dlib  # the original, for ratios only; never a dependency of the product
    except ImportError:
        dlib = None

    photos = [load_rgb(p, 640) for p in photo_paths(args.images)]
    rows: list[tuple[str, str, float, str, float | None]] = []

    # Chips: one per photo, from our own detector, so both implementations embed identical pixels.
    faces = [engine.detector.detect(img) for img in photos]
    chips = [engine.aligner.align(img, f[0]) for img, f in zip(photos, faces, strict=True) if f]
    batch32 = [chips[i % len(chips)] for i in range(32)]

    ours_b1 = median_seconds(lambda: [engine.embedder.embed([c]) for c in chips], args.repeats) / len(chips)
    ours_b32 = median_seconds(lambda: engine.embedder.embed(batch32), args.repeats) / 32
    dlib_b1 = dlib_b32 = None
    if dlib is not None:
        import face_recognition_models as frm

        models = Path(frm.__file__).parent / "models"
        net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        cnn = dlib.cnn_face_detection_model_v1(str(models / "mmod_human_face_detector.dat"))
        sp = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        dlib_b1 = median_seconds(
            lambda: [net.compute_face_descriptor(c) for c in chips], args.repeats
        ) / len(chips)
        dlib_b32 = median_seconds(lambda: net.compute_face_descriptor(batch32), args.repeats) / 32
    rows.append(("templating, batch 1", "ms per face", ours_b1 * 1e3, f"{1 / ours_b1:.0f} faces/s",
                 None if dlib_b1 is None else dlib_b1 * 1e3))
    rows.append(("templating, batch 32", "ms per face", ours_b32 * 1e3, f"{1 / ours_b32:.0f} faces/s",
                 None if dlib_b32 is None else dlib_b32 * 1e3))

    detect_ours = statistics.median(
        median_seconds(lambda img=img: engine.detector.detect(img), args.repeats) for img in photos
    )
    detect_dlib = None
    if dlib is not None:
        detect_dlib = statistics.median(
            median_seconds(lambda img=img: cnn(img, 0), args.repeats) for img in photos
        )
    rows.append(("detection + landmarks, 640 px image", "ms per image", detect_ours * 1e3,
                 f"{1 / detect_ours:.1f} images/s", None if detect_dlib is None else detect_dlib * 1e3))

    def ours_pipeline(img: np.ndarray) -> None:
        found = engine.detector.detect(img)
        engine.template(img, found)

    pipe_ours = statistics.median(median_seconds(lambda img=img: ours_pipeline(img), args.repeats)
                                  for img in photos)
    pipe_dlib = None
    if dlib is not None:
        def dlib_pipeline(img: np.ndarray) -> None:
            for det in cnn(img, 0):
                shape = sp(img, det.rect)
                net.compute_face_descriptor(img, shape)

        pipe_dlib = statistics.median(median_seconds(lambda img=img: dlib_pipeline(img), args.repeats)
                                      for img in photos)
    rows.append(("full pipeline (detect, landmarks, align, embed), 640 px image", "ms per image",
                 pipe_ours * 1e3, f"{1 / pipe_ours:.1f} images/s",
                 None if pipe_dlib is None else pipe_dlib * 1e3))

    original = f"dlib {dlib.__version__}" if dlib is not None else "dlib not importable: no ratios"
    models_built = sorted(p.name for p in store.models_dir.glob("*") if p.suffix in {".onnx", ".npz"})
    lines = [
        "# Benchmarks",
        "",
        "Made by `make bench` (`bench/run_all.py`). All numbers of the table come from one run;",
        "ratios compare the original dlib and this project on the same decoded pixels in that run.",
        "Medians over repeats after one warm-up call; onnxruntime with "
        f"{settings.ort_threads} intra-op threads.",
        "",
        f"- Run: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        f"- Original: {original}",
        f"- Models: {', '.join(models_built)}",
        "",
        "| stage | unit | rfr (median) | throughput | dlib (median) | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for stage, unit, ours, note, theirs in rows:
        speed = "" if theirs is None else f"{theirs / ours:.1f}x"
        theirs_s = "" if theirs is None else f"{theirs:.1f}"
        lines.append(f"| {stage} | {unit} | {ours:.1f} | {note} | {theirs_s} | {speed} |")
    text = "\n".join(lines) + "\n"
    print(text)
    # The audit trail's append and verify rates, and one library at scale (issue 9): their own
    # scripts, same output file; the scale section reuses the audit measures.
    import scale
    from audit_throughput import markdown_section, measure

    audited = measure()
    audit = markdown_section(audited)
    print(audit)
    sizes = [int(n) for n in args.scale_sizes.split(",")]
    command = f"python bench/run_all.py --scale-sizes {args.scale_sizes}"
    scale_result = scale.measure(sizes, audit=audited, command=command, log=lambda m: print(m, flush=True))
    scaled = scale.markdown_section(scale_result)
    print(scaled)
    existing = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    sections = [audit]
    if replaces_scale(existing, sizes):
        sections.append(scaled)
    else:
        raw = REPO / "bench" / "results" / f"scale-{'-'.join(size_label(n) for n in sizes)}.json"
        raw.write_text(json.dumps(scale_result, indent=2) + "\n", encoding="utf-8")
        print(f"{args.out}: its Scale section holds sizes this run did not measure; kept as it is. "
              f"This run's scale figures: {raw}", flush=True)
    # PostgreSQL as the service (issue 10): its own private cluster; its section is replaced only by
    # a run on a library at least as large as the one it reports, and its raw figures always kept.
    import postgres_service

    missing = "--skip-postgres" if args.skip_postgres else postgres_service.unavailable()
    if missing is None:
        pg_result = postgres_service.measure(
            templates=args.postgres_templates,
            command=f"python bench/run_all.py --postgres-templates {args.postgres_templates}",
            log=lambda m: print(m, flush=True),
        )
        pg_section = postgres_service.markdown_section(pg_result)
        print(pg_section)
        raw = postgres_service.results_path(pg_result)
        raw.write_text(json.dumps(pg_result, indent=2) + "\n", encoding="utf-8")
        if postgres_service.replaces(existing, pg_result):
            sections.append(pg_section)
        else:
            print(f"{args.out}: its PostgreSQL section reports a larger library; kept as it is. "
                  f"This run's figures: {raw}", flush=True)
    else:
        print(f"PostgreSQL service section left as it is: {missing}", flush=True)
    args.out.write_text(merged(existing, text + _TARGETS, sections), encoding="utf-8")
    return 0


def sections_of(text: str) -> list[str]:
    """The document's head (all before its first `## ` heading, maybe empty), then each `## ` section."""
    parts: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            parts.append([])
        parts[-1].append(line)
    return ["".join(part) for part in parts]


def title(section: str) -> str:
    """What names a section across runs: its heading up to a colon (`## Scale`, `## Audit trail`)."""
    return section.split("\n", 1)[0].split(":", 1)[0].strip()


def merged(existing: str, head: str, sections: list[str]) -> str:
    """``existing`` with ``head`` as its head and each of ``sections`` in place of the section of the
    same title (added at the end if it has none); every other section kept as it was."""
    parts = sections_of(existing)
    parts[0] = head
    for section in sections:
        same = [n for n, part in enumerate(parts) if n and title(part) == title(section)]
        if same:
            parts[same[0]] = section
        else:
            parts.append(section)
    return "\n".join(part.rstrip("\n") + "\n" for part in parts if part.strip())


def scale_sizes(section: str) -> set[int]:
    """The library sizes of a Scale section: the numbered columns of its `| measure |` table."""
    for line in section.splitlines():
        if line.startswith("| measure |"):
            cells = [cell.strip().replace(",", "") for cell in line.strip().strip("|").split("|")[1:]]
            return {int(cell) for cell in cells if cell.isdigit()}
    return set()


def replaces_scale(existing: str, sizes: list[int]) -> bool:
    """Whether a run of ``sizes`` may replace the Scale section of ``existing``: it has none, or
    this run measured every size of its table (a smaller run never replaces a larger one; a
    section without a table of sizes is never replaced)."""
    committed = [part for part in sections_of(existing)[1:] if title(part) == "## Scale"]
    if not committed:
        return True
    found = scale_sizes(committed[0])
    return bool(found) and found <= set(sizes)


def size_label(n: int) -> str:
    """10000 -> 10k, 1000000 -> 1m, as in bench/results/scale-10k-100k-1m.json."""
    for unit, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


_TARGETS = """
Notes:
- Templating times the embedder alone on 150x150 chips cut by our aligner from the same
  photos; the original runs `compute_face_descriptor` on the same chips (a list of 32 for
  batch 32).
- Detection and the full pipeline use 12 photos of `shared/datasets/faces` (deepface,
  face_recognition; `--images`) scaled to 640 px on the longer side, detector without upsampling
  (`upsample=0`, as the original's `cnn_face_detection_model_v1(img, 0)`); the full pipeline
  templates every face found. Our detection row includes the 5-point landmarks, the
  original's does not.
- The original is dlib 20.0.1 built from its source distribution on the same machine, installed
  by hand into the environment for this measurement only; it is never a dependency.

Targets (issue 3): templating at batch 32 at least 8x faster per chip than the original, the full
pipeline at least 5x faster per image. Parity is checked by the test suite, not here.
"""


if __name__ == "__main__":
    sys.exit(main())
