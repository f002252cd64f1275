"""Alerts: new failure groups, regressions, spikes and stuck jobs, by e-mail and Slack-style webhook.

`alerts_evaluate` is run by beat every five minutes (diagnosis.alerts_evaluate). Each (rule, channel,
event) is delivered once: the AlertDelivery row is claimed before sending (a unique key, then a
conditional UPDATE for retries), so two overlapping runs never send the same alert twice. A failed
send is recorded and retried on a later evaluation; a sent one never again. Inside a rule's quiet
hours nothing is recorded, so the alert goes out on the first evaluation after them.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Count, F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from diagnosis.groups import origin_findings
from diagnosis.models import AlertChannel, AlertDelivery, AlertKind, AlertRule, DeliveryStatus, FailureGroup
from jobs.models import Job

logger = logging.getLogger(__name__)

# New groups and regressions are alerted while they are this recent: a day covers any quiet hours
# and outages of the worker, without announcing months-old groups when a rule is first created.
LOOKBACK = timedelta(hours=24)
# Spikes compare the last hour with the hourly average of the week before it.
SPIKE_WINDOW = timedelta(hours=1)
SPIKE_BASELINE = timedelta(days=7)
# At most this many events per rule and run: a mass outage sends 50 alerts, not thousands; the rest
# follow on later runs (they are not recorded until sent).
EVENTS_PER_RULE_LIMIT = 50
# A delivery left "sending" this long belongs to a worker that died mid-send: claim it again.
SENDING_STALE_AFTER = timedelta(minutes=10)
WEBHOOK_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class AlertEvent:
    dedup_key: str
    subject: str
    text: str
    link: str


@dataclass
class AlertsResult:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _GroupCounts:
    group: FailureGroup
    recent: int
    hourly_average: float


def _link(path: str) -> str:
    return f"{settings.TOQDASH_BASE_URL}{path}"


def _group_event(group: FailureGroup, *, key: str, headline: str) -> AlertEvent:
    title = group.title_en or f"{group.failure_mode} {group.cause}"
    text = _("%(headline)s\n%(title)s\nJobs: %(jobs)d, listings: %(listings)d, last seen: %(last)s") % {
        "headline": headline,
        "title": title,
        "jobs": group.job_count,
        "listings": group.listing_count,
        "last": f"{group.last_seen_at:%Y-%m-%d %H:%M} UTC" if group.last_seen_at else "-",
    }
    return AlertEvent(
        dedup_key=key, subject=f"[toqdash] {headline}: {title}", text=text, link=_link(f"/groups/{group.pk}/")
    )


def new_group_events(*, now: datetime) -> list[AlertEvent]:
    """Groups first seen within LOOKBACK."""
    groups = FailureGroup.objects.filter(job_count__gt=0, first_seen_at__gte=now - LOOKBACK).order_by("first_seen_at")
    return [
        _group_event(g, key=f"new_group:{g.signature}", headline=_("New failure group"))
        for g in groups[:EVENTS_PER_RULE_LIMIT]
    ]


def regression_events(*, now: datetime) -> list[AlertEvent]:
    """Groups that came back after a quiet period within LOOKBACK (one alert per comeback)."""
    groups = FailureGroup.objects.filter(job_count__gt=0, regressed_at__gte=now - LOOKBACK).order_by("regressed_at")
    return [
        _group_event(
            g,
            key=f"regression:{g.signature}:{g.regressed_at:%Y-%m-%dT%H:%M:%S}",
            headline=_("Regression: failure group seen again after a quiet period"),
        )
        for g in groups[:EVENTS_PER_RULE_LIMIT]
    ]


def group_hourly_counts(*, now: datetime) -> list[_GroupCounts]:
    """Per group: origin findings in the last hour, and its hourly average over the 7 days before.

    One aggregate query over the window (conditional counts), then one for the groups seen in it.
    """
    # `seen_at` is annotated by origin_findings(); the django-stubs plugin cannot follow it.
    hour_start = now - SPIKE_WINDOW
    rows = (
        origin_findings()
        .filter(seen_at__gte=hour_start - SPIKE_BASELINE, seen_at__lte=now)  # type: ignore[misc]
        .values("signature")
        .annotate(
            recent=Count("id", filter=Q(seen_at__gte=hour_start)),
            before=Count("id", filter=Q(seen_at__lt=hour_start)),
        )
        .filter(recent__gt=0)
    )
    counts = {r["signature"]: (r["recent"], r["before"]) for r in rows}
    hours = SPIKE_BASELINE / timedelta(hours=1)
    return [
        _GroupCounts(group=g, recent=counts[g.signature][0], hourly_average=counts[g.signature][1] / hours)
        for g in FailureGroup.objects.filter(signature__in=list(counts))
    ]


def spike_events(*, rule: AlertRule, now: datetime, counts: Iterable[_GroupCounts]) -> list[AlertEvent]:
    """Groups whose last-hour count is ≥ rule.spike_min_count and ≥ spike_factor × their usual rate."""
    hour = now.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H")
    events = []
    for c in sorted(counts, key=lambda c: -c.recent):
        if c.recent < rule.spike_min_count or c.recent < rule.spike_factor * c.hourly_average:
            continue
        headline = _("Spike: %(recent)d jobs in the last hour (usually %(avg).1f per hour)") % {
            "recent": c.recent,
            "avg": c.hourly_average,
        }
        events.append(_group_event(c.group, key=f"spike:{c.group.signature}:{hour}", headline=headline))
    return events[:EVENTS_PER_RULE_LIMIT]


def stuck_job_events(*, rule: AlertRule, now: datetime) -> list[AlertEvent]:
    """Current, non-terminal jobs created more than rule.stuck_after_minutes ago (oldest first)."""
    jobs = (
        Job.objects.current()
        .in_flight()
        .annotate(began=Coalesce("created_at", "first_seen_at"))
        .filter(began__lt=now - timedelta(minutes=rule.stuck_after_minutes))
        .order_by("began")[:EVENTS_PER_RULE_LIMIT]
    )
    events = []
    for job in jobs:
        minutes = int((now - job.began) / timedelta(minutes=1))  # type: ignore[attr-defined]
        subject = _("Job %(job)s stuck in %(status)s for %(minutes)d minutes") % {
            "job": job.toq_id,
            "status": job.status,
            "minutes": minutes,
        }
        text = _("%(subject)s\nListing: %(listing)s, provider: %(provider)s") % {
            "subject": subject,
            "listing": job.listing_identity_id,
            "provider": job.provider,
        }
        events.append(
            AlertEvent(
                dedup_key=f"stuck:{job.pk}",
                subject=f"[toqdash] {subject}",
                text=text,
                link=_link(f"/jobs/{job.toq_id}/"),
            )
        )
    return events


def in_quiet_hours(*, rule: AlertRule, now: datetime) -> bool:
    """Whether `now` falls in the rule's quiet hours (DISPLAY_TIME_ZONE); start > end spans midnight."""
    start, end = rule.quiet_start, rule.quiet_end
    if start is None or end is None or start == end:
        return False
    local: time = now.astimezone(ZoneInfo(settings.DISPLAY_TIME_ZONE)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def _send_email(rule: AlertRule, event: AlertEvent) -> None:
    body = _("%(text)s\n\nOpen in toqdash: %(link)s\n\n(Alert rule: %(rule)s)") % {
        "text": event.text,
        "link": event.link,
        "rule": rule.name,
    }
    send_mail(event.subject, body, None, rule.recipient_list, fail_silently=False)


def slack_payload(event: AlertEvent) -> dict[str, object]:
    """A Slack-compatible message: `text` for notifications and plain clients, `blocks` for Slack."""
    return {
        "text": f"{event.subject}\n{event.link}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": event.subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": event.text[:3000]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{event.link}|{_('Open in toqdash')}>"}},
        ],
    }


