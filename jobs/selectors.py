"""Reads for views, commands and the health endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import Job, JobQuerySet, SyncRun


def job_list() -> JobQuerySet:
    return Job.objects.current().order_by("-toq_id")


def job_get_latest(*, toq_id: int) -> Job | None:
    """TOQ job id → its latest generation (an id can be reused after a DB recreation, FM-38)."""
    return Job.objects.filter(toq_id=toq_id).order_by("-generation").first()


@dataclass(frozen=True)
class SyncHealth:
    last_success_at: datetime | None
    last_run_at: datetime | None
    last_outcome: str | None
    last_error: str
    last_error_at: datetime | None
    rows_changed: int | None
    lag_seconds: float | None
    stale: bool


def sync_health(*, now: datetime | None = None) -> SyncHealth:
    now = now or timezone.now()
    last = SyncRun.objects.exclude(outcome=SyncRun.Outcome.SKIPPED).order_by("-started_at").first()
    last_ok = SyncRun.objects.filter(outcome=SyncRun.Outcome.SUCCEEDED).order_by("-started_at").first()
    last_failed = SyncRun.objects.filter(outcome=SyncRun.Outcome.FAILED).order_by("-started_at").first()
    lag = (now - last_ok.started_at).total_seconds() if last_ok else None
    # Stale when the last success is older than three sync intervals (or there never was one).
    stale = lag is None or lag > 3 * settings.TOQ_SYNC_INTERVAL_SECONDS
    # A failure older than the last success is history, not the current error.
    current_error = ""
    if last_failed and (not last_ok or last_failed.started_at > last_ok.started_at):
        current_error = last_failed.error
    return SyncHealth(
        last_success_at=last_ok.finished_at if last_ok else None,
        last_run_at=last.started_at if last else None,
        last_outcome=last.outcome if last else None,
        last_error=current_error,
        last_error_at=last_failed.started_at if last_failed else None,
        rows_changed=last_ok.rows_changed if last_ok else None,
        lag_seconds=lag,
        stale=stale,
    )


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    except Exception as exc:  # any driver error means "not reachable"
        return False, type(exc).__name__
    return True, "ok"


def _check_broker() -> tuple[bool, str]:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return True, "not used (tasks run in-process)"
    from toqdash.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises many types; all mean "not reachable"
        return False, type(exc).__name__
    return True, "ok"


def health_report() -> dict[str, Any]:
    db_ok, db_detail = _check_database()
    broker_ok, broker_detail = _check_broker()
    sync: dict[str, Any] = {"ok": None}
    if db_ok:
        health = sync_health()
        sync = {
            "last_success_at": health.last_success_at.isoformat() if health.last_success_at else None,
            "lag_seconds": round(health.lag_seconds, 1) if health.lag_seconds is not None else None,
            "stale": health.stale,
            "last_error": bool(health.last_error),
        }
    return {
        "ok": db_ok and broker_ok,
        "database": db_detail,
        "broker": broker_detail,
        "sync": sync,
    }
