"""Reads of AWS evidence for views and the diagnosis engine."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from awslogs.models import Execution, LambdaConfigSnapshot, LogEvent


def lambda_config_live_at(*, function_name: str, at: dt.datetime) -> LambdaConfigSnapshot | None:
    """The configuration a function had at `at` (deployment drift, FM-39): the latest snapshot whose
    LastModified is not after `at`. None if every known configuration is newer."""
    return (
        LambdaConfigSnapshot.objects.filter(function_name=function_name, last_modified__lte=at)
        .order_by("-last_modified", "-first_seen_at")
        .first()
    )


def execution_list_for_job(*, job_id: int) -> QuerySet[Execution]:
    """A job's executions (duplicates included), oldest first, with their parsed states."""
    return Execution.objects.filter(job_id=job_id).prefetch_related("state_visits").order_by("start_date", "id")


def log_event_list_for_job(*, job_id: int, toq_id: int) -> QuerySet[LogEvent]:
    """Every stored log line attributed to a job: by job row, or by TOQ id when no row matched yet."""
    return LogEvent.objects.filter(Q(job_id=job_id) | Q(job_id__isnull=True, job_toq_id=toq_id)).order_by(
        "timestamp", "id"
    )
