"""A bulk reprocess run by real Celery workers (with beat, against Redis and moto's server): the first
worker is killed with SIGKILL mid-batch, a second one finishes it, and every job was acted on once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.contrib.auth.models import AbstractUser

from reprocess import bulk
from reprocess.models import AuditEntry, Batch, BatchItem, BatchState, ItemState, ReprocessAction
from tests.celery_worker import start_worker
from tests.jobs.factories import make_listing, make_user

from .conftest import QUEUE, MotoAws, make_failed_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# A Redis database of its own: tests/jobs/test_sync_processes.py's workers use 15.
BROKER_DB = 13
JOBS = list(range(201, 207))


@pytest.fixture
def broker() -> Iterator[str]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=BROKER_DB)
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{BROKER_DB}"
    client.flushdb()
    client.close()


def _worker(broker: str, schedule: Path, log: Path) -> subprocess.Popen[bytes]:
    # AWS_ENDPOINT_URL and credentials come with the environment: the aws fixture's, for moto.
    # Its own process group: the embedded beat is a child process, and a crash kills both.
    return start_worker(
        schedule,
        log.open("ab"),
        new_session=True,
        CELERY_BROKER_URL=broker,
        TOQ_MAIN_QUEUE=QUEUE,
        # A tick a second; a dead worker's lease and claims are taken over after a few seconds.
        REPROCESS_BULK_TICK_SECONDS="1",
        REPROCESS_CLAIM_TIMEOUT_SECONDS="5",
        # The other periodic tasks stay out of the way for the test's duration.
        TOQ_SYNC_INTERVAL_SECONDS="3600",
        AWSLOGS_DISPATCH_INTERVAL_SECONDS="3600",
    )


def _kill(worker: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(worker.pid, sig)
    except ProcessLookupError:
        return
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _wait_for(predicate: object, worker: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, log.read_text()[-3000:]
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out; worker log:\n" + log.read_text()[-3000:])


def _done() -> int:
    return BatchItem.objects.filter(state=ItemState.DONE).count()


def test_a_batch_survives_a_killed_worker_without_acting_twice(
    aws: MotoAws, broker: str, tmp_path: Path, started_runs: list[int]
) -> None:
    make_listing(16)
    for toq_id in JOBS:
        make_failed_job(aws, toq_id)
    admin: AbstractUser = make_user("ada", "Admin")
    # 30 a minute: two seconds between jobs, so the kill right after a job lands between two jobs.
    batch = bulk.batch_create(
        user=admin,  # type: ignore[arg-type]
        action="resubmit",
        query="status=FAILED",
        name="after the ffmpeg fix",
        reason="layer restored",
        rate_per_minute=30,
        idempotency_key=uuid.uuid4().hex,
    )
    assert started_runs == [batch.pk]  # recorded, not sent to the broker: the workers' beat tick finds it
    log = tmp_path / "worker.log"

    first = _worker(broker, tmp_path / "beat-1", log)
    try:
        _wait_for(lambda: _done() >= 2, first, log, timeout=90)
    finally:
        _kill(first, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    done_before = _done()
    assert 2 <= done_before < len(JOBS), done_before
    assert Batch.objects.get(pk=batch.pk).state == BatchState.RUNNING

    second = _worker(broker, tmp_path / "beat-2", log)
    try:
        _wait_for(lambda: Batch.objects.get(pk=batch.pk).state == BatchState.FINISHED, second, log, timeout=120)
    finally:
        _kill(second, signal.SIGTERM)

    # Every job acted on exactly once: one message each in TOQ's queue (SQS would take duplicates).
    sent = Counter(json.loads(m["Body"])["jobId"] for m in aws.receive_all())
    assert sent == dict.fromkeys(JOBS, 1)
    assert set(BatchItem.objects.filter(batch=batch).values_list("state", flat=True)) == {ItemState.DONE}
    assert ReprocessAction.objects.count() == len(JOBS)
    assert AuditEntry.objects.filter(event="requested").count() == len(JOBS)
    assert AuditEntry.objects.filter(event="succeeded").count() == len(JOBS)
