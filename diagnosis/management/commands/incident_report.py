"""`python manage.py incident_report JOB_ID [--lang en|pt-br]`: Markdown incident report on stdout."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from diagnosis.report import incident_report_markdown
from diagnosis.selectors import job_get_latest


class Command(BaseCommand):
    help = "Print a Markdown incident report for a TOQ job (its latest generation)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_id", type=int)
        parser.add_argument("--lang", choices=["en", "pt-br"], default="en")

    def handle(self, *args: Any, **options: Any) -> None:
        job = job_get_latest(toq_id=options["job_id"])
        if job is None:
            raise CommandError(f"job {options['job_id']} is not in the mirror (run sync_toq first?)")
        self.stdout.write(incident_report_markdown(job=job, lang=options["lang"]))
