"""python manage.py reprocess_bulk --group ID | --filter QUERYSTRING --action … --name … --reason … --user …

The bulk preview, then (after confirmation on a terminal, or --yes) the batch, through the same
services as the UI (`reprocess.bulk`: Admin role, eligibility, rate limit, idempotency, audit).
The Celery workers run the batch; --foreground runs it in this process instead (no worker needed).
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reprocess import bulk
from reprocess.models import ActionKind, Batch, BatchState
from reprocess.selectors import batch_progress, bulk_preview


class Command(BaseCommand):
    help = "Reprocess every job of a failure group or of a job-list filter, at a rate limit."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--group", type=int, help="failure group id")
        source.add_argument("--filter", help="the job list's query string, e.g. 'status=FAILED&kind=processing'")
        parser.add_argument("--action", required=True, choices=ActionKind.values)
        parser.add_argument("--name", required=True, help="batch name")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--user", required=True, help="username of the admin acting")
        parser.add_argument("--rate", type=int, default=None, help="jobs per minute (default: the setting)")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--idempotency-key", default="", help="repeat safely: the same key is the same batch")
        parser.add_argument("--foreground", action="store_true", help="run the batch here instead of in the workers")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {options['user']!r}")
        query = f"group={options['group']}" if options["group"] is not None else options["filter"]
        action = options["action"]

        preview = bulk_preview(query=query, action=action)
        source = f"group {preview.group.failure_mode} {preview.group.cause}" if preview.group else "filter"
        self.stdout.write(f"{preview.action_label} — {source} {preview.query}")
        self.stdout.write(
            f"jobs: {len(preview.jobs)}, eligible: {len(preview.eligible)}, not eligible: {len(preview.ineligible)}"
        )
        for reason, count in preview.reasons:
            self.stdout.write(f"  {count} not eligible: {reason}")
        if preview.errors:
            raise CommandError("no batch: " + " ".join(preview.errors))

        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("not a terminal: pass --yes to confirm")
            if input(f"Act on {len(preview.eligible)} jobs? [y/N] ").strip().lower() not in ("y", "yes"):
                raise CommandError("cancelled")

        try:
            batch = bulk.batch_create(
                user=user,  # type: ignore[arg-type]
                action=action,
                query=query,
                name=options["name"],
                reason=options["reason"],
                rate_per_minute=options["rate"] or settings.REPROCESS_BULK_RATE_PER_MINUTE,
                idempotency_key=options["idempotency_key"] or uuid.uuid4().hex,
                fingerprint=preview.fingerprint,
            )
        except PermissionDenied as exc:
            raise CommandError(f"refused: {exc}") from exc
        except ValidationError as exc:
            raise CommandError("refused: " + " ".join(exc.messages)) from exc
        self.stdout.write(f"batch {batch.pk}: {settings.TOQDASH_BASE_URL}/reprocess/batches/{batch.pk}/")
        if options["foreground"]:
            self._run(batch)

    def _run(self, batch: Batch) -> None:
        while not batch.is_over:
            if batch.state == BatchState.PAUSED:
                raise CommandError(f"batch {batch.pk} was paused")
            bulk.batch_run(batch_id=batch.pk)
            batch.refresh_from_db()
            time.sleep(0.5)  # a run returns at once when the next rate slot is beyond its budget
        progress = batch_progress(batch_id=batch.pk)
        counts = ", ".join(f"{state} {n}" for state, n in progress.counts.items()) if progress else ""
        self.stdout.write(self.style.SUCCESS(f"batch {batch.pk} {batch.state}: {counts}"))
