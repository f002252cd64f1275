"""Collection: ask AWS, then store through awslogs.services.store (AWS calls never inside a transaction)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import CharField, F, Q
from django.db.models.functions import Cast
from django.utils import timezone

from awslogs import client, parsers
from awslogs.models import (
    EvidenceStatus,
    Execution,
    FoundVia,
    LogCursor,
    LogEvent,
    LogGroupStatus,
    MediaConvertJob,
    MissingReason,
    S3Object,
)
from awslogs.services import store
from jobs.models import Job, JobKind, MediaAsset

logger = logging.getLogger(__name__)

LAMBDA_COMMANDS = ("validate", "thumbnails", "video_thumbnails", "consolidate", "callback-dispatch", "callback", "zip")


def lambda_function_names() -> list[str]:
    return [f"listing-media-{cmd}-{settings.TOQ_ENV}" for cmd in LAMBDA_COMMANDS]


def log_groups() -> list[str]:
    """Reference §1.2 log groups, the processing machine's group, and the TOQ server's (if configured)."""
    groups = [f"/aws/lambda/{name}" for name in lambda_function_names()]
    groups.append(f"/aws/stepfunctions/listing-media-processing-sm-{settings.TOQ_ENV}")
    if settings.TOQ_SERVER_LOG_GROUP:
        groups.append(settings.TOQ_SERVER_LOG_GROUP)
    return groups


def validate_log_group() -> str:
    return f"/aws/lambda/listing-media-validate-{settings.TOQ_ENV}"


@dataclass
class Missing:
    item: str
    target: str
    reason: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"item": self.item, "target": self.target, "reason": self.reason, "detail": self.detail[:500]}


@dataclass
class PassContext:
    """State shared by the jobs of one pass, so 1,000 jobs do not list the same things 1,000 times."""

    state_machines: dict[str, str] | None = None
    listed: dict[str, list[tuple[dt.datetime | None, dict[str, Any]]]] = field(default_factory=dict)
    listing_done: dict[str, bool] = field(default_factory=dict)
    iterators: dict[str, Iterator[dict[str, Any]]] = field(default_factory=dict)
    listed_prefixes: set[str] = field(default_factory=set)
    # log group → [start_ms, end_ms] already read in this pass (jobs of one pass have overlapping windows)
    read_windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    missing_groups: dict[str, client.AwsError] = field(default_factory=dict)
    existing_groups: set[str] = field(default_factory=set)
    # DescribeExecution answers already fetched in this pass (discovery describes every listed one)
    describes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # state machine ARN → {execution ARN: jobId} of executions stored (loaded once per pass)
    known_executions: dict[str, dict[str, int | None]] = field(default_factory=dict)

    def state_machine_arn(self, name: str) -> str | None:
        if self.state_machines is None:
            self.state_machines = {sm["name"]: sm["stateMachineArn"] for sm in client.sfn_list_state_machines()}
        return self.state_machines.get(name)

    def executions_since(self, sm_arn: str, since: dt.datetime) -> list[dict[str, Any]]:
        """Executions of a machine started at or after `since` (ListExecutions is newest first)."""
        listed = self.listed.setdefault(sm_arn, [])
        iterator = self.iterators.setdefault(sm_arn, client.sfn_list_executions(sm_arn))
        while not self.listing_done.get(sm_arn):
            oldest = listed[-1][0] if listed else None
            if oldest is not None and oldest < since:
                break
            item = next(iterator, None)
            if item is None:
                self.listing_done[sm_arn] = True
                break
            listed.append((parsers.parse_timestamp(item.get("startDate")), item))
        return [item for started, item in listed if (started or since) >= since]


@dataclass
class JobResult:
    job_id: int
    executions: int = 0
    changed: bool = False
    log_events: int = 0
    missing: list[Missing] = field(default_factory=list)


def _record_missing(result: JobResult, item: str, target: str, exc: client.AwsError) -> None:
    """Record a definitive answer (not found, access denied, other AWS error). Throttling/5xx that
    outlived botocore's retries is re-raised: the Celery task retries the job with backoff (what
    was stored so far is kept; the retry only does what is left)."""
    if isinstance(exc, client.AwsTransientError):
        raise exc
    reason = {
        "not_found": MissingReason.NOT_FOUND,
        "access_denied": MissingReason.ACCESS_DENIED,
    }.get(exc.reason, MissingReason.ERROR)
    result.missing.append(Missing(item=item, target=target, reason=reason, detail=str(exc)))


def job_window(job: Job) -> tuple[dt.datetime, dt.datetime]:
    """When this job's executions can have started: its own times, else bounded by neighbouring jobs,
    else AWSLOGS_SEARCH_BACK_DAYS back. A job may lack created_at (old schema) and started_at (no callback)."""
    now = timezone.now()
    own = [t for t in (job.created_at, job.started_at) if t is not None]
    if own:
        start = min(own)
    else:
        previous = (
            Job.objects.current()
            .filter(toq_id__lt=job.toq_id)
            .filter(Q(created_at__isnull=False) | Q(started_at__isnull=False) | Q(completed_at__isnull=False))
            .order_by("-toq_id")
            .values_list("created_at", "started_at", "completed_at")
            .first()
        )
        bounds = [t for t in (previous or ()) if t is not None]
        start = min(bounds) if bounds else now - dt.timedelta(days=settings.AWSLOGS_SEARCH_BACK_DAYS)
        if job.completed_at is not None:
            start = max(start, job.completed_at - dt.timedelta(days=settings.AWSLOGS_SEARCH_BACK_DAYS))
    end = job.completed_at if job.completed_at is not None and job.is_terminal else now
    margin = dt.timedelta(seconds=settings.AWSLOGS_LOG_MARGIN_SECONDS)
    return start - margin, max(end, start) + margin


def _is_finalization(job: Job) -> bool:
    return job.kind == JobKind.FINALIZATION or "finalization" in (job.external_id or "")


def _collect_logs(
    ctx: PassContext, result: JobResult, job: Job, groups: list[str], start: dt.datetime, end: dt.datetime
) -> None:
    start_ms, end_ms = parsers.to_epoch_ms(start), min(parsers.to_epoch_ms(end), parsers.to_epoch_ms(timezone.now()))
    cursors = {c.log_group: c for c in LogCursor.objects.filter(job=job, log_group__in=groups)}
    for group in groups:
        if group in ctx.missing_groups:
            _record_missing(result, "log group", group, ctx.missing_groups[group])
            continue
        cursor = cursors.get(group)
        read_from = start_ms
        if cursor is not None and cursor.start_ms <= start_ms:
            read_from = max(start_ms, cursor.end_ms + 1)
        done = ctx.read_windows.get(group)
        if done is not None and done[0] <= read_from:
            read_from = max(read_from, done[1] + 1)
        if read_from > end_ms:
            _advance_cursor(job, group, cursor, start_ms, end_ms)
            continue
        try:
            # All pages first: an invocation's START/END and its app lines can straddle pages, and
            # attribution needs the whole invocation.
            events: list[dict[str, Any]] = []
            for page in client.logs_filter_log_events(group, start_ms=read_from, end_ms=end_ms):
                events.extend(page)
            result.log_events += store.log_events_store(log_group=group, events=events)
        except client.AwsNotFoundError as exc:
            status, _ = LogGroupStatus.objects.get_or_create(name=group, defaults={"exists": False})
            store.update_if_changed(status, {"exists": False, "error": str(exc)[:512]})
            ctx.missing_groups[group] = exc
            _record_missing(result, "log group", group, exc)
            continue
        except client.AwsError as exc:
            _record_missing(result, "log group", group, exc)
            continue
        if group not in ctx.existing_groups:
            if not LogGroupStatus.objects.filter(name=group, exists=True, error="").exists():
                LogGroupStatus.objects.update_or_create(name=group, defaults={"exists": True, "error": ""})
            ctx.existing_groups.add(group)
        if done is None or done[0] > read_from:
            ctx.read_windows[group] = (read_from, end_ms)
        else:
            ctx.read_windows[group] = (done[0], max(done[1], end_ms))
        _advance_cursor(job, group, cursor, start_ms, end_ms)


def _advance_cursor(job: Job, group: str, cursor: LogCursor | None, start_ms: int, end_ms: int) -> None:
    new_start = min(start_ms, cursor.start_ms) if cursor else start_ms
    # Only a window that is over (minus the margin for late ingestion) counts as read.
    safe_end = min(end_ms, parsers.to_epoch_ms(timezone.now()) - settings.AWSLOGS_LOG_MARGIN_SECONDS * 1000)
    if cursor is None:
        LogCursor.objects.create(job=job, log_group=group, start_ms=new_start, end_ms=max(safe_end, new_start - 1))
    else:
        store.update_if_changed(cursor, {"start_ms": new_start, "end_ms": max(cursor.end_ms, safe_end)})


def _candidate_arns(ctx: PassContext, result: JobResult, job: Job, start: dt.datetime) -> dict[str, str]:
    """ARN → how it was found."""
    found: dict[str, str] = {}
    if job.external_id and job.external_id.startswith("arn:aws:states:"):
        found[job.external_id] = FoundVia.EXTERNAL_ID
    if _is_finalization(job):
        sm_name = f"listing-media-finalization-sm-{settings.TOQ_ENV}"
        try:
            sm_arn = ctx.state_machine_arn(sm_name)
        except client.AwsError as exc:
            _record_missing(result, "state machine", sm_name, exc)
            return found
        if sm_arn and not found:
            name = f"finalization-{job.listing_identity_id}-{job.toq_id}"
            found[sm_arn.replace(":stateMachine:", ":execution:") + ":" + name] = FoundVia.NAME
        return found
    # The validate Lambda's line is the only link before a callback.
    for arn in (
        LogEvent.objects.filter(job_toq_id=job.toq_id, msg="Started Step Function execution")
        .exclude(execution_arn="")
        .values_list("execution_arn", flat=True)
    ):
        found.setdefault(arn, FoundVia.VALIDATE_LOG)
    sm_name = f"listing-media-processing-sm-{settings.TOQ_ENV}"
    try:
        sm_arn = ctx.state_machine_arn(sm_name)
        if sm_arn is None:
            result.missing.append(Missing("state machine", sm_name, MissingReason.NOT_FOUND))
            return found
        known = ctx.known_executions.get(sm_arn)
        if known is None:
            known = dict(Execution.objects.filter(state_machine_arn=sm_arn).values_list("arn", "job_toq_id"))
            ctx.known_executions[sm_arn] = known
        for listed in ctx.executions_since(sm_arn, start):
            arn = listed["executionArn"]
            if arn not in known:
                # Read jobId from the input; store it whoever it belongs to (orphans stay visible).
                describe = client.sfn_describe_execution(arn)
                ctx.describes[arn] = describe
                execution, _ = store.execution_store(describe=describe, found_via=FoundVia.LIST_EXECUTIONS)
                known[arn] = execution.job_toq_id
            if known[arn] == job.toq_id:
                found.setdefault(arn, FoundVia.LIST_EXECUTIONS)
    except client.AwsError as exc:
        _record_missing(result, "execution list", sm_name, exc)
    return found


def _collect_execution(ctx: PassContext, result: JobResult, arn: str, found_via: str) -> Execution | None:
    existing = Execution.objects.filter(arn=arn).first()
    if existing and existing.is_closed and existing.history_complete and existing.definition is not None:
        return existing  # closed and complete: nothing can change any more
    describe = ctx.describes.pop(arn, None)
    if describe is None:
        try:
            describe = client.sfn_describe_execution(arn)
        except client.AwsError as exc:
            _record_missing(result, "execution", arn, exc)
            return existing
    history: list[dict[str, Any]] | None = None
    try:
        history = client.sfn_get_execution_history(arn)
    except client.AwsError as exc:
        _record_missing(result, "execution history", arn, exc)
    definition: dict[str, Any] | None = None
    if existing is None or existing.definition is None:
        try:
            definition = client.sfn_describe_state_machine_for_execution(arn)
        except client.AwsError as exc:
            _record_missing(result, "state machine definition", arn, exc)
    execution, changed = store.execution_store(
        describe=describe, found_via=found_via, history=history, definition=definition
    )
    result.changed |= changed
    return execution


def _collect_mediaconvert(result: JobResult, execution: Execution) -> None:
    for job_id in execution.timeline.get("mediaconvert_job_ids", []):
        known = MediaConvertJob.objects.filter(job_id=job_id).first()
        if known is not None and known.is_terminal:
            continue
        try:
            data = client.mediaconvert_get_job(job_id)
        except client.AwsError as exc:
            _record_missing(result, "mediaconvert job", job_id, exc)
            continue
        _, changed = store.mediaconvert_job_store(data=data, execution=execution)
        result.changed |= changed
        if data.get("Job", {}).get("Status") not in ("COMPLETE", "ERROR", "CANCELED"):
            result.missing.append(Missing("mediaconvert job", job_id, MissingReason.NOT_YET))


def _raw_assets(job: Job, executions: list[Execution]) -> list[tuple[str, str]]:
    """The raw keys a job processed: from its execution input, else the listing's mirrored assets."""
    for execution in executions:
        data = parsers.loads_or_none(execution.input)
        assets = data.get("assets") if isinstance(data, dict) else None
        if isinstance(assets, list) and assets:
            out = []
            for asset in assets:
                if isinstance(asset, dict) and asset.get("key"):
                    out.append((str(asset["key"]), str(asset.get("type", ""))))
                elif isinstance(asset, str):
                    out.append((asset, "VIDEO" if "/video/" in asset else "PHOTO"))
            return out
    return [
        (key, asset_type)
        for key, asset_type in MediaAsset.objects.filter(
            listing_identity_id=job.listing_identity_id, superseded_at__isnull=True, s3_key_raw__isnull=False
        ).values_list("s3_key_raw", "asset_type")
        if key
    ]


