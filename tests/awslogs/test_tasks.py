from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from awslogs.models import EvidenceStatus, Execution, HistoryEvent, LogEvent
from awslogs.services.collect import jobs_needing_evidence
from awslogs.tasks import evidence_dispatch_task, job_evidence_collect_task
from jobs.models import Job
from tests.awslogs.factories import make_job
from tests.awslogs.test_collect import JOB37_ARN, _setup_job37
from toqdash.celery import app


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.mark.django_db
def test_collect_job_task_twice_changes_nothing(aws, moto_clients):
    _setup_job37(aws, moto_clients)
    now = timezone.now()
    job = make_job(37, external_id=JOB37_ARN, status="FAILED", is_terminal=True, completed_at=now)
    job_evidence_collect_task(job.id)
    counts = (Execution.objects.count(), HistoryEvent.objects.count(), LogEvent.objects.count())
    assert counts[0] and counts[1] and counts[2]
    status = EvidenceStatus.objects.get(job=job)
    job_evidence_collect_task(job.id)
    assert (Execution.objects.count(), HistoryEvent.objects.count(), LogEvent.objects.count()) == counts
    assert EvidenceStatus.objects.get(job=job).collected_at == status.collected_at


@pytest.mark.django_db
def test_dispatcher_bounded_and_skips_complete_jobs(
    aws, moto_clients, eager, settings, django_capture_on_commit_callbacks
):
    settings.AWSLOGS_DISPATCH_LIMIT = 2
    done = timezone.now() - dt.timedelta(minutes=1)
    jobs = [make_job(n, status="FAILED", is_terminal=True, completed_at=done) for n in (1, 2, 3)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert evidence_dispatch_task() == 2  # bounded, newest first
    assert len(callbacks) == 3  # two jobs + the snapshots task, enqueued after commit
    assert EvidenceStatus.objects.filter(job__in=jobs[1:]).count() == 2
    assert not EvidenceStatus.objects.filter(job=jobs[0]).exists()
    # incomplete jobs (no execution found) are picked again; a complete, unchanged one is not
    EvidenceStatus.objects.filter(job=jobs[2]).update(complete=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert evidence_dispatch_task() == 2
    assert EvidenceStatus.objects.filter(job=jobs[0]).exists()
    # a job the sync saw change (new row_hash) needs evidence again
    EvidenceStatus.objects.update(complete=True)
    assert jobs_needing_evidence(limit=10) == []
    Job.objects.filter(pk=jobs[1].pk).update(row_hash=999)
    assert jobs_needing_evidence(limit=10) == [jobs[1].pk]
