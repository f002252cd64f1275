"""Collection: ask AWS, then store through awslogs.services.store (AWS calls never inside a transaction).

Split by concern (house style): `context` (what a pass shares, prefetch, buffered writes),
`collect_logs` (log groups and cursors), `snapshots` (Lambda configurations, queues), `rawkeys`
(job ↔ raw key), `callbacks` (a rejected callback's server lines, by time); re-exported here for
callers of the collection API.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import CharField, F, Min, Q
from django.db.models.functions import Cast
from django.utils import timezone

from awslogs import client, parsers
from awslogs.models import Execution, FoundVia, MediaConvertJob, MissingReason, S3Object
from awslogs.services import callbacks, rawkeys, store
from awslogs.services.collect_logs import collect_logs, lambda_function_names, log_groups, validate_log_group
from awslogs.services.context import JobResult, Missing, PassContext, record_missing
from awslogs.services.runs import collection_run_recorded
from awslogs.services.snapshots import lambda_configs_snapshot, queues_snapshot
from jobs.models import Job, JobKind

__all__ = [
    "JobResult",
    "Missing",
    "PassContext",
    "PassSummary",
    "evidence_pass",
    "evidence_status_record",
    "job_evidence_collect",
    "job_window",
    "jobs_needing_evidence",
    "lambda_configs_snapshot",
    "lambda_function_names",
    "log_groups",
    "neighbour_job_time",
    "queues_snapshot",
    "validate_log_group",
]

logger = logging.getLogger(__name__)

# Jobs whose rows are prefetched together, and whose buffered writes are flushed together.
PASS_BATCH = 200


def job_window(job: Job) -> tuple[dt.datetime, dt.datetime]:
    """When this job's executions can have started: its own times, else bounded by neighbouring jobs
    (the previous job's earliest time below, the next job's earliest time above), else
    AWSLOGS_SEARCH_BACK_DAYS back. A job may lack created_at (old schema) and started_at (no callback)."""
    now = timezone.now()
    own = [t for t in (job.created_at, job.started_at) if t is not None]
    end = job.completed_at if job.completed_at is not None and job.is_terminal else now
    if own:
        start = min(own)
    else:
        previous = neighbour_job_time(job, before=True)
        start = previous if previous is not None else now - dt.timedelta(days=settings.AWSLOGS_SEARCH_BACK_DAYS)
        if job.completed_at is not None:
            start = max(start, job.completed_at - dt.timedelta(days=settings.AWSLOGS_SEARCH_BACK_DAYS))
        following = neighbour_job_time(job, before=False)
        if following is not None and following >= start:
            # Jobs are processed in id order: this job's executions started before the next job's did.
            # (A next job older than the window's start contradicts that order — e.g. a reused id —
            # and bounds nothing.)
            end = min(end, following)
    margin = dt.timedelta(seconds=settings.AWSLOGS_LOG_MARGIN_SECONDS)
    return start - margin, max(end, start) + margin


def neighbour_job_time(job: Job, *, before: bool) -> dt.datetime | None:
    """The earliest known time of the nearest job below (before=True) or above this job's TOQ id that
    has one: its created_at, started_at, completed_at (previous only) or its executions' first start."""
    qs = Job.objects.current().annotate(first_execution=Min("executions__start_date"))
    has_time = Q(created_at__isnull=False) | Q(started_at__isnull=False) | Q(first_execution__isnull=False)
    row: tuple[dt.datetime | None, ...] | None
    if before:
        qs = qs.filter(toq_id__lt=job.toq_id).filter(has_time | Q(completed_at__isnull=False)).order_by("-toq_id")
        row = qs.values_list("created_at", "started_at", "first_execution", "completed_at").first()
    else:
        qs = qs.filter(toq_id__gt=job.toq_id).filter(has_time).order_by("toq_id")
        row = qs.values_list("created_at", "started_at", "first_execution").first()
    times = [t for t in (row or ()) if t is not None]
    return min(times) if times else None


