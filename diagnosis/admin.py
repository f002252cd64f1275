"""Read-only admin for inspection: diagnoses are written by diagnosis.services only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from diagnosis.models import Diagnosis, Finding


class FindingInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Finding
    fields = ("position", "role", "failure_mode", "cause", "title_en", "confidence", "signature")
    readonly_fields = ("position", "role", "failure_mode", "cause", "title_en", "confidence", "signature")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Diagnosis)
class DiagnosisAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["job", "job_status", "engine_version", "computed_at"]
    list_filter = ["engine_version", "job_status"]
    search_fields = ["=job__toq_id"]
    list_select_related = ["job"]
    inlines = [FindingInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
