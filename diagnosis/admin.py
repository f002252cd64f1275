"""Admin: diagnoses are read-only (written by diagnosis.services only); alert rules are edited here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from diagnosis.models import AlertDelivery, AlertRule, Diagnosis, Finding


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


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "kind", "enabled", "recipients", "webhook_url", "quiet_start", "quiet_end"]
    list_filter = ["kind", "enabled"]
    list_editable = ["enabled"]
    search_fields = ["name", "recipients"]
    readonly_fields = ["created_at"]
    # Django 6 makes https the default scheme of a URL typed without one; choose it now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled", "created_at"]}),
        ("Thresholds", {"fields": ["spike_factor", "spike_min_count", "stuck_after_minutes"]}),
        ("Recipients", {"fields": ["recipients", "webhook_url"]}),
        ("Quiet hours (DISPLAY_TIME_ZONE)", {"fields": ["quiet_start", "quiet_end"]}),
    ]


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only log; deleting a failed row is allowed (it is then retried as a new delivery)."""

    list_display = ["dedup_key", "rule", "channel", "status", "attempts", "sent_at", "updated_at"]
    list_filter = ["status", "channel", "rule"]
    search_fields = ["dedup_key", "error"]
    list_select_related = ["rule"]
    readonly_fields = ["rule", "dedup_key", "channel", "status", "attempts", "sent_at", "updated_at", "error"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