def _is_finalization(job: Job) -> bool:
    return job.kind == JobKind.FINALIZATION or "finalization" in (job.external_id or "")


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
            record_missing(result, "state machine", sm_name, exc)
            return found
        if sm_arn and not found:
            name = f"finalization-{job.listing_identity_id}-{job.toq_id}"
            found[sm_arn.replace(":stateMachine:", ":execution:") + ":" + name] = FoundVia.NAME
        return found
    # The validate Lambda's line is the only link before a callback.
    for arn in sorted(ctx.validate_arns_of(job.toq_id)):
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
            ctx.named[sm_arn] = Counter(known.values())
        new = ctx.list_executions_since(sm_arn, start, known)
        _discover(ctx, sm_arn, known, new)
        ctx.index_listed(sm_arn, new, known)
        for arn in ctx.listed_for_job(sm_arn, job.toq_id, start):
            found.setdefault(arn, FoundVia.LIST_EXECUTIONS)
    except client.AwsError as exc:
        record_missing(result, "execution list", sm_name, exc)
    return found


def _discover(ctx: PassContext, sm_arn: str, known: dict[str, int | None], arns: list[str]) -> None:
    """Describe listed executions not known yet, and store them whoever they belong to (the jobId
    is in the input; orphans stay visible). A few queries for all of them, not a few each.

    One whose jobId is a job of this pass is stored when that job collects it (with its history
    and definition, one write instead of two); should the pass stop first, the next lists it again."""
    if not arns:
        return
    for arn in arns:
        if arn not in ctx.describes:
            ctx.describes[arn] = client.sfn_describe_execution(arn)
    toq_ids = {arn: parsers.parse_describe_execution(ctx.describes[arn]).job_toq_id for arn in arns}
    generations = ctx.ensure_generations({t for t in toq_ids.values() if t is not None})
    ctx.load_executions(arns)
    ctx.named.setdefault(sm_arn, Counter()).update(toq_ids[arn] for arn in arns if arn not in known)
    for arn in arns:
        toq_id = toq_ids[arn]
        known[arn] = toq_id
        if ctx.executions[arn] is None and toq_id is not None and toq_id in ctx.pass_toq_ids:
            continue
        execution, _ = store.execution_store(
            describe=ctx.describes[arn],
            found_via=FoundVia.LIST_EXECUTIONS,
            existing=ctx.executions[arn],
            generations=generations,
            sole_execution=ctx.sole_execution(sm_arn, arn, toq_id),
        )
        ctx.executions[arn] = execution
        known[arn] = execution.job_toq_id


def _collect_execution(ctx: PassContext, result: JobResult, arn: str, found_via: str) -> Execution | None:
    existing = ctx.execution(arn)
    if existing and existing.is_closed and existing.history_complete and existing.definition is not None:
        return existing  # closed and complete: nothing can change any more
    describe = ctx.describes.pop(arn, None)
    if describe is None:
        try:
            describe = client.sfn_describe_execution(arn)
        except client.AwsError as exc:
            record_missing(result, "execution", arn, exc)
            return existing
    history: list[dict[str, Any]] | None = None
    try:
        history = client.sfn_get_execution_history(arn)
    except client.AwsError as exc:
        record_missing(result, "execution history", arn, exc)
    definition: dict[str, Any] | None = None
    if existing is None or existing.definition is None:
        try:
            definition = client.sfn_describe_state_machine_for_execution(arn)
        except client.AwsError as exc:
            record_missing(result, "state machine definition", arn, exc)
    record = parsers.parse_describe_execution(describe)
    generations = ctx.ensure_generations({record.job_toq_id} if record.job_toq_id is not None else set())
    execution, changed = store.execution_store(
        describe=describe,
        found_via=found_via,
        history=history,
        definition=definition,
        existing=existing,
        generations=generations,
        sole_execution=existing is None and ctx.sole_execution(record.state_machine_arn, arn, record.job_toq_id),
    )
    ctx.executions[arn] = execution
    result.changed |= changed
    return execution


