"""The usage report as one HTML document with its charts (A-04): served by ``GET /reports/usage``
with ``format=html`` and attached to scheduled e-mails.

Whole and self-contained: the style is inline and the charts are inline SVG, so it reads the
same in a browser, a mail client or offline, with no script and nothing fetched. Every chart
says its figures in words (its description) and in a table beside it; nothing is told by
colour alone.
"""

from __future__ import annotations

from jinja2 import Environment, select_autoescape

from rfr.adapters.reporting.usage_charts import charts_of, key_figures, timeline_of
from rfr.application.services.usage_reports import UsageReport

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; line-height: 1.5;
  color: #0b0c0c; background: #fff; margin: 0 auto; padding: 0 1.25rem 2rem; max-width: 60rem; }
h1 { font-size: 1.8rem; } h2 { font-size: 1.4rem; margin-top: 2rem; } h3 { font-size: 1.1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #505a5f; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: 0.5rem; }
dl.figures div { border: 1px solid #505a5f; padding: 0.5rem; }
dl.figures dt { font-size: 0.9rem; } dl.figures dd { margin: 0; font-size: 1.5rem; font-weight: 700; }
.chart { max-width: 100%; height: auto; }
.chart-bar { fill: #1d4f91; }
.chart-label, .chart-value { font-size: 14px; fill: #0b0c0c; font-family: system-ui, sans-serif; }
.chart-value { font-weight: 700; }
.small { font-size: 0.9rem; color: #484949; }
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ style | safe }}</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<p>Usage of the retrospective facial recognition system (A-04) from
{{ period_from or "the first record" }} to {{ period_to }} (UTC)
{%- if real_time %}, in real time (up to now){% endif %}.
Generated {{ generated_at }}. Counts of things that happened are counted when they happened; states
(outcomes of requests, reviews overdue, the cache, exceptions awaiting the SRO) as they stood at the end.</p>

<h2 id="figures">Key figures</h2>
<dl class="figures">
{% for label, value in figures %}<div><dt>{{ label }}</dt><dd>{{ value }}</dd></div>
{% endfor %}</dl>

<h2 id="totals">The period's totals</h2>
{% for chart in charts %}{{ figure(chart) }}{% endfor %}

<h2 id="over-time">Over time</h2>
{% if timeline %}
<p class="small">Each chart has one column per {{ step }}; the table under it gives every figure.</p>
{% for series in timeline %}{{ figure(series) }}{% endfor %}
{% else %}<p>Nothing was counted in this period.</p>{% endif %}

<h2 id="overdue">Reviews overdue{% if overdue.as_of %} as of {{ overdue.as_of }}{% endif %}</h2>
{% if not overdue.library_approvals and not overdue.ucc %}<p>None.</p>{% else %}
<table>
<thead><tr><th scope="col">What</th><th scope="col">Record</th><th scope="col">Due</th></tr></thead>
<tbody>
{% for item in overdue.library_approvals %}
<tr><td>Library approval (L-06): {{ item.label }}</td>
<td><code>{{ item.id }}</code></td><td>{{ item.due }}</td></tr>
{% endfor %}{% for item in overdue.ucc %}
<tr><td>Unresolved Crime Cache entry (U-03): {{ item.label }}</td>
<td><code>{{ item.id }}</code></td><td>{{ item.due }}</td></tr>
{% endfor %}</tbody>
</table>{% endif %}

<h2 id="exceptions">Policy exceptions awaiting the SRO</h2>
{% if not exceptions.awaiting %}<p>None.</p>{% else %}
<table>
<thead><tr><th scope="col">Decision</th><th scope="col">Record</th><th scope="col">Recorded</th></tr></thead>
<tbody>
{% for item in exceptions.awaiting %}
<tr><td>{{ item.label }}</td><td><code>{{ item.id }}</code></td><td>{{ item.since }}</td></tr>
{% endfor %}</tbody>
</table>{% endif %}
</main>
</body>
</html>
"""

_FIGURE = """{% macro figure(chart) %}<figure>
<figcaption><h3>{{ chart.title }}</h3>
{% if chart.description %}<p class="small">{{ chart.description }}</p>{% endif %}</figcaption>
{% if chart.empty %}<p>Nothing in this period.</p>{% else %}{{ chart.svg() }}
<table>
<caption class="small">{{ chart.title }}: the figures</caption>
<thead><tr><th scope="col">{{ chart.category }}</th><th scope="col">Count</th></tr></thead>
<tbody>{% for bar in chart.bars %}
<tr><th scope="row">{{ bar.label }}</th><td class="number">{{ bar.value }}</td></tr>{% endfor %}</tbody>
</table>{% endif %}
</figure>
{% endmacro %}"""

_environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _environment.from_string(_FIGURE + _TEMPLATE)


def render_html(report: UsageReport, title: str) -> bytes:
    """The report as a whole HTML document (UTF-8)."""
    sections = report.sections
    document = report.to_json()
    return _template.render(
        title=title,
        style=_STYLE,
        period_from=document["period"]["from"],
        period_to=document["period"]["to"],
        real_time=report.real_time,
        generated_at=document["generated_at"],
        figures=key_figures(report),
        charts=charts_of(report),
        timeline=timeline_of(report),
        step=sections["timeline"]["step"],
        overdue=sections["overdue_reviews"],
        exceptions=sections["policy_exceptions"],
    ).encode("utf-8")
