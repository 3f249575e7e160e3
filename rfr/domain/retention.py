"""Retention and deletion deadlines (R-01, R-03a, L-12, U-04). Pure functions."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from rfr.domain.calendar import add_years
from rfr.domain.decisions import Decision
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.domain.policy_config import PolicyConfig


def retention_years(age_at_capture: PerceivedAgeBand, mopi: MopiGroup, config: PolicyConfig) -> int | None:
    """R-01: years from capture an image may stay in a library; None means it is never enrolled."""
    return config.retention_years.get((age_at_capture, mopi))


def retention_end(
    captured_on: date, age_at_capture: PerceivedAgeBand, mopi: MopiGroup, config: PolicyConfig
) -> date | None:
    years = retention_years(age_at_capture, mopi, config)
    return None if years is None else add_years(captured_on, years)


def may_enrol(
    captured_on: date, age_at_capture: PerceivedAgeBand, mopi: MopiGroup, at: datetime, config: PolicyConfig
) -> Decision:
    """R-01: the table allows the image and its limit has not passed already."""
    if captured_on > at.date():
        # Retention runs from capture: a future capture date would extend it at will.
        return Decision.refuse("R-01", f"the capture date {captured_on.isoformat()} is in the future")
    end = retention_end(captured_on, age_at_capture, mopi, config)
    if end is None:
        return Decision.refuse(
            "R-01",
            f"images of subjects aged {age_at_capture.value} at capture in MOPI {int(mopi)} are not enrolled",
        )
    if end <= at.date():
        return Decision.refuse("R-01", f"the image passed its retention limit on {end.isoformat()}")
    return Decision.allow("R-01")


def deletion_deadline(at: datetime, config: PolicyConfig) -> datetime:
    """Data that must go is deleted within 31 days (configurable) of the moment it had to go."""
    return at + timedelta(days=config.deletion_within_days)


# R-03a is a project rule, not one of the catalogue's (POLICY_RULES.md has no rule for a probe
# that is never searched). run from a probe's search and U-04 from its removal
# from the cache, so without it a probe submitted and never searched would be kept for ever.
# It extends R-03 (no viable match, not in the cache) to the probe that has no search at all;
# the period is ``PolicyConfig.never_searched_probe_days``, a default for the force to confirm.
NEVER_SEARCHED = "R-03a"


def never_searched_deadline(submitted_at: datetime, config: PolicyConfig) -> datetime:
    """R-03a: a probe never searched goes this long after its submission (its wait for a search)."""
    return submitted_at + timedelta(days=config.never_searched_probe_days)


def never_searched_cut_off(at: datetime, config: PolicyConfig) -> datetime:
    """R-03a: probes never searched and submitted at or before this are due at ``at``."""
    return at - timedelta(days=config.never_searched_probe_days)
