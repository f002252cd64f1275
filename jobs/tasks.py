"""Celery tasks of the jobs app: thin wrappers around services."""

from __future__ import annotations

import logging

from celery import shared_task

from .sync import toq_sync

logger = logging.getLogger(__name__)


@shared_task(name="jobs.toq_sync", ignore_result=True)
def toq_sync_task() -> str:
    """One sync pass (scheduled by beat, every TOQ_SYNC_INTERVAL_SECONDS). The pass holds its own lock."""
    result = toq_sync()
    logger.info("%s", result.summary())
    return result.summary()