def _attribute_raw_keys(ctx: PassContext, job: Job, executions: list[Execution]) -> int:
    """Record the job's raw keys (execution input, DLQ body, callback) and give the job the lines
    that name only one of them (`Video thumbnail generation failed`, `Inspecting asset`, …)."""
    links = rawkeys.raw_key_links(job=job, executions=executions, dlq_messages=ctx.dlq_messages_of(job.pk))
    known = ctx.raw_keys_of(job.pk)
    added = rawkeys.job_raw_keys_record(job=job, links=links, known=known)
    keys = {key for key, _ in known}
    return added + rawkeys.log_events_attribute_by_raw_key(
        job=job, raw_keys=keys, windows=rawkeys.execution_windows(executions)
    )


def _collect_mediaconvert(result: JobResult, execution: Execution) -> None:
    for job_id in execution.timeline.get("mediaconvert_job_ids", []):
        known = MediaConvertJob.objects.filter(job_id=job_id).first()
        if known is not None and known.is_terminal:
            continue
        try:
            data = client.mediaconvert_get_job(job_id)
        except client.AwsError as exc:
            record_missing(result, "mediaconvert job", job_id, exc)
            continue
        _, changed = store.mediaconvert_job_store(data=data, execution=execution)
        result.changed |= changed
        if data.get("Job", {}).get("Status") not in ("COMPLETE", "ERROR", "CANCELED"):
            result.missing.append(Missing("mediaconvert job", job_id, MissingReason.NOT_YET))


def _raw_assets(ctx: PassContext, job: Job, executions: list[Execution]) -> list[tuple[str, str]]:
    """The raw keys a job processed: from its execution input, else the listing's mirrored assets."""
    for execution in executions:
        assets = rawkeys.assets_raw_keys(parsers.loads_or_none(execution.input))
        if assets:
            return assets
    return ctx.assets_of_listing(job.listing_identity_id)


def _collect_s3(ctx: PassContext, result: JobResult, job: Job, executions: list[Execution]) -> None:
    bucket = settings.TOQ_MEDIA_BUCKET
    prefix = f"{job.listing_identity_id}/"
    if prefix not in ctx.listed_prefixes:
        try:
            store.s3_objects_store(bucket=bucket, objects=client.s3_list_objects(bucket, prefix))
        except client.AwsError as exc:
            record_missing(result, "s3 listing", f"s3://{bucket}/{prefix}", exc)
            return
        ctx.listed_prefixes.add(prefix)
    finalization = _is_finalization(job)
    raw = [] if finalization else _raw_assets(ctx, job, executions)
    expected = store.derivatives_expected(job=job, raw_assets=raw, with_zip=finalization and job.is_terminal)
    if not expected and not ctx.checks.get(job.pk):
        return  # nothing expected, nothing checked before: no query
    # ListObjectsV2 gives no content type: HEAD the expected derivatives that exist, once.
    for key in S3Object.objects.filter(bucket=bucket, key__in=[e.key for e in expected], content_type="").values_list(
        "key", flat=True
    ):
        try:
            store.s3_object_head_store(bucket=bucket, key=key, head=client.s3_head_object(bucket, key))
        except client.AwsError as exc:
            record_missing(result, "s3 object", f"s3://{bucket}/{key}", exc)
    checks = store.derivatives_compare(job=job, bucket=bucket, expected=expected, existing=ctx.checks.get(job.pk))
    for check in checks:
        if check.outcome != "present":
            result.missing.append(Missing("s3 derivative", check.key, MissingReason.NOT_FOUND, check.outcome))


