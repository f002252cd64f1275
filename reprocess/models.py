"""Admin-triggered reprocessing (issue 6): one row per action, and an append-only audit log.

toqdash never writes TOQ's MySQL: an action acts on AWS the way TOQ's own pipeline starts
(reference §6). The idempotency of an action rests on two unique constraints here (the caller's
idempotency key; one attempt number per job) and on AWS execution names / client tokens.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ActionKind(models.TextChoices):
    RESUBMIT = "resubmit", _("Resubmit to TOQ's queue")
    RERUN = "rerun", _("Re-run the execution with its original input")
    REDRIVE = "redrive", _("Redrive the failed execution")
    # Through TOQ's API, not AWS: TOQ makes a new job for the listing (reprocess.toq_api).
    PROCESS = "process", _("Ask TOQ to process the listing again")


class Outcome(models.TextChoices):
    # Claimed in the database, AWS (or TOQ's API) not answered yet, or the process died calling it.
    PENDING = "pending", _("Pending (not answered yet)")
    SUCCEEDED = "succeeded", _("Accepted (by AWS or TOQ)")
    FAILED = "failed", _("Refused or failed")
    # Left pending by a process that died, and AWS cannot say whether the request arrived (an SQS
    # message cannot be looked up): reprocess.services.reprocess_reconcile_action explains why.
    UNKNOWN = "unknown", _("Unknown (toqdash stopped before the answer)")


class ReprocessAction(models.Model):
    # PROTECT: the record of what was done to a job outlives nothing it refers to.
    job = models.ForeignKey("jobs.Job", on_delete=models.PROTECT, related_name="reprocess_actions")
    action = models.CharField(max_length=16, choices=ActionKind.choices)
    idempotency_key = models.CharField(max_length=64, unique=True)
    # 1 + the highest earlier attempt of this job (TOQ's first run is attempt 0 / retry 0).
    attempt = models.PositiveIntegerField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The exact AWS request (operation + parameters), or the TOQ API request without its token,
    # written before the call.
    sent = models.JSONField(default=dict)
    response = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    # The execution this action started or redrove, when AWS named it in its answer.
    new_execution_arn = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["job", "attempt"]
        constraints = [
            # Two admins at once compute the same next attempt: only one of them gets it.
            models.UniqueConstraint(fields=["job", "attempt"], name="reprocess_job_attempt_uniq"),
            # At most one action per job waiting for AWS.
            models.UniqueConstraint(
                fields=["job"], condition=models.Q(outcome="pending"), name="reprocess_one_pending_per_job"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} of job {self.job_id} (attempt {self.attempt}, {self.outcome})"

    @property
    def response_json(self) -> str:
        """The stored answer, indented (templates escape it)."""
        return json.dumps(self.response, indent=2, ensure_ascii=False) if self.response is not None else ""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    """Bulk writes are refused as well: `update()`, `delete()` and `bulk_update()` (which updates)."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditEntryImmutableError(_("Audit entries cannot be changed."))

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> NoReturn:
        raise AuditEntryImmutableError(_("Audit entries cannot be changed."))

    def delete(self) -> NoReturn:  # type: ignore[override]
        raise AuditEntryImmutableError(_("Audit entries cannot be deleted."))


class AuditEntryImmutableError(Exception):
    pass