def _send_webhook(rule: AlertRule, event: AlertEvent) -> None:
    # The URL is set by an admin (URLField), but urllib would also open file: URLs: only http(s).
    if not rule.webhook_url.startswith(("http://", "https://")):
        raise ValueError(f"webhook URL must be http(s): {rule.webhook_url!r}")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        rule.webhook_url,
        data=json.dumps(slack_payload(event)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    # urlopen raises HTTPError (an OSError) for any non-2xx answer.
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked above)
        response.read()


def _claim(*, rule: AlertRule, channel: str, key: str, now: datetime) -> AlertDelivery | None:
    """The delivery row to send, or None when it was sent already or another run is sending it."""
    delivery, created = AlertDelivery.objects.get_or_create(
        rule=rule, channel=channel, dedup_key=key, defaults={"status": DeliveryStatus.SENDING, "updated_at": now}
    )
    if created:
        return delivery
    retry = Q(status=DeliveryStatus.FAILED) | Q(status=DeliveryStatus.SENDING, updated_at__lt=now - SENDING_STALE_AFTER)
    # Conditional UPDATE: when two runs race for a failed delivery, only one gets the row.
    claimed = AlertDelivery.objects.filter(retry, pk=delivery.pk).update(status=DeliveryStatus.SENDING, updated_at=now)
    return delivery if claimed else None


