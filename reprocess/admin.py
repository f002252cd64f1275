from django.contrib import admin

from toqdash.admin_base import ReadOnlyAdmin

from .models import AuditEntry, ReprocessAction


@admin.register(ReprocessAction)
class ReprocessActionAdmin(ReadOnlyAdmin):
    list_display = ("job", "attempt", "action", "outcome", "requested_by", "created_at", "new_execution_arn")
    list_filter = ("action", "outcome")
    list_select_related = ("job", "requested_by")
    search_fields = ("=job__toq_id", "idempotency_key", "new_execution_arn")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_username", "job", "action", "event", "reason")
    list_filter = ("action", "event")
    list_select_related = ("job",)
    search_fields = ("=job__toq_id", "actor_username", "reason")