class AuditEvent(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    SUCCEEDED = "succeeded", _("Accepted (by AWS or TOQ)")
    FAILED = "failed", _("Failed")
    UNKNOWN = "unknown", _("Outcome unknown")


class AuditEntry(models.Model):
    """Append-only: who did what to which job, why, what was sent and what AWS answered.

    The app can only insert. `save()` on an existing row, `delete()` and the queryset's bulk
    writes raise; on PostgreSQL a trigger (migration 0002) refuses UPDATE and DELETE too, so raw
    SQL from the app cannot rewrite history either. This is a deliberate `save()` override (house
    style §3 forbids side effects there; this one only refuses).
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Kept as text too: the row must still say who it was if the user is renamed.
    actor_username = models.CharField(max_length=150)
    job = models.ForeignKey("jobs.Job", on_delete=models.PROTECT, related_name="reprocess_audit")
    reprocess_action = models.ForeignKey(
        ReprocessAction, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries"
    )
    action = models.CharField(max_length=16, choices=ActionKind.choices)
    event = models.CharField(max_length=16, choices=AuditEvent.choices)
    reason = models.TextField()
    sent = models.JSONField(default=dict)
    response = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action} {self.event}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditEntryImmutableError(_("Audit entries cannot be changed."))
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        raise AuditEntryImmutableError(_("Audit entries cannot be deleted."))


# --- bulk reprocessing ---------------------------------------------------------------------------


class BatchState(models.TextChoices):
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    ABORTED = "aborted", _("Aborted")
    FINISHED = "finished", _("Finished")


class ItemState(models.TextChoices):
    PENDING = "pending", _("Pending")
    DONE = "done", _("Done")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")


class Batch(models.Model):
    """One bulk reprocess: the jobs of a job-list filter (a failure group is `group=<id>`), one action.

    Its whole state lives here and in its items (reprocess.bulk runs it), so a worker restart loses
    nothing. Each item goes through `services.reprocess_job`, so every job also gets its own
    ReprocessAction and audit entries.
    """

    name = models.CharField(max_length=200)
    reason = models.TextField()
    action = models.CharField(max_length=16, choices=ActionKind.choices)
    # The job list's query string (only JobFilter's parameters, sorted): the set this batch was made of.
    query = models.CharField(max_length=2000, blank=True)
    # The failure group asked for (`group=` in the query), and how it was labelled then: groups are
    # recomputed, so the label is a snapshot, and the id is not a foreign key.
    group_id = models.PositiveBigIntegerField(null=True, blank=True)
    group_label = models.CharField(max_length=255, blank=True)
    rate_per_minute = models.PositiveIntegerField()
    # From the confirmation form: a double submit or a retried POST creates one batch.
    idempotency_key = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=16, choices=BatchState.choices, default=BatchState.RUNNING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Who paused, resumed or aborted it last, and when.
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)
    # The rate limit: no item may start before this instant (moved on by 60 / rate_per_minute s per item).
    not_before = models.DateTimeField(null=True, blank=True)
    # A runner's lease (reprocess.bulk.batch_run): keeps the beat ticks from piling runs up. Safety does
    # not rest on it (rate slots and item claims are conditional updates), only efficiency.
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rate_per_minute__gte=1, rate_per_minute__lte=600), name="reprocess_batch_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} {self.name} ({self.action}, {self.state})"

    @property
    def is_over(self) -> bool:
        return self.state in (BatchState.ABORTED, BatchState.FINISHED)

    @property
    def can_pause(self) -> bool:
        return self.state == BatchState.RUNNING

    @property
    def can_resume(self) -> bool:
        return self.state == BatchState.PAUSED

    @property
    def can_abort(self) -> bool:
        return self.state in (BatchState.RUNNING, BatchState.PAUSED)


class BatchItem(models.Model):
    """One job of a batch: pending until a runner claims it and the single-job service answers."""

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="items")
    job = models.ForeignKey("jobs.Job", on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.PENDING)
    # Claimed by a runner at this instant; a claim older than REPROCESS_CLAIM_TIMEOUT_SECONDS belongs
    # to a dead worker and is taken over (the item's idempotency key makes that safe).
    claimed_at = models.DateTimeField(null=True, blank=True)
    claims = models.PositiveSmallIntegerField(default=0)
    reprocess_action = models.ForeignKey(
        ReprocessAction, null=True, blank=True, on_delete=models.PROTECT, related_name="batch_items"
    )
    result = models.CharField(max_length=600, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "job"], name="reprocess_batch_item_job_uniq"),
        ]
        indexes = [models.Index(fields=["batch", "state"], name="reprocess_item_batch_state")]

    def __str__(self) -> str:
        return f"batch {self.batch_id} job {self.job_id} ({self.state})"
