"""Trigger, stuck and reconciled jobs, deployment and housekeeping: FM-05..FM-08, FM-29, FM-30, FM-37..FM-39."""

from __future__ import annotations

import datetime as dt

from diagnosis import classify
from diagnosis.evidence import (
    VIDEO_BRANCH_STATE,
    Evidence,
    excerpt,
)
from diagnosis.rules.base import (
    CONSEQUENCE,
    CONTRIBUTING,
    ORIGIN,
    RECONCILER_PREFIX,
    RETENTION_DAYS,
    Candidate,
    EvidenceItem,
    field_text,
    job_item,
    log_item,
    logs_with,
)
from diagnosis.rules.derivatives import branch_errors

# --- stuck, reconciled, trigger (FM-05..FM-08, FM-29, FM-30) -------------------------------------


def rule_trigger(ev: Evidence) -> list[Candidate]:
    """FM-05 (unparseable SQS body), FM-06 (StartExecution failed / DLQ), FM-08 (duplicates)."""
    out = []
    bad = logs_with(ev, "Failed to unmarshal SQS body structure", "Failed to parse assets as struct or string")
    if bad:
        out.append(
            Candidate(
                "FM-05",
                "unparseable-body",
                ORIGIN,
                0.85,
                [log_item(x) for x in bad],
                params={"error": excerpt(field_text(bad[0], "error") or bad[0].msg, 200)},
                message=bad[0].msg,
            )
        )
    start = logs_with(ev, "Failed to start Step Function")
    if start or ev.dlq_message_ids:
        items = [log_item(x) for x in start] + [
            EvidenceItem("log_event", "sqs-dlq", m, "message in the dead-letter queue") for m in ev.dlq_message_ids
        ]
        error = field_text(start[-1], "error") if start else ""
        cause = classify.start_execution_cause(error) if start else "message-in-dlq"
        out.append(
            Candidate(
                "FM-06",
                cause,
                ORIGIN,
                0.85 if start else 0.7,
                items,
                params={"error": excerpt(error, 200)},
                failing_state="StartExecution",
                message=error or "dlq",
            )
        )
    duplicates = [e for e in ev.executions if e.is_duplicate]
    if len(duplicates) > 1:
        out.append(
            Candidate(
                "FM-08",
                "duplicate-executions",
                CONTRIBUTING,
                0.9,
                [EvidenceItem("history_event", e.arn, "ExecutionStarted", e.status) for e in duplicates],
                params={"count": str(len(duplicates))},
                message="duplicate executions",
            )
        )
    return out


def rule_stuck(ev: Evidence, *, stuck_after_minutes: int) -> list[Candidate]:
    """FM-29: a processing job still PENDING past the threshold (TOQ's reconciler never sees it)."""
    job = ev.job
    if job.status not in ("PENDING", "RUNNING") or job.kind == "finalization" or job.disappeared_at:
        return []
    began = job.reference_time
    if began is None:
        return []
    age = (ev.now - began).total_seconds() / 60
    if age < stuck_after_minutes:
        return []
    items = [job_item(ev, "status", f"{job.status} for {int(age)} min (since {began.isoformat()})")]
    processing = [e for e in ev.executions if e.kind != "finalization"]
    missing: list[str] = []
    if not processing:
        cause = "no-execution-found"
        missing.append("execution")
    else:
        last = processing[-1]
        items.append(
            EvidenceItem("history_event", last.arn, "describe-execution", excerpt(f"{last.status} {last.error}"))
        )
        if last.status == "FAILED" and last.error != "MediaProcessingFailed":
            cause = "execution-failed-without-callback"
        elif last.status == "ABORTED":
            cause = "execution-aborted"
        elif last.status in ("RUNNING", ""):
            cause = "execution-still-running"
        elif last.status == "TIMED_OUT":
            cause = "execution-timed-out"
        else:
            cause = "callback-not-applied"
    return [
        Candidate(
            "FM-29",
            cause,
            CONSEQUENCE,
            0.9 if processing else 0.7,
            items,
            missing=missing,
            params={"minutes": str(int(age))},
            message=cause,
            can_be_origin=True,
        )
    ]


def rule_reconciled(ev: Evidence) -> list[Candidate]:
    """FM-30: TOQ's reconciler failed a RUNNING (finalization) job that got no callback in time."""
    if not ev.job.last_error.startswith(RECONCILER_PREFIX):
        return []
    items = [job_item(ev, "last_error", ev.job.last_error)]
    missing = []
    if ev.job.callback_status == "FINALIZATION_FAILED":
        items.append(job_item(ev, "callback_body", ev.job.callback_body))
    elif not ev.executions:
        missing.append("execution")
    return [
        Candidate(
            "FM-30",
            "reconciled-without-callback",
            CONSEQUENCE,
            0.9,
            items,
            missing=missing,
            message=RECONCILER_PREFIX,
            can_be_origin=True,
        )
    ]


