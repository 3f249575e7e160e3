"""Live metrics for Prometheus (issue 13, ADR 0024): what is counted, and the one registry read.

Two kinds of figure, each counted in one place:

- HTTP requests, by method, route template and status, with their latency: counted by the
  API (``rfr.entrypoints.http.metrics``) around every request.
- What the governance workflow did: searches, enrolments, refusals by rule, report deliveries
  and deletions. These are counted from the events each save stored (``count_stored_events``,
  which the composition root makes an observer of the application's saves), so a refusal is
  counted exactly where it is recorded (A-01), whichever path recorded it, and a save that
  conflicted counts nothing. The worker's saves are counted the same way in the worker.
- The worker's rounds (``worker_job``): how many ran, how long they took, how they ended,
  and when each last succeeded, from which a scraper computes the worker's lag.

Labels never carry personal data or an identifier: no user, library, probe or request id, no
library name, never a raw path. A label's value is one of a fixed set (route templates come
from the routes the code declares; a rule id must look like one, else ``other``).

Several processes (``rfr serve --workers N``, ``rfr worker``): with ``PROMETHEUS_MULTIPROC_DIR``
set to one folder shared by all of them (and emptied before they start), every process writes
its figures there and a scrape reads them summed (``scrape_registry``). Without it, each
process counts for itself. prometheus_client reads the variable when it is first imported.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from rfr.domain.enrolment_batch import EnrolmentBatch, ImageHolder
from rfr.domain.governed import GovernedAggregate
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.report_schedule import ReportSchedule
from rfr.domain.retention_sweep import RETENTION_WORKER
from rfr.domain.search_request import SearchRequest

log = logging.getLogger(__name__)

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def _prepare_multiprocess_dir() -> None:
    """Creates the shared folder if it is missing: prometheus_client would otherwise fail on the
    first metric defined below, with an error naming a file, not the variable."""
    folder = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if not folder:
        return
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as e:
        raise RuntimeError(
            f"{MULTIPROC_DIR_VARIABLE}={folder!r} is not a folder this process can use: {e}"
        ) from None


_prepare_multiprocess_dir()

# This process's metrics; a scrape reads them through ``scrape_registry``.
REGISTRY = CollectorRegistry(auto_describe=True)

# A policy rule id as POLICY_RULES.md writes them (A-05, L-13, ...; R-03a for a project's own
# addition); anything else is "other", so no free text can ever become a label.
_RULE_ID = re.compile(r"[A-Z]{1,2}-\d{2}[a-z]?")

# Seconds: a request takes milliseconds to (a search over a large library) seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A scheduled report is due when its period ends; the worker runs every minute by default.
_LAG_BUCKETS = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 31 * 86400)

HTTP_REQUESTS = Counter(
    "rfr_http_requests",
    "HTTP requests answered, by method, route template (never the raw path) and status",
    ("method", "route", "status"),
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "rfr_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ("method", "route"),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SEARCH_REQUESTS = Counter("rfr_search_requests_opened", "Search requests opened (Form 4)", registry=REGISTRY)
LIBRARY_SEARCHES = Counter(
    "rfr_library_searches",
    "Searches run: one per library searched for a request",
    registry=REGISTRY,
)
ENROLMENTS = Counter(
    "rfr_enrolments", "Enrolments into a reference library (one per batch of images)", registry=REGISTRY
)
ENROLLED_IMAGES = Counter(
    "rfr_enrolment_images",
    "Images offered for enrolment, by outcome (enrolled, not_enrolled)",
    ("outcome",),
    registry=REGISTRY,
)
REFUSALS = Counter(
    "rfr_refusals",
    "Refusals recorded (A-01), once for each policy rule a refusal names",
    ("rule",),
    registry=REGISTRY,
)
REPORT_DELIVERIES = Counter(
    "rfr_report_deliveries", "Scheduled usage reports delivered (A-04)", registry=REGISTRY
)
# A mail server refusing or a folder that cannot be written shows here before a report is late;
# no label: which schedule and why are in the DeliveryFailed events, for whoever may read them.
REPORT_DELIVERY_FAILURES = Counter(
    "rfr_report_delivery_failures",
    "Failed attempts at delivering a scheduled usage report (A-04), each tried again later",
    registry=REGISTRY,
)
REPORT_DELIVERY_LAG = Histogram(
    "rfr_report_delivery_lag_seconds",
    "From the end of a scheduled report's period to its delivery",
    buckets=_LAG_BUCKETS,
    registry=REGISTRY,
)
DELETIONS = Counter(
    "rfr_deletions",
    "Biometric items erased: probes and library images, by whether the retention worker or a "
    "person erased them",
    ("kind", "by"),
    registry=REGISTRY,
)
WORKER_JOBS = Counter(
    "rfr_worker_jobs",
    "Worker rounds run, by job (report_delivery, retention, reconciliation) and outcome (ok, failed)",
    ("job", "outcome"),
    registry=REGISTRY,
)
WORKER_JOB_DURATION = Histogram(
    "rfr_worker_job_duration_seconds",
    "Time a worker round of a job took",
    ("job",),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
WORKER_JOB_LAST_SUCCESS = Gauge(
    "rfr_worker_job_last_success_timestamp_seconds",
    "When a worker round of the job last ended without error (Unix time); the worker's lag is "
    "time() minus this",
    ("job",),
    # Summed over processes this would be meaningless: the latest of any worker is the one.
    multiprocess_mode="max",
    registry=REGISTRY,
)

WORKER_JOBS_NAMED = ("report_delivery", "retention", "reconciliation")


def rule_label(rule_id: str) -> str:
    return rule_id if _RULE_ID.fullmatch(rule_id) else "other"


def count_stored_events(events: Sequence[Any]) -> None:
    """Counts what the events of one save say happened; called only once they are stored."""
    for event in events:
        _count(event)


def _count(e: Any) -> None:
    if isinstance(e, GovernedAggregate.Refused | RefusedAttempt.AttemptRefused):
        for rule in dict.fromkeys(e.rule_ids):
            REFUSALS.labels(rule_label(rule)).inc()
        return
    match e:
        case SearchRequest.Opened():
            SEARCH_REQUESTS.inc()
        case SearchRequest.LibrarySearched():
            LIBRARY_SEARCHES.inc()
        case EnrolmentBatch.Enrolled() | ReferenceLibrary.ImagesEnrolled():
            ENROLMENTS.inc()
            ENROLLED_IMAGES.labels("enrolled").inc(len(e.enrolled))
            ENROLLED_IMAGES.labels("not_enrolled").inc(len(e.not_enrolled))
        case ReportSchedule.ReportDelivered():
            REPORT_DELIVERIES.inc()
            REPORT_DELIVERY_LAG.observe(max(0.0, (e.timestamp - e.period_end).total_seconds()))
        case ReportSchedule.DeliveryFailed():
            REPORT_DELIVERY_FAILURES.inc()
        case ProbeImage.Purged():
            DELETIONS.labels("probe", _by(e)).inc()
        case ImageHolder.ImagesPurged():
            DELETIONS.labels("library_image", _by(e)).inc(len(e.image_ids))


def _by(e: Any) -> str:
    return "retention_worker" if e.actor.get("user_id") == RETENTION_WORKER.user_id else "person"


@contextmanager
def worker_job(job: str) -> Iterator[None]:
    """Times one round of a worker job and counts how it ended; a failure is re-raised."""
    if job not in WORKER_JOBS_NAMED:
        raise ValueError(f"unknown worker job {job!r}")
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        WORKER_JOBS.labels(job, "failed").inc()
        raise
    finally:
        WORKER_JOB_DURATION.labels(job).observe(time.perf_counter() - started)
    WORKER_JOBS.labels(job, "ok").inc()
    WORKER_JOB_LAST_SUCCESS.labels(job).set(time.time())


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None


def scrape_registry() -> CollectorRegistry:
    """What a scrape reads: every process's figures from the shared folder in multi-process
    mode (one file per process and metric type, so the cost grows with the processes, not with
    what is stored), else this process's."""
    folder = multiprocess_dir()
    if folder is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    return registry
