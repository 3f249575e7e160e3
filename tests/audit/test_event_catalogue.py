"""The audit schema an auditor reads (docs/audit-events.md) is the domain's, and stays so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rfr.infrastructure.audit.catalogue import catalogue_markdown, event_catalogue

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-events.md"


def test_the_published_event_catalogue_is_the_one_the_code_defines():
    assert DOC.read_text(encoding="utf-8") == catalogue_markdown(), (
        "docs/audit-events.md is stale: regenerate it with `rfr audit schema --markdown`"
    )


def test_every_aggregate_of_the_process_is_in_the_catalogue_with_versioned_events():
    catalogue = event_catalogue()
    aggregates = {e.aggregate for e in catalogue}
    assert {"LibraryApproval", "ReferenceLibrary", "ProbeImage", "SearchRequest", "User"} <= aggregates
    assert {"EnrolmentBatch", "ImportJob", "ReportSchedule", "RefusedAttempt"} <= aggregates
    assert "GovernedAggregate" not in aggregates and "LegallyHoldable" not in aggregates
    assert all(e.class_version >= 1 for e in catalogue)
    # every aggregate can record a refusal.
    assert {e.aggregate for e in catalogue if e.name == "Refused"} == aggregates


def test_no_event_field_is_typed_to_carry_images_or_templates():
    """ADR 0004: events hold ids, hashes and boxes; bytes and arrays have no field to go in."""
    carriers = ("bytes", "ndarray", "memoryview", "list[float]", "tuple[float")
    for event in event_catalogue():
        for name, kind in event.fields:
            assert not any(t in kind for t in carriers), f"{event.topic}.{name} is typed {kind}"


def test_rfr_audit_schema_prints_every_topic_with_its_version():
    result = subprocess.run(
        [sys.executable, "-m", "rfr.entrypoints.cli", "audit", "schema"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(event_catalogue())
    adjudicated = "rfr.domain.search_request:SearchRequest.CandidateAdjudicated v1:"
    assert any(line.startswith(adjudicated) for line in lines)
