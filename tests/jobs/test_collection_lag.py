"""The collection-lag banner: AWS evidence is behind when the last successful collection pass (a
dispatcher run, or a whole collect_aws) is older than AWSLOGS_STALE_AFTER_SECONDS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from awslogs import tasks
from awslogs.models import CollectionRun
from awslogs.services import collect
from jobs import selectors
from jobs.roles import SUPPORT
from tests.jobs.factories import make_job, make_user

pytestmark = pytest.mark.django_db
BANNER = "AWS evidence collection is behind"


def _run(ago: timedelta, outcome: str = CollectionRun.Outcome.SUCCEEDED) -> CollectionRun:
    now = timezone.now()
    return CollectionRun.objects.create(
        started_at=now - ago - timedelta(seconds=5), finished_at=now - ago, outcome=outcome
    )


def test_lag_boundaries_and_switch(settings):
    settings.AWSLOGS_STALE_AFTER_SECONDS = 900
    never = selectors.collection_lag()
    assert never.stale and never.last_success_at is None and never.lag_seconds is None
    run = _run(timedelta(seconds=900))
    assert run.finished_at is not None
    _run(timedelta(seconds=10), CollectionRun.Outcome.FAILED)  # a failed pass is no success
    _run(timedelta(seconds=1), CollectionRun.Outcome.RUNNING)
    now = run.finished_at + timedelta(seconds=900)
    assert selectors.collection_lag(now=now).stale is False  # exactly the threshold: not yet
    late = selectors.collection_lag(now=now + timedelta(seconds=1))
    assert late.stale and late.last_success_at == run.finished_at and late.lag_seconds == 901
    settings.AWSLOGS_STALE_AFTER_SECONDS = 0  # off
    assert selectors.collection_lag(now=now + timedelta(days=9)).stale is False


@pytest.fixture
def support(client):
    client.force_login(make_user("sam", SUPPORT))
    return client


def test_banner_on_the_job_list_and_the_job_page(support, settings):
    settings.AWSLOGS_STALE_AFTER_SECONDS = 900
    make_job(1)
    for url in ("/", "/jobs/1/"):
        html = support.get(url).content.decode()
        assert BANNER in html and "No collection pass has succeeded yet." in html
    _run(timedelta(minutes=20))
    for url in ("/", "/jobs/1/"):
        html = support.get(url).content.decode()
        assert BANNER in html and "Last successful collection pass:" in html
    _run(timedelta(minutes=1))
    for url in ("/", "/jobs/1/"):
        assert BANNER not in support.get(url).content.decode()
    # The polling table (htmx partial) does not carry page banners, stale or not.
    CollectionRun.objects.all().delete()
    assert BANNER not in support.get("/", headers={"HX-Request": "true"}).content.decode()


def test_dispatcher_runs_are_recorded(monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(tasks, "jobs_needing_evidence", lambda limit: [11, 12])
    monkeypatch.setattr(tasks.job_evidence_collect_task, "delay_on_commit", lambda *a: None)
    monkeypatch.setattr(tasks.snapshots_collect_task, "delay_on_commit", lambda *a: None)
    assert tasks.evidence_dispatch_task() == 2
    run = CollectionRun.objects.get()
    assert (run.outcome, run.jobs) == ("succeeded", 2)
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert selectors.collection_lag().stale is False

    def broken(limit: int) -> list[int]:
        raise DatabaseError("connection lost")

    monkeypatch.setattr(tasks, "jobs_needing_evidence", broken)
    with pytest.raises(DatabaseError):
        tasks.evidence_dispatch_task()
    failed = CollectionRun.objects.exclude(pk=run.pk).get()
    assert failed.outcome == "failed" and failed.error == "DatabaseError: connection lost"
    assert selectors.collection_lag().last_success_at == run.finished_at


def test_whole_foreground_pass_is_recorded_a_targeted_one_is_not(monkeypatch):
    monkeypatch.setattr(collect, "lambda_configs_snapshot", lambda: (0, []))
    monkeypatch.setattr(collect, "queues_snapshot", lambda: (0, []))
    monkeypatch.setattr(collect, "jobs_needing_evidence", lambda limit: [])
    collect.evidence_pass(job_ids=[])
    assert not CollectionRun.objects.exists()
    collect.evidence_pass()
    assert CollectionRun.objects.get().outcome == "succeeded"
