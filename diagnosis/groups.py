"""Failure groups (Sentry-like): origin findings aggregated by signature, with regressions."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from diagnosis.models import FailureGroup, Finding, Role


def origin_findings() -> QuerySet[Finding]:
    """Origin findings of current jobs that have a signature, annotated with `seen_at` (job time)."""
    return (
        Finding.objects.filter(role=Role.ORIGIN, diagnosis__job__superseded_at__isnull=True)
        .exclude(signature="")
        .annotate(
            seen_at=Coalesce(
                "diagnosis__job__completed_at",
                "diagnosis__job__started_at",
                "diagnosis__job__created_at",
                "diagnosis__job__first_seen_at",
            )
        )
    )


@dataclass
class _Acc:
    failure_mode: str
    cause: str
    failing_state: str
    signature_text: str
    title_en: str
    title_pt_br: str
    times: list[datetime]
    listings: set[int]
    jobs: int = 0


def failure_groups_refresh(*, quiet_days: int | None = None, now: datetime | None = None) -> int:
    """Recompute every group from the stored origin findings. Returns the number of groups.

    Regression: the newest occurrence came after a gap of more than `quiet_days` without any.
    Streams findings in signature order, so memory is bounded by one group at a time plus the
    (small) group table.
    """
    quiet = timedelta(days=settings.DIAGNOSIS_REGRESSION_QUIET_DAYS if quiet_days is None else quiet_days)
    now = now or timezone.now()
    # `seen_at` is annotated by origin_findings(); the django-stubs plugin cannot follow it.
    rows = (
        origin_findings()
        .values_list(  # type: ignore[misc]
            "signature",
            "failure_mode",
            "cause",
            "failing_state",
            "signature_text",
            "title_en",
            "title_pt_br",
            "seen_at",
            "diagnosis__job__listing_identity_id",
        )
        .order_by("signature", "seen_at")
    )
    groups: dict[str, _Acc] = {}
    for sig, fm, cause, state, text, t_en, t_pt, seen_at, listing in rows.iterator(chunk_size=5000):
        acc = groups.get(sig)
        if acc is None:
            acc = groups[sig] = _Acc(fm, cause, state, text, t_en, t_pt, [], set())
        acc.jobs += 1
        if seen_at is not None:
            acc.times.append(seen_at)
        acc.listings.add(listing)
    with transaction.atomic():
        existing = {g.signature: g for g in FailureGroup.objects.select_for_update()}
        to_create: list[FailureGroup] = []
        to_update: list[FailureGroup] = []
        for sig, acc in groups.items():
            regressed_at = None
            for earlier, later in zip(acc.times, acc.times[1:], strict=False):
                if later - earlier > quiet:
                    regressed_at = later
            g = existing.get(sig) or FailureGroup(signature=sig)
            g.failure_mode, g.cause, g.failing_state = acc.failure_mode, acc.cause, acc.failing_state
            g.signature_text, g.title_en, g.title_pt_br = acc.signature_text, acc.title_en, acc.title_pt_br
            g.job_count = acc.jobs
            g.listing_count = len(acc.listings)
            g.first_seen_at = acc.times[0] if acc.times else None
            g.last_seen_at = acc.times[-1] if acc.times else None
            g.regressed_at = regressed_at
            g.refreshed_at = now
            (to_update if g.pk else to_create).append(g)
        FailureGroup.objects.bulk_create(to_create, batch_size=1000)
        FailureGroup.objects.bulk_update(
            to_update,
            [
                "failure_mode",
                "cause",
                "failing_state",
                "signature_text",
                "title_en",
                "title_pt_br",
                "job_count",
                "listing_count",
                "first_seen_at",
                "last_seen_at",
                "regressed_at",
                "refreshed_at",
            ],
            batch_size=1000,
        )
        # Groups without any job left keep their notes but show zero jobs.
        FailureGroup.objects.exclude(signature__in=list(groups)).update(job_count=0, listing_count=0, refreshed_at=now)
    return len(groups)


def failure_group_trend(*, signature: str, days: int = 30, now: datetime | None = None) -> list[tuple[date, int]]:
    """Jobs per day of one group over the last `days` days (zeros included), for a sparkline."""
    now = now or timezone.now()
    start = (now - timedelta(days=days - 1)).date()
    counts: dict[date, int] = defaultdict(int)
    for row in (
        origin_findings()
        .filter(signature=signature)
        .annotate(day=TruncDate("seen_at"))
        .filter(day__gte=start)
        .values("day")
        .annotate(n=Count("id"))
    ):
        counts[row["day"]] = row["n"]
    return [(start + timedelta(days=i), counts[start + timedelta(days=i)]) for i in range(days)]


def jobs_in_group(*, signature: str) -> QuerySet[Finding]:
    return origin_findings().filter(signature=signature).select_related("diagnosis__job")
