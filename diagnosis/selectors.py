"""Reads for the diagnosis: gather a job's Evidence from the mirror and the AWS evidence tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q
from django.utils import timezone

from awslogs import parsers
from awslogs.models import (
    DerivativeCheck,
    DlqMessage,
    EvidenceStatus,
    Execution,
    HistoryEvent,
    LambdaConfigSnapshot,
    LogEvent,
    MediaConvertJob,
    S3Object,
)
from diagnosis.engine import ENGINE_VERSION
from diagnosis.evidence import (
    AssetFacts,
    DerivativeFact,
    Evidence,
    ExecutionFacts,
    JobFacts,
    LambdaConfigFact,
    LogFact,
    MediaConvertFact,
    history_facts,
    loads,
)
from diagnosis.models import Diagnosis
from jobs.models import Job, JobObservation, MediaAsset

# Functions whose configuration matters for a processing job (FM-39); the video-thumbnail Lambda first.
WATCHED_FUNCTION_CMDS = ("video_thumbnails", "thumbnails", "validate", "consolidate", "callback-dispatch", "zip")
# Log lines kept per job: enough for any real job (the job-37 window has ~150 lines for three jobs).
MAX_LOG_LINES = 2000


def job_get_latest(*, toq_id: int) -> Job | None:
    """TOQ's job id → the mirror row of its latest generation (FM-38: ids restart after a DB rebuild)."""
    return Job.objects.filter(toq_id=toq_id).order_by("-generation").first()


def diagnosis_get_for_job(*, job_id: int) -> Diagnosis | None:
    """The stored diagnosis of a mirror job (pk) with its findings in order, or None."""
    return Diagnosis.objects.filter(job_id=job_id).prefetch_related("findings").first()


def evidence_for_job(*, job: Job, now: dt.datetime | None = None) -> Evidence:
    """Everything known of one job generation, as the engine's dataclasses."""
    return evidence_for_jobs(jobs=[job], now=now)[job.pk]


def evidence_for_jobs(*, jobs: list[Job], now: dt.datetime | None = None) -> dict[int, Evidence]:
    """The Evidence of several jobs (by mirror pk), read with a fixed number of queries per batch.

    One query per kind of evidence for the whole batch (not per job): diagnosing 10,000 jobs is then
    bound by the engine, not by round trips (bench/diagnosis.py). Callers bound the batch size.
    """
    now = now or timezone.now()
    pks = [j.pk for j in jobs]
    executions = _executions(pks)
    observation_counts = dict(
        JobObservation.objects.filter(job_id__in=pks)
        .values("job_id")
        .annotate(n=Count("id"))
        .values_list("job_id", "n")
    )
    assets_by_listing = _assets_by_listing({j.listing_identity_id for j in jobs})
    logs = _logs(jobs, now)
    mediaconvert = _mediaconvert(jobs, executions)
    statuses = {s.job_id: s for s in EvidenceStatus.objects.filter(job_id__in=pks)}
    checks: dict[int, list[DerivativeCheck]] = defaultdict(list)
    for check in DerivativeCheck.objects.filter(job_id__in=pks).order_by("job_id", "key"):
        checks[check.job_id].append(check)
    dlq: dict[int, list[str]] = defaultdict(list)
    for job_id, message_id in (
        DlqMessage.objects.filter(job_id__in=pks).order_by("id").values_list("job_id", "message_id")
    ):
        dlq[job_id].append(message_id)
    snapshots = _lambda_snapshots()
    s3_listed: dict[int, bool] = {}

    assets: dict[int, list[AssetFacts]] = {}
    for job in jobs:
        input_keys = _execution_input_keys(executions[job.pk]) | {
            str(r.get("raw_key")) for r in job.callback_results or [] if isinstance(r, dict) and r.get("raw_key")
        }
        assets[job.pk] = [
            dataclasses.replace(a, in_job=(a.s3_key_raw in input_keys) if input_keys else True)
            for a in assets_by_listing.get(job.listing_identity_id, [])
        ]
    derivatives = _derivatives(jobs, assets, checks)
    out = {}
    for job in jobs:
        listing = job.listing_identity_id
        if listing not in s3_listed:
            s3_listed[listing] = S3Object.objects.filter(
                bucket=settings.TOQ_MEDIA_BUCKET, key__startswith=f"{listing}/"
            ).exists()
        status = statuses.get(job.pk)
        out[job.pk] = Evidence(
            job=_job_facts(job, observation_counts.get(job.pk, 0)),
            now=now,
            assets=assets[job.pk],
            executions=executions[job.pk],
            logs=logs[job.pk],
            derivatives=derivatives[job.pk],
            s3_listed=s3_listed[listing],
            mediaconvert=mediaconvert[job.pk],
            lambda_configs=_lambda_configs(executions[job.pk], job, snapshots),
            dlq_message_ids=dlq[job.pk],
            collector_missing=list(status.missing) if status and isinstance(status.missing, list) else [],
        )
    return out


