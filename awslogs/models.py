"""What AWS knows about each job, kept for good (AWS deletes closed executions after 90 days)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ExecutionKind(models.TextChoices):
    PROCESSING = "processing", _("Processing")
    FINALIZATION = "finalization", _("Finalization (ZIP)")
    UNKNOWN = "unknown", _("Unknown")


class FoundVia(models.TextChoices):
    EXTERNAL_ID = "external_id", _("Job external_id")
    VALIDATE_LOG = "validate_log", _("Validate Lambda log line")
    LIST_EXECUTIONS = "list_executions", _("ListExecutions input")
    NAME = "name", _("Finalization execution name")
    IMPORT = "import", _("Offline import")


class Execution(models.Model):
    arn = models.CharField(max_length=512, unique=True)
    name = models.CharField(max_length=128)
    state_machine_arn = models.CharField(max_length=512, blank=True)
    kind = models.CharField(max_length=16, choices=ExecutionKind.choices, default=ExecutionKind.UNKNOWN)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="executions")
    # jobId from the execution input (or the finalization name): kept even when no job row matches.
    job_toq_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    listing_identity_id = models.PositiveBigIntegerField(null=True, blank=True)
    found_via = models.CharField(max_length=16, choices=FoundVia.choices)
    status = models.CharField(max_length=16, db_index=True)
    start_date = models.DateTimeField(null=True, blank=True, db_index=True)
    stop_date = models.DateTimeField(null=True, blank=True)
    input = models.TextField(blank=True)
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    cause = models.TextField(blank=True)
    describe = models.JSONField(default=dict)
    # DescribeStateMachineForExecution: the definition that actually ran.
    definition = models.JSONField(null=True, blank=True)
    history_event_count = models.PositiveIntegerField(default=0)
    history_complete = models.BooleanField(default=False)
    timeline = models.JSONField(default=dict, blank=True)
    # FM-04: an execution whose jobId has no job row. FM-08: one of several executions of a job.
    is_orphan = models.BooleanField(default=False)
    is_duplicate = models.BooleanField(default=False)

    class Meta:
        ordering = ["start_date", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_closed(self) -> bool:
        return self.status not in ("", "RUNNING", "PENDING_REDRIVE")


class HistoryEvent(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="history_events")
    event_id = models.PositiveIntegerField()
    type = models.CharField(max_length=64)
    timestamp = models.DateTimeField(null=True, blank=True)
    previous_event_id = models.PositiveIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict)

    class Meta:
        ordering = ["execution", "event_id"]
        constraints = [models.UniqueConstraint(fields=["execution", "event_id"], name="history_event_uniq")]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class StateVisit(models.Model):
    """One entry into a state (parsed timeline); attempts carry each Task try with error/cause/backoff."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="state_visits")
    entered_event_id = models.PositiveIntegerField()
    name = models.CharField(max_length=128)
    state_type = models.CharField(max_length=16)
    branch = models.CharField(max_length=512, blank=True)
    entered_at = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16)
    error = models.TextField(blank=True)
    cause = models.TextField(blank=True)
    attempts = models.JSONField(default=list)
    output = models.TextField(blank=True)

    class Meta:
        ordering = ["execution", "entered_event_id"]
        constraints = [models.UniqueConstraint(fields=["execution", "entered_event_id"], name="state_visit_uniq")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class LogEvent(models.Model):
    # CloudWatch eventId, or "sha256:…" of group + line for lines without one (server log file).
    event_id = models.CharField(max_length=80, unique=True)
    log_group = models.CharField(max_length=512, db_index=True)
    log_stream = models.CharField(max_length=512, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True, db_index=True)
    ingestion_time = models.DateTimeField(null=True, blank=True)
    # At most parsers.MAX_LINE_BYTES; invalid UTF-8 shown as \xNN.
    message = models.TextField()
    message_truncated = models.BooleanField(default=False)
    message_bytes = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16)
    level = models.CharField(max_length=16, blank=True)
    msg = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="log_events")
    job_toq_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    listing_identity_id = models.PositiveBigIntegerField(null=True, blank=True)
    execution_arn = models.CharField(max_length=512, blank=True, db_index=True)
    s3_key = models.CharField(max_length=1024, blank=True)
    fields = models.JSONField(default=dict)
    # How the job was found when the line itself names none: "raw_key" (through JobRawKey).
    attributed_via = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["timestamp", "id"]

    def __str__(self) -> str:
        return f"{self.log_group} {self.event_id}"


class RawKeySource(models.TextChoices):
    EXECUTION_INPUT = "execution_input", _("Execution input assets[].key")
    SQS_MESSAGE = "sqs_message", _("SQS message body assets[].key")
    CALLBACK = "callback", _("Callback outputs[].rawKey")


class JobRawKey(models.Model):
    """Job ↔ raw S3 key of one of its assets (reference §3.13), and where the link was read.

    Lambda lines such as `Inspecting asset` or `Video thumbnail generation failed` carry only the raw
    `key`: this relation attributes them to their job."""

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="raw_keys")
    raw_key = models.CharField(max_length=1024, db_index=True)
    asset_type = models.CharField(max_length=32, blank=True)
    source = models.CharField(max_length=16, choices=RawKeySource.choices)
    # The execution ARN or SQS message id the link was read from ("" for the callback body).
    source_ref = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["job", "raw_key", "source"]
        constraints = [
            models.UniqueConstraint(fields=["job", "raw_key", "source"], name="job_raw_key_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} {self.raw_key} ({self.source})"


class LogGroupStatus(models.Model):
    """Whether a log group exists (a function never deployed has none) — recorded, never fatal."""

    name = models.CharField(max_length=512, unique=True)
    exists = models.BooleanField()
    error = models.CharField(max_length=512, blank=True)

    def __str__(self) -> str:
        return self.name


class LogCursor(models.Model):
    """How far a job's windows have been read in a log group (epoch ms, inclusive)."""

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="log_cursors")
    log_group = models.CharField(max_length=512)
    start_ms = models.BigIntegerField()
    end_ms = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "log_group"], name="log_cursor_uniq")]

    def __str__(self) -> str:
        return f"{self.log_group} {self.start_ms}-{self.end_ms}"


