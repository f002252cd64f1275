from django.contrib import admin

from .models import Job, JobObservation, Listing, MediaAsset, SyncRun


class ReadOnlyMirrorAdmin(admin.ModelAdmin):
    """The mirror is written only by the sync: the admin can look, never edit."""

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyMirrorAdmin):
    list_display = ("toq_id", "generation", "listing_identity_id", "kind", "status", "provider", "disappeared_at")
    list_filter = ("status", "kind", "provider")
    search_fields = ("=toq_id", "external_id")


@admin.register(MediaAsset)
class MediaAssetAdmin(ReadOnlyMirrorAdmin):
    list_display = ("toq_id", "generation", "listing_identity_id", "asset_type", "sequence", "status")
    list_filter = ("status", "asset_type")
    search_fields = ("=toq_id", "s3_key_raw")


@admin.register(Listing)
class ListingAdmin(ReadOnlyMirrorAdmin):
    list_display = ("toq_id", "generation", "code", "title", "listing_status", "owner_name")
    search_fields = ("=toq_id", "=code", "title")


@admin.register(JobObservation)
class JobObservationAdmin(ReadOnlyMirrorAdmin):
    list_display = ("job", "observed_at", "kind")


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyMirrorAdmin):
    list_display = ("started_at", "finished_at", "outcome", "rows_inserted", "rows_updated", "rows_disappeared")
