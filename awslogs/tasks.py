"""Celery tasks: thin wrappers (ids only) around awslogs.services.collect."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings

from awslogs.client import AwsTransientError
from awslogs.services.collect import (
    job_evidence_collect,
    jobs_needing_evidence,
    lambda_configs_snapshot,
    queues_snapshot,
)
from awslogs.services.runs import collection_run_recorded

logger = logging.getLogger(__name__)


@shared_task(name="awslogs.evidence_dispatch", soft_time_limit=120, time_limit=180)
def evidence_dispatch_task() -> int:
    """Pick at most AWSLOGS_DISPATCH_LIMIT jobs needing evidence and fan out one task each.

    Each run is a CollectionRun: a dispatcher that stops running (beat or workers down) shows as
    collection lag in the UI."""
    with collection_run_recorded() as run:
        job_ids = jobs_needing_evidence(limit=settings.AWSLOGS_DISPATCH_LIMIT)
        for job_id in job_ids:
            job_evidence_collect_task.delay_on_commit(job_id)
        snapshots_collect_task.delay_on_commit()
        run.jobs = len(job_ids)
    logger.info("awslogs dispatch: %d jobs", len(job_ids))
    return len(job_ids)


@shared_task(
    base=DjangoTask,
    name="awslogs.collect_job",
    autoretry_for=(AwsTransientError, ConnectionError),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=600,
    time_limit=900,
)
def job_evidence_collect_task(job_id: int) -> None:
    """Collect one job's evidence (idempotent; missing evidence is recorded, not raised)."""
    job_evidence_collect(job_id=job_id)


@shared_task(
    base=DjangoTask,
    name="awslogs.collect_snapshots",
    autoretry_for=(AwsTransientError, ConnectionError),
    retry_backoff=True,
    max_retries=5,
)
def snapshots_collect_task() -> None:
    """Lambda configuration snapshots and queue depth / DLQ peek."""
    lambda_configs_snapshot()
    queues_snapshot()