class S3Object(models.Model):
    bucket = models.CharField(max_length=255)
    key = models.CharField(max_length=1024)
    size = models.BigIntegerField(null=True, blank=True)
    etag = models.CharField(max_length=128, blank=True)
    last_modified = models.DateTimeField(null=True, blank=True)
    storage_class = models.CharField(max_length=32, blank=True)
    content_type = models.CharField(max_length=128, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bucket", "key"], name="s3_object_uniq")]

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class DerivativeCheck(models.Model):
    class Outcome(models.TextChoices):
        PRESENT = "present", _("Present")
        MISSING = "missing", _("Missing")
        ZERO_BYTES = "zero_bytes", _("Zero bytes")

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="derivative_checks")
    raw_key = models.CharField(max_length=1024)
    key = models.CharField(max_length=1024)
    kind = models.CharField(max_length=32)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    size = models.BigIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=128, blank=True)
    last_modified = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "key"], name="derivative_check_uniq")]

    def __str__(self) -> str:
        return f"{self.key}: {self.outcome}"


class MediaConvertJob(models.Model):
    job_id = models.CharField(max_length=128, unique=True)
    execution = models.ForeignKey(
        Execution, null=True, blank=True, on_delete=models.SET_NULL, related_name="mediaconvert_jobs"
    )
    arn = models.CharField(max_length=512, blank=True)
    status = models.CharField(max_length=32)
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    warnings = models.JSONField(default=list)
    output_paths = models.JSONField(default=list)
    input_paths = models.JSONField(default=list)
    created_at = models.DateTimeField(null=True, blank=True)
    timing = models.JSONField(default=dict)
    raw = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.job_id} {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in ("COMPLETE", "ERROR", "CANCELED")


class LambdaConfigSnapshot(models.Model):
    """One distinct configuration of a function (history of changes; FM-39 drift). Never secrets."""

    function_name = models.CharField(max_length=140, db_index=True)
    fingerprint = models.CharField(max_length=64)
    runtime = models.CharField(max_length=64, blank=True)
    last_modified = models.DateTimeField(null=True, blank=True)
    last_modified_raw = models.CharField(max_length=64, blank=True)
    code_sha256 = models.CharField(max_length=64, blank=True)
    layers = models.JSONField(default=list)
    memory_size = models.PositiveIntegerField(null=True, blank=True)
    timeout = models.PositiveIntegerField(null=True, blank=True)
    ephemeral_storage = models.PositiveIntegerField(null=True, blank=True)
    # names → values, secret-looking values replaced by "<redacted>"
    environment = models.JSONField(default=dict)
    role = models.CharField(max_length=512, blank=True)
    architectures = models.JSONField(default=list)
    config = models.JSONField(default=dict)
    first_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["function_name", "first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["function_name", "fingerprint"], name="lambda_config_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.function_name} @ {self.last_modified_raw}"


class QueueSnapshot(models.Model):
    queue_name = models.CharField(max_length=255)
    taken_at = models.DateTimeField(db_index=True)
    visible = models.PositiveIntegerField(null=True, blank=True)
    in_flight = models.PositiveIntegerField(null=True, blank=True)
    delayed = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["-taken_at"]

    def __str__(self) -> str:
        return f"{self.queue_name} {self.visible}"


class DlqMessage(models.Model):
    """A dead-letter message, read with visibility 0 and never deleted (FM-06/FM-07)."""

    message_id = models.CharField(max_length=128, unique=True)
    queue_name = models.CharField(max_length=255)
    body = models.TextField()
    attributes = models.JSONField(default=dict)
    message_attributes = models.JSONField(default=dict)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="dlq_messages")
    job_toq_id = models.PositiveBigIntegerField(null=True, blank=True)
    listing_identity_id = models.PositiveBigIntegerField(null=True, blank=True)
    first_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.message_id


class MissingReason(models.TextChoices):
    NOT_FOUND = "not_found", _("Not found")
    ACCESS_DENIED = "access_denied", _("Access denied")
    NOT_YET = "not_yet", _("Not yet (still running)")
    ERROR = "error", _("AWS error")


class EvidenceStatus(models.Model):
    """Per job: is the evidence complete, and if not, what is missing and why."""

    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="evidence_status")
    complete = models.BooleanField(default=False)
    # [{"item": "execution history", "target": "<arn>", "reason": MissingReason, "detail": "..."}]
    missing = models.JSONField(default=list)
    # The job's row_hash when evidence was last collected: a changed job is collected again.
    job_row_hash = models.CharField(max_length=64, blank=True)
    collected_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "evidence statuses"

    def __str__(self) -> str:
        return f"evidence for job {self.job_id}: {'complete' if self.complete else 'incomplete'}"


class CollectionRun(models.Model):
    """One whole collection pass (the periodic dispatcher, or `collect_aws` without --job): the UI's
    collection-lag banner reads the latest successful one. Per-job evidence rows are written only
    when they change, so they cannot tell whether collection is still running."""

    class Outcome(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    # Jobs the pass collected (foreground) or dispatched to workers (Celery).
    jobs = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"collection {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"
