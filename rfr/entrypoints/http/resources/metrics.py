"""``GET /metrics``: the live metrics in Prometheus's text format, for the Operations role only.

The Operations role reads this and nothing else (ADR 0024), so a scraper's bearer token cannot
act on anything. A scraper that cannot send a token reads the same figures from the loopback
port ``RFR_METRICS_PORT`` instead (``rfr serve``), with no token and on 127.0.0.1 only.
What is counted, and why no label names a person or a record: ``rfr.infrastructure.metrics``.
"""

from __future__ import annotations

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rfr.domain.people import Role
from rfr.entrypoints.http.access_control import allow
from rfr.infrastructure.metrics import scrape_registry


@get(
    "/metrics",
    summary="Live metrics (Prometheus)",
    tags=["service"],
    media_type=CONTENT_TYPE_LATEST,
    sync_to_thread=True,
    **allow(Role.OPERATIONS),
)
def metrics() -> Response[bytes]:
    """Counters and latency histograms in Prometheus's text format: HTTP requests by route
    template and status, searches, enrolments, refusals by rule, report deliveries and deletions,
    and the worker's rounds. Every process's figures when ``PROMETHEUS_MULTIPROC_DIR`` is shared
    by them, else this process's. No label names a person, a record or a library."""
    # Read from files in multi-process mode: off the event loop, like every blocking read.
    return Response(content=generate_latest(scrape_registry()), media_type=CONTENT_TYPE_LATEST)


ROUTES = [metrics]