def _events_for(rule: AlertRule, *, now: datetime, counts: list[_GroupCounts] | None) -> list[AlertEvent]:
    if rule.kind == AlertKind.NEW_GROUP:
        return new_group_events(now=now)
    if rule.kind == AlertKind.REGRESSION:
        return regression_events(now=now)
    if rule.kind == AlertKind.SPIKE:
        return spike_events(rule=rule, now=now, counts=counts or [])
    return stuck_job_events(rule=rule, now=now)


def alerts_evaluate(*, now: datetime | None = None) -> AlertsResult:
    """Find the events of every enabled rule and deliver each (rule, channel, event) once.

    No transaction around the sends (external I/O): each delivery row is claimed, the message sent,
    then the outcome written. Never raises for a failed send; the error is recorded instead.
    """
    now = now or timezone.now()
    result = AlertsResult()
    rules = list(AlertRule.objects.filter(enabled=True))
    counts = group_hourly_counts(now=now) if any(r.kind == AlertKind.SPIKE for r in rules) else None
    for rule in rules:
        channels = [
            c for c, on in ((AlertChannel.EMAIL, rule.recipient_list), (AlertChannel.WEBHOOK, rule.webhook_url)) if on
        ]
        events = _events_for(rule, now=now, counts=counts) if channels else []
        if not events:
            continue
        sent = set(
            rule.deliveries.filter(status=DeliveryStatus.SENT, dedup_key__in=[e.dedup_key for e in events]).values_list(
                "channel", "dedup_key"
            )
        )
        pending = [(c, e) for e in events for c in channels if (c, e.dedup_key) not in sent]
        if in_quiet_hours(rule=rule, now=now):
            result.deferred += len(pending)
            continue
        for channel, event in pending:
            delivery = _claim(rule=rule, channel=channel, key=event.dedup_key, now=now)
            if delivery is None:
                continue
            try:
                (_send_email if channel == AlertChannel.EMAIL else _send_webhook)(rule, event)
            except (OSError, ValueError) as exc:  # SMTPException, URLError, HTTPError are OSErrors
                error = f"{type(exc).__name__}: {exc}"
                logger.warning("alert %s via %s (rule %s) failed: %s", event.dedup_key, channel, rule.pk, error)
                status, sent_at = DeliveryStatus.FAILED, None
                result.failed += 1
                result.errors.append(error)
            else:
                error, status, sent_at = "", DeliveryStatus.SENT, now
                result.sent += 1
            AlertDelivery.objects.filter(pk=delivery.pk).update(
                status=status, sent_at=sent_at, error=error[:2000], attempts=F("attempts") + 1, updated_at=now
            )
    logger.info("alerts: %d sent, %d failed, %d deferred", result.sent, result.failed, result.deferred)
    return result
