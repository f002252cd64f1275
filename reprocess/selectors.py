from __future__ import annotations

from django.db.models import QuerySet

from jobs.models import Job

from .models import AuditEntry, ReprocessAction


def reprocess_action_list(*, job: Job) -> QuerySet[ReprocessAction]:
    return ReprocessAction.objects.filter(job=job).select_related("requested_by").order_by("-attempt")


def audit_entry_list(*, job: Job) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(job=job).order_by("-created_at", "-id")
