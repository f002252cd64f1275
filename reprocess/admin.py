from django.contrib import admin

from toqdash.admin_base import ReadOnlyAdmin

from .models import AuditEntry, Batch, BatchItem, ReprocessAction


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


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "action", "state", "rate_per_minute", "created_by", "created_at", "finished_at")
    list_filter = ("action", "state")
    list_select_related = ("created_by",)
    search_fields = ("name", "reason", "query", "idempotency_key")


@admin.register(BatchItem)
class BatchItemAdmin(ReadOnlyAdmin):
    list_display = ("batch", "job", "state", "claims", "claimed_at", "finished_at", "result")
    list_filter = ("state",)
    list_select_related = ("batch", "job")
    search_fields = ("=batch__id", "=job__toq_id")
    raw_id_fields = ("batch", "job", "reprocess_action")
