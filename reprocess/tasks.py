"""Celery tasks of the reprocess app: thin wrappers (ids only) around reprocess.bulk and reprocess.services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.contrib.django.task import DjangoTask

from .bulk import batch_run, batches_due
from .services import reprocess_link_pending_jobs, reprocess_reconcile_pending

logger = logging.getLogger(__name__)


# A run works for about one tick (REPROCESS_BULK_TICK_SECONDS × 0.8) and then finishes the item in
# hand, whose AWS calls botocore bounds (≈ 350 s at worst with the default retries): the limits leave
# room for that. REPROCESS_CLAIM_TIMEOUT_SECONDS must stay above the hard limit.
@shared_task(base=DjangoTask, name="reprocess.batch_run", ignore_result=True, soft_time_limit=300, time_limit=360)
def batch_run_task(batch_id: int) -> int:
    """Run the batch's due items for about one tick; returns items handled. Idempotent and safe to
    run concurrently (the state, rate slots and claims live in the database)."""
    return batch_run(batch_id=batch_id).processed


@shared_task(name="reprocess.bulk_tick", ignore_result=True, soft_time_limit=30, time_limit=60)
def bulk_tick_task() -> int:
    """Start a run of every batch that has work (at most bulk.TICK_LIMIT): keeps batches going, and
    resumes them after a worker restart."""
    batch_ids = batches_due()
    for batch_id in batch_ids:
        batch_run_task.delay_on_commit(batch_id)
    return len(batch_ids)


@shared_task(name="reprocess.link_executions", ignore_result=True, soft_time_limit=120, time_limit=180)
def link_executions_task() -> int:
    """Link recent resubmits to the executions they caused (database only); returns rows linked."""
    return reprocess_link_pending_jobs()


@shared_task(name="reprocess.reconcile_pending", ignore_result=True, soft_time_limit=240, time_limit=280)
def reconcile_pending_task() -> int:
    """Resolve actions left pending by a dead process (after REPROCESS_CLAIM_TIMEOUT_SECONDS)."""
    resolved = reprocess_reconcile_pending()
    if resolved:
        logger.warning("reconciled %d reprocess actions left pending", resolved)
    return resolved
