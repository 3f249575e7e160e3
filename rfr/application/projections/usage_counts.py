"""What a usage report counts, by the moment it happened, and the few states it needs (A-04, ADR 0013).

A report of ``[start, end)`` reads the rows of its period, not the whole history:

- ``rfr_usage_facts``: one row per thing a report counts (a request opened, a library
  searched, a refusal by rule, an image purged, ...): when it happened (microseconds since
  the epoch, so rows sort and compare as numbers on any store), the measure, its key, and how
  many. A report sums the rows of its period through an index on the time.
- ``rfr_usage_requests``: per search request, when it was opened, first searched, first had
  a viable match, and was rejected. Each is final once set (a decided candidate is never
  decided again, a rejected request is never reopened), so a request's outcome at the end of
  a period is read from these times.
- ``rfr_usage_probe_grounds``: the grounds of each probe's Form 3, so that a request opened
  on a probe counts under its grounds when it is opened.
- ``rfr_usage_libraries``: each library's name and approval, to label the report.
- ``rfr_usage_reviews``: each library approval from its grant until it is stopped or expires,
  and each probe from its addition to the Unresolved Crime Cache until it leaves. Only these
  can be overdue for review at a moment; the domain decides which are (L-06, U-03). Each
  policy exception from its recording until the SRO reviews it, too: those open at a moment
  are the ones awaiting the SRO then (A-06).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from eventsourcing.domain import DomainEventProtocol

from rfr.application.projections import ProjectionStore, Statement
from rfr.domain.enrolment_batch import ImageHolder
from rfr.domain.governed import GovernedAggregate
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.policy_exception import PolicyException
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.report_schedule import ReportSchedule, UsageReportRun
from rfr.domain.search_request import SearchRequest
from rfr.domain.ucc_matches import UccMatchQueue

FACTS = "rfr_usage_facts"
REQUESTS = "rfr_usage_requests"
GROUNDS = "rfr_usage_probe_grounds"
LIBRARIES = "rfr_usage_libraries"
REVIEWS = "rfr_usage_reviews"

APPROVAL, UCC, EXCEPTION = "library_approval", "ucc", "policy_exception"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Stands for the event's time in a statement's parameters, until it is read.
_AT = object()

# (measure, key, how many); key "" for a plain total.
Fact = tuple[str, str, int]


def micros(moment: datetime) -> int:
    """``moment`` as whole microseconds since the epoch: exact, and ordered like the moments."""
    return (moment - _EPOCH) // _MICROSECOND


def _refusal_facts(e: Any) -> list[Fact]:
    found: list[Fact] = [("refusals", "", 1)]
    found += [("refusals_by_rule", rule, 1) for rule in e.rule_ids]
    found.append(("refusals_by_command", command_kind(e.command), 1))
    if isinstance(e, RefusedAttempt.AttemptRefused) and e.command == "open search request":
        found.append(("requests_refused", "", 1))
    if isinstance(e, SearchRequest.Refused) and e.command.startswith("search library"):
        found.append(("library_searches_refused", "", 1))
    return found


def usage_facts(e: DomainEventProtocol[Any]) -> list[Fact]:
    """What a usage report counts of one event (grounds of a request come from its probe)."""
    if isinstance(e, GovernedAggregate.Refused | RefusedAttempt.AttemptRefused):
        return _refusal_facts(e)
    match e:
        case SearchRequest.Opened():
            return [
                ("requests", "", 1),
                *(("requests_by_purpose", purpose, 1) for purpose in e.purposes),
                ("requests_by_probe_level", str(e.probe_level), 1),
                ("requests_by_user", e.acting.user_id, 1),
            ]
        case SearchRequest.LibrarySearched():
            return [
                ("library_searches", "", 1),
                ("by_library", e.library_id, 1),
                ("by_library_level", str(e.level), 1),
                ("by_algorithm", e.algorithm_id, 1),
                ("by_searcher", e.acting.user_id, 1),
                ("potential_matches", "", len(e.candidates)),
            ]
        case SearchRequest.CandidateAdjudicated():
            return [("adjudications", "viable" if e.viable else "not_viable", 1)]
        case SearchRequest.MatchReportIssued():
            return [("match_reports", "", 1)]
        case SearchRequest.Disseminated():
            return [("disseminations", "", 1)]
        case SearchRequest.Approved():
            return [("search_approvals", "granted", 1)]
        case SearchRequest.Rejected():
            return [("search_approvals", "rejected", 1)]
        case UccMatchQueue.MatchesQueued():
            return [("ucc_rescreens", "", 1)]
        case UccMatchQueue.MatchAdjudicated() if e.viable:
            return [("ucc_rescreen_viable_matches", "", 1)]
        case LibraryApproval.Applied():
            return [("library_approvals", "applied", 1)]
        case LibraryApproval.Approved():
            return [
                ("library_approvals", "granted", 1),
                *([("library_approvals", "granted_urgently", 1)] if e.urgency is not None else []),
                *([("library_approvals", "awaiting_superintendent", 1)] if e.awaiting_superintendent else []),
            ]
        case LibraryApproval.Rejected():
            return [("library_approvals", "rejected", 1)]
        case LibraryApproval.UrgentApprovalRatified():
            return [("library_approvals", "ratified", 1)]
        case LibraryApproval.Varied():
            return [("library_approvals", "varied", 1)]
        case LibraryApproval.Reviewed():
            return [("library_reviews", e.outcome, 1)]
        case LibraryApproval.Stopped():
            return [("library_approvals", "stopped", 1)]
        case LibraryApproval.Expired():
            return [("library_approvals", "expired", 1)]
        case ProbeImage.AddedToUcc():
            return [("ucc", "added", 1)]
        case ProbeImage.UccReviewed():
            return [("ucc", "reviewed", 1)]
        case ProbeImage.RemovedFromUcc():
            return [("ucc", "removed", 1)]
        case ProbeImage.Purged():
            return [("probes_purged", "", 1), ("templates_deleted", "", len(e.template_ids))]
        case ImageHolder.ImagesPurged():
            return [
                ("library_images_purged", "", len(e.image_ids)),
                ("templates_deleted", "", len(e.template_ids)),
            ]
        case ImageHolder.ImageRetentionExpired():
            return [("library_images_retention_expired", "", len(e.image_ids))]
        case UsageReportRun.Produced():
            return [("reports_run", "", 1)]
        case ReportSchedule.ReportDelivered():
            return [("reports_delivered", "", 1)]
        case ReportSchedule.DeliveryFailed():
            return [("report_deliveries_failed", "", 1)]
        case PolicyException.Recorded():
            return [("policy_exceptions", "recorded", 1)]
        case PolicyException.ReviewedBySro():
            return [("policy_exceptions", "endorsed" if e.endorsed else "not_endorsed", 1)]
    return []


def command_kind(command: str) -> str:
    """The kind of a refused command: "search library <uuid>" and "deliver usage report 2025-03"
    name an instance; a refused HTTP call ("call GET /reports/usage") names its route template,
    so it stays whole."""
    for prefix in (
        "search library",
        "deliver usage report",
        "withhold usage report",
        "record failed delivery of usage report",
    ):
        if command.startswith(prefix):
            return prefix
    return command


class UsageCountsProjection:
    name = "usage_counts"
    version = 2
    tables = (FACTS, REQUESTS, GROUNDS, LIBRARIES, REVIEWS)
    ddl = (
        # Times are microseconds since the epoch: BIGINT (PostgreSQL's INTEGER is 32 bits).
        f"CREATE TABLE IF NOT EXISTS {FACTS} ("
        "at BIGINT NOT NULL, measure TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {FACTS}_by_time ON {FACTS} (at)",
        f"CREATE TABLE IF NOT EXISTS {REQUESTS} ("
        "request_id TEXT PRIMARY KEY, opened_at BIGINT NOT NULL, searched_at BIGINT, "
        "viable_at BIGINT, rejected_at BIGINT)",
        f"CREATE INDEX IF NOT EXISTS {REQUESTS}_by_opening ON {REQUESTS} (opened_at)",
        f"CREATE TABLE IF NOT EXISTS {GROUNDS} ("
        "probe_id TEXT NOT NULL, ground TEXT NOT NULL, PRIMARY KEY (probe_id, ground))",
        f"CREATE TABLE IF NOT EXISTS {LIBRARIES} ("
        "library_id TEXT PRIMARY KEY, approval_id TEXT NOT NULL, name TEXT NOT NULL, "
        "created_at BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {REVIEWS} ("
        "subject_id TEXT PRIMARY KEY, kind TEXT NOT NULL, from_at BIGINT NOT NULL, until_at BIGINT)",
        f"CREATE INDEX IF NOT EXISTS {REVIEWS}_open ON {REVIEWS} (from_at) WHERE until_at IS NULL",
        f"CREATE INDEX IF NOT EXISTS {REVIEWS}_closed ON {REVIEWS} (until_at)",
    )

    def statements(self, event: DomainEventProtocol[Any]) -> list[Statement]:
        # Attributes are read only from the events matched: a store under verification may hold
        # any row, and projecting it must not fail.
        facts = usage_facts(event)
        states = self._states(event, str(event.originator_id))
        if not facts and not states:
            return []
        at = micros(event.timestamp)
        found: list[Statement] = [
            (f"INSERT INTO {FACTS} (at, measure, key, n) VALUES (?, ?, ?, ?)", (at, measure, key, n))
            for measure, key, n in facts
        ]
        return found + [(sql, tuple(at if p is _AT else p for p in params)) for sql, params in states]

    def _states(self, e: Any, subject: str) -> list[Statement]:
        """The statements of the states this event changes; ``_AT`` stands for its time."""
        at = _AT
        match e:
            case ProbeImage.Submitted():
                return [
                    (
                        f"INSERT INTO {GROUNDS} (probe_id, ground) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        (subject, g),
                    )
                    for g in e.form.get("grounds", ())
                ]
            case SearchRequest.Opened():
                return [
                    (
                        f"INSERT INTO {FACTS} (at, measure, key, n) "
                        f"SELECT ?, 'requests_by_ground', ground, 1 FROM {GROUNDS} WHERE probe_id = ?",
                        (at, e.probe_id),
                    ),
                    (f"INSERT INTO {REQUESTS} (request_id, opened_at) VALUES (?, ?)", (subject, at)),
                ]
            case SearchRequest.LibrarySearched():
                return [_first(REQUESTS, "request_id", "searched_at", subject, at)]
            case SearchRequest.CandidateAdjudicated() if e.viable:
                return [_first(REQUESTS, "request_id", "viable_at", subject, at)]
            case SearchRequest.Rejected():
                return [_first(REQUESTS, "request_id", "rejected_at", subject, at)]
            case ReferenceLibrary.Created():
                return [
                    (
                        f"INSERT INTO {LIBRARIES} (library_id, approval_id, name, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        (subject, e.approval_id, e.name, at),
                    )
                ]
            case LibraryApproval.Approved():
                return [_opened_for_review(subject, APPROVAL, at)]
            case LibraryApproval.Stopped() | LibraryApproval.Expired() | LibraryApproval.Rejected():
                return [_closed_for_review(subject, at)]
            case ProbeImage.AddedToUcc():
                return [_opened_for_review(subject, UCC, at)]
            case ProbeImage.RemovedFromUcc() | ProbeImage.Purged():
                return [_closed_for_review(subject, at)]
            case PolicyException.Recorded():
                return [_opened_for_review(subject, EXCEPTION, at)]
            case PolicyException.ReviewedBySro():
                return [_closed_for_review(subject, at)]
        return []


def _first(table: str, key: str, column: str, subject: str, at: object) -> Statement:
    return (f"UPDATE {table} SET {column} = coalesce({column}, ?) WHERE {key} = ?", (at, subject))


def _opened_for_review(subject: str, kind: str, at: object) -> Statement:
    # Added to the cache again after leaving it: open again, from the first time (a wider
    # window only adds candidates the domain then declines).
    return (
        f"INSERT INTO {REVIEWS} (subject_id, kind, from_at) VALUES (?, ?, ?) "
        "ON CONFLICT (subject_id) DO UPDATE SET until_at = NULL",
        (subject, kind, at),
    )


def _closed_for_review(subject: str, at: object) -> Statement:
    return (f"UPDATE {REVIEWS} SET until_at = ? WHERE subject_id = ?", (at, subject))


# -- reading it -------------------------------------------------------------------------------


@attrs.frozen
class RequestTimes:
    """When a request opened in a period reached each outcome (microseconds; None: not yet)."""

    request_id: str
    opened_at: int
    searched_at: int | None
    viable_at: int | None
    rejected_at: int | None


@attrs.frozen
class LibraryLabel:
    library_id: str
    approval_id: str
    name: str


class UsageCounts:
    """Queries of the projection. A period is ``[start, end)``, or ``[start, end]`` when
    ``end_inclusive`` (a real-time report includes what happened at the moment it is run)."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    def facts(self, start: datetime | None, end: datetime, *, end_inclusive: bool) -> list[Fact]:
        """Each measure and key counted in the period, summed."""
        sql, params = _period("at", start, end, end_inclusive)
        rows = self._store.query(
            f"SELECT measure, key, sum(n) FROM {FACTS} WHERE {sql} GROUP BY measure, key", params
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    def facts_by_step(
        self,
        start: datetime,
        end: datetime,
        *,
        end_inclusive: bool,
        step: timedelta,
        measures: Sequence[str],
    ) -> list[tuple[int, str, str, int]]:
        """(step number from ``start``, measure, key, count) of ``measures`` in the period, each
        step ``step`` long: the figures of a report over time, read from the period's rows only."""
        if not measures:
            return []
        sql, params = _period("at", start, end, end_inclusive)
        marks = ", ".join("?" for _ in measures)
        rows = self._store.query(
            f"SELECT (at - ?) / ?, measure, key, sum(n) FROM {FACTS} "
            f"WHERE {sql} AND measure IN ({marks}) GROUP BY 1, measure, key",
            (micros(start), step // _MICROSECOND, *params, *measures),
        )
        return [(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    def first_fact(self, end: datetime, *, end_inclusive: bool) -> datetime | None:
        """When the earliest counted thing before ``end`` happened (the index answers it)."""
        sql, params = _period("at", None, end, end_inclusive)
        rows = self._store.query(f"SELECT min(at) FROM {FACTS} WHERE {sql}", params)
        return None if not rows or rows[0][0] is None else _EPOCH + int(rows[0][0]) * _MICROSECOND

    def requests_opened(
        self, start: datetime | None, end: datetime, *, end_inclusive: bool
    ) -> list[RequestTimes]:
        sql, params = _period("opened_at", start, end, end_inclusive)
        rows = self._store.query(
            f"SELECT request_id, opened_at, searched_at, viable_at, rejected_at FROM {REQUESTS} WHERE {sql}",
            params,
        )
        return [RequestTimes(*r) for r in rows]

    def libraries(self, end: datetime, *, end_inclusive: bool) -> list[LibraryLabel]:
        """The libraries created by the end of the period (a few per force, not per image)."""
        sql, params = _period("created_at", None, end, end_inclusive)
        rows = self._store.query(f"SELECT library_id, approval_id, name FROM {LIBRARIES} WHERE {sql}", params)
        return [LibraryLabel(*r) for r in rows]

    def open_for_review(self, moment: datetime) -> list[tuple[str, str]]:
        """(id, kind) of the library approvals granted and the cache entries added by ``moment``
        and not ended or removed before it: the only ones that can be overdue then."""
        t = micros(moment)
        rows = self._store.query(
            f"SELECT subject_id, kind FROM {REVIEWS} WHERE until_at IS NULL AND from_at <= ? "
            f"UNION SELECT subject_id, kind FROM {REVIEWS} WHERE until_at >= ? AND from_at <= ?",
            (t, t, t),
        )
        return sorted((r[0], r[1]) for r in rows)


def _period(
    column: str, start: datetime | None, end: datetime, end_inclusive: bool
) -> tuple[str, Sequence[int]]:
    upto = f"{column} <= ?" if end_inclusive else f"{column} < ?"
    if start is None:
        return upto, (micros(end),)
    return f"{column} >= ? AND {upto}", (micros(start), micros(end))
