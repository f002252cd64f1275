from django.contrib import admin

from toqdash.admin_base import ReadOnlyAdmin

from .models import Job, JobObservation, Listing, MediaAsset, SyncRun


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("toq_id", "generation", "listing_identity_id", "kind", "status", "provider", "disappeared_at")
    list_filter = ("status", "kind", "provider")
    search_fields = ("=toq_id", "external_id")


@admin.register(MediaAsset)
class MediaAssetAdmin(ReadOnlyAdmin):
    list_display = ("toq_id", "generation", "listing_identity_id", "asset_type", "sequence", "status")
    list_filter = ("status", "asset_type")
    search_fields = ("=toq_id", "s3_key_raw")


@admin.register(Listing)
class ListingAdmin(ReadOnlyAdmin):
    list_display = ("toq_id", "generation", "code", "title", "listing_status", "owner_name")
    search_fields = ("=toq_id", "=code", "title")


@admin.register(JobObservation)
class JobObservationAdmin(ReadOnlyAdmin):
    list_display = ("job", "observed_at", "kind")


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "finished_at", "outcome", "rows_inserted", "rows_updated", "rows_disappeared")
