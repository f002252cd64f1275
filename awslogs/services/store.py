"""Writes of AWS evidence into the database: no AWS calls here (house style §3).

Every function is idempotent: storing the same AWS answer twice writes nothing the second time
(natural keys + "insert only what is not there" + "update only what changed").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Count, Q
from django.utils import timezone

from awslogs import parsers
from awslogs.models import (
    DerivativeCheck,
    DlqMessage,
    Execution,
    HistoryEvent,
    LambdaConfigSnapshot,
    LogEvent,
    MediaConvertJob,
    QueueSnapshot,
    S3Object,
    StateVisit,
)
from jobs.models import Job

# Rows per INSERT: large enough for throughput, small enough for PostgreSQL's parameter limit.
BATCH_SIZE = 2000


def _current_jobs_by_toq_id(toq_ids: set[int]) -> dict[int, int]:
    if not toq_ids:
        return {}
    return dict(Job.objects.current().filter(toq_id__in=toq_ids).values_list("toq_id", "id"))


# TOQ's created_at and an execution's start can differ by the SQS hop and clock skew.
GENERATION_SLACK = dt.timedelta(hours=1)


def job_for_execution(toq_id: int | None, started: dt.datetime | None) -> int | None:
    """The job row an execution belongs to. FM-38: a recreated TOQ database reuses ids, so the
    execution belongs to the newest generation that TOQ had created when it started (by TOQ's own
    created_at; rows without it — older schema — are accepted as they are)."""
    if toq_id is None:
        return None
    rows = list(
        Job.objects.filter(toq_id=toq_id).order_by("-generation").values_list("id", "created_at", "superseded_at")
    )
    if not rows:
        return None
    if started is None:
        current = [pk for pk, _, superseded in rows if superseded is None]
        return current[0] if current else rows[0][0]
    for pk, created, _ in rows:
        if created is None or created <= started + GENERATION_SLACK:
            return pk
    return None  # every generation was created after the execution: it belongs to none of them


def update_if_changed(obj: Any, values: dict[str, Any]) -> bool:
    changed = {k: v for k, v in values.items() if getattr(obj, k) != v}
    if not changed:
        return False
    for key, value in changed.items():
        setattr(obj, key, value)
    type(obj).objects.filter(pk=obj.pk).update(**changed)
    return True


@transaction.atomic
def execution_store(
    *,
    describe: dict[str, Any],
    found_via: str,
    history: list[dict[str, Any]] | None = None,
    definition: dict[str, Any] | None = None,
) -> tuple[Execution, bool]:
    """Upsert one execution (DescribeExecution answer), its whole history and parsed timeline.

    Returns (execution, changed). The history is rewritten only when it grew (running executions)."""
    record = parsers.parse_describe_execution(describe)
    job_pk = job_for_execution(record.job_toq_id, record.start_date)
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
    execution = Execution.objects.filter(arn=record.arn).first()
    changed = False
    if execution is None:
        execution = Execution.objects.create(arn=record.arn, found_via=found_via, **values)
        changed = True
    else:
        changed = update_if_changed(execution, values)
    if history is not None:
        changed |= _history_store(execution, history)
    if execution.job_id is not None and changed:
        _mark_duplicates(execution.job_id)
    return execution, changed


def execution_link_job(*, execution: Execution, job: Job) -> Execution:
    """Attach an execution to its (current) job row; flags duplicates again."""
    update_if_changed(execution, {"job_id": job.pk, "is_orphan": False})
    _mark_duplicates(job.pk)
    execution.refresh_from_db()
    return execution


def _history_store(execution: Execution, raw_events: list[dict[str, Any]]) -> bool:
    events = parsers.parse_history_events(raw_events)
    complete = execution.is_closed
    if len(events) == execution.history_event_count:
        return update_if_changed(execution, {"history_complete": complete})
    insert_new_rows(
        HistoryEvent,
        ("execution_id", "event_id", "type", "timestamp", "previous_event_id", "details"),
        [
            (execution.pk, e.event_id, e.type[:64], e.timestamp, e.previous_event_id, _json_safe(e.details))
            for e in events
        ],
        conflict_field="execution_id, event_id",
    )
    timeline = parsers.parse_history(events)
    # A running execution's visits change as it progresses: rebuild them from the whole history.
    execution.state_visits.all().delete()
    StateVisit.objects.bulk_create(
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
    update_if_changed(
        execution,
        {"history_event_count": len(events), "history_complete": complete, "timeline": timeline.summary()},
    )
    return True


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


def log_events_store(*, log_group: str, events: list[dict[str, Any]]) -> int:
    """Parse, attribute and insert log events not stored yet (dedup by eventId). Returns rows inserted."""
    records = parsers.parse_log_events(log_group, events)
    return log_records_store(records)


def log_records_store(records: list[parsers.LogEventRecord]) -> int:
    """Insert records whose eventId is not stored yet; returns rows inserted."""
    if not records:
        return 0
    by_id = {r.event_id: r for r in records}
    jobs = _current_jobs_by_toq_id({r.line.job_toq_id for r in by_id.values() if r.line.job_toq_id is not None})
    rows = [
        (
            r.event_id,
            r.log_group[:512],
            r.log_stream[:512],
            r.timestamp,
            r.ingestion_time,
            r.message,
            r.truncated,
            r.message_bytes,
            r.line.kind,
            r.line.level[:16],
            parsers.safe_text(r.line.msg, 500)[0],
            r.line.request_id[:64],
            jobs.get(r.line.job_toq_id) if r.line.job_toq_id is not None else None,
            _non_negative(r.line.job_toq_id),
            _non_negative(r.line.listing_identity_id),
            r.line.execution_arn[:512],
            r.line.s3_key[:1024],
            _json_safe(r.line.fields),
        )
        for r in by_id.values()
    ]
    return insert_new_rows(LogEvent, _LOG_EVENT_COLUMNS, rows, conflict_field="event_id")


_LOG_EVENT_COLUMNS = (
    "event_id",
    "log_group",
    "log_stream",
    "timestamp",
    "ingestion_time",
    "message",
    "message_truncated",
    "message_bytes",
    "kind",
    "level",
    "msg",
    "request_id",
    "job_id",
    "job_toq_id",
    "listing_identity_id",
    "execution_arn",
    "s3_key",
    "fields",
)


def _non_negative(value: int | None) -> int | None:
    return value if value is None or value >= 0 else None


def insert_new_rows(
    model: type[models.Model], columns: tuple[str, ...], rows: list[tuple[Any, ...]], *, conflict_field: str
) -> int:
    """Insert rows, skipping those whose natural key exists; returns how many were inserted.

    PostgreSQL: COPY into a temporary table, then INSERT … ON CONFLICT DO NOTHING — several times
    faster than parameterised INSERTs for tens of thousands of rows. Other databases: bulk_create."""
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        # The demo's SQLite: slower, same result.
        key_fields = [c.strip() for c in conflict_field.split(",")]
        key_indexes = [columns.index(c) for c in key_fields]
        new = [
            dict(zip(columns, r, strict=True))
            for r in rows
            if not model._default_manager.filter(
                **{c: r[i] for c, i in zip(key_fields, key_indexes, strict=True)}
            ).exists()
        ]
        model._default_manager.bulk_create([model(**v) for v in new], batch_size=BATCH_SIZE, ignore_conflicts=True)
        return len(new)
    table = model._meta.db_table
    json_columns = {f.column for f in model._meta.concrete_fields if isinstance(f, models.JSONField)}
    column_list = ", ".join(columns)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {table}_load ON COMMIT DROP AS "
            f"SELECT {column_list} FROM {table} WITH NO DATA"
        )
        json_indexes = [i for i, c in enumerate(columns) if c in json_columns]
        with cursor.cursor.copy(f"COPY {table}_load ({column_list}) FROM STDIN") as copy:
            for row in rows:
                if json_indexes:
                    row = tuple(json.dumps(v) if i in json_indexes else v for i, v in enumerate(row))
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {table}_load "
            f"ON CONFLICT ({conflict_field}) DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute(f"DROP TABLE {table}_load")
    return int(inserted)


def _json_safe(value: Any) -> Any:
    """JSON for PostgreSQL jsonb: no NUL characters, no lone surrogates."""
    if isinstance(value, str):
        return parsers.safe_text(value, parsers.MAX_LINE_BYTES)[0]
    if isinstance(value, dict):
        return {_json_safe(str(k)): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def s3_objects_store(*, bucket: str, objects: list[dict[str, Any]]) -> int:
    """Upsert ListObjectsV2 `Contents`. Returns rows inserted or changed."""
    existing = {o.key: o for o in S3Object.objects.filter(bucket=bucket, key__in=[str(o.get("Key")) for o in objects])}
    changed = 0
    for raw in objects:
        key = str(raw.get("Key", ""))
        values = {
            "size": raw.get("Size"),
            "etag": str(raw.get("ETag", ""))[:128],
            "last_modified": parsers.parse_timestamp(raw.get("LastModified")),
            "storage_class": str(raw.get("StorageClass", "") or "")[:32],
        }
        if raw.get("ContentType"):
            values["content_type"] = str(raw["ContentType"])[:128]
        obj = existing.get(key)
        if obj is None:
            S3Object.objects.create(bucket=bucket, key=key, **values)
            changed += 1
        elif update_if_changed(obj, values):
            changed += 1
    return changed


def derivatives_check(
    *, job: Job, bucket: str, raw_assets: list[tuple[str, str]], with_zip: bool
) -> list[DerivativeCheck]:
    """Compare the expected derivative set (reference §4) with the stored S3 listing; upsert checks."""
    expected = derivatives_expected(job=job, raw_assets=raw_assets, with_zip=with_zip)
    return _derivatives_compare(job=job, bucket=bucket, expected=expected)


def derivatives_expected(
    *, job: Job, raw_assets: list[tuple[str, str]], with_zip: bool
) -> list[parsers.ExpectedDerivative]:
    """Reference §4: 4 sizes per photo, a thumbnail per video (+ the MP4 of the job's first video),
    the ZIP after a finalization."""
    expected: list[parsers.ExpectedDerivative] = []
    first_video_seen = False
    for raw_key, asset_type in raw_assets:
        is_video = "VIDEO" in asset_type.upper()
        expected.extend(
            parsers.expected_derivatives(raw_key, asset_type, first_video=is_video and not first_video_seen)
        )
        first_video_seen |= is_video
    if with_zip:
        zip_key = parsers.zip_key(job.listing_identity_id)
        expected.append(parsers.ExpectedDerivative("", zip_key, "zip"))
    return expected


def _derivatives_compare(*, job: Job, bucket: str, expected: list[parsers.ExpectedDerivative]) -> list[DerivativeCheck]:
    objects = {o.key: o for o in S3Object.objects.filter(bucket=bucket, key__in=[e.key for e in expected])}
    existing = {c.key: c for c in DerivativeCheck.objects.filter(job=job)}
    out: list[DerivativeCheck] = []
    for item in expected:
        obj = objects.get(item.key)
        if obj is None:
            outcome = DerivativeCheck.Outcome.MISSING
        elif obj.size == 0:
            outcome = DerivativeCheck.Outcome.ZERO_BYTES
        else:
            outcome = DerivativeCheck.Outcome.PRESENT
        values = {
            "raw_key": item.raw_key,
            "kind": item.kind,
            "outcome": outcome,
            "size": obj.size if obj else None,
            "content_type": obj.content_type if obj else "",
            "last_modified": obj.last_modified if obj else None,
        }
        check = existing.get(item.key)
        if check is None:
            check = DerivativeCheck.objects.create(job=job, key=item.key, **values)
        else:
            update_if_changed(check, values)
        out.append(check)
    return out


def s3_object_head_store(*, bucket: str, key: str, head: dict[str, Any]) -> bool:
    """HeadObject answer → content type (ListObjectsV2 has none), size, last modified."""
    obj = S3Object.objects.filter(bucket=bucket, key=key).first()
    if obj is None:
        return False
    values = {
        "content_type": str(head.get("ContentType", ""))[:128],
        "size": head.get("ContentLength", obj.size),
        "last_modified": parsers.parse_timestamp(head.get("LastModified")) or obj.last_modified,
    }
    return update_if_changed(obj, values)


def mediaconvert_job_store(*, data: dict[str, Any], execution: Execution | None = None) -> tuple[MediaConvertJob, bool]:
    record = parsers.parse_mediaconvert_job(data)
    values: dict[str, Any] = {
        "arn": record.arn,
        "status": record.status,
        "error_code": record.error_code,
        "error_message": record.error_message,
        "warnings": record.warnings,
        "output_paths": record.output_paths,
        "input_paths": record.input_paths,
        "created_at": record.created_at,
        "timing": record.timing,
        "raw": record.raw,
    }
    if execution is not None:
        values["execution_id"] = execution.pk
    obj = MediaConvertJob.objects.filter(job_id=record.job_id).first()
    if obj is None:
        return MediaConvertJob.objects.create(job_id=record.job_id, **values), True
    return obj, update_if_changed(obj, values)


def lambda_config_store(
    *, data: dict[str, Any], seen_at: dt.datetime | None = None
) -> tuple[LambdaConfigSnapshot, bool]:
    """Record a function configuration; a new row only when it differs from every known one."""
    record = parsers.parse_lambda_configuration(data)
    obj, created = LambdaConfigSnapshot.objects.get_or_create(
        function_name=record.function_name,
        fingerprint=record.fingerprint,
        defaults={
            "runtime": record.runtime,
            "last_modified": record.last_modified,
            "last_modified_raw": record.last_modified_raw,
            "code_sha256": record.code_sha256,
            "layers": record.layers,
            "memory_size": record.memory_size,
            "timeout": record.timeout,
            "ephemeral_storage": record.ephemeral_storage,
            "environment": record.environment,
            "role": record.role,
            "architectures": record.architectures,
            "config": record.config,
            "first_seen_at": seen_at or timezone.now(),
        },
    )
    return obj, created


def queue_snapshot_record(*, queue_name: str, values: dict[str, Any]) -> bool:
    """A queue-depth snapshot, written only when it differs from the queue's latest one: the
    series is a step function (a value holds until the next row), and an idle pass writes nothing."""
    full = {"visible": None, "in_flight": None, "delayed": None, "error": "", **values}
    latest = QueueSnapshot.objects.filter(queue_name=queue_name).order_by("-taken_at", "-id").first()
    if latest is not None and all(getattr(latest, k) == v for k, v in full.items()):
        return False
    QueueSnapshot.objects.create(queue_name=queue_name, taken_at=timezone.now(), **full)
    return True


def dlq_messages_store(*, queue_name: str, messages: list[dict[str, Any]]) -> int:
    known = set(
        DlqMessage.objects.filter(message_id__in=[str(m.get("MessageId")) for m in messages]).values_list(
            "message_id", flat=True
        )
    )
    new = 0
    for message in messages:
        message_id = str(message.get("MessageId", ""))
        if not message_id or message_id in known:
            continue
        body = parsers.safe_text(message.get("Body"), parsers.MAX_LINE_BYTES)[0]
        job_toq_id, listing_id = parsers.parse_sqs_body(body)
        jobs = _current_jobs_by_toq_id({job_toq_id} if job_toq_id is not None else set())
        DlqMessage.objects.create(
            message_id=message_id,
            queue_name=queue_name,
            body=body,
            attributes=_json_safe(message.get("Attributes") or {}),
            message_attributes=_json_safe(message.get("MessageAttributes") or {}),
            job_id=jobs.get(job_toq_id) if job_toq_id is not None else None,
            job_toq_id=job_toq_id,
            listing_identity_id=listing_id,
            first_seen_at=timezone.now(),
        )
        known.add(message_id)
        new += 1
    return new


# How far a Lambda START line may lie outside the history's scheduled→ended window (clock skew).
INVOCATION_SLACK = dt.timedelta(milliseconds=500)


def execution_link_invocations(*, execution: Execution) -> int:
    """Give each Lambda attempt of the timeline its request id and REPORT figures.

    The history has no Lambda request id (reference §3.13): match the function's START line whose
    time falls inside the attempt's scheduled→ended window, preferring lines of the same job.
    Returns how many attempts changed (0 on a re-run)."""
    changed = 0
    for visit in execution.state_visits.all():
        attempts = [dict(a) for a in visit.attempts]
        dirty = False
        for attempt in attempts:
            if attempt.get("kind") != "lambda" or attempt.get("request_id"):
                continue
            function = str(attempt.get("resource", "")).rsplit(":function:", 1)[-1].split(":")[0]
            begin = parsers.parse_timestamp(attempt.get("scheduled_at") or attempt.get("started_at"))
            end = parsers.parse_timestamp(attempt.get("ended_at")) or (begin and begin + dt.timedelta(minutes=15))
            if not function or begin is None or end is None:
                continue
            starts = list(
                LogEvent.objects.filter(
                    log_group=f"/aws/lambda/{function}",
                    kind="start",
                    timestamp__gte=begin - INVOCATION_SLACK,
                    timestamp__lte=end + INVOCATION_SLACK,
                ).values_list("request_id", "job_toq_id", "timestamp")
            )
            same_job = [s for s in starts if s[1] == execution.job_toq_id] or [s for s in starts if s[1] is None]
            if len(same_job) != 1:
                continue  # none, or ambiguous: better no link than a wrong one
            request_id = same_job[0][0]
            attempt["request_id"] = request_id
            report = (
                LogEvent.objects.filter(log_group=f"/aws/lambda/{function}", kind="report", request_id=request_id)
                .values_list("fields", flat=True)
                .first()
            )
            if report:
                attempt["report"] = report
            dirty = True
            changed += 1
        if dirty:
            StateVisit.objects.filter(pk=visit.pk).update(attempts=attempts)
    return changed
