"""Reads for the diagnosis: gather a job's Evidence from the mirror and the AWS evidence tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import F, Q
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
from awslogs.selectors import lambda_config_live_at, log_event_list_for_job
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
from jobs.models import Job, MediaAsset

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
    executions = _executions(job)
    input_keys = _execution_input_keys(executions) | {
        str(r.get("raw_key")) for r in job.callback_results or [] if isinstance(r, dict) and r.get("raw_key")
    }
    assets = _assets(job, input_keys)
    logs = [_log_fact(e) for e in log_event_list_for_job(job_id=job.pk, toq_id=job.toq_id)[:MAX_LOG_LINES]]
    mediaconvert = [
        MediaConvertFact(
            job_id=m.job_id,
            status=m.status,
            error_code=m.error_code,
            error_message=m.error_message,
            output_paths=[str(p) for p in m.output_paths or []],
        )
        for m in MediaConvertJob.objects.filter(
            Q(execution__job=job) | Q(job_id__in=[i for e in executions for i in e.mediaconvert_job_ids])
        ).order_by("job_id")
    ]
    status = EvidenceStatus.objects.filter(job=job).first()
    return Evidence(
        job=_job_facts(job),
        now=now or timezone.now(),
        assets=assets,
        executions=executions,
        logs=logs,
        derivatives=_derivatives(job, assets),
        s3_listed=S3Object.objects.filter(
            bucket=settings.TOQ_MEDIA_BUCKET, key__startswith=f"{job.listing_identity_id}/"
        ).exists(),
        mediaconvert=mediaconvert,
        lambda_configs=_lambda_configs(executions, job),
        dlq_message_ids=list(DlqMessage.objects.filter(job=job).values_list("message_id", flat=True)),
        collector_missing=list(status.missing) if status and isinstance(status.missing, list) else [],
    )


def _job_facts(job: Job) -> JobFacts:
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
        observation_count=job.observations.count(),
    )


def _executions(job: Job) -> list[ExecutionFacts]:
    rows = list(Execution.objects.filter(job=job).order_by("start_date", "id"))
    events: dict[int, list[tuple[int, str, int | None, dict[str, Any]]]] = {}
    for ev in HistoryEvent.objects.filter(execution__in=rows).order_by("execution_id", "event_id"):
        events.setdefault(ev.execution_id, []).append(
            (ev.event_id, ev.type, ev.previous_event_id, ev.details if isinstance(ev.details, dict) else {})
        )
    out = []
    for row in rows:
        timeline = row.timeline if isinstance(row.timeline, dict) else {}
        out.append(
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


def _assets(job: Job, input_keys: set[str]) -> list[AssetFacts]:
    rows = MediaAsset.objects.filter(
        listing_identity_id=job.listing_identity_id, superseded_at__isnull=True, disappeared_at__isnull=True
    ).order_by("toq_id")
    return [
        AssetFacts(
            toq_id=a.toq_id,
            asset_type=a.asset_type,
            status=a.status,
            s3_key_raw=a.s3_key_raw or "",
            s3_key_processed=a.s3_key_processed or "",
            metadata=a.metadata if isinstance(a.metadata, dict) else {},
            # No job↔asset table in TOQ (reference §2.1): without an input or callback naming the
            # keys, every asset of the listing is a candidate.
            in_job=(a.s3_key_raw in input_keys) if input_keys else True,
        )
        for a in rows
    ]


def _log_fact(event: LogEvent) -> LogFact:
    return LogFact(
        event_id=event.event_id,
        log_group=event.log_group,
        level=event.level,
        msg=event.msg,
        message=event.message,
        timestamp=event.timestamp,
        fields=event.fields if isinstance(event.fields, dict) else {},
        s3_key=event.s3_key,
    )


def _derivatives(job: Job, assets: list[AssetFacts]) -> list[DerivativeFact]:
    """Stored derivative checks when the collector made them, else computed from the stored listing."""
    checks = list(DerivativeCheck.objects.filter(job=job).order_by("key"))
    if checks:
        return [DerivativeFact(raw_key=c.raw_key, key=c.key, kind=c.kind, outcome=c.outcome) for c in checks]
    expected: list[parsers.ExpectedDerivative] = []
    first_video = True
    for asset in assets:
        if not asset.in_job or not asset.s3_key_raw:
            continue
        expected.extend(parsers.expected_derivatives(asset.s3_key_raw, asset.asset_type, first_video=first_video))
        first_video = first_video and not asset.is_video
    if not expected:
        return []
    sizes = dict(
        S3Object.objects.filter(bucket=settings.TOQ_MEDIA_BUCKET, key__in=[e.key for e in expected]).values_list(
            "key", "size"
        )
    )
    return [
        DerivativeFact(
            raw_key=e.raw_key,
            key=e.key,
            kind=e.kind,
            outcome="missing" if e.key not in sizes else ("zero_bytes" if sizes[e.key] == 0 else "present"),
        )
        for e in expected
    ]


def _lambda_configs(executions: list[ExecutionFacts], job: Job) -> list[LambdaConfigFact]:
    """The configuration each watched function had when the job ran (else the oldest one known)."""
    at = next((e.start_date for e in executions if e.start_date), None) or job.started_at or job.created_at
    out = []
    for cmd in WATCHED_FUNCTION_CMDS:
        name = f"listing-media-{cmd}-{settings.TOQ_ENV}"
        snap = lambda_config_live_at(function_name=name, at=at) if at else None
        if snap is None:
            snap = LambdaConfigSnapshot.objects.filter(function_name=name).order_by("last_modified", "id").first()
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