def _collect_s3(ctx: PassContext, result: JobResult, job: Job, executions: list[Execution]) -> None:
    bucket = settings.TOQ_MEDIA_BUCKET
    prefix = f"{job.listing_identity_id}/"
    if prefix not in ctx.listed_prefixes:
        try:
            store.s3_objects_store(bucket=bucket, objects=client.s3_list_objects(bucket, prefix))
        except client.AwsError as exc:
            _record_missing(result, "s3 listing", f"s3://{bucket}/{prefix}", exc)
            return
        ctx.listed_prefixes.add(prefix)
    finalization = _is_finalization(job)
    raw = [] if finalization else _raw_assets(job, executions)
    expected = store.derivatives_expected(job=job, raw_assets=raw, with_zip=finalization and job.is_terminal)
    # ListObjectsV2 gives no content type: HEAD the expected derivatives that exist, once.
    for key in S3Object.objects.filter(bucket=bucket, key__in=[e.key for e in expected], content_type="").values_list(
        "key", flat=True
    ):
        try:
            store.s3_object_head_store(bucket=bucket, key=key, head=client.s3_head_object(bucket, key))
        except client.AwsError as exc:
            _record_missing(result, "s3 object", f"s3://{bucket}/{key}", exc)
    checks = store.derivatives_check(job=job, bucket=bucket, raw_assets=raw, with_zip=finalization and job.is_terminal)
    for check in checks:
        if check.outcome != "present":
            result.missing.append(Missing("s3 derivative", check.key, MissingReason.NOT_FOUND, check.outcome))


