"""Stored diagnoses: computed when evidence changes (or the engine does), never per page view."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ORIGIN = "origin", _("Origin")
    CONTRIBUTING = "contributing", _("Contributing")
    CONSEQUENCE = "consequence", _("Consequence")


class Diagnosis(models.Model):
    """The current diagnosis of one job generation (one row per job, rewritten on re-diagnosis)."""

    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="diagnosis")
    engine_version = models.CharField(max_length=32)
    # sha256 of the Evidence the findings were computed from (diagnosis.evidence.Evidence.fingerprint).
    evidence_fingerprint = models.CharField(max_length=64)
    computed_at = models.DateTimeField(db_index=True)
    # The job status in TOQ as mirrored when diagnosed (the CLI reports the live mirror status).
    job_status = models.CharField(max_length=50, blank=True)

    class Meta:
        verbose_name_plural = "diagnoses"

    def __str__(self) -> str:
        return f"diagnosis of job {self.job_id} (engine {self.engine_version})"


class Finding(models.Model):
    diagnosis = models.ForeignKey(Diagnosis, on_delete=models.CASCADE, related_name="findings")
    position = models.PositiveSmallIntegerField()
    failure_mode = models.CharField(max_length=8, db_index=True)
    cause = models.CharField(max_length=64, db_index=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    title_en = models.CharField(max_length=255)
    title_pt_br = models.CharField(max_length=255)
    summary_en = models.TextField()
    summary_pt_br = models.TextField()
    action_en = models.TextField(blank=True)
    action_pt_br = models.TextField(blank=True)
    confidence = models.FloatField()
    # [{"kind": "history_event", "source": "<arn>", "id": "27", "excerpt": "..."}]
    evidence = models.JSONField(default=list)
    # [{"en": "...", "pt_br": "..."}]
    missing_evidence = models.JSONField(default=list)
    failing_state = models.CharField(max_length=128, blank=True)
    # Failure group: FM + cause + failing state + normalised message (diagnosis.signature).
    signature = models.CharField(max_length=64, db_index=True, blank=True)
    signature_text = models.TextField(blank=True)

    class Meta:
        ordering = ["diagnosis", "position"]
        constraints = [
            models.UniqueConstraint(fields=["diagnosis", "position"], name="finding_position_uniq"),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0) & models.Q(confidence__lte=1), name="finding_confidence_0_1"
            ),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="finding_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.failure_mode} {self.cause} ({self.role})"

    def title(self, lang: str = "en") -> str:
        return self.title_pt_br if lang == "pt-br" else self.title_en

    def summary(self, lang: str = "en") -> str:
        return self.summary_pt_br if lang == "pt-br" else self.summary_en

    def action(self, lang: str = "en") -> str:
        return self.action_pt_br if lang == "pt-br" else self.action_en


class AppendOnly(models.Model):
    """Rows that are written once and never changed or deleted through the app (audit trail)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if self.pk is not None and not self._state.adding:
            raise PermissionError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(f"{type(self).__name__} rows are append-only")


class Verdict(models.TextChoices):
    CONFIRMED = "confirmed", _("Confirmed")
    REJECTED = "rejected", _("Rejected")
    ADDED = "added", _("Cause added by an engineer")
    NOTE = "note", _("Note")


class Annotation(AppendOnly):
    """An engineer's statement about a job's diagnosis. Append-only: each row is one act (who, when,
    what) and the newest row per (job, failure mode, cause) is the one in force.

    Keyed by failure mode + cause — not by a Finding row, which re-diagnosis replaces — so
    annotations survive re-diagnosis and apply again when the engine finds the same cause.
    """

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="annotations")
    failure_mode = models.CharField(max_length=8, blank=True)
    cause = models.CharField(max_length=64, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    note = models.TextField(blank=True, max_length=4000)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["job", "failure_mode", "cause"], name="annotation_job_fm_cause_idx")]

    def __str__(self) -> str:
        return f"{self.verdict} {self.failure_mode} {self.cause} on job {self.job_id}"


