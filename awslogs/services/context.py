"""What the jobs of one collection pass share: AWS listings read once, and the rows they need read
once per batch of jobs (prefetch) and written once per batch (buffered writes, flushed by
`PassContext.flush`). A per-job Celery task uses a context of its own, preloaded with its one job."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from awslogs import client, parsers
from awslogs.models import (
    DerivativeCheck,
    DlqMessage,
    EvidenceStatus,
    Execution,
    JobRawKey,
    LogCursor,
    LogEvent,
    MissingReason,
)
from awslogs.services import callbacks, store
from jobs.models import Job, MediaAsset

STARTED_EXECUTION_MSG = "Started Step Function execution"


@dataclass
class Missing:
    item: str
    target: str
    reason: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"item": self.item, "target": self.target, "reason": self.reason, "detail": self.detail[:500]}


@dataclass
class JobResult:
    job_id: int
    executions: int = 0
    changed: bool = False
    log_events: int = 0
    missing: list[Missing] = field(default_factory=list)


def record_missing(result: JobResult, item: str, target: str, exc: client.AwsError) -> None:
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
    # state machine ARN → jobId → [(start, execution ARN)] listed; start of every listed ARN
    listed_by_job: dict[str, dict[int | None, list[tuple[dt.datetime | None, str]]]] = field(default_factory=dict)
    started_at: dict[str, dt.datetime | None] = field(default_factory=dict)
    undiscovered: dict[str, list[str]] = field(default_factory=dict)
    # state machine ARN → how many stored or listed executions name each jobId (FM-08 duplicates)
    named: dict[str, Counter[int | None]] = field(default_factory=dict)
    # TOQ ids of the pass's jobs: their listed executions are stored when the job collects them
    pass_toq_ids: set[int] = field(default_factory=set)
    # a rejected callback's line (TOQ's signature_mismatch, the Lambda's 403) was read in this pass:
    # only then do jobs link such lines by time (awslogs.services.callbacks)
    rejected_callback_read: bool = False

    # --- rows prefetched per batch of jobs (see preload) ---------------------------------------
    preloaded: set[int] = field(default_factory=set)
    jobs: dict[int, Job] = field(default_factory=dict)
    # execution ARN → stored row (None: known not to be stored)
    executions: dict[str, Execution | None] = field(default_factory=dict)
    generations: dict[int, store.GenerationRows] = field(default_factory=dict)
    cursors: dict[int, dict[str, LogCursor]] = field(default_factory=dict)
    statuses: dict[int, EvidenceStatus | None] = field(default_factory=dict)
    checks: dict[int, dict[str, DerivativeCheck]] = field(default_factory=dict)
    # toq id → execution ARNs named by the validate Lambda's `Started Step Function execution` lines
    validate_arns: dict[int, set[str]] = field(default_factory=dict)
    raw_keys: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    listing_assets: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    dlq_by_job: dict[int, list[DlqMessage]] | None = None

    # --- writes buffered until flush() ------------------------------------------------------------
    new_cursors: list[LogCursor] = field(default_factory=list)
    dirty_cursors: dict[int, LogCursor] = field(default_factory=dict)
    new_statuses: list[EvidenceStatus] = field(default_factory=list)
    dirty_statuses: dict[int, EvidenceStatus] = field(default_factory=dict)

    def preload(self, job_ids: Iterable[int]) -> None:
        """Read, in a few queries, what the jobs' collection will look up one by one otherwise."""
        ids = [pk for pk in job_ids if pk not in self.preloaded]
        if not ids:
            return
        self.preloaded.update(ids)
        jobs = Job.objects.in_bulk(ids)
        self.jobs.update(jobs)
        toq_ids = {job.toq_id for job in jobs.values()}
        self.pass_toq_ids |= toq_ids
        self.ensure_generations(toq_ids)
        for pk in ids:
            self.cursors.setdefault(pk, {})
            self.statuses.setdefault(pk, None)
            self.checks.setdefault(pk, {})
            self.raw_keys.setdefault(pk, set())
        for cursor in LogCursor.objects.filter(job_id__in=ids):
            self.cursors[cursor.job_id][cursor.log_group] = cursor
        for status in EvidenceStatus.objects.filter(job_id__in=ids):
            self.statuses[status.job_id] = status
        for check in DerivativeCheck.objects.filter(job_id__in=ids):
            self.checks[check.job_id][check.key] = check
        for job_pk, raw_key, source in JobRawKey.objects.filter(job_id__in=ids).values_list(
            "job_id", "raw_key", "source"
        ):
            self.raw_keys[job_pk].add((raw_key, source))
        external = [j.external_id for j in jobs.values() if j.external_id and j.external_id.startswith("arn:")]
        for toq_id in toq_ids:
            self.validate_arns.setdefault(toq_id, set())
        started = LogEvent.objects.filter(job_toq_id__in=toq_ids, msg=STARTED_EXECUTION_MSG).exclude(execution_arn="")
        for line_toq_id, arn in started.values_list("job_toq_id", "execution_arn"):
            if line_toq_id is not None:
                self.validate_arns[line_toq_id].add(arn)
        arns = set(external) | {arn for toq_id in toq_ids for arn in self.validate_arns[toq_id]}
        for execution in Execution.objects.filter(Q(job_id__in=ids) | Q(arn__in=arns)):
            self.executions[execution.arn] = execution
        for arn in arns:
            self.executions.setdefault(arn, None)
        listings = {j.listing_identity_id for j in jobs.values()} - set(self.listing_assets)
        for listing in listings:
            self.listing_assets[listing] = []
        assets = MediaAsset.objects.filter(
            listing_identity_id__in=listings, superseded_at__isnull=True, s3_key_raw__isnull=False
        ).order_by("id")
        for listing, key, asset_type in assets.values_list("listing_identity_id", "s3_key_raw", "asset_type"):
            if key:
                self.listing_assets[listing].append((key, asset_type))

    def job(self, job_id: int) -> Job:
        """Raises Job.DoesNotExist for an unknown id."""
        self.preload([job_id])
        if job_id not in self.jobs:
            raise Job.DoesNotExist(f"job {job_id}")
        return self.jobs[job_id]

    def ensure_generations(self, toq_ids: set[int]) -> dict[int, store.GenerationRows]:
        missing = toq_ids - set(self.generations)
        if missing:
            self.generations.update(store.job_generations(missing))
        return self.generations

    def sole_execution(self, sm_arn: str, arn: str, toq_id: int | None) -> bool:
        """Whether `arn` is the only stored or listed execution of its machine naming `toq_id` (then
        no FM-08 duplicate flags need computing). False when unsure (machine not listed, ARN not
        among those counted)."""
        named = self.named.get(sm_arn)
        counted = arn in self.known_executions.get(sm_arn, {})
        return named is not None and counted and toq_id is not None and named[toq_id] == 1

    def load_executions(self, arns: list[str]) -> None:
        """Stored rows of these ARNs into the cache, in one query."""
        missing = [arn for arn in arns if arn not in self.executions]
        for arn in missing:
            self.executions[arn] = None
        for execution in Execution.objects.filter(arn__in=missing):
            self.executions[execution.arn] = execution

    def execution(self, arn: str) -> Execution | None:
        if arn not in self.executions:
            self.executions[arn] = Execution.objects.filter(arn=arn).first()
        return self.executions[arn]

    def started_execution_lines(self, records: list[parsers.LogEventRecord]) -> None:
        """Remember the validate lines just read (the only job → execution link before a callback),
        and whether a rejected callback's line was among them."""
        for record in records:
            line = record.line
            if not self.rejected_callback_read and callbacks.is_rejected_callback_line(line):
                self.rejected_callback_read = True
            # Only for ids already loaded from the database; the others are read from it when asked
            # (the lines are stored by then).
            if line.msg == STARTED_EXECUTION_MSG and line.execution_arn and line.job_toq_id in self.validate_arns:
                self.validate_arns[line.job_toq_id].add(line.execution_arn)

    def validate_arns_of(self, toq_id: int) -> set[str]:
        if toq_id not in self.validate_arns:
            started = LogEvent.objects.filter(job_toq_id=toq_id, msg=STARTED_EXECUTION_MSG).exclude(execution_arn="")
            self.validate_arns[toq_id] = set(started.values_list("execution_arn", flat=True))
        return self.validate_arns[toq_id]

    def raw_keys_of(self, job_pk: int) -> set[tuple[str, str]]:
        if job_pk not in self.raw_keys:
            self.raw_keys[job_pk] = set(JobRawKey.objects.filter(job_id=job_pk).values_list("raw_key", "source"))
        return self.raw_keys[job_pk]

    def dlq_messages_of(self, job_pk: int) -> list[DlqMessage]:
        if self.dlq_by_job is None:
            self.dlq_by_job = {}
            for message in DlqMessage.objects.filter(job__isnull=False).only("job_id", "message_id", "body"):
                if message.job_id is not None:
                    self.dlq_by_job.setdefault(message.job_id, []).append(message)
        return self.dlq_by_job.get(job_pk, [])

    def assets_of_listing(self, listing_id: int) -> list[tuple[str, str]]:
        if listing_id not in self.listing_assets:
            assets = MediaAsset.objects.filter(
                listing_identity_id=listing_id, superseded_at__isnull=True, s3_key_raw__isnull=False
            ).order_by("id")
            self.listing_assets[listing_id] = [(k, t) for k, t in assets.values_list("s3_key_raw", "asset_type") if k]
        return self.listing_assets[listing_id]

    def cursor_set(self, job: Job, group: str, start_ms: int, end_ms: int) -> None:
        """Record how far the job's window has been read in a group (written at flush)."""
        cursors = self.cursors.setdefault(job.pk, {})
        cursor = cursors.get(group)
        if cursor is None:
            cursors[group] = cursor = LogCursor(job=job, log_group=group, start_ms=start_ms, end_ms=end_ms)
            self.new_cursors.append(cursor)
        elif (cursor.start_ms, cursor.end_ms) != (start_ms, end_ms):
            cursor.start_ms, cursor.end_ms = start_ms, end_ms
            if cursor.pk is not None:
                self.dirty_cursors[cursor.pk] = cursor

    def status_set(self, job: Job, values: dict[str, Any]) -> bool:
        """Write the job's EvidenceStatus (at flush) if it changed; returns whether it did."""
        status = self.statuses.get(job.pk)
        if status is None:
            status = EvidenceStatus(job=job, **values)
            self.statuses[job.pk] = status
            self.new_statuses.append(status)
            return True
        if all(getattr(status, k) == v for k, v in values.items() if k != "collected_at"):
            return False
        for key, value in values.items():
            setattr(status, key, value)
        if status.pk is not None:
            self.dirty_statuses[status.pk] = status
        return True

    def flush(self) -> None:
        """Write the buffered rows: a few statements for a whole batch of jobs."""
        if self.new_cursors:
            LogCursor.objects.bulk_create(self.new_cursors, batch_size=store.BATCH_SIZE)
        if self.dirty_cursors:
            LogCursor.objects.bulk_update(list(self.dirty_cursors.values()), ["start_ms", "end_ms"], batch_size=500)
        if self.new_statuses:
            EvidenceStatus.objects.bulk_create(self.new_statuses, batch_size=store.BATCH_SIZE)
        if self.dirty_statuses:
            EvidenceStatus.objects.bulk_update(
                list(self.dirty_statuses.values()),
                ["complete", "missing", "job_row_hash", "collected_at"],
                batch_size=500,
            )
        self.new_cursors, self.dirty_cursors, self.new_statuses, self.dirty_statuses = [], {}, [], {}

    def state_machine_arn(self, name: str) -> str | None:
        if self.state_machines is None:
            self.state_machines = {sm["name"]: sm["stateMachineArn"] for sm in client.sfn_list_state_machines()}
        return self.state_machines.get(name)

    def list_executions_since(self, sm_arn: str, since: dt.datetime, known: dict[str, int | None]) -> list[str]:
        """List a machine's executions back to `since` (ListExecutions is newest first), once per
        pass. Returns the listed ARNs not stored yet (to describe, then index_listed) — including those
        a failed discovery left for a later job; the others are indexed already."""
        listed = self.listed.setdefault(sm_arn, [])
        iterator = self.iterators.setdefault(sm_arn, client.sfn_list_executions(sm_arn))
        new = self.undiscovered.setdefault(sm_arn, [])
        while not self.listing_done.get(sm_arn):
            oldest = listed[-1][0] if listed else None
            if oldest is not None and oldest < since:
                break
            item = next(iterator, None)
            if item is None:
                self.listing_done[sm_arn] = True
                break
            started = parsers.parse_timestamp(item.get("startDate"))
            listed.append((started, item))
            self.started_at[item["executionArn"]] = started
            if item["executionArn"] in known:
                self._index(sm_arn, [item["executionArn"]], known)
            else:
                new.append(item["executionArn"])
        return list(new)

    def index_listed(self, sm_arn: str, arns: list[str], known: dict[str, int | None]) -> None:
        """Index listed ARNs by the jobId of their input (now in `known`)."""
        done = set(arns)
        self.undiscovered[sm_arn] = [arn for arn in self.undiscovered.get(sm_arn, []) if arn not in done]
        self._index(sm_arn, arns, known)

    def _index(self, sm_arn: str, arns: list[str], known: dict[str, int | None]) -> None:
        index = self.listed_by_job.setdefault(sm_arn, {})
        for arn in arns:
            index.setdefault(known.get(arn), []).append((self.started_at.get(arn), arn))

    def listed_for_job(self, sm_arn: str, toq_id: int, since: dt.datetime) -> list[str]:
        """Listed executions whose input names this jobId, started at or after `since`."""
        return [
            arn for started, arn in self.listed_by_job.get(sm_arn, {}).get(toq_id, []) if (started or since) >= since
        ]
