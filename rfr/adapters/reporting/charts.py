"""Charts drawn on the server as inline SVG: readable without scripts, and without colour.

``bar_chart`` draws one horizontal bar per category, each labelled with its name and its number
in text beside the bar, so nothing is told by colour alone; the SVG is an image with a title and
a description for screen readers, and every chart's figures are also given as a table beside it
(the web page's ``reports/usage.html`` and ``html_report``).

``column_chart`` draws a count over time: one column per time step, each with its number above
it and its step named below, for the same reasons.

Here, not in the web client, because the HTML report attached to scheduled e-mails draws the
same charts (both the web client and the HTTP API may import adapters; ADR 0002).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import count

import attrs
from markupsafe import Markup

WIDTH = 720
LABEL_WIDTH = 260
VALUE_WIDTH = 70
ROW = 30
BAR = 20
_ids = count(1)


@attrs.frozen
class Bar:
    key: str
    label: str
    value: int


@attrs.frozen
class Chart:
    title: str
    description: str
    bars: tuple[Bar, ...]

    @property
    def total(self) -> int:
        return sum(bar.value for bar in self.bars)

    @property
    def empty(self) -> bool:
        return not self.bars or self.total == 0

    @property
    def category(self) -> str:
        """The heading of the categories' column in the chart's table."""
        return "Category"

    def svg(self) -> Markup:
        return bar_chart_svg(self)


def chart(
    title: str,
    data: Mapping[str, int],
    *,
    description: str = "",
    labels: Mapping[str, str] | None = None,
    keep_zero: bool = False,
) -> Chart:
    """A chart of ``data`` (category -> count), in the mapping's order; ``labels`` names keys
    (e.g. library ids by name); zero rows are left out unless ``keep_zero``."""
    names = labels or {}
    bars = tuple(
        Bar(str(key), names.get(str(key)) or humane(str(key)), int(value))
        for key, value in data.items()
        if keep_zero or value
    )
    return Chart(title, description, bars)


def humane(key: str) -> str:
    return key.replace("_", " ")


def _shorten(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart_svg(chart: Chart) -> Markup:
    """The chart as an ``<svg>`` element (see the module docstring)."""
    n = next(_ids)
    title_id, desc_id = f"chart-{n}-title", f"chart-{n}-desc"
    height = max(len(chart.bars), 1) * ROW + 10
    most = max((bar.value for bar in chart.bars), default=0) or 1
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    summary = "; ".join(f"{bar.label}: {bar.value}" for bar in chart.bars) or "nothing to show"
    description = f"{chart.description} {summary}".strip()
    parts = [
        Markup(
            '<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            'aria-labelledby="{t} {d}" xmlns="http://www.w3.org/2000/svg">'
        ).format(w=WIDTH, h=height, t=title_id, d=desc_id),
        Markup('<title id="{}">{}</title>').format(title_id, chart.title),
        Markup('<desc id="{}">{}</desc>').format(desc_id, description),
    ]
    for i, bar in enumerate(chart.bars):
        y = i * ROW + 5
        length = round(span * bar.value / most) if bar.value else 0
        parts.append(
            Markup(
                '<g class="bar"><title>{label}: {value}</title>'
                '<text class="chart-label" x="{lx}" y="{ty}" text-anchor="end">{short}</text>'
                '<rect class="chart-bar" x="{bx}" y="{y}" width="{length}" height="{bh}"></rect>'
                '<text class="chart-value" x="{vx}" y="{ty}">{value}</text></g>'
            ).format(
                label=bar.label,
                short=_shorten(bar.label),
                value=bar.value,
                lx=LABEL_WIDTH - 10,
                ty=y + BAR - 5,
                bx=LABEL_WIDTH,
                y=y,
                length=max(length, 1 if bar.value else 0),
                bh=BAR,
                vx=LABEL_WIDTH + length + 8,
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


COLUMN_HEIGHT = 160
AXIS = 40


@attrs.frozen
class Series:
    """A count over time: ``values[i]`` in the step starting ``starts[i]`` (labelled ``steps[i]``)."""

    title: str
    description: str
    steps: tuple[str, ...]
    values: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.values)

    @property
    def empty(self) -> bool:
        return self.total == 0

    @property
    def category(self) -> str:
        return "Step starting"

    @property
    def bars(self) -> tuple[Bar, ...]:
        """The steps as bars, for the table beside the chart."""
        return tuple(Bar(step, step, value) for step, value in zip(self.steps, self.values, strict=True))

    def svg(self) -> Markup:
        return column_chart_svg(self)


def column_chart_svg(series: Series) -> Markup:
    """The series as an ``<svg>``: one column per step, its count above it; the first, the
    middle and the last steps are named below (every step is named in the table and in each
    column's tooltip)."""
    n = next(_ids)
    title_id, desc_id = f"chart-{n}-title", f"chart-{n}-desc"
    count = max(len(series.values), 1)
    width = WIDTH
    slot = (width - 20) / count
    most = max(series.values, default=0) or 1
    height = COLUMN_HEIGHT + AXIS + 20
    busiest = max(range(len(series.values)), key=lambda i: series.values[i], default=0)
    summary = (
        f"{series.total} in all over {len(series.values)} steps; most, {series.values[busiest]}, "
        f"in the step from {series.steps[busiest]}"
        if series.values
        else "nothing to show"
    )
    parts = [
        Markup(
            '<svg class="chart chart-columns" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            'aria-labelledby="{t} {d}" xmlns="http://www.w3.org/2000/svg">'
        ).format(w=width, h=height, t=title_id, d=desc_id),
        Markup('<title id="{}">{}</title>').format(title_id, series.title),
        Markup('<desc id="{}">{}</desc>').format(desc_id, f"{series.description} {summary}".strip()),
        Markup(
            '<line class="chart-axis" x1="10" y1="{y}" x2="{x}" y2="{y}" stroke="currentColor"></line>'
        ).format(y=COLUMN_HEIGHT + 20, x=width - 10),
    ]
    named = {0, len(series.values) // 2, len(series.values) - 1}
    for i, (step, value) in enumerate(zip(series.steps, series.values, strict=True)):
        x = 10 + i * slot
        tall = round(COLUMN_HEIGHT * value / most) if value else 0
        y = COLUMN_HEIGHT + 20 - tall
        parts.append(
            Markup(
                '<g class="column"><title>{step}: {value}</title>'
                '<rect class="chart-bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h}"></rect></g>'
            ).format(step=step, value=value, x=x + slot * 0.1, y=y, w=max(slot * 0.8, 1), h=tall)
        )
        if value and slot >= 14:
            parts.append(
                Markup(
                    '<text class="chart-value" x="{x:.1f}" y="{y}" text-anchor="middle">{v}</text>'
                ).format(x=x + slot / 2, y=y - 4, v=value)
            )
        if i in named:
            parts.append(
                Markup('<text class="chart-label" x="{x:.1f}" y="{y}" text-anchor="{a}">{s}</text>').format(
                    x=x + slot / 2,
                    y=COLUMN_HEIGHT + 38,
                    a="start" if i == 0 else "end" if i == len(series.values) - 1 else "middle",
                    s=step,
                )
            )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


__all__ = ["Bar", "Chart", "Series", "bar_chart_svg", "chart", "column_chart_svg", "humane"]
