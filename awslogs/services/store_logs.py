"""Log lines into the database, and Lambda invocations linked to the history's attempts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from awslogs import parsers
from awslogs.models import Execution, LogEvent, StateVisit
from awslogs.services.rows import current_jobs_by_toq_id, insert_new_rows, json_safe, non_negative


def log_events_store(*, log_group: str, events: list[dict[str, Any]]) -> int:
    """Parse, attribute and insert log events not stored yet (dedup by eventId). Returns rows inserted."""
    records = parsers.parse_log_events(log_group, events)
    return log_records_store(records)


def log_records_store(records: list[parsers.LogEventRecord]) -> int:
    """Insert records whose eventId is not stored yet; returns rows inserted."""
    if not records:
        return 0
    by_id = {r.event_id: r for r in records}
    jobs = current_jobs_by_toq_id({r.line.job_toq_id for r in by_id.values() if r.line.job_toq_id is not None})
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
            non_negative(r.line.job_toq_id),
            non_negative(r.line.listing_identity_id),
            r.line.execution_arn[:512],
            r.line.s3_key[:1024],
            json_safe(r.line.fields),
            "",
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
    "attributed_via",
)


# How far a Lambda START line may lie outside the history's scheduled→ended window (clock skew).
INVOCATION_SLACK = dt.timedelta(milliseconds=500)


def execution_link_invocations(*, execution: Execution) -> int:
    """Give each Lambda attempt of the timeline its request id and REPORT figures.

    The history has no Lambda request id (reference §3.13): match the function's START line whose
    time falls inside the attempt's scheduled→ended window, preferring lines of the same job.
    Returns how many attempts changed (0 on a re-run)."""
    changed = 0
    visits = getattr(execution, "stored_visits", None)
    for visit in visits if visits is not None else execution.state_visits.all():
        if not any(a.get("kind") == "lambda" and not a.get("request_id") for a in visit.attempts):
            continue
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
            visit.attempts = attempts
    return changed