def job_evidence_collect(*, job_id: int, ctx: PassContext | None = None) -> JobResult:
    """Collect everything AWS knows about one job and record what is missing and why.

    Idempotent: a second run against unchanged AWS state writes nothing.
    Raises Job.DoesNotExist for an unknown id."""
    ctx = ctx or PassContext()
    job = Job.objects.get(pk=job_id)
    result = JobResult(job_id=job_id)
    start, end = job_window(job)
    if not _is_finalization(job):
        _collect_logs(ctx, result, job, [validate_log_group()], start, end)
    executions: list[Execution] = []
    for arn, via in _candidate_arns(ctx, result, job, start).items():
        execution = _collect_execution(ctx, result, arn, via)
        if (
            execution is not None
            and execution.job_id != job.pk
            and store.job_for_execution(execution.job_toq_id, execution.start_date) == job.pk
        ):
            # The job row appeared after the execution was stored (sync lag): no longer an orphan.
            execution = store.execution_link_job(execution=execution, job=job)
        if execution is not None and execution.job_id not in (None, job.pk):
            continue  # FM-38: same TOQ id, another generation's execution
        if execution is not None:
            executions.append(execution)
            if not execution.is_closed:
                result.missing.append(Missing("execution", arn, MissingReason.NOT_YET, execution.status))
            _collect_mediaconvert(result, execution)
    result.executions = len(executions)
    if not executions:
        result.missing.append(Missing("execution", f"job {job.toq_id}", MissingReason.NOT_FOUND))
    # Logs over the union of the job's and its executions' windows.
    margin = dt.timedelta(seconds=settings.AWSLOGS_LOG_MARGIN_SECONDS)
    log_start = min([start, *[e.start_date - margin for e in executions if e.start_date]])
    log_end = max([end, *[(e.stop_date or timezone.now()) + margin for e in executions]])
    groups = [g for g in log_groups() if not (_is_finalization(job) and "/aws/stepfunctions/" in g)]
    _collect_logs(ctx, result, job, groups, log_start, log_end)
    for execution in executions:
        result.changed |= bool(store.execution_link_invocations(execution=execution))
    _collect_s3(ctx, result, job, executions)
    evidence_status_record(job=job, missing=result.missing)
    return result


