"""Reads for views, commands and the health endpoint."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Job, JobNote, JobObservation, JobQuerySet, JobStatus, Listing, MediaAsset, SyncRun


def job_list() -> JobQuerySet:
    return Job.objects.current().order_by("-toq_id")


def job_get_latest(*, toq_id: int) -> Job | None:
    """TOQ job id → its latest generation (an id can be reused after a DB recreation, FM-38)."""
    return Job.objects.filter(toq_id=toq_id).order_by("-generation").first()


@dataclass(frozen=True)
class SyncHealth:
    last_success_at: datetime | None
    last_run_at: datetime | None
    last_outcome: str | None
    last_error: str
    last_error_at: datetime | None
    rows_changed: int | None
    lag_seconds: float | None
    stale: bool


def sync_health(*, now: datetime | None = None) -> SyncHealth:
    now = now or timezone.now()
    last = SyncRun.objects.exclude(outcome=SyncRun.Outcome.SKIPPED).order_by("-started_at").first()
    last_ok = SyncRun.objects.filter(outcome=SyncRun.Outcome.SUCCEEDED).order_by("-started_at").first()
    last_failed = SyncRun.objects.filter(outcome=SyncRun.Outcome.FAILED).order_by("-started_at").first()
    lag = (now - last_ok.started_at).total_seconds() if last_ok else None
    # Stale when the last success is older than three sync intervals (or there never was one).
    stale = lag is None or lag > 3 * settings.TOQ_SYNC_INTERVAL_SECONDS
    # A failure older than the last success is history, not the current error.
    current_error = ""
    if last_failed and (not last_ok or last_failed.started_at > last_ok.started_at):
        current_error = last_failed.error
    return SyncHealth(
        last_success_at=last_ok.finished_at if last_ok else None,
        last_run_at=last.started_at if last else None,
        last_outcome=last.outcome if last else None,
        last_error=current_error,
        last_error_at=last_failed.started_at if last_failed else None,
        rows_changed=last_ok.rows_changed if last_ok else None,
        lag_seconds=lag,
        stale=stale,
    )


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    except Exception as exc:  # any driver error means "not reachable"
        return False, type(exc).__name__
    return True, "ok"


def _check_broker() -> tuple[bool, str]:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return True, "not used (tasks run in-process)"
    from toqdash.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises many types; all mean "not reachable"
        return False, type(exc).__name__
    return True, "ok"


def health_report() -> dict[str, Any]:
    db_ok, db_detail = _check_database()
    broker_ok, broker_detail = _check_broker()
    sync: dict[str, Any] = {"ok": None}
    if db_ok:
        health = sync_health()
        sync = {
            "last_success_at": health.last_success_at.isoformat() if health.last_success_at else None,
            "lag_seconds": round(health.lag_seconds, 1) if health.lag_seconds is not None else None,
            "stale": health.stale,
            "last_error": bool(health.last_error),
        }
    return {
        "ok": db_ok and broker_ok,
        "database": db_detail,
        "broker": broker_detail,
        "sync": sync,
    }


# --- UI: job list -------------------------------------------------------------------------------

# Counts by status stop at this many rows per status: an exact COUNT(*) over a million rows on
# every page load (and every 5 s poll) is what makes lists slow; "10,000+" answers the question.
STATUS_COUNT_CAP = 10_000
JOB_PAGE_SIZE = 50

# sort key → (column, descending); only indexed columns. toq_id breaks ties: it is unique among
# current rows (constraint job_one_current_generation), which keyset pagination needs.
JOB_SORTS: dict[str, tuple[str, bool]] = {
    "-toq_id": ("toq_id", True),
    "toq_id": ("toq_id", False),
    "-created_at": ("created_at", True),
    "created_at": ("created_at", False),
}
# XXX(ui): started_at / completed_at sorts wait for indexes on those columns (the mirror's model
# is the sync's): without one, each page sorts the whole table (1.3 s at 1 M rows).
DEFAULT_JOB_SORT = "-toq_id"


@dataclass(frozen=True)
class JobCursor:
    """Keyset position: the sort column's value and the toq_id of the last row shown."""

    value: datetime | int | None
    toq_id: int


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: JobCursor | None
    any_in_flight: bool


