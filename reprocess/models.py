"""Admin-triggered reprocessing (issue 6): one row per action, and an append-only audit log.

toqdash never writes TOQ's MySQL: an action acts on AWS the way TOQ's own pipeline starts
(reference §6). The idempotency of an action rests on two unique constraints here (the caller's
idempotency key; one attempt number per job) and on AWS execution names / client tokens.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ActionKind(models.TextChoices):
    RESUBMIT = "resubmit", _("Resubmit to TOQ's queue")
    RERUN = "rerun", _("Re-run the execution with its original input")
    REDRIVE = "redrive", _("Redrive the failed execution")


class Outcome(models.TextChoices):
    # Claimed in the database, AWS not answered yet (or the process died while calling it).
    PENDING = "pending", _("Pending (AWS not answered yet)")
    SUCCEEDED = "succeeded", _("Accepted by AWS")
    FAILED = "failed", _("Refused by AWS or failed")


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
    # The exact AWS request (operation + parameters), written before the call.
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
    SUCCEEDED = "succeeded", _("Accepted by AWS")
    FAILED = "failed", _("Failed")


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
