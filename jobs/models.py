"""Mirror of TOQ's media tables, plus what TOQ does not keep (history, generations, decoded callback).

A TOQ id alone is not a stable identity (FM-38: a recreated database restarts ids at 1), so every
mirrored row is keyed by (TOQ id, generation). The current generation of an id is the one with
`superseded_at IS NULL`; rows that vanished from TOQ (FM-37, retention cleaner) keep existing with
`disappeared_at` set.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    PENDING = "PENDING", _("Pending")
    RUNNING = "RUNNING", _("Running")
    SUCCEEDED = "SUCCEEDED", _("Succeeded")
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS", _("Partial success")
    FAILED = "FAILED", _("Failed")


TERMINAL_JOB_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.PARTIAL_SUCCESS, JobStatus.FAILED})


class JobProvider(models.TextChoices):
    STEP_FUNCTIONS = "STEP_FUNCTIONS", "STEP_FUNCTIONS"
    STEP_FUNCTIONS_FINALIZATION = "STEP_FUNCTIONS_FINALIZATION", "STEP_FUNCTIONS_FINALIZATION"
    MEDIACONVERT = "MEDIACONVERT", "MEDIACONVERT"


class JobKind(models.TextChoices):
    PROCESSING = "processing", _("Processing")
    FINALIZATION = "finalization", _("Finalization (ZIP)")
    UNKNOWN = "unknown", _("Unknown")


class AssetStatus(models.TextChoices):
    PENDING_UPLOAD = "PENDING_UPLOAD", _("Pending upload")
    PROCESSING = "PROCESSING", _("Processing")
    PROCESSED = "PROCESSED", _("Processed")
    FAILED = "FAILED", _("Failed")


class AssetType(models.TextChoices):
    PHOTO_VERTICAL = "PHOTO_VERTICAL", "PHOTO_VERTICAL"
    PHOTO_HORIZONTAL = "PHOTO_HORIZONTAL", "PHOTO_HORIZONTAL"
    VIDEO_VERTICAL = "VIDEO_VERTICAL", "VIDEO_VERTICAL"
    VIDEO_HORIZONTAL = "VIDEO_HORIZONTAL", "VIDEO_HORIZONTAL"
    THUMBNAIL = "THUMBNAIL", "THUMBNAIL"
    ZIP = "ZIP", "ZIP"
    PROJECT_DOC = "PROJECT_DOC", "PROJECT_DOC"
    PROJECT_RENDER = "PROJECT_RENDER", "PROJECT_RENDER"


LISTING_STATUS_NAMES = {
    1: "DRAFT",
    2: "PENDING_AVAILABILITY",
    3: "PENDING_PHOTO_SCHEDULING",
    4: "PENDING_PHOTO_CONFIRMATION",
    5: "PHOTOS_SCHEDULED",
    6: "PENDING_PHOTO_PROCESSING",
    7: "PENDING_OWNER_APPROVAL",
    8: "REJECTED_BY_OWNER",
    9: "PENDING_ADMIN_REVIEW",
    10: "READY",
    11: "PUBLISHED",
    12: "CLOSED",
    13: "SUSPENDED",
    14: "EXPIRED",
    15: "ARCHIVED",
    16: "NEEDS_REVISION",
    17: "PENDING_PLAN_LOADING",
}


class MirrorRow(models.Model):
    """Columns every mirrored TOQ row has."""

    toq_id = models.PositiveBigIntegerField(_("TOQ id"))
    generation = models.PositiveIntegerField(default=1)
    # 48-bit hash of the source row (two CRC32s), computed inside the source database
    # (jobs.sync): the sync sums these per id chunk on both sides to find what changed without
    # reading unchanged rows. 48 bits keep a chunk's sum exact in a 64-bit integer.
    row_hash = models.BigIntegerField()
    first_seen_at = models.DateTimeField()
    last_changed_at = models.DateTimeField()
    disappeared_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_current(self) -> bool:
        return self.superseded_at is None


class Listing(MirrorRow):
    """`listing_identities` joined with its active `listing_versions` row and the owner's name.

    Only what support needs: never the owner's password, national id, e-mail or phone.
    """

    listing_uuid = models.CharField(max_length=36, blank=True)
    owner_user_id = models.PositiveBigIntegerField(null=True, blank=True)
    owner_name = models.CharField(max_length=150, blank=True)
    code = models.BigIntegerField(null=True, blank=True)
    active_version_id = models.PositiveBigIntegerField(null=True, blank=True)
    listing_status = models.PositiveSmallIntegerField(null=True, blank=True)
    title = models.CharField(max_length=255, blank=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["toq_id", "generation"], name="listing_toq_id_generation_uniq"),
            models.UniqueConstraint(
                fields=["toq_id"],
                condition=models.Q(superseded_at__isnull=True),
                name="listing_one_current_generation",
            ),
        ]

    def __str__(self) -> str:
        return f"listing {self.toq_id}"

    @property
    def listing_status_name(self) -> str:
        if self.listing_status is None:
            return ""
        return LISTING_STATUS_NAMES.get(self.listing_status, f"UNKNOWN({self.listing_status})")


class MediaAsset(MirrorRow):
    listing_identity_id = models.PositiveBigIntegerField(db_index=True)
    asset_type = models.CharField(max_length=50)
    sequence = models.IntegerField()
    status = models.CharField(max_length=50)
    s3_key_raw = models.CharField(max_length=255, null=True, blank=True)
    s3_key_processed = models.CharField(max_length=255, null=True, blank=True)
    title = models.CharField(max_length=255, null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    # The raw `metadata` text when it was not valid JSON (kept, never dropped).
    metadata_raw = models.TextField(blank=True)
    status_known = models.BooleanField(default=True)
    type_known = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["toq_id", "generation"], name="asset_toq_id_generation_uniq"),
            models.UniqueConstraint(
                fields=["toq_id"],
                condition=models.Q(superseded_at__isnull=True),
                name="asset_one_current_generation",
            ),
        ]
        indexes = [models.Index(fields=["s3_key_raw"], name="asset_s3_key_raw_idx")]  # callbacks find assets by it

    def __str__(self) -> str:
        return f"asset {self.toq_id} ({self.asset_type} #{self.sequence})"

    @property
    def is_video(self) -> bool:
        # TOQ's Lambdas treat a type as video iff its upper-cased name contains VIDEO.
        return "VIDEO" in self.asset_type.upper()


class JobQuerySet(models.QuerySet["Job"]):
    def current(self) -> JobQuerySet:
        return self.filter(superseded_at__isnull=True)

    def in_flight(self) -> JobQuerySet:
        return self.filter(is_terminal=False, disappeared_at__isnull=True)

    def failed(self) -> JobQuerySet:
        return self.filter(status=JobStatus.FAILED)


class Job(MirrorRow):
    """`media_processing_jobs`: every column of reference §2.1, plus decoded and derived fields."""

    # --- TOQ columns, as they are ---
    listing_identity_id = models.PositiveBigIntegerField(db_index=True)
    status = models.CharField(max_length=50)
    provider = models.CharField(max_length=50)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    payload = models.JSONField(null=True, blank=True)
    payload_raw = models.TextField(blank=True)
    retry_count = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    callback_body = models.TextField(null=True, blank=True)
    # Absent in databases created before 2026-01-16 (NULL then).
    created_at = models.DateTimeField(null=True, blank=True, db_index=True)

    # --- derived ---
    kind = models.CharField(max_length=16, choices=JobKind.choices, default=JobKind.UNKNOWN)
    is_terminal = models.BooleanField(default=False)
    status_known = models.BooleanField(default=True)
    provider_known = models.BooleanField(default=True)
    last_error_fragments = models.JSONField(default=list, blank=True)

    # --- callback decoded (jobs.callback.decode_callback) ---
    callback_parse_error = models.CharField(max_length=255, blank=True)
    callback_status = models.CharField(max_length=50, blank=True)
    callback_error_code = models.CharField(max_length=255, blank=True)
    callback_error_message = models.TextField(blank=True)
    callback_error_type = models.CharField(max_length=255, blank=True)
    callback_failure_reason = models.CharField(max_length=255, blank=True)
    callback_outputs_empty = models.BooleanField(null=True, blank=True)
    callback_execution_arn = models.CharField(max_length=255, blank=True)
    callback_results = models.JSONField(default=list, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["toq_id", "generation"], name="job_toq_id_generation_uniq"),
            models.UniqueConstraint(
                fields=["toq_id"],
                condition=models.Q(superseded_at__isnull=True),
                name="job_one_current_generation",
            ),
        ]
        # Indexes are chosen, not implied by db_index=True: on PostgreSQL that adds a second
        # (varchar_pattern_ops) index per text column, and every index slows the sync's bulk
        # writes (bench/sync.py). Equality/range lookups only, so plain btrees.
        indexes = [
            models.Index(fields=["status", "kind"], name="job_status_kind_idx"),
            models.Index(fields=["external_id"], name="job_external_id_idx"),  # ARN lookup
            models.Index(fields=["callback_error_code"], name="job_callback_error_code_idx"),  # list filter
            # In-flight jobs: re-read every sync pass and polled by the job list.
            models.Index(fields=["toq_id"], condition=models.Q(is_terminal=False), name="job_in_flight_idx"),
        ]

    def __str__(self) -> str:
        suffix = f" (generation {self.generation})" if self.generation > 1 else ""
        return f"job {self.toq_id}{suffix}"


class ObservationKind(models.TextChoices):
    CHANGED = "changed", _("Changed")
    DISAPPEARED = "disappeared", _("Disappeared from TOQ")
    REAPPEARED = "reappeared", _("Reappeared in TOQ")
    SUPERSEDED = "superseded", _("Id reused by a new row")


class JobObservation(models.Model):
    """A change the sync saw on a job (TOQ keeps no history). Initial state = first_seen_at + the
    `old` values of the first change."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="observations")
    observed_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=16, choices=ObservationKind.choices)
    # {column: [old, new]}
    changes = models.JSONField(default=dict)

    class Meta:
        ordering = ["observed_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.observed_at:%Y-%m-%d %H:%M:%S}"


class AssetObservation(models.Model):
    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="observations")
    observed_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=16, choices=ObservationKind.choices)
    changes = models.JSONField(default=dict)

    class Meta:
        ordering = ["observed_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.observed_at:%Y-%m-%d %H:%M:%S}"


class SyncRun(models.Model):
    """One pass of the TOQ sync: the UI's sync health reads the latest rows."""

    class Outcome(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped (another pass was running)")

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    rows_inserted = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_disappeared = models.PositiveIntegerField(default=0)
    rows_new_generation = models.PositiveIntegerField(default=0)
    chunks_checked = models.PositiveIntegerField(default=0)
    chunks_changed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Which TOQ schema variant was seen, e.g. {"media_processing_jobs.created_at": false}.
    schema = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"sync {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"

    @property
    def rows_changed(self) -> int:
        return self.rows_inserted + self.rows_updated + self.rows_disappeared + self.rows_new_generation


class JobNote(models.Model):
    """A person's note on one job generation (support findings, hand-offs). Written by the UI only."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="notes")
    # PROTECT: a note keeps its author; deactivate users instead of deleting them.
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    text = models.TextField(_("note"), max_length=4000)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note on {self.job} by {self.author_id}"
