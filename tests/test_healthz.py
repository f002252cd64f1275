"""/healthz: database and broker reachability (200 / 503) and the sync-lag block."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import selectors
from jobs.models import SyncRun
from toqdash.celery import app as celery_app


def _closed_port() -> int:
    """A local port nothing listens on: bound by us, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker_down(settings) -> str:
    """Point the broker at a closed port.

    The Celery app is configured with `config_from_object("django.conf:settings")`, which reads
    Django's settings object live (it keeps a reference, not a copy), so the `settings` fixture
    reaches it and restores it. Checked here: if anything ever pins `app.conf.broker_url`
    directly, this fixture fails instead of letting the 503 test pass for the wrong reason.
    """
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CELERY_BROKER_URL = url
    assert celery_app.conf.broker_url == url
    return url


def test_healthz_ok_when_database_and_broker_are_up(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["ok"] is True
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    # No pass has ever run: no lag, stale, no error.
    assert body["sync"] == {"last_success_at": None, "lag_seconds": None, "stale": True, "last_error": False}


def test_healthz_503_when_broker_unreachable(client, db, broker_down):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["database"] == "ok"
    assert body["broker"] != "ok"  # the exception's type name, e.g. OperationalError


def test_healthz_recovers_when_broker_is_back(client, db, settings):
    # Same process, broker restored: the 503 came from the broker URL, not from a cached state.
    original = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    assert client.get("/healthz").status_code == 503

    settings.CELERY_BROKER_URL = original

    assert client.get("/healthz").status_code == 200


def test_healthz_ignores_broker_in_eager_mode(client, db, settings, broker_down):
    # The `make run` demo runs tasks in-process: there is no broker to reach.
    settings.CELERY_TASK_ALWAYS_EAGER = True

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["broker"].startswith("not used")


def test_healthz_reports_sync_lag(client, db):
    now = timezone.now()
    SyncRun.objects.create(
        started_at=now - timedelta(seconds=30),
        finished_at=now - timedelta(seconds=28),
        outcome=SyncRun.Outcome.SUCCEEDED,
        rows_inserted=3,
    )

    body = client.get("/healthz").json()

    assert 30 <= body["sync"]["lag_seconds"] < 60
    assert body["sync"]["stale"] is False
    assert body["sync"]["last_error"] is False
    assert body["sync"]["last_success_at"] == (now - timedelta(seconds=28)).isoformat()


def test_healthz_stale_sync_is_reported_but_still_200(client, db, settings):
    # A stale mirror (TOQ's MySQL down, beat stopped) is shown, not turned into a 503: restarting
    # the dashboard would not fix it, and the UI must stay up to show the sync error.
    now = timezone.now()
    settings.TOQ_SYNC_INTERVAL_SECONDS = 60
    SyncRun.objects.create(
        started_at=now - timedelta(seconds=600), finished_at=now - timedelta(seconds=590), outcome="succeeded"
    )
    SyncRun.objects.create(started_at=now - timedelta(seconds=30), outcome="failed", error="MySQL unreachable")

    response = client.get("/healthz")

    assert response.status_code == 200
    sync = response.json()["sync"]
    assert sync["stale"] is True
    assert sync["last_error"] is True
    assert sync["lag_seconds"] >= 600


def test_sync_health_lag_and_staleness_boundaries(db, settings):
    settings.TOQ_SYNC_INTERVAL_SECONDS = 60
    now = timezone.now()
    ok = SyncRun.objects.create(
        started_at=now - timedelta(seconds=180),
        finished_at=now - timedelta(seconds=170),
        outcome=SyncRun.Outcome.SUCCEEDED,
        rows_updated=2,
        rows_inserted=1,
    )
    # A skipped pass (another one held the lock) is not "the last run".
    SyncRun.objects.create(started_at=now - timedelta(seconds=5), outcome=SyncRun.Outcome.SKIPPED)

    health = selectors.sync_health(now=now)

    assert health.lag_seconds == 180.0
    assert health.stale is False  # exactly three intervals: not yet stale
    assert health.last_success_at == ok.finished_at
    assert health.last_run_at == ok.started_at
    assert health.last_outcome == SyncRun.Outcome.SUCCEEDED
    assert health.rows_changed == 3
    assert health.last_error == ""

    later = selectors.sync_health(now=now + timedelta(seconds=1))
    assert later.lag_seconds == 181.0
    assert later.stale is True


def test_sync_health_error_clears_after_a_later_success(db):
    now = timezone.now()
    SyncRun.objects.create(started_at=now - timedelta(seconds=120), outcome="failed", error="Access denied")
    assert selectors.sync_health(now=now).last_error == "Access denied"
    assert selectors.sync_health(now=now).lag_seconds is None

    SyncRun.objects.create(started_at=now - timedelta(seconds=60), finished_at=now, outcome="succeeded")
    health = selectors.sync_health(now=now)

    assert health.last_error == ""
    assert health.last_error_at == now - timedelta(seconds=120)
    assert health.lag_seconds == 60.0