@dataclass(frozen=True)
class StatusCount:
    status: str
    count: int
    capped: bool


def stuck_cutoff(*, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(minutes=settings.TOQ_STUCK_AFTER_MINUTES)


def job_list_for_dashboard(*, now: datetime | None = None) -> JobQuerySet:
    """Current generations, annotated with the listing's code and the stuck flag (no N+1)."""
    listing = Listing.objects.filter(toq_id=OuterRef("listing_identity_id"), superseded_at__isnull=True)
    return (
        Job.objects.current()
        .annotate(
            listing_code=Subquery(listing.values("code")[:1]),
            # Processing jobs have no started_at until their callback: age counts from creation,
            # or from when the mirror first saw the row on schemas without created_at.
            age_basis=Coalesce("created_at", "started_at", "first_seen_at"),
            is_stuck=ExpressionWrapper(
                Q(is_terminal=False, disappeared_at__isnull=True, age_basis__lt=stuck_cutoff(now=now)),
                output_field=BooleanField(),
            ),
        )
        .defer("payload", "payload_raw", "callback_body", "callback_results", "last_error_fragments")
    )


def job_filter_stuck(queryset: JobQuerySet, *, now: datetime | None = None) -> JobQuerySet:
    age = Coalesce("created_at", "started_at", "first_seen_at")
    return queryset.in_flight().alias(stuck_age=age).filter(stuck_age__lt=stuck_cutoff(now=now))


def job_sort(queryset: JobQuerySet, *, sort: str) -> JobQuerySet:
    column, desc = JOB_SORTS[sort]
    if column == "toq_id":
        return queryset.order_by(F("toq_id").desc() if desc else F("toq_id").asc())
    key = F(column).desc(nulls_last=True) if desc else F(column).asc(nulls_last=True)
    tie = F("toq_id").desc() if desc else F("toq_id").asc()
    return queryset.order_by(key, tie)


def _past(queryset: JobQuerySet, *, column: str, desc: bool, cursor: JobCursor) -> JobQuerySet:
    """Rows after `cursor` among those whose `column` is not NULL, in (column, toq_id) order.

    `column <= v` first (a range the column's index answers), then the tie on toq_id.
    """
    at_or_past, past = ("lte", "lt") if desc else ("gte", "gt")
    return queryset.filter(**{f"{column}__{at_or_past}": cursor.value}).filter(
        Q(**{f"{column}__{past}": cursor.value}) | Q(**{f"toq_id__{past}": cursor.toq_id})
    )


def job_page(queryset: JobQuerySet, *, sort: str, cursor: JobCursor | None, size: int | None = None) -> JobPage:
    """One keyset page: no OFFSET and no COUNT, so page 1,000 costs what page 1 costs.

    A nullable sort column is read in two index-friendly segments, the rows with a value (in
    column order) and then the NULL rows (in toq_id order), instead of one `NULLS LAST` sort that
    no single-column index serves (measured: 5 ms against 800 ms at 1 M rows).
    """
    size = size or JOB_PAGE_SIZE
    column, desc = JOB_SORTS[sort]
    by_id = F("toq_id").desc() if desc else F("toq_id").asc()
    after_id = {f"toq_id__{'lt' if desc else 'gt'}": cursor.toq_id} if cursor else {}
    rows: list[Job] = []
    if column == "toq_id":
        rows = list(queryset.filter(**after_id).order_by(by_id)[: size + 1])
    else:
        if cursor is None or cursor.value is not None:
            valued = queryset.filter(**{f"{column}__isnull": False})
            if cursor is not None:
                valued = _past(valued, column=column, desc=desc, cursor=cursor)
            key = F(column).desc() if desc else F(column).asc()
            rows = list(valued.order_by(key, by_id)[: size + 1])
        if len(rows) <= size:
            nulls = queryset.filter(**{f"{column}__isnull": True})
            if cursor is not None and cursor.value is None:
                nulls = nulls.filter(**after_id)
            rows += list(nulls.order_by(by_id)[: size + 1 - len(rows)])
    jobs, more = rows[:size], len(rows) > size
    next_cursor = None
    if more:
        last = jobs[-1]
        next_cursor = JobCursor(value=getattr(last, column), toq_id=last.toq_id)
    in_flight = any(not j.is_terminal and j.disappeared_at is None for j in jobs)
    return JobPage(jobs=jobs, next_cursor=next_cursor, any_in_flight=in_flight)


def job_status_counts(queryset: JobQuerySet, *, cap: int = STATUS_COUNT_CAP) -> list[StatusCount]:
    """Rows per status in `queryset`, each capped at `cap` (one query of bounded subqueries).

    Statuses TOQ may write that toqdash does not know are counted under "other".
    """
    base = queryset.order_by()
    known = sorted(s.value for s in JobStatus)
    # "Not one of the known values" as ranges between them: each range is an index range scan
    # (empty in practice), where NOT IN would read the whole status index (140 ms at 1 M rows).
    other = Q(status__lt=known[0]) | Q(status__gt=known[-1])
    for low, high in itertools.pairwise(known):
        other |= Q(status__gt=low, status__lt=high)
    buckets = [(s.value, base.filter(status=s.value)) for s in JobStatus] + [("other", base.filter(other))]
    parts: list[str] = []
    params: list[Any] = []
    for i, (_, qs) in enumerate(buckets):
        sql, sub_params = qs.values("pk")[: cap + 1].query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS bucket_{i})")
        params.extend(sub_params)
    with connection.cursor() as cur:
        cur.execute("SELECT " + ", ".join(parts), params)
        row = cur.fetchone()
    return [StatusCount(status=s, count=min(n, cap), capped=n > cap) for (s, _), n in zip(buckets, row, strict=True)]


