"""A whole pass: rows prefetched and writes buffered per batch of jobs, still idempotent, and the
number of queries per job bounded (bench/aws_pass.py measures the time)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from awslogs.models import EvidenceStatus, Execution, JobRawKey, LogCursor, LogEvent
from awslogs.services import collect
from awslogs.services.collect import evidence_pass
from tests.awslogs.factories import make_job, running_history
from tests.awslogs.test_collect import JOB37_ARN, _create_machine, _setup_job37, _snapshot


@pytest.mark.django_db
def test_pass_in_batches_writes_every_job_and_nothing_new_the_second_time(aws, moto_clients, monkeypatch):
    monkeypatch.setattr(collect, "PASS_BATCH", 2)  # 3 jobs: two batches, two flushes
    _setup_job37(aws, moto_clients)
    now = timezone.now()
    done = {"status": "FAILED", "is_terminal": True, "completed_at": now - dt.timedelta(minutes=3)}
    jobs = [make_job(37, **done), make_job(36, listing_identity_id=15, **done), make_job(99, **done)]
    summary = evidence_pass(job_ids=[j.pk for j in jobs])
    assert summary.jobs == 3
    assert set(EvidenceStatus.objects.values_list("job__toq_id", flat=True)) == {36, 37, 99}
    assert set(LogCursor.objects.values_list("job__toq_id", flat=True)) == {36, 37, 99}
    # the executions of jobs 36 and 37 (ListExecutions) stored with their histories, 38's as an orphan
    assert dict(Execution.objects.values_list("job_toq_id", "history_event_count"))[37] == 47
    assert Execution.objects.get(job_toq_id=36).job == jobs[1] and Execution.objects.get(job_toq_id=38).is_orphan
    assert JobRawKey.objects.filter(job=jobs[0]).exists()
    assert LogEvent.objects.filter(job=jobs[1]).exists()
    before = _snapshot()
    evidence_pass(job_ids=[j.pk for j in jobs])
    assert _snapshot() == before


@pytest.mark.django_db
def test_queries_per_job_stay_bounded(aws, moto_clients):
    """Per job, a pass writes its execution (row, history, states) and little else: everything it
    reads is prefetched per batch. 20 jobs must not cost 20 × the old ~28 queries."""
    sfn = moto_clients["stepfunctions"]
    sm_arn = _create_machine(sfn)
    jobs = []
    for toq_id in range(300, 320):
        arn = sfn.start_execution(stateMachineArn=sm_arn, name=f"q{toq_id}", input=json.dumps({"jobId": toq_id}))[
            "executionArn"
        ]
        aws.histories[arn] = running_history(timezone.now(), toq_id)
        jobs.append(make_job(toq_id, external_id=arn, created_at=timezone.now()))
    with CaptureQueriesContext(connection) as queries:
        summary = evidence_pass(job_ids=[j.pk for j in jobs])
    assert summary.executions == 20
    assert Execution.objects.filter(history_event_count=3, job__isnull=False).count() == 20
    # fixed: prefetches, log group statuses, queue snapshots; per job: the execution row, its
    # history, its states, and the START lines of its Lambda attempt (before: ~28 per job)
    assert len(queries) <= 120 + 4 * len(jobs), len(queries)


@pytest.mark.django_db
def test_job37_collected_alone_and_in_a_pass_alike(aws, moto_clients):
    _setup_job37(aws, moto_clients)
    job = make_job(37, external_id=JOB37_ARN)
    evidence_pass(job_ids=[job.pk])
    assert Execution.objects.get(arn=JOB37_ARN).job == job
    assert EvidenceStatus.objects.get(job=job).missing
