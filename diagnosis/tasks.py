"""Celery tasks of the diagnosis app: thin wrappers (ids only) around diagnosis.services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.contrib.django.task import DjangoTask

from diagnosis.selectors import job_ids_needing_diagnosis
from diagnosis.services import diagnose_job, diagnose_jobs
from jobs.models import Job

logger = logging.getLogger(__name__)

# Jobs fanned out per dispatcher run: a diagnosis takes a few ms (batched reads), so 500 per run
# stays well inside the tasks' deadlines and catches up after an engine upgrade in a few runs.
DISPATCH_LIMIT = 500
# Jobs per diagnose_jobs task: their evidence is read with a fixed number of queries per batch
# (diagnosis.selectors.evidence_for_jobs), ~10x faster than one job per task (bench/diagnosis.py),
# while a batch's evidence stays a few MB.
DIAGNOSE_BATCH_SIZE = 100


@shared_task(base=DjangoTask, name="diagnosis.diagnose_job", ignore_result=True, soft_time_limit=60, time_limit=90)
def diagnose_job_task(job_id: int) -> bool:
    """Diagnose one mirror job (pk); True when the stored findings changed. A vanished job is a no-op."""
    try:
        return diagnose_job(job_id=job_id).changed
    except Job.DoesNotExist:
        logger.info("diagnose_job: job %s no longer exists", job_id)
        return False


@shared_task(base=DjangoTask, name="diagnosis.diagnose_jobs", ignore_result=True, soft_time_limit=120, time_limit=180)
def diagnose_jobs_task(job_ids: list[int]) -> int:
    """Diagnose a batch of mirror jobs (pks) with batched reads; returns how many changed. Idempotent."""
    return diagnose_jobs(job_ids=job_ids)


@shared_task(name="diagnosis.diagnose_dispatch", ignore_result=True, soft_time_limit=60, time_limit=90)
def diagnose_dispatch_task() -> int:
    """Enqueue diagnose_jobs in batches for at most DISPATCH_LIMIT jobs whose evidence or engine changed."""
    job_ids = job_ids_needing_diagnosis(limit=DISPATCH_LIMIT)
    for start in range(0, len(job_ids), DIAGNOSE_BATCH_SIZE):
        diagnose_jobs_task.delay_on_commit(job_ids[start : start + DIAGNOSE_BATCH_SIZE])
    logger.info("diagnosis dispatch: %d jobs", len(job_ids))
    return len(job_ids)


@shared_task(name="diagnosis.failure_groups_refresh", ignore_result=True, soft_time_limit=120, time_limit=180)
def failure_groups_refresh_task() -> int:
    from diagnosis.groups import failure_groups_refresh

    return failure_groups_refresh()


# The sends have timeouts (webhook 5 s, EMAIL_TIMEOUT) and at most EVENTS_PER_RULE_LIMIT events per
# rule, so a run fits well inside the five-minute beat interval.
@shared_task(name="diagnosis.alerts_evaluate", ignore_result=True, soft_time_limit=240, time_limit=280)
def alerts_evaluate_task() -> int:
    """Deliver pending alerts; returns how many were sent. Idempotent (deliveries are deduplicated)."""
    from diagnosis.alerts import alerts_evaluate

    return alerts_evaluate().sent