def evidence_status_record(*, job: Job, missing: list[Missing]) -> bool:
    """Write the job's EvidenceStatus only if it changed; returns whether it did."""
    # A missing log group is recorded on LogGroupStatus; it does not make a job's evidence incomplete
    # (a function that never ran for this job has no reason to have logs).
    unique = list({(m.item, m.target): m.as_dict() for m in missing}.values())
    blocking = [m for m in unique if m["item"] != "log group"]
    values = {"complete": not blocking, "missing": unique, "job_row_hash": str(job.row_hash)}
    status = EvidenceStatus.objects.filter(job=job).first()
    if status is None:
        EvidenceStatus.objects.create(job=job, collected_at=timezone.now(), **values)
        return True
    if any(getattr(status, k) != v for k, v in values.items()):
        values["collected_at"] = timezone.now()
        return store.update_if_changed(status, values)
    return False


def lambda_configs_snapshot() -> tuple[int, list[Missing]]:
    """GetFunctionConfiguration for every TOQ Lambda; a new snapshot only when the config changed."""
    new, missing = 0, []
    for name in lambda_function_names():
        try:
            data = client.lambda_get_function_configuration(name)
        except client.AwsError as exc:
            missing.append(Missing("lambda configuration", name, exc.reason, str(exc)))
            continue
        _, created = store.lambda_config_store(data=data)
        new += int(created)
    return new, missing


