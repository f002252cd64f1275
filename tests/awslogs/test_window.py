"""The execution search window of a job with neither created_at (old schema) nor started_at (no
callback yet): days back, bounded below by the previous job and above by the next one."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from awslogs.models import Execution, LogEvent
from awslogs.services.collect import job_evidence_collect, job_window
from tests.awslogs.factories import execution_arn, make_job

MARGIN = dt.timedelta(seconds=60)


@pytest.fixture(autouse=True)
def _margin(settings):
    settings.AWSLOGS_LOG_MARGIN_SECONDS = 60
    settings.AWSLOGS_SEARCH_BACK_DAYS = 7


def _execution_of(job, name: str, start: dt.datetime) -> Execution:
    return Execution.objects.create(
        arn=execution_arn(name), name=name, found_via="import", status="SUCCEEDED", job=job, start_date=start
    )


@pytest.mark.django_db
def test_no_neighbours_reaches_back_the_configured_days():
    job = make_job(70)
    before = timezone.now()
    start, end = job_window(job)
    assert before - dt.timedelta(days=7) - MARGIN - dt.timedelta(seconds=5) <= start <= before - dt.timedelta(days=7)
    assert end >= before + MARGIN


@pytest.mark.django_db
def test_bounded_by_the_previous_and_the_next_job_times():
    t = timezone.now() - dt.timedelta(days=3)
    make_job(68, created_at=t - dt.timedelta(days=2))  # farther below: not the neighbour
    make_job(69, created_at=t, started_at=t + dt.timedelta(minutes=1))
    job = make_job(70)
    make_job(71)  # no time of its own and no execution: skipped
    make_job(72, started_at=t + dt.timedelta(hours=2), created_at=t + dt.timedelta(hours=1))
    make_job(73, created_at=t + dt.timedelta(hours=5))
    assert job_window(job) == (t - MARGIN, t + dt.timedelta(hours=1) + MARGIN)


@pytest.mark.django_db
def test_next_job_bound_by_its_executions_start_when_it_has_no_times():
    t = timezone.now() - dt.timedelta(days=3)
    previous = make_job(69)  # no times of its own: its execution's start bounds from below
    _execution_of(previous, "prev", t)
    job = make_job(70)
    following = make_job(71)
    _execution_of(following, "next-b", t + dt.timedelta(hours=4))
    _execution_of(following, "next-a", t + dt.timedelta(hours=3))
    assert job_window(job) == (t - MARGIN, t + dt.timedelta(hours=3) + MARGIN)


@pytest.mark.django_db
def test_own_times_are_not_bounded_by_neighbours():
    t = timezone.now() - dt.timedelta(days=3)
    job = make_job(70, created_at=t, completed_at=t + dt.timedelta(hours=6), is_terminal=True)
    make_job(71, created_at=t + dt.timedelta(hours=1))
    assert job_window(job) == (t - MARGIN, t + dt.timedelta(hours=6) + MARGIN)


@pytest.mark.django_db
def test_logs_read_only_up_to_where_the_next_job_started(aws, moto_clients):
    """Job 70 has no times and no execution: its validate-log window runs from the previous job's
    time to the next job's, not to now (a later line naming job 70 — a reused id — is not read)."""
    now = timezone.now()
    make_job(69, created_at=now - dt.timedelta(hours=3))
    job = make_job(70)
    make_job(71, created_at=now - dt.timedelta(hours=1))
    group = "/aws/lambda/listing-media-validate-staging"
    logs = moto_clients["logs"]
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    lines = [(now - dt.timedelta(hours=2), "inside"), (now - dt.timedelta(minutes=30), "after the next job")]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[
            {"timestamp": int(at.timestamp() * 1000), "message": json.dumps({"msg": msg, "job_id": 70})}
            for at, msg in lines
        ],
    )
    job_evidence_collect(job_id=job.id)
    assert list(LogEvent.objects.filter(log_group=group).values_list("msg", flat=True)) == ["inside"]


@pytest.mark.django_db
def test_a_next_job_older_than_the_window_bounds_nothing():
    """Neighbours out of id order (a reused id, a clock jump) cannot give a window ending before
    it starts: the next job's time is ignored then."""
    t = timezone.now() - dt.timedelta(days=3)
    make_job(69, created_at=t)
    job = make_job(70, completed_at=t + dt.timedelta(hours=2), is_terminal=True)
    make_job(71, created_at=t - dt.timedelta(days=1))
    assert job_window(job) == (t - MARGIN, t + dt.timedelta(hours=2) + MARGIN)
