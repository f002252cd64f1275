"""Log collection for a job: FilterLogEvents over its windows, deduplicated, with per-job cursors."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone

from awslogs import client, parsers
from awslogs.models import LogGroupStatus
from awslogs.services import store
from awslogs.services.context import JobResult, PassContext, record_missing
from jobs.models import Job

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


def collect_logs(
    ctx: PassContext, result: JobResult, job: Job, groups: list[str], start: dt.datetime, end: dt.datetime
) -> None:
    """Read each group over [start, end], skipping what this job's cursor or this pass already read."""
    now_ms = parsers.to_epoch_ms(timezone.now())
    start_ms, end_ms = parsers.to_epoch_ms(start), min(parsers.to_epoch_ms(end), now_ms)
    cursors = ctx.cursors.get(job.pk, {})
    for group in groups:
        if group in ctx.missing_groups:
            record_missing(result, "log group", group, ctx.missing_groups[group])
            continue
        cursor = cursors.get(group)
        read_from = start_ms
        if cursor is not None and cursor.start_ms <= start_ms:
            read_from = max(start_ms, cursor.end_ms + 1)
        done = ctx.read_windows.get(group)
        if done is not None and done[0] <= read_from:
            read_from = max(read_from, done[1] + 1)
        if read_from <= end_ms and not _read_group(ctx, result, group, read_from, end_ms):
            continue
        if read_from <= end_ms:
            if done is None or done[0] > read_from:
                ctx.read_windows[group] = (read_from, end_ms)
            else:
                ctx.read_windows[group] = (done[0], max(done[1], end_ms))
        _advance_cursor(ctx, job, group, start_ms, end_ms, now_ms)


def _read_group(ctx: PassContext, result: JobResult, group: str, read_from: int, end_ms: int) -> bool:
    """FilterLogEvents (all pages) → store. False when the group could not be read (recorded)."""
    try:
        # All pages first: an invocation's START/END and its app lines can straddle pages, and
        # attribution needs the whole invocation.
        events: list[dict[str, Any]] = []
        for page in client.logs_filter_log_events(group, start_ms=read_from, end_ms=end_ms):
            events.extend(page)
        records = parsers.parse_log_events(group, events)
        ctx.started_execution_lines(records)
        result.log_events += store.log_records_store(records)
    except client.AwsNotFoundError as exc:
        status, _ = LogGroupStatus.objects.get_or_create(name=group, defaults={"exists": False})
        store.update_if_changed(status, {"exists": False, "error": str(exc)[:512]})
        ctx.missing_groups[group] = exc
        record_missing(result, "log group", group, exc)
        return False
    except client.AwsError as exc:
        record_missing(result, "log group", group, exc)
        return False
    if group not in ctx.existing_groups:
        if not LogGroupStatus.objects.filter(name=group, exists=True, error="").exists():
            LogGroupStatus.objects.update_or_create(name=group, defaults={"exists": True, "error": ""})
        ctx.existing_groups.add(group)
    return True


def _advance_cursor(ctx: PassContext, job: Job, group: str, start_ms: int, end_ms: int, now_ms: int) -> None:
    cursor = ctx.cursors.get(job.pk, {}).get(group)
    new_start = min(start_ms, cursor.start_ms) if cursor else start_ms
    # Only a window that is over (minus the margin for late ingestion) counts as read.
    safe_end = min(end_ms, now_ms - settings.AWSLOGS_LOG_MARGIN_SECONDS * 1000)
    if cursor is None:
        ctx.cursor_set(job, group, new_start, max(safe_end, new_start - 1))
    else:
        ctx.cursor_set(job, group, new_start, max(cursor.end_ms, safe_end))