def _job_facts(job: Job, observation_count: int) -> JobFacts:
    return JobFacts(
        toq_id=job.toq_id,
        generation=job.generation,
        kind=job.kind,
        status=job.status,
        provider=job.provider,
        listing_identity_id=job.listing_identity_id,
        external_id=job.external_id or "",
        started_at=job.started_at,
        completed_at=job.completed_at,
        created_at=job.created_at,
        first_seen_at=job.first_seen_at,
        disappeared_at=job.disappeared_at,
        superseded=job.superseded_at is not None,
        last_error=job.last_error or "",
        callback_body=job.callback_body or "",
        payload=job.payload,
        callback_parse_error=job.callback_parse_error,
        callback_status=job.callback_status,
        callback_error_code=job.callback_error_code,
        callback_error_message=job.callback_error_message,
        callback_error_type=job.callback_error_type,
        callback_failure_reason=job.callback_failure_reason,
        callback_outputs_empty=job.callback_outputs_empty,
        callback_results=[r for r in job.callback_results or [] if isinstance(r, dict)],
        observation_count=observation_count,
    )


def _executions(job_ids: list[int]) -> dict[int, list[ExecutionFacts]]:
    rows = list(Execution.objects.filter(job_id__in=job_ids).order_by("start_date", "id"))
    events: dict[int, list[tuple[int, str, int | None, dict[str, Any]]]] = defaultdict(list)
    history = (
        HistoryEvent.objects.filter(execution__in=rows)
        .order_by("execution_id", "event_id")
        .values_list("execution_id", "event_id", "type", "previous_event_id", "details")
    )
    for execution_id, event_id, type_, previous, details in history:
        events[execution_id].append((event_id, type_, previous, details if isinstance(details, dict) else {}))
    out: dict[int, list[ExecutionFacts]] = {pk: [] for pk in job_ids}
    for row in rows:
        timeline = row.timeline if isinstance(row.timeline, dict) else {}
        out[row.job_id].append(  # type: ignore[index]  # filtered on job_id__in: never None
            ExecutionFacts(
                arn=row.arn,
                kind=row.kind,
                status=row.status,
                start_date=row.start_date,
                stop_date=row.stop_date,
                error=row.error,
                cause=row.cause,
                input=row.input,
                is_duplicate=row.is_duplicate,
                history_complete=row.history_complete,
                events=history_facts(events.get(row.pk, [])),
                catches=[c for c in timeline.get("catches") or [] if isinstance(c, dict)],
                mediaconvert_job_ids=[str(i) for i in timeline.get("mediaconvert_job_ids") or []],
            )
        )
    return out


def _execution_input_keys(executions: list[ExecutionFacts]) -> set[str]:
    keys: set[str] = set()
    for execution in executions:
        data = loads(execution.input)
        assets = data.get("assets") if isinstance(data, dict) else None
        for item in assets if isinstance(assets, list) else []:
            key = item.get("key") if isinstance(item, dict) else item
            if isinstance(key, str) and key:
                keys.add(key)
    return keys


