"""`python manage.py collect_aws [--job ID ...]`: one whole collection pass in the foreground."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils.translation import gettext as _

from awslogs import client
from awslogs.services.collect import evidence_pass
from jobs.models import Job


class Command(BaseCommand):
    help = "Collect AWS evidence (executions, histories, logs, S3, MediaConvert) for jobs, in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", type=int, action="append", dest="jobs", help="TOQ job id (repeatable)")
        parser.add_argument("--limit", type=int, default=None, help="at most this many jobs (without --job)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not client.credentials_available():
            raise CommandError(_("Cannot run: no AWS credentials (environment, profile or role)."))
        job_ids: list[int] | None = None
        try:
            if options["jobs"]:
                job_ids = list(Job.objects.current().filter(toq_id__in=options["jobs"]).values_list("id", flat=True))
                if not job_ids:
                    raise CommandError(_("No mirrored job with id %(ids)s.") % {"ids": options["jobs"]})
            summary = evidence_pass(job_ids=job_ids, limit=options["limit"])
        except DatabaseError as exc:
            raise CommandError(_("Cannot run: %(error)s") % {"error": exc}) from exc
        # Missing evidence is recorded per job (EvidenceStatus) and does not make the pass fail.
        self.stdout.write(
            _(
                "collect_aws: %(jobs)d jobs, %(executions)d executions, %(logs)d new log events, "
                "%(incomplete)d jobs with missing evidence, %(configs)d new Lambda configurations, "
                "%(dlq)d new DLQ messages"
            )
            % {
                "jobs": summary.jobs,
                "executions": summary.executions,
                "logs": summary.log_events,
                "incomplete": summary.incomplete,
                "configs": summary.lambda_configs_new,
                "dlq": summary.dlq_messages_new,
            }
        )