def queues_snapshot(*, peek_batches: int = 5) -> tuple[int, list[Missing]]:
    """Depth of the main queue and DLQ; DLQ messages peeked with VisibilityTimeout=0 (never deleted)."""
    missing: list[Missing] = []
    new_messages = 0
    for queue_name in (settings.TOQ_MAIN_QUEUE, settings.TOQ_DLQ):
        try:
            url = client.sqs_get_queue_url(queue_name)
            attrs = client.sqs_queue_attributes(url)
        except client.AwsError as exc:
            missing.append(Missing("queue", queue_name, exc.reason, str(exc)))
            store.queue_snapshot_record(queue_name=queue_name, values={"error": str(exc)[:512]})
            continue
        store.queue_snapshot_record(
            queue_name=queue_name,
            values={
                "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
            },
        )
        if queue_name == settings.TOQ_DLQ:
            for _ in range(peek_batches):
                messages = client.sqs_peek_messages(url, max_messages=10)
                added = store.dlq_messages_store(queue_name=queue_name, messages=messages)
                new_messages += added
                if not messages or not added:
                    break
    return new_messages, missing


def jobs_needing_evidence(*, limit: int) -> list[int]:
    """Ids of current jobs that need a collection: never collected, in flight, changed, or incomplete."""
    qs = (
        Job.objects.current()
        .filter(
            Q(evidence_status__isnull=True)
            | Q(is_terminal=False)
            | Q(evidence_status__complete=False)
            # row_hash's column type is the jobs app's business: compare as text.
            | ~Q(evidence_status__job_row_hash=Cast(F("row_hash"), CharField()))
        )
        .order_by("-toq_id")
        .values_list("id", flat=True)
    )
    return list(qs[:limit])


@dataclass
class PassSummary:
    jobs: int = 0
    executions: int = 0
    log_events: int = 0
    incomplete: int = 0
    lambda_configs_new: int = 0
    dlq_messages_new: int = 0
    missing: list[Missing] = field(default_factory=list)


def evidence_pass(*, job_ids: list[int] | None = None, limit: int | None = None) -> PassSummary:
    """One whole collection pass in the foreground (collect_aws)."""
    summary = PassSummary()
    summary.lambda_configs_new, missing = lambda_configs_snapshot()
    summary.missing.extend(missing)
    summary.dlq_messages_new, missing = queues_snapshot()
    summary.missing.extend(missing)
    ids = job_ids if job_ids is not None else jobs_needing_evidence(limit=limit or settings.AWSLOGS_DISPATCH_LIMIT)
    ctx = PassContext()
    for job_id in ids:
        try:
            result = job_evidence_collect(job_id=job_id, ctx=ctx)
        except client.AwsTransientError as exc:
            # Foreground pass: no task retry here; record it, the next pass picks the job again.
            logger.warning("awslogs: job %s: AWS still failing after retries: %s", job_id, exc)
            job = Job.objects.get(pk=job_id)
            evidence_status_record(job=job, missing=[Missing("collection", str(job), MissingReason.ERROR, str(exc))])
            summary.jobs += 1
            summary.incomplete += 1
            continue
        summary.jobs += 1
        summary.executions += result.executions
        summary.log_events += result.log_events
        summary.incomplete += int(any(m.item != "log group" for m in result.missing))
    return summary
