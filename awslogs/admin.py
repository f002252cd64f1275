"""Read-only admin for inspection: evidence is written by collection and import only."""

from __future__ import annotations

from django.contrib import admin

from awslogs.models import (
    CollectionRun,
    DerivativeCheck,
    DlqMessage,
    EvidenceStatus,
    Execution,
    JobRawKey,
    LambdaConfigSnapshot,
    LogEvent,
    LogGroupStatus,
    MediaConvertJob,
    QueueSnapshot,
)
from toqdash.admin_base import ReadOnlyAdmin


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "job_toq_id", "status", "start_date", "error", "is_orphan", "is_duplicate"]
    list_filter = ["kind", "status", "is_orphan", "is_duplicate", "found_via"]
    search_fields = ["arn", "=job_toq_id"]


@admin.register(LogEvent)
class LogEventAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "log_group", "kind", "level", "msg", "job_toq_id", "request_id"]
    list_filter = ["log_group", "kind", "level", "attributed_via"]
    search_fields = ["=job_toq_id", "=request_id", "execution_arn", "msg"]


@admin.register(JobRawKey)
class JobRawKeyAdmin(ReadOnlyAdmin):
    list_display = ["job", "raw_key", "asset_type", "source", "source_ref"]
    list_filter = ["source"]
    search_fields = ["raw_key"]


@admin.register(EvidenceStatus)
class EvidenceStatusAdmin(ReadOnlyAdmin):
    list_display = ["job", "complete", "collected_at"]
    list_filter = ["complete"]


@admin.register(LambdaConfigSnapshot)
class LambdaConfigSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["function_name", "runtime", "last_modified", "code_sha256", "memory_size", "timeout"]
    list_filter = ["function_name"]


admin.site.register(
    [CollectionRun, DerivativeCheck, DlqMessage, LogGroupStatus, MediaConvertJob, QueueSnapshot], ReadOnlyAdmin
)