# --- deployment and housekeeping (FM-37..FM-39) ----------------------------------------------------


def rule_deployment_drift(ev: Evidence) -> list[Candidate]:
    """FM-39: the video-thumbnail Lambda deployed without the ffmpeg layer or FFMPEG_PATH."""
    has_video = any(a.is_video and a.in_job for a in ev.assets) or any(e.branch == "video" for e in branch_errors(ev))
    if not has_video:
        return []
    out = []
    for config in ev.lambda_configs:
        if not config.function_name.startswith("listing-media-video_thumbnails"):
            continue
        en, pt = [], []
        if not config.layers:
            en.append("no layers")
            pt.append("nenhuma layer")
        if not config.environment.get("FFMPEG_PATH"):
            en.append("FFMPEG_PATH unset")
            pt.append("FFMPEG_PATH não definida")
        if not en:
            continue
        cause = "ffmpeg-layer-missing" if not config.layers else "ffmpeg-path-unset"
        modified = config.last_modified_raw or str(config.last_modified)
        detail = f"{', '.join(en)}; runtime {config.runtime or '?'}; LastModified {modified}"
        detail_pt = f"{', '.join(pt)}; runtime {config.runtime or '?'}; LastModified {modified}"
        role = config.role.rsplit("/", 1)[-1]
        if "backend" in role:
            detail += f"; role {role} (the default of scripts/deploy_lambdas.sh for new functions)"
            detail_pt += f"; papel {role} (o padrão de scripts/deploy_lambdas.sh para funções novas)"
        started = next((e.start_date for e in ev.executions if e.start_date), None)
        confidence, missing = 0.9, []
        if started and config.last_modified:
            gap = (started - config.last_modified).total_seconds() / 60
            if gap < 0:
                # Only a later configuration is known: it may not be the one that ran.
                confidence, missing = 0.6, ["video_lambda_config"]
            elif gap < 60:
                ago = f"{int(gap * 60)} s" if gap < 2 else f"{int(gap)} min"
                detail += f"; deployed {ago} before the job started"
                detail_pt += f"; implantada {ago} antes do início do job"
        items = [
            EvidenceItem("lambda_config", config.function_name, "Layers", excerpt(config.layers)),
            EvidenceItem("lambda_config", config.function_name, "Environment", excerpt(config.environment)),
            EvidenceItem(
                "lambda_config",
                config.function_name,
                "LastModified",
                config.last_modified_raw or str(config.last_modified),
            ),
        ]
        out.append(
            Candidate(
                "FM-39",
                cause,
                CONTRIBUTING,
                confidence,
                items,
                missing=missing,
                params={"function": config.function_name, "detail": detail, "detail_pt": detail_pt},
                failing_state=VIDEO_BRANCH_STATE,
                message=cause,
            )
        )
    return out


def rule_housekeeping(ev: Evidence) -> list[Candidate]:
    """FM-37 (row deleted in TOQ) and FM-38 (job id reused after a database rebuild)."""
    out = []
    if ev.job.disappeared_at:
        # The cleaner deletes terminal jobs 90 days after COALESCE(completed_at, created_at) (reference §2.5).
        ended = ev.job.completed_at or ev.job.created_at
        by_cleaner = (
            ev.job.status in ("SUCCEEDED", "PARTIAL_SUCCESS", "FAILED")
            and ended is not None
            and (ev.job.disappeared_at - ended) >= dt.timedelta(days=RETENTION_DAYS)
        )
        out.append(
            Candidate(
                "FM-37",
                "retention-cleaner" if by_cleaner else "row-deleted",
                CONSEQUENCE,
                0.8 if by_cleaner else 0.6,
                [job_item(ev, "id", f"gone from TOQ since {ev.job.disappeared_at.isoformat()}")],
                message="disappeared",
            )
        )
    if ev.job.generation > 1 or ev.job.superseded:
        out.append(
            Candidate(
                "FM-38",
                "job-id-reused",
                CONSEQUENCE,
                0.9,
                [job_item(ev, "id", f"generation {ev.job.generation}{' (superseded)' if ev.job.superseded else ''}")],
                params={"generation": str(ev.job.generation)},
                message="job id reused",
            )
        )
    return out
