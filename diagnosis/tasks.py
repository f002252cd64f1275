"""Celery tasks of the diagnosis app: thin wrappers (ids only) around diagnosis.services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.contrib.django.task import DjangoTask

from diagnosis.selectors import job_ids_needing_diagnosis
from diagnosis.services import diagnose_job
from jobs.models import Job

logger = logging.getLogger(__name__)

# Jobs fanned out per dispatcher run: one diagnosis takes a few ms to ~100 ms (mostly reads), so 500
# per run stays well inside the dispatcher's deadline and catches up after an engine upgrade in a
# few runs.
DISPATCH_LIMIT = 500


@shared_task(base=DjangoTask, name="diagnosis.diagnose_job", ignore_result=True, soft_time_limit=60, time_limit=90)
def diagnose_job_task(job_id: int) -> bool:
    """Diagnose one mirror job (pk); True when the stored findings changed. A vanished job is a no-op."""
    try:
        return diagnose_job(job_id=job_id).changed
    except Job.DoesNotExist:
        logger.info("diagnose_job: job %s no longer exists", job_id)
        return False


@shared_task(name="diagnosis.diagnose_dispatch", ignore_result=True, soft_time_limit=60, time_limit=90)
def diagnose_dispatch_task() -> int:
    """Enqueue diagnose_job for at most DISPATCH_LIMIT jobs whose evidence or engine changed."""
    job_ids = job_ids_needing_diagnosis(limit=DISPATCH_LIMIT)
    for job_id in job_ids:
        diagnose_job_task.delay_on_commit(job_id)
    logger.info("diagnosis dispatch: %d jobs", len(job_ids))
    return len(job_ids)


@shared_task(name="diagnosis.failure_groups_refresh", ignore_result=True, soft_time_limit=120, time_limit=180)
def failure_groups_refresh_task() -> int:
    from diagnosis.groups import failure_groups_refresh

    return failure_groups_refresh()