def job_evidence_collect(*, job_id: int, ctx: PassContext | None = None) -> JobResult:
    """Collect everything AWS knows about one job and record what is missing and why.

    Idempotent: a second run against unchanged AWS state writes nothing.
    Raises Job.DoesNotExist for an unknown id."""
    if ctx is None:
        ctx = PassContext()
        try:
            return job_evidence_collect(job_id=job_id, ctx=ctx)
        finally:
            ctx.flush()
    job = ctx.job(job_id)
    result = JobResult(job_id=job_id)
    start, end = job_window(job)
    if not _is_finalization(job):
        collect_logs(ctx, result, job, [validate_log_group()], start, end)
    executions: list[Execution] = []
    for arn, via in _candidate_arns(ctx, result, job, start).items():
        execution = _collect_execution(ctx, result, arn, via)
        if (
            execution is not None
            and execution.job_id != job.pk
            and store.job_for_execution(execution.job_toq_id, execution.start_date, generations=ctx.generations)
            == job.pk
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
    collect_logs(ctx, result, job, groups, log_start, log_end)
    result.changed |= bool(_attribute_raw_keys(ctx, job, executions))
    if ctx.rejected_callback_read:
        result.changed |= bool(callbacks.log_events_attribute_rejected_callbacks(since=log_start, until=log_end))
    for execution in executions:
        result.changed |= bool(store.execution_link_invocations(execution=execution))
    _collect_s3(ctx, result, job, executions)
    evidence_status_record(job=job, missing=result.missing, ctx=ctx)
    return result


def evidence_status_record(*, job: Job, missing: list[Missing], ctx: PassContext | None = None) -> bool:
    """Write the job's EvidenceStatus only if it changed; returns whether it did."""
    # A missing log group is recorded on LogGroupStatus; it does not make a job's evidence incomplete
    # (a function that never ran for this job has no reason to have logs).
    unique = list({(m.item, m.target): m.as_dict() for m in missing}.values())
    blocking = [m for m in unique if m["item"] != "log group"]
    values = {"complete": not blocking, "missing": unique, "job_row_hash": str(job.row_hash)}
    own = ctx is None
    if ctx is None:
        ctx = PassContext()
        ctx.preload([job.pk])
    changed = ctx.status_set(job, {**values, "collected_at": timezone.now()})
    if own:
        ctx.flush()
    return changed


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
    """One whole collection pass in the foreground (collect_aws). Recorded as a CollectionRun unless
    `job_ids` picks the jobs (a targeted run says nothing about the periodic collection)."""
    if job_ids is not None:
        return _evidence_pass(job_ids=job_ids, limit=limit)
    with collection_run_recorded() as run:
        summary = _evidence_pass(job_ids=None, limit=limit)
        run.jobs = summary.jobs
    return summary


def _evidence_pass(*, job_ids: list[int] | None, limit: int | None) -> PassSummary:
    summary = PassSummary()
    summary.lambda_configs_new, missing = lambda_configs_snapshot()
    summary.missing.extend(missing)
    summary.dlq_messages_new, missing = queues_snapshot()
    summary.missing.extend(missing)
    ids = job_ids if job_ids is not None else jobs_needing_evidence(limit=limit or settings.AWSLOGS_DISPATCH_LIMIT)
    ctx = PassContext()
    ctx.pass_toq_ids = set(Job.objects.filter(pk__in=ids).values_list("toq_id", flat=True))
    try:
        for index, job_id in enumerate(ids):
            if index % PASS_BATCH == 0:
                ctx.flush()
                ctx.preload(ids[index : index + PASS_BATCH])
            try:
                result = job_evidence_collect(job_id=job_id, ctx=ctx)
            except client.AwsTransientError as exc:
                # Foreground pass: no task retry here; record it, the next pass picks the job again.
                logger.warning("awslogs: job %s: AWS still failing after retries: %s", job_id, exc)
                job = ctx.job(job_id)
                missing = [Missing("collection", str(job), MissingReason.ERROR, str(exc))]
                evidence_status_record(job=job, missing=missing, ctx=ctx)
                summary.jobs += 1
                summary.incomplete += 1
                continue
            summary.jobs += 1
            summary.executions += result.executions
            summary.log_events += result.log_events
            summary.incomplete += int(any(m.item != "log group" for m in result.missing))
    finally:
        ctx.flush()  # what the jobs collected so far is kept, whatever stopped the pass
    return summary