def _assets_by_listing(listings: set[int]) -> dict[int, list[AssetFacts]]:
    """The current assets of each listing; `in_job` is set per job by the caller."""
    out: dict[int, list[AssetFacts]] = defaultdict(list)
    rows = MediaAsset.objects.filter(
        listing_identity_id__in=listings, superseded_at__isnull=True, disappeared_at__isnull=True
    ).order_by("toq_id")
    for a in rows:
        out[a.listing_identity_id].append(
            AssetFacts(
                toq_id=a.toq_id,
                asset_type=a.asset_type,
                status=a.status,
                s3_key_raw=a.s3_key_raw or "",
                s3_key_processed=a.s3_key_processed or "",
                metadata=a.metadata if isinstance(a.metadata, dict) else {},
                # No job↔asset table in TOQ (reference §2.1): without an input or callback naming
                # the keys, every asset of the listing is a candidate.
                in_job=True,
            )
        )
    return out


def _logs(jobs: list[Job], now: dt.datetime) -> dict[int, list[LogFact]]:
    """Each job's log lines (awslogs.selectors.log_event_list_for_job for a batch), at most MAX_LOG_LINES."""
    by_pk = {j.pk: j for j in jobs}
    by_toq_id: dict[int, list[int]] = defaultdict(list)
    for j in jobs:
        by_toq_id[j.toq_id].append(j.pk)
    out: dict[int, list[LogFact]] = {pk: [] for pk in by_pk}
    # Two indexed queries merged in Python: one OR across job_id and job_toq_id makes PostgreSQL scan
    # the whole table (0.6 s per batch at 640,000 lines, bench/diagnosis.py). Tuples, not model
    # instances: a batch reads tens of thousands of lines.
    columns = (
        *("id", "job_id", "job_toq_id", "event_id", "log_group", "level"),
        *("msg", "message", "timestamp", "fields", "s3_key"),
    )
    attributed = LogEvent.objects.filter(job_id__in=list(by_pk)).values_list(*columns)
    unattributed = LogEvent.objects.filter(job_id__isnull=True, job_toq_id__in=list(by_toq_id)).values_list(*columns)
    # The order of log_event_list_for_job: ("timestamp", "id"), NULL timestamps last as in PostgreSQL.
    rows = sorted([*attributed, *unattributed], key=lambda r: (r[8] is None, r[8] or now, r[0]))
    for _id, job_id, job_toq_id, event_id, log_group, level, msg, message, timestamp, fields, s3_key in rows:
        fact = LogFact(
            event_id=event_id,
            log_group=log_group,
            level=level,
            msg=msg,
            message=message,
            timestamp=timestamp,
            fields=fields if isinstance(fields, dict) else {},
            s3_key=s3_key,
        )
        for pk in [job_id] if job_id is not None else by_toq_id.get(job_toq_id or -1, []):
            if len(out[pk]) < MAX_LOG_LINES:
                out[pk].append(fact)
    return out


def _mediaconvert(jobs: list[Job], executions: dict[int, list[ExecutionFacts]]) -> dict[int, list[MediaConvertFact]]:
    """MediaConvert jobs of each job: by its executions, or named in their timelines."""
    named: dict[str, set[int]] = defaultdict(set)
    for job in jobs:
        for execution in executions[job.pk]:
            for mc_id in execution.mediaconvert_job_ids:
                named[mc_id].add(job.pk)
    out: dict[int, list[MediaConvertFact]] = {j.pk: [] for j in jobs}
    rows = (
        MediaConvertJob.objects.filter(Q(execution__job__in=jobs) | Q(job_id__in=list(named)))
        .annotate(owner=F("execution__job_id"))
        .order_by("job_id")
    )
    for m in rows:
        fact = MediaConvertFact(
            job_id=m.job_id,
            status=m.status,
            error_code=m.error_code,
            error_message=m.error_message,
            output_paths=[str(p) for p in m.output_paths or []],
        )
        owner = m.owner  # type: ignore[attr-defined]
        for pk in ({owner} & out.keys()) | named.get(m.job_id, set()):
            out[pk].append(fact)
    return out