# --- UI: job page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobDetail:
    job: Job
    listing: Listing | None
    assets: list[MediaAsset]
    observations: list[JobObservation]
    generations: list[Job]
    notes: list[JobNote]
    observations_truncated: bool


# The mirror's observed history is short (a few changes per job); the cap protects the page
# from a pathological id that flapped thousands of times.
JOB_OBSERVATIONS_LIMIT = 500


def job_get(*, toq_id: int, generation: int | None = None) -> Job | None:
    """One generation of a TOQ job id (the latest when `generation` is None)."""
    if generation is None:
        return job_get_latest(toq_id=toq_id)
    return Job.objects.filter(toq_id=toq_id, generation=generation).first()


def job_notes(*, job: Job) -> list[JobNote]:
    return list(JobNote.objects.filter(job=job).select_related("author"))


def job_detail(*, job: Job) -> JobDetail:
    """Everything the job page shows from the mirror (a fixed number of queries)."""
    listing = Listing.objects.filter(toq_id=job.listing_identity_id).order_by("-generation").first()
    assets = list(
        MediaAsset.objects.filter(listing_identity_id=job.listing_identity_id, superseded_at__isnull=True).order_by(
            "asset_type", "sequence", "toq_id"
        )
    )
    observations = list(
        JobObservation.objects.filter(job=job).order_by("-observed_at", "-id")[: JOB_OBSERVATIONS_LIMIT + 1]
    )
    generations = list(
        Job.objects.filter(toq_id=job.toq_id)
        .exclude(pk=job.pk)
        .only("toq_id", "generation", "status", "first_seen_at", "superseded_at", "disappeared_at")
        .order_by("-generation")
    )
    return JobDetail(
        job=job,
        listing=listing,
        assets=assets,
        observations=observations[:JOB_OBSERVATIONS_LIMIT],
        generations=generations,
        notes=job_notes(job=job),
        observations_truncated=len(observations) > JOB_OBSERVATIONS_LIMIT,
    )


def sync_runs_recent(*, limit: int = 50) -> list[SyncRun]:
    return list(SyncRun.objects.order_by("-started_at")[:limit])
