"""Every value ``PolicyConfig`` marks as a project default is listed for the force to confirm.

A project default is a value the catalogue leaves open and the project chose
(``rfr/domain/policy_config.py`` marks each in a comment); ``docs/policy-decisions.md`` is
where a force finds them all. A default added without its line there fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from rfr.domain.policy_config import PolicyConfig

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "rfr" / "domain" / "policy_config.py"
LISTED = ROOT / "docs" / "policy-decisions.md"


def _marked_fields() -> set[str]:
    """The ``PolicyConfig`` fields whose comment (the lines just above them) says project default,
    and the retention table's rows so marked (listed under ``retention_years``)."""
    fields = {f.name for f in attrs.fields(PolicyConfig)}
    marked, comment = set(), []
    for line in SOURCE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lower())
            continue
        name = re.match(r"(\w+)\s*:", stripped)
        if comment and any("project default" in c for c in comment):
            if name and name.group(1) in fields:
                marked.add(name.group(1))
            elif stripped.startswith("(A."):
                marked.add("retention_years")
        comment = []
    return marked


def test_every_project_default_of_the_policy_config_is_listed_for_the_force_to_confirm():
    marked = _marked_fields()
    assert {"never_searched_probe_days", "urgent_written_rationale_due_days", "retention_years"} <= marked
    listed = LISTED.read_text(encoding="utf-8")
    missing = sorted(name for name in marked if f"`{name}`" not in listed)
    assert not missing, f"project defaults not listed in docs/policy-decisions.md: {missing}"
