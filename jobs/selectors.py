"""Reads for views, commands and the health endpoint."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from .aws_console import JobConsoleLinks
from .disagreements import AwsEvidence, Disagreement
from .models import Job, JobKind, JobNote, JobObservation, JobQuerySet, JobStatus, Listing, MediaAsset, SyncRun

if TYPE_CHECKING:
    from diagnosis.models import Annotation, FailureGroup, Finding, GroupNote


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


# --- job page header: TOQ vs AWS, console links (small, indexed reads; never the history) ----------


def job_aws_evidence(*, job: Job) -> AwsEvidence:
    """The AWS side the job page header compares with TOQ: executions (without their big JSON
    columns), MediaConvert jobs, failed derivative checks, evidence freshness. 4 queries."""
    from awslogs.models import DerivativeCheck, EvidenceStatus, Execution, MediaConvertJob

    executions = list(
        Execution.objects.filter(job=job)
        .only("arn", "name", "status", "start_date", "stop_date", "error", "kind", "job_id")
        .order_by("start_date", "id")
    )
    mediaconvert = list(
        MediaConvertJob.objects.filter(execution__job=job)
        .only("job_id", "status", "error_code", "error_message", "execution_id", "created_at")
        .order_by("created_at", "id")
    )
    failed = list(
        DerivativeCheck.objects.filter(job=job)
        .exclude(outcome=DerivativeCheck.Outcome.PRESENT)
        .only("key", "kind", "outcome", "raw_key")
        .order_by("key")
    )
    row_hash = EvidenceStatus.objects.filter(job=job).values_list("job_row_hash", flat=True).first()
    return AwsEvidence(
        executions=executions,
        mediaconvert_jobs=mediaconvert,
        failed_checks=failed,
        evidence_current=None if row_hash is None else row_hash == str(job.row_hash),
    )


def job_disagreements(*, job: Job, evidence: AwsEvidence, now: datetime | None = None) -> list[Disagreement]:
    """TOQ-vs-AWS contradictions of the job (jobs.disagreements, pure) with the configured grace."""
    from . import disagreements

    return disagreements.job_disagreements(
        job=job,
        evidence=evidence,
        now=now or timezone.now(),
        grace=timedelta(minutes=settings.TOQ_DISAGREEMENT_GRACE_MINUTES),
        region=settings.AWS_DEFAULT_REGION,
        bucket=settings.TOQ_MEDIA_BUCKET,
    )


def job_console_links(*, job: Job, evidence: AwsEvidence, now: datetime | None = None) -> JobConsoleLinks:
    """AWS console links of the job (executions, MediaConvert jobs, log groups over the job's window,
    a Logs Insights query, the listing's S3 prefix). No query: built from `evidence`."""
    from awslogs.services.collect_logs import log_groups

    from . import aws_console

    groups = log_groups()
    if job.kind == JobKind.FINALIZATION:
        groups = [g for g in groups if "/aws/stepfunctions/" not in g]  # that machine logs nowhere
    window = aws_console.job_window(
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        first_seen_at=job.first_seen_at,
        is_terminal=job.is_terminal,
        executions=[(e.start_date, e.stop_date, not e.is_closed) for e in evidence.executions],
        margin=timedelta(seconds=settings.AWSLOGS_LOG_MARGIN_SECONDS),
        search_back=timedelta(days=settings.AWSLOGS_SEARCH_BACK_DAYS),
        now=now or timezone.now(),
    )
    arns = [(e.arn, e.name, e.status) for e in evidence.executions]
    if (
        job.external_id
        and job.external_id.startswith("arn:aws:states:")
        and job.external_id not in {a for a, _, _ in arns}
    ):
        # Not collected (yet): TOQ's own ARN still gets its link.
        arns.insert(0, (job.external_id, job.external_id.rsplit(":", 1)[-1], ""))
    return aws_console.job_console_links(
        toq_id=job.toq_id,
        listing_identity_id=job.listing_identity_id,
        executions=arns,
        mediaconvert_jobs=[(m.job_id, m.status) for m in evidence.mediaconvert_jobs],
        log_groups=groups,
        window=window,
        region=settings.AWS_DEFAULT_REGION,
        bucket=settings.TOQ_MEDIA_BUCKET,
    )


@dataclass(frozen=True)
class CollectionLag:
    last_success_at: datetime | None
    lag_seconds: float | None
    stale: bool


def collection_lag(*, now: datetime | None = None) -> CollectionLag:
    """How old the last successful AWS evidence collection pass is (one query). Stale past
    AWSLOGS_STALE_AFTER_SECONDS, or when none ever succeeded; never stale when that setting is 0."""
    from awslogs.models import CollectionRun

    now = now or timezone.now()
    last = (
        CollectionRun.objects.filter(outcome=CollectionRun.Outcome.SUCCEEDED)
        .order_by("-started_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    lag = (now - last).total_seconds() if last else None
    threshold = settings.AWSLOGS_STALE_AFTER_SECONDS
    stale = threshold > 0 and (lag is None or lag > threshold)
    return CollectionLag(last_success_at=last, lag_seconds=lag, stale=stale)


# --- job page panels: AWS evidence and diagnosis (read-only over awslogs/diagnosis models) ---------

_ANCHOR_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
ROLE_ORDER = {"origin": 0, "contributing": 1, "consequence": 2}
LOG_PAGE_SIZE = 200
HISTORY_PAGE_SIZE = 200


def log_anchor(event_id: str) -> str:
    """DOM id of a log line: `log-<eventId>` with anything but [A-Za-z0-9_-] made `-` (sha256: ids)."""
    return "log-" + _ANCHOR_UNSAFE.sub("-", event_id)


def history_anchor(execution_arn: str, event_id: int | str) -> str:
    """DOM id of a history event row: `ev-<execution name>-<event id>`."""
    return "ev-" + _ANCHOR_UNSAFE.sub("-", execution_arn.rsplit(":", 1)[-1]) + f"-{event_id}"


def derivative_anchor(key: str) -> str:
    return "drv-" + _ANCHOR_UNSAFE.sub("-", key)


@dataclass(frozen=True)
class EvidenceLink:
    kind: str
    source: str
    id: str
    excerpt: str
    anchor: str  # "" when the item has no row on this page (a DB column, a Lambda setting)
    panel: str = ""  # URL name (jobs:…) of the panel holding the anchor
    panel_query: str = ""  # query string that opens that panel on the page holding the row

    @property
    def panel_dom_id(self) -> str:
        """ "jobs:job_history_raw" → "job-history-raw" (partial names equal DOM ids)."""
        return self.panel.partition(":")[2].replace("_", "-")


@dataclass(frozen=True)
class FindingCard:
    failure_mode: str
    cause: str
    role: str
    role_label: str
    title: str
    summary: str
    action: str
    confidence_percent: int
    failing_state: str
    evidence: list[EvidenceLink]
    missing: list[str]
    # The engineers' verdict in force for this failure mode + cause (survives re-diagnosis).
    verdict: str = ""
    verdict_by: str = ""
    verdict_note: str = ""


@dataclass(frozen=True)
class DiagnosisCard:
    computed_at: datetime
    engine_version: str
    findings: list[FindingCard]


def _evidence_link(item: dict[str, Any]) -> EvidenceLink:
    kind, source, ident = str(item.get("kind", "")), str(item.get("source", "")), str(item.get("id", ""))
    anchor, panel, query = "", "", ""
    if kind == "history_event":
        anchor, panel = history_anchor(source, ident), "jobs:job_history_raw"
        query = urlencode({"execution": source, "event": ident})
    elif kind == "log_event":
        anchor, panel, query = log_anchor(ident), "jobs:job_logs", urlencode({"event": ident})
    elif kind == "s3_object":
        anchor, panel = derivative_anchor(ident), "jobs:job_derivatives"
    excerpt = str(item.get("excerpt", ""))
    return EvidenceLink(
        kind=kind, source=source, id=ident, excerpt=excerpt, anchor=anchor, panel=panel, panel_query=query
    )


def job_diagnosis_card(*, job: Job, lang: str) -> DiagnosisCard | None:
    """The stored diagnosis of a job, origin first, texts in `lang` ("pt-br" or else English). 2 queries."""
    from diagnosis.annotations import verdicts_in_force
    from diagnosis.models import Diagnosis, Role

    diagnosis = Diagnosis.objects.filter(job=job).prefetch_related("findings").first()
    if diagnosis is None:
        return None
    verdicts = verdicts_in_force(job=job)
    labels = dict(Role.choices)
    pt = lang.lower() == "pt-br"
    findings = sorted(diagnosis.findings.all(), key=lambda f: (ROLE_ORDER.get(f.role, 9), f.position))
    return DiagnosisCard(
        computed_at=diagnosis.computed_at,
        engine_version=diagnosis.engine_version,
        findings=[
            FindingCard(
                failure_mode=f.failure_mode,
                cause=f.cause,
                role=f.role,
                role_label=str(labels.get(f.role, f.role)),
                title=f.title("pt-br" if pt else "en"),
                summary=f.summary("pt-br" if pt else "en"),
                action=f.action("pt-br" if pt else "en"),
                confidence_percent=round(f.confidence * 100),
                failing_state=f.failing_state,
                evidence=[_evidence_link(e) for e in f.evidence or [] if isinstance(e, dict)],
                missing=[
                    str(m.get("pt_br" if pt else "en", "")) for m in f.missing_evidence or [] if isinstance(m, dict)
                ],
                verdict=v.verdict if (v := verdicts.get((f.failure_mode, f.cause))) else "",
                verdict_by=v.author if v else "",
                verdict_note=v.note if v else "",
            )
            for f in findings
        ],
    )


# The audit trail of one job is short; the cap protects the panel from a scripted flood.
ANNOTATION_HISTORY_LIMIT = 200


@dataclass(frozen=True)
class AnnotationHistory:
    annotations: list[Annotation]  # newest first, each with its author
    truncated: bool


def job_annotation_history(*, job: Job, limit: int = ANNOTATION_HISTORY_LIMIT) -> AnnotationHistory:
    """Every annotation on the job's diagnosis (append-only rows: who, when, what), newest first. 1 query."""
    from diagnosis.models import Annotation

    rows = list(Annotation.objects.filter(job=job).select_related("author").order_by("-created_at", "-id")[: limit + 1])
    return AnnotationHistory(annotations=rows[:limit], truncated=len(rows) > limit)


@dataclass(frozen=True)
class JobGroup:
    group: FailureGroup
    title: str
    notes: list[GroupNote]  # oldest first, each with its author


def job_failure_groups(*, job: Job, lang: str) -> list[JobGroup]:
    """The failure groups the job's origin findings belong to, with their notes: a note on a group
    applies to every job that matches it, new ones included (matched by signature, so a job diagnosed
    after the last group refresh gets them too). 2 queries."""
    from django.db.models import Prefetch

    from diagnosis.models import FailureGroup, Finding, GroupNote, Role

    signatures = Finding.objects.filter(diagnosis__job=job, role=Role.ORIGIN).exclude(signature="").values("signature")
    groups = FailureGroup.objects.filter(signature__in=signatures).prefetch_related(
        Prefetch("notes", queryset=GroupNote.objects.select_related("author").order_by("created_at", "id"))
    )
    pt = lang.lower() == "pt-br"
    return [
        JobGroup(group=g, title=(g.title_pt_br if pt and g.title_pt_br else g.title_en), notes=list(g.notes.all()))
        for g in groups.order_by("failure_mode", "pk")
    ]


def job_evidence_anchors(*, job: Job) -> set[str]:
    """DOM ids of every evidence item of the job's diagnosis (to highlight those rows). 1 query."""
    from diagnosis.models import Finding

    anchors: set[str] = set()
    for evidence in Finding.objects.filter(diagnosis__job=job).values_list("evidence", flat=True):
        anchors.update(_evidence_link(e).anchor for e in evidence or [] if isinstance(e, dict))
    anchors.discard("")
    return anchors


@dataclass(frozen=True)
class TimelineExecution:
    arn: str
    name: str
    status: str
    start: datetime | None
    stop: datetime | None
    visits: list[dict[str, Any]]
    console_url: str = ""


@dataclass(frozen=True)
class TimelineData:
    executions: list[TimelineExecution]
    markers: list[tuple[str, datetime]]  # (label, when): job created, started, completed (callback)


def job_timeline_data(*, job: Job) -> TimelineData:
    """Every execution of the job with its parsed state visits and attempts, plus TOQ's own times. 2 queries."""
    from awslogs.selectors import execution_list_for_job

    from .aws_console import sfn_execution_url

    executions = [
        TimelineExecution(
            arn=e.arn,
            name=e.name,
            status=e.status,
            start=e.start_date,
            stop=e.stop_date,
            console_url=sfn_execution_url(e.arn, region=settings.AWS_DEFAULT_REGION),
            visits=[
                {
                    "name": v.name,
                    "type": v.state_type,
                    "branch": v.branch,
                    "entered_at": v.entered_at,
                    "exited_at": v.exited_at,
                    "status": v.status,
                    "error": v.error,
                    "attempts": [a for a in v.attempts or [] if isinstance(a, dict)],
                }
                for v in e.state_visits.all()
            ],
        )
        for e in execution_list_for_job(job_id=job.pk)
    ]
    markers = [
        (label, at)
        for label, at in (
            ("created", job.created_at),
            ("started", job.started_at),
            ("completed", job.completed_at),
        )
        if at is not None
    ]
    return TimelineData(executions=executions, markers=markers)


@dataclass(frozen=True)
class LogLine:
    pk: int
    anchor: str
    timestamp: datetime | None
    function: str
    level: str
    msg: str
    message: str
    pretty: str  # indented JSON for JSON lines, "" otherwise
    is_evidence: bool


@dataclass(frozen=True)
class LogPage:
    lines: list[LogLine]
    number: int
    num_pages: int
    total: int
    functions: list[str]


def log_function(log_group: str) -> str:
    """`/aws/lambda/listing-media-validate-staging` → `listing-media-validate-staging`."""
    return log_group.rsplit("/", 1)[-1]


def job_log_page(
    *,
    job: Job,
    function: str = "",
    level: str = "",
    text: str = "",
    page: int = 1,
    at_event: str = "",
    evidence: set[str] | None = None,
) -> LogPage:
    """One page of the job's correlated log lines, filtered. 3 queries (groups, count, page); `at_event`
    (a CloudWatch eventId) instead picks the page holding that line (2 more)."""
    from awslogs.selectors import log_event_list_for_job

    base = log_event_list_for_job(job_id=job.pk, toq_id=job.toq_id)
    groups = sorted(set(base.order_by().values_list("log_group", flat=True).distinct()))
    qs = base
    if function:
        qs = qs.filter(log_group__in=[g for g in groups if log_function(g) == function])
    if level:
        qs = qs.filter(level__iexact=level)
    if text:
        qs = qs.filter(message__icontains=text)
    total = qs.count()
    num_pages = max(1, -(-total // LOG_PAGE_SIZE))
    if at_event:
        page = _log_page_of(qs, at_event) or page
    number = min(max(1, page), num_pages)
    rows = qs[(number - 1) * LOG_PAGE_SIZE : number * LOG_PAGE_SIZE]
    evidence = evidence or set()
    lines = []
    for row in rows:
        anchor = log_anchor(row.event_id)
        pretty = ""
        if row.kind == "json" and isinstance(row.fields, dict) and row.fields:
            pretty = json.dumps(row.fields, indent=2, ensure_ascii=False)
        lines.append(
            LogLine(
                pk=row.pk,
                anchor=anchor,
                timestamp=row.timestamp,
                function=log_function(row.log_group),
                level=row.level,
                msg=row.msg,
                message=row.message,
                pretty=pretty,
                is_evidence=anchor in evidence,
            )
        )
    return LogPage(
        lines=lines, number=number, num_pages=num_pages, total=total, functions=[log_function(g) for g in groups]
    )


def _log_page_of(qs: Any, event_id: str) -> int | None:
    """The page (ordered by timestamp, id) that holds the line `event_id`, None if it is not in `qs`."""
    row = qs.filter(event_id=event_id).values_list("timestamp", "pk").first()
    if row is None:
        return None
    timestamp, pk = row
    if timestamp is None:
        before = qs.filter(Q(timestamp__isnull=False) | Q(timestamp__isnull=True, pk__lt=pk)).count()
    else:
        before = qs.filter(Q(timestamp__lt=timestamp) | Q(timestamp=timestamp, pk__lt=pk)).count()
    return int(before // LOG_PAGE_SIZE + 1)


@dataclass(frozen=True)
class HistoryRow:
    anchor: str
    execution_name: str
    event_id: int
    type: str
    timestamp: datetime | None
    excerpt: str
    is_evidence: bool


@dataclass(frozen=True)
class HistoryPage:
    rows: list[HistoryRow]
    number: int
    num_pages: int
    total: int


HISTORY_EXCERPT_CHARS = 300


def _history_queryset(job: Job) -> Any:
    from awslogs.models import HistoryEvent

    return HistoryEvent.objects.filter(execution__job=job).order_by("execution__start_date", "execution_id", "event_id")


def job_history_page(
    *, job: Job, page: int = 1, at_execution: str = "", at_event: int | None = None, evidence: set[str] | None = None
) -> HistoryPage:
    """One page of the raw Step Functions history of every execution of the job. 2 queries; `at_execution`
    (ARN) and `at_event` instead pick the page holding that event (2 more)."""
    qs = _history_queryset(job)
    total = qs.count()
    num_pages = max(1, -(-total // HISTORY_PAGE_SIZE))
    if at_execution and at_event is not None:
        page = _history_page_of(job, qs, at_execution, at_event) or page
    number = min(max(1, page), num_pages)
    evidence = evidence or set()
    rows = []
    for ev in qs.select_related("execution")[(number - 1) * HISTORY_PAGE_SIZE : number * HISTORY_PAGE_SIZE]:
        anchor = history_anchor(ev.execution.arn, ev.event_id)
        details = json.dumps(ev.details, ensure_ascii=False) if ev.details else ""
        rows.append(
            HistoryRow(
                anchor=anchor,
                execution_name=ev.execution.name,
                event_id=ev.event_id,
                type=ev.type,
                timestamp=ev.timestamp,
                excerpt=details[:HISTORY_EXCERPT_CHARS] + ("…" if len(details) > HISTORY_EXCERPT_CHARS else ""),
                is_evidence=anchor in evidence,
            )
        )
    return HistoryPage(rows=rows, number=number, num_pages=num_pages, total=total)


def _history_page_of(job: Job, qs: Any, arn: str, event_id: int) -> int | None:
    from awslogs.models import Execution

    execution = Execution.objects.filter(job=job, arn=arn).values_list("pk", "start_date").first()
    if execution is None:
        return None
    pk, start = execution
    earlier = Q(execution__start_date__lt=start) | Q(execution__start_date=start, execution_id__lt=pk)
    if start is None:  # NULL start dates sort last (PostgreSQL): every dated execution comes first
        earlier = Q(execution__start_date__isnull=False) | Q(execution__start_date__isnull=True, execution_id__lt=pk)
    before = qs.filter(earlier | Q(execution_id=pk, event_id__lt=event_id)).count()
    return int(before // HISTORY_PAGE_SIZE + 1)


def job_history_export(*, job: Job) -> dict[str, list[dict[str, Any]]]:
    """Every stored history event of the job, by execution ARN, in AWS's shape. 1 query."""
    out: dict[str, list[dict[str, Any]]] = {}
    for arn, event_id, type_, ts, previous, details in _history_queryset(job).values_list(
        "execution__arn", "event_id", "type", "timestamp", "previous_event_id", "details"
    ):
        out.setdefault(arn, []).append(
            {
                "id": event_id,
                "type": type_,
                "timestamp": ts.isoformat() if ts else None,
                "previousEventId": previous,
                "details": details,
            }
        )
    return out


@dataclass(frozen=True)
class DerivativeCell:
    key: str
    anchor: str
    outcome: str  # present / missing / zero_bytes
    size: int | None
    kind: str = ""
    url: str = ""  # presigned GET (present objects only); "" when nothing can be signed
    preview: bool = False  # a small JPEG worth showing inline (photo and video thumbnails)
    console_url: str = ""  # the object in the S3 console (present objects only)


# The 200-px JPEGs: shown inline. Bigger sizes, the MP4, ZIPs and documents are links only, so a
# listing with dozens of photos does not download their 1200-px versions to draw the panel.
PREVIEW_KINDS = frozenset({"thumbnail", "video_thumbnail"})


def _derivative_cell(key: str, kind: str, outcome: str, size: int | None) -> DerivativeCell:
    """A matrix cell; a present object gets a short-lived presigned URL (signed locally, no AWS call)."""
    from awslogs.client import s3_presigned_get_url

    from . import aws_console

    cell = DerivativeCell(key, derivative_anchor(key), outcome, size, kind)
    if outcome != "present":
        return cell
    bucket = settings.TOQ_MEDIA_BUCKET
    url = s3_presigned_get_url(bucket, key, expires_in=settings.S3_PRESIGNED_URL_EXPIRES_SECONDS)
    return DerivativeCell(
        key,
        cell.anchor,
        outcome,
        size,
        kind,
        url=url,
        preview=bool(url) and kind in PREVIEW_KINDS,
        console_url=aws_console.s3_object_url(bucket, key, region=settings.AWS_DEFAULT_REGION),
    )


@dataclass(frozen=True)
class DerivativeMatrix:
    kinds: list[str]  # columns
    rows: list[tuple[str, list[DerivativeCell | None]]]  # (raw key, one cell per kind or None)
    from_checks: bool  # False: computed from the stored S3 listing (no collector check yet)


def job_derivative_matrix(*, job: Job) -> DerivativeMatrix | None:
    """Asset × expected output: the collector's derivative checks, else the expected keys looked up in the
    stored S3 listing of the listing. None when neither exists. At most 3 queries."""
    from awslogs.models import DerivativeCheck, S3Object
    from awslogs.parsers.resources import expected_derivatives

    cells: list[tuple[str, str, DerivativeCell]] = [
        (c.raw_key, c.kind, _derivative_cell(c.key, c.kind, c.outcome, c.size))
        for c in DerivativeCheck.objects.filter(job=job).order_by("raw_key", "key")
    ]
    from_checks = bool(cells)
    if not cells:
        expected = []
        first_video = True
        assets = MediaAsset.objects.filter(
            listing_identity_id=job.listing_identity_id, superseded_at__isnull=True, disappeared_at__isnull=True
        ).order_by("toq_id")
        for asset in assets:
            if not asset.s3_key_raw:
                continue
            expected.extend(expected_derivatives(asset.s3_key_raw, asset.asset_type, first_video=first_video))
            first_video = first_video and "VIDEO" not in asset.asset_type.upper()
        if not expected:
            return None
        sizes = dict(
            S3Object.objects.filter(bucket=settings.TOQ_MEDIA_BUCKET, key__in=[e.key for e in expected]).values_list(
                "key", "size"
            )
        )
        if not sizes and not S3Object.objects.filter(key__startswith=f"{job.listing_identity_id}/").exists():
            return None  # the listing's prefix was never listed: no evidence, keep the placeholder
        for e in expected:
            size = sizes.get(e.key)
            outcome = "missing" if e.key not in sizes else ("zero_bytes" if size == 0 else "present")
            cells.append((e.raw_key, e.kind, _derivative_cell(e.key, e.kind, outcome, size)))
    kinds = list(dict.fromkeys(kind for _, kind, _ in cells))
    by_raw: dict[str, dict[str, DerivativeCell]] = {}
    for raw, kind, cell in cells:
        by_raw.setdefault(raw, {})[kind] = cell
    return DerivativeMatrix(
        kinds=kinds,
        rows=[(raw, [by_kind.get(k) for k in kinds]) for raw, by_kind in by_raw.items()],
        from_checks=from_checks,
    )


# --- failure groups and the overview page (reads of diagnosis/ and awslogs/ rows; no writes)

GROUP_LIST_LIMIT = 200
GROUP_JOBS_LIMIT = 100
TREND_DAYS = 30


def _origin_findings() -> QuerySet[Finding]:
    """Origin findings of current job generations, with the time the job was seen failing.

    Same `seen_at` as diagnosis.groups (which counts the groups), so trends match the counts."""
    from diagnosis.models import Finding, Role

    return Finding.objects.filter(role=Role.ORIGIN, diagnosis__job__superseded_at__isnull=True).annotate(
        seen_at=Coalesce(
            "diagnosis__job__completed_at",
            "diagnosis__job__started_at",
            "diagnosis__job__created_at",
            "diagnosis__job__first_seen_at",
        )
    )


def _days(now: datetime, days: int) -> list[Any]:
    start = timezone.localdate(now, timezone.get_current_timezone()) - timedelta(days=days - 1)
    return [start + timedelta(days=i) for i in range(days)]


def failure_group_list(*, limit: int = GROUP_LIST_LIMIT) -> list[FailureGroup]:
    """The most recently seen failure groups with at least one job (one query)."""
    from diagnosis.models import FailureGroup

    return list(FailureGroup.objects.filter(job_count__gt=0).order_by("-last_seen_at", "-pk")[:limit])


def failure_group_trends(
    *, signatures: list[str], days: int = TREND_DAYS, now: datetime | None = None
) -> dict[str, list[tuple[Any, int]]]:
    """Jobs per day (zeros included) of each group over the last `days` days, in one query."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    axis = _days(now or timezone.now(), days)
    counts: dict[tuple[str, Any], int] = {}
    if signatures:
        rows = (
            _origin_findings()
            .filter(signature__in=signatures)
            .annotate(day=TruncDate("seen_at"))
            .filter(day__gte=axis[0])
            .values_list("signature", "day")
            .annotate(n=Count("id"))
            .order_by()
        )
        counts = {(sig, day): n for sig, day, n in rows}
    return {sig: [(day, counts.get((sig, day), 0)) for day in axis] for sig in signatures}


@dataclass(frozen=True)
class GroupDetail:
    group: FailureGroup
    findings: list[Finding]  # origin findings, each with its job (select_related) and `seen_at`
    notes: list[GroupNote]


def failure_group_get(*, group_id: int) -> FailureGroup | None:
    from diagnosis.models import FailureGroup

    return FailureGroup.objects.filter(pk=group_id).first()


def failure_group_notes(*, group: FailureGroup) -> list[GroupNote]:
    return list(group.notes.select_related("author").order_by("created_at", "id"))


def failure_group_detail(*, group: FailureGroup, limit: int = GROUP_JOBS_LIMIT) -> GroupDetail:
    """The group's newest jobs (through their origin findings) and its notes (two queries)."""
    findings = list(
        _origin_findings()
        .filter(signature=group.signature)
        .select_related("diagnosis__job")
        .order_by("-seen_at", "-pk")[:limit]
    )
    return GroupDetail(group=group, findings=findings, notes=failure_group_notes(group=group))


@dataclass(frozen=True)
class FailuresPerDay:
    days: list[Any]
    # failure mode → count per day (aligned with `days`)
    series: dict[str, list[int]]

    @property
    def totals(self) -> dict[str, int]:
        return {fm: sum(counts) for fm, counts in self.series.items()}


def failures_per_day(*, days: int = TREND_DAYS, now: datetime | None = None) -> FailuresPerDay:
    """Failed jobs per day by the failure mode of their origin finding, aggregated in the DB."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    axis = _days(now or timezone.now(), days)
    rows = (
        _origin_findings()
        .annotate(day=TruncDate("seen_at"))
        .filter(day__gte=axis[0], day__lte=axis[-1])
        .values_list("failure_mode", "day")
        .annotate(n=Count("id"))
        .order_by()
    )
    index = {day: i for i, day in enumerate(axis)}
    series: dict[str, list[int]] = {}
    for fm, day, n in rows:
        series.setdefault(fm, [0] * len(axis))[index[day]] += n
    return FailuresPerDay(days=axis, series=dict(sorted(series.items())))


@dataclass(frozen=True)
class StateDuration:
    state: str
    visits: int
    p50_seconds: float
    p95_seconds: float


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks: what PostgreSQL's percentile_cont computes."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def state_duration_percentiles(*, days: int = TREND_DAYS, now: datetime | None = None) -> list[StateDuration]:
    """p50/p95 of how long each Step Functions state took (entered → exited), per state name,
    over the visits entered in the last `days` days. percentile_cont in PostgreSQL; in Python on
    SQLite (the demo), which has no ordered-set aggregates."""
    from awslogs.models import StateVisit

    since = (now or timezone.now()) - timedelta(days=days)
    visits = StateVisit.objects.filter(entered_at__gte=since, exited_at__isnull=False)
    if connection.vendor == "postgresql":
        sql, params = visits.values_list("name", "entered_at", "exited_at").order_by().query.sql_with_params()
        with connection.cursor() as cur:
            cur.execute(
                "SELECT name, COUNT(*),"
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM exited_at - entered_at)),"
                " percentile_cont(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM exited_at - entered_at))"
                f" FROM ({sql}) AS v(name, entered_at, exited_at) GROUP BY name ORDER BY name",
                params,
            )
            return [StateDuration(name, n, float(p50), float(p95)) for name, n, p50, p95 in cur.fetchall()]
    durations: dict[str, list[float]] = {}
    for name, entered, exited in visits.values_list("name", "entered_at", "exited_at").iterator(chunk_size=5000):
        if entered is not None and exited is not None:  # filtered in SQL; the types cannot know
            durations.setdefault(name, []).append((exited - entered).total_seconds())
    return [
        StateDuration(name, len(values), _percentile(values, 0.5), _percentile(values, 0.95))
        for name, values in sorted(durations.items())
    ]


@dataclass(frozen=True)
class CollectionHealth:
    jobs_with_evidence: int
    complete: int
    incomplete: int
    last_collected_at: datetime | None


def collection_health() -> CollectionHealth:
    """How complete the collected AWS evidence is (one aggregate query)."""
    from django.db.models import Count, Max

    from awslogs.models import EvidenceStatus

    agg = EvidenceStatus.objects.aggregate(
        total=Count("id"), complete=Count("id", filter=Q(complete=True)), last=Max("collected_at")
    )
    return CollectionHealth(
        jobs_with_evidence=agg["total"],
        complete=agg["complete"],
        incomplete=agg["total"] - agg["complete"],
        last_collected_at=agg["last"],
    )
