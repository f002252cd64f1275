"""Writes of AWS evidence into the database: no AWS calls here (house style §3).

Every function is idempotent: storing the same AWS answer twice writes nothing the second time
(natural keys + "insert only what is not there" + "update only what changed").

This module keeps executions and their histories; log lines (`store_logs`), S3 / MediaConvert /
Lambda / queue rows (`store_resources`) and the row helpers (`rows`) live beside it and are
re-exported here, so callers keep writing `store.<function>`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q

from awslogs import parsers
from awslogs.models import Execution, HistoryEvent, StateVisit
from awslogs.services.rows import BATCH_SIZE, insert_new_rows, json_safe, update_if_changed
from awslogs.services.store_logs import (
    INVOCATION_SLACK,
    execution_link_invocations,
    log_events_store,
    log_records_store,
)
from awslogs.services.store_resources import (
    derivatives_check,
    derivatives_compare,
    derivatives_expected,
    dlq_messages_store,
    lambda_config_store,
    mediaconvert_job_store,
    queue_snapshot_record,
    s3_object_head_store,
    s3_objects_store,
)
from jobs.models import Job

__all__ = [
    "BATCH_SIZE",
    "COPY_THRESHOLD",
    "GENERATION_SLACK",
    "INVOCATION_SLACK",
    "GenerationRows",
    "derivatives_check",
    "derivatives_compare",
    "derivatives_expected",
    "dlq_messages_store",
    "execution_link_invocations",
    "execution_link_job",
    "execution_store",
    "insert_new_rows",
    "job_for_execution",
    "job_generations",
    "lambda_config_store",
    "log_events_store",
    "log_records_store",
    "mediaconvert_job_store",
    "queue_snapshot_record",
    "s3_object_head_store",
    "s3_objects_store",
    "update_if_changed",
]

# TOQ's created_at and an execution's start can differ by the SQS hop and clock skew.
GENERATION_SLACK = dt.timedelta(hours=1)


GenerationRows = list[tuple[int, dt.datetime | None, dt.datetime | None]]


def job_generations(toq_ids: set[int]) -> dict[int, GenerationRows]:
    """toq_id → its job rows (id, created_at, superseded_at), newest generation first; one query."""
    out: dict[int, GenerationRows] = {toq_id: [] for toq_id in toq_ids}
    if toq_ids:
        rows = Job.objects.filter(toq_id__in=toq_ids).order_by("toq_id", "-generation")
        for toq_id, pk, created, superseded in rows.values_list("toq_id", "id", "created_at", "superseded_at"):
            out[toq_id].append((pk, created, superseded))
    return out


def job_for_execution(
    toq_id: int | None, started: dt.datetime | None, *, generations: dict[int, GenerationRows] | None = None
) -> int | None:
    """The job row an execution belongs to. FM-38: a recreated TOQ database reuses ids, so the
    execution belongs to the newest generation that TOQ had created when it started (by TOQ's own
    created_at; rows without it — older schema — are accepted as they are).
    `generations`: job_generations() of the caller, when it has them (saves a query)."""
    if toq_id is None:
        return None
    if generations is None or toq_id not in generations:
        generations = job_generations({toq_id})
    rows = generations[toq_id]
    if not rows:
        return None
    if started is None:
        current = [pk for pk, _, superseded in rows if superseded is None]
        return current[0] if current else rows[0][0]
    for pk, created, _ in rows:
        if created is None or created <= started + GENERATION_SLACK:
            return pk
    return None  # every generation was created after the execution: it belongs to none of them


_LOOKUP = object()  # execution_store(existing=…) default: look the execution up by ARN


@transaction.atomic
def execution_store(
    *,
    describe: dict[str, Any],
    found_via: str,
    history: list[dict[str, Any]] | None = None,
    definition: dict[str, Any] | None = None,
    existing: Any = _LOOKUP,
    generations: dict[int, GenerationRows] | None = None,
    sole_execution: bool = False,
) -> tuple[Execution, bool]:
    """Upsert one execution (DescribeExecution answer), its whole history and parsed timeline.

    Returns (execution, changed). The history is rewritten only when it grew (running executions).
    `existing`: the stored row (or None) when the caller already has it; `generations`: see
    job_for_execution; `sole_execution`: the caller knows no other execution names this jobId (no
    duplicate flags to compute). All three only save queries."""
    record = parsers.parse_describe_execution(describe)
    job_pk = job_for_execution(record.job_toq_id, record.start_date, generations=generations)
    values: dict[str, Any] = {
        "name": record.name,
        "state_machine_arn": record.state_machine_arn,
        "kind": record.kind,
        "job_toq_id": record.job_toq_id,
        "listing_identity_id": record.listing_identity_id,
        "status": record.status,
        "start_date": record.start_date,
        "stop_date": record.stop_date,
        "input": record.input,
        "output": record.output,
        "error": record.error,
        "cause": record.cause,
        "describe": describe,
        "job_id": job_pk,
        "is_orphan": record.job_toq_id is not None and job_pk is None,
    }
    if definition is not None:
        values["definition"] = definition
    execution = Execution.objects.filter(arn=record.arn).first() if existing is _LOOKUP else existing
    previous_count = execution.history_event_count if execution is not None else 0
    previous_job = execution.job_id if execution is not None else None
    events: list[parsers.HistoryEventRecord] | None = None
    timeline: parsers.Timeline | None = None
    if history is not None:
        events = parsers.parse_history_events(history)
        values["history_complete"] = record.status not in ("", "RUNNING", "PENDING_REDRIVE")
        if len(events) != previous_count:
            timeline = parsers.parse_history(events)
            values["history_event_count"] = len(events)
            values["timeline"] = timeline.summary()
    # One write for the row (describe, definition and the history's summary together).
    if execution is None:
        execution = Execution.objects.create(arn=record.arn, found_via=found_via, **values)
        changed = True
    else:
        changed = update_if_changed(execution, values)
    if events is not None and timeline is not None:
        _history_store(execution, events, timeline, replace_visits=previous_count > 0)
    if execution.job_id is not None and execution.job_id != previous_job and not sole_execution:
        _mark_duplicates(execution.job_id)  # FM-08 flags change only when a job gains an execution
    return execution, changed


def execution_link_job(*, execution: Execution, job: Job) -> Execution:
    """Attach an execution to its (current) job row; flags duplicates again."""
    update_if_changed(execution, {"job_id": job.pk, "is_orphan": False})
    _mark_duplicates(job.pk)
    execution.refresh_from_db()
    return execution


# Below this many rows a plain multi-row INSERT beats COPY through a temporary table.
COPY_THRESHOLD = 1000


def _history_store(
    execution: Execution,
    events: list[parsers.HistoryEventRecord],
    timeline: parsers.Timeline,
    *,
    replace_visits: bool,
) -> None:
    """Events not stored yet, and the state visits rebuilt from the whole history."""
    rows = [
        (execution.pk, e.event_id, e.type[:64], e.timestamp, e.previous_event_id, json_safe(e.details)) for e in events
    ]
    columns = ("execution_id", "event_id", "type", "timestamp", "previous_event_id", "details")
    if len(rows) < COPY_THRESHOLD or connection.vendor != "postgresql":
        HistoryEvent.objects.bulk_create(
            [HistoryEvent(**dict(zip(columns, row, strict=True))) for row in rows],
            batch_size=BATCH_SIZE,
            ignore_conflicts=True,
        )
    else:
        insert_new_rows(HistoryEvent, columns, rows, conflict_field="execution_id, event_id")
    # A running execution's visits change as it progresses: rebuild them from the whole history.
    if replace_visits:
        execution.state_visits.all().delete()
    visits = StateVisit.objects.bulk_create(
        [
            StateVisit(
                execution=execution,
                entered_event_id=v.entered_event_id,
                name=v.name,
                state_type=v.state_type,
                branch=v.branch,
                entered_at=v.entered_at,
                exited_at=v.exited_at,
                status=v.status,
                error=v.error,
                cause=v.cause,
                attempts=[dataclasses.asdict(a) for a in v.attempts],
                output=v.output,
            )
            for v in timeline.states
        ],
        batch_size=BATCH_SIZE,
    )
    # Kept on the instance for execution_link_invocations in the same pass (saves reading them back).
    execution.stored_visits = visits  # type: ignore[attr-defined]


def _mark_duplicates(job_pk: int) -> bool:
    """FM-08: more than one execution of the same kind for one job — flag them all."""
    changed = False
    # One query in the usual case: update only the kinds whose flags are wrong.
    counts = (
        Execution.objects.filter(job_id=job_pk)
        .values("kind")
        .annotate(n=Count("id"), flagged=Count("id", filter=Q(is_duplicate=True)))
        .order_by()
    )
    for row in counts:
        duplicate = row["n"] > 1
        if row["flagged"] != (row["n"] if duplicate else 0):
            qs = Execution.objects.filter(job_id=job_pk, kind=row["kind"]).exclude(is_duplicate=duplicate)
            changed |= bool(qs.update(is_duplicate=duplicate))
    return changed
