"""Collection passes as rows (CollectionRun): the UI's collection-lag banner reads the last success."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone

from awslogs.models import CollectionRun


@contextmanager
def collection_run_recorded() -> Iterator[CollectionRun]:
    """Record one collection pass around the block: succeeded when it returns, failed (with the
    exception's type and message) when it raises; the exception propagates. The caller sets `jobs`."""
    run = CollectionRun.objects.create(started_at=timezone.now())
    try:
        yield run
    except BaseException as exc:
        run.outcome = CollectionRun.Outcome.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = timezone.now()
        run.save(update_fields=["outcome", "error", "finished_at", "jobs"])
        raise
    run.outcome = CollectionRun.Outcome.SUCCEEDED
    run.finished_at = timezone.now()
    run.save(update_fields=["outcome", "finished_at", "jobs"])