def _derivatives(
    jobs: list[Job], assets: dict[int, list[AssetFacts]], checks: dict[int, list[DerivativeCheck]]
) -> dict[int, list[DerivativeFact]]:
    """Stored derivative checks when the collector made them, else computed from the stored listing."""
    out: dict[int, list[DerivativeFact]] = {}
    expected: dict[int, list[parsers.ExpectedDerivative]] = {}
    for job in jobs:
        if checks.get(job.pk):
            out[job.pk] = [
                DerivativeFact(raw_key=c.raw_key, key=c.key, kind=c.kind, outcome=c.outcome) for c in checks[job.pk]
            ]
            continue
        wanted: list[parsers.ExpectedDerivative] = []
        first_video = True
        for asset in assets[job.pk]:
            if not asset.in_job or not asset.s3_key_raw:
                continue
            wanted.extend(parsers.expected_derivatives(asset.s3_key_raw, asset.asset_type, first_video=first_video))
            first_video = first_video and not asset.is_video
        expected[job.pk] = wanted
    keys = {e.key for wanted in expected.values() for e in wanted}
    sizes = (
        dict(S3Object.objects.filter(bucket=settings.TOQ_MEDIA_BUCKET, key__in=list(keys)).values_list("key", "size"))
        if keys
        else {}
    )
    for pk, wanted in expected.items():
        out[pk] = [
            DerivativeFact(
                raw_key=e.raw_key,
                key=e.key,
                kind=e.kind,
                outcome="missing" if e.key not in sizes else ("zero_bytes" if sizes[e.key] == 0 else "present"),
            )
            for e in wanted
        ]
    return out


def _lambda_snapshots() -> dict[str, list[LambdaConfigSnapshot]]:
    """Every known configuration of the watched functions (a handful of rows), by function name."""
    names = [f"listing-media-{cmd}-{settings.TOQ_ENV}" for cmd in WATCHED_FUNCTION_CMDS]
    out: dict[str, list[LambdaConfigSnapshot]] = defaultdict(list)
    for snap in LambdaConfigSnapshot.objects.filter(function_name__in=names).order_by("id"):
        out[snap.function_name].append(snap)
    return out


def _live_at(snaps: list[LambdaConfigSnapshot], at: dt.datetime | None) -> LambdaConfigSnapshot | None:
    """awslogs.selectors.lambda_config_live_at over preloaded rows (the latest LastModified ≤ at),
    else the oldest configuration known."""
    live = [s for s in snaps if at is not None and s.last_modified is not None and s.last_modified <= at]
    if live:
        return max(live, key=lambda s: (s.last_modified, s.first_seen_at))
    dated = [s for s in snaps if s.last_modified is not None]
    if dated:
        return min(dated, key=lambda s: (s.last_modified, s.id))
    return snaps[0] if snaps else None


def _lambda_configs(
    executions: list[ExecutionFacts], job: Job, snapshots: dict[str, list[LambdaConfigSnapshot]]
) -> list[LambdaConfigFact]:
    """The configuration each watched function had when the job ran (else the oldest one known)."""
    at = next((e.start_date for e in executions if e.start_date), None) or job.started_at or job.created_at
    out = []
    for cmd in WATCHED_FUNCTION_CMDS:
        snap = _live_at(snapshots.get(f"listing-media-{cmd}-{settings.TOQ_ENV}", []), at)
        if snap is None:
            continue
        out.append(
            LambdaConfigFact(
                function_name=snap.function_name,
                runtime=snap.runtime,
                last_modified=snap.last_modified,
                last_modified_raw=snap.last_modified_raw,
                code_sha256=snap.code_sha256,
                layers=[str(x.get("Arn", x) if isinstance(x, dict) else x) for x in snap.layers or []],
                environment={str(k): str(v) for k, v in (snap.environment or {}).items()},
                memory_size=snap.memory_size,
                timeout=snap.timeout,
                ephemeral_storage=snap.ephemeral_storage,
                role=snap.role,
            )
        )
    return out


def job_ids_needing_diagnosis(*, limit: int) -> list[int]:
    """Mirror job pks to (re)diagnose, never-diagnosed first: no diagnosis yet, another engine version,
    the job row or its AWS evidence changed since, or still in flight (FM-29 depends on the clock)."""
    computed = F("diagnosis__computed_at")
    return list(
        Job.objects.filter(
            Q(diagnosis__isnull=True)
            | ~Q(diagnosis__engine_version=ENGINE_VERSION)
            | Q(last_changed_at__gt=computed)
            | Q(evidence_status__collected_at__gt=computed)
            | Q(is_terminal=False, disappeared_at__isnull=True)
        )
        .order_by(computed.asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:limit]
    )