class FailureGroup(models.Model):
    """Jobs whose origin finding shares a signature (FM + cause + failing state + normalised message).

    Recomputed by diagnosis.groups.failure_groups_refresh from the stored findings.
    """

    signature = models.CharField(max_length=64, unique=True)
    failure_mode = models.CharField(max_length=8, db_index=True)
    cause = models.CharField(max_length=64)
    failing_state = models.CharField(max_length=128, blank=True)
    signature_text = models.TextField(blank=True)
    title_en = models.CharField(max_length=255, blank=True)
    title_pt_br = models.CharField(max_length=255, blank=True)
    job_count = models.PositiveIntegerField(default=0)
    listing_count = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Seen again after a quiet period (DIAGNOSIS_REGRESSION_QUIET_DAYS): when it came back.
    regressed_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.failure_mode} {self.cause} ({self.job_count} jobs)"


class GroupNote(AppendOnly):
    """A note on a failure group; shown on every job whose origin matches the group, new ones included."""

    group = models.ForeignKey(FailureGroup, on_delete=models.CASCADE, related_name="notes")
    text = models.TextField(max_length=4000)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note on {self.group_id}"


class AlertKind(models.TextChoices):
    NEW_GROUP = "new_group", _("New failure group")
    REGRESSION = "regression", _("Regression (group seen again after a quiet period)")
    SPIKE = "spike", _("Spike (a group's hourly count far above its usual)")
    STUCK_JOBS = "stuck_jobs", _("Jobs stuck past a threshold")


class AlertRule(models.Model):
    """Who is told about which kind of event, and when not to (edited in Django admin)."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    enabled = models.BooleanField(default=True)
    spike_factor = models.FloatField(
        default=5.0, help_text=_("Spike: last hour's count ≥ this × the group's hourly average of the previous 7 days.")
    )
    spike_min_count = models.PositiveIntegerField(
        default=10, help_text=_("Spike: at least this many jobs in the last hour (ignores tiny groups).")
    )
    stuck_after_minutes = models.PositiveIntegerField(
        default=60, help_text=_("Stuck jobs: not terminal this many minutes after they were created.")
    )
    recipients = models.TextField(blank=True, help_text=_("E-mail addresses, one per line or comma-separated."))
    webhook_url = models.URLField(blank=True, max_length=500, help_text=_("Slack-compatible incoming webhook."))
    # In settings.DISPLAY_TIME_ZONE. start > end spans midnight (22:00–07:00); unset or equal: none.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=AlertKind.values), name="alertrule_kind_valid"),
            models.CheckConstraint(condition=models.Q(spike_factor__gt=0), name="alertrule_spike_factor_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def recipient_list(self) -> list[str]:
        return [r.strip() for r in self.recipients.replace(",", "\n").splitlines() if r.strip()]


class AlertChannel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    WEBHOOK = "webhook", _("Webhook")


class DeliveryStatus(models.TextChoices):
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed (retried on a later evaluation)")


class AlertDelivery(models.Model):
    """One alert event sent (or tried) for one rule on one channel.

    Unique per (rule, channel, dedup key), not per key alone: two rules may both want the same event,
    and a failed webhook is retried without sending the e-mail that already went out again.
    """

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="deliveries")
    # "new_group:<signature>", "regression:<signature>:<regressed_at>", "spike:<signature>:<hour>", "stuck:<job pk>"
    dedup_key = models.CharField(max_length=200)
    channel = models.CharField(max_length=16, choices=AlertChannel.choices)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.SENDING)
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-updated_at"]
        verbose_name_plural = "alert deliveries"
        constraints = [
            models.UniqueConstraint(fields=["rule", "channel", "dedup_key"], name="alertdelivery_dedup_uniq"),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values), name="alertdelivery_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dedup_key} via {self.channel}: {self.status}"
