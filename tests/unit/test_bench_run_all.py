"""`make bench` (bench/run_all.py) updates docs/benchmarks.md rather than overwriting it.

Its default run measures the scale benchmark at 10k and 100k only: it must not replace the
committed Scale section, whose table goes to 1M and carries notes written by hand. Checked on
the committed document itself, without measuring anything.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", REPO / "bench" / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def section(text: str, title: str) -> str:
    return next(part for part in text.split("\n## ") if part.startswith(title))


HEAD = "# Benchmarks\n\nA new engine table.\n"
AUDIT = "## Audit trail: append and verify\n\nNew audit figures.\n"


def scale_section(sizes: str) -> str:
    return f"## Scale: one library, 10k to 1M templates\n\n| measure | {sizes} | target |\n|---|---|---|\n"


def test_the_committed_scale_section_covers_10k_to_1m(run_all: ModuleType) -> None:
    sections = run_all.sections_of(DOC)
    assert [run_all.title(s) for s in sections[1:3]] == ["## Audit trail", "## Scale"]
    # Sections run_all does not write (the PostgreSQL service, the index side experiment) follow.
    assert len({run_all.title(s) for s in sections[1:]}) == len(sections) - 1
    assert "".join(sections) == DOC
    assert run_all.scale_sizes(sections[2]) == {10_000, 100_000, 1_000_000}


def test_the_default_run_keeps_the_committed_scale_section(run_all: ModuleType) -> None:
    assert not run_all.replaces_scale(DOC, [10_000, 100_000])
    written = run_all.merged(DOC, HEAD, [AUDIT])
    assert written.startswith(HEAD + "\n## Audit trail: append and verify\n\nNew audit figures.\n\n## Scale")
    # The Scale section, its 1M column and its notes written by hand, byte for byte.
    assert section(written, "Scale") == section(DOC, "Scale")
    assert "| 1,000,000 |" in written and "Notes on this run (written by hand" in written
    # Run again on what it wrote: nothing more changes.
    assert run_all.merged(written, HEAD, [AUDIT]) == written


def test_a_run_of_every_size_replaces_the_scale_section(run_all: ModuleType) -> None:
    assert run_all.replaces_scale(DOC, [10_000, 100_000, 1_000_000])
    assert run_all.replaces_scale(DOC, [1_000, 10_000, 100_000, 1_000_000])
    assert not run_all.replaces_scale(DOC, [1_000_000])
    new = scale_section("10,000 | 100,000 | 1,000,000")
    written = run_all.merged(DOC, HEAD, [AUDIT, new])
    assert "\n\n" + new in written and written.count("## Scale") == 1
    # Replaced where it stood; the sections after it kept as they were.
    after = DOC.split("\n## ")[3:]
    assert written.endswith("\n## ".join(["", *after])) or not after


def test_a_document_without_the_sections_gets_them_in_order(run_all: ModuleType) -> None:
    assert run_all.replaces_scale("", [500])
    assert run_all.replaces_scale(HEAD, [500])
    new = scale_section("500")
    assert run_all.merged("", HEAD, [AUDIT, new]) == HEAD + "\n" + AUDIT + "\n" + new
    # A Scale section with no table of sizes is kept: nothing says what it covers.
    assert not run_all.replaces_scale(HEAD + "\n## Scale: by hand\n\nSome figures.\n", [500])


def test_results_files_are_named_by_size(run_all: ModuleType) -> None:
    assert [run_all.size_label(n) for n in (500, 1_500, 10_000, 100_000, 1_000_000)] == [
        "500",
        "1500",
        "10k",
        "100k",
        "1m",
    ]
