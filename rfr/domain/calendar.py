"""Calendar arithmetic for review and retention periods stated in months and years."""

from __future__ import annotations

import calendar as _calendar
from datetime import date, datetime


def add_months(moment: datetime, months: int) -> datetime:
    """Same day ``months`` later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, _calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_years(day: date, years: int) -> date:
    """Same date ``years`` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def require_aware(moment: datetime) -> datetime:
    """Event times must carry a zone, or replays in another zone would reorder history."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("event times must be timezone-aware")
    return moment
