"""`python manage.py import_aws FILE...`: import AWS CLI JSON exports without credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from awslogs.services.importer import ImportFormatError, aws_export_import


class Command(BaseCommand):
    help = "Import AWS CLI JSON exports (describe-execution, get-execution-history, filter-log-events, ...)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--execution-arn", default="", help="execution of a get-execution-history export")
        parser.add_argument("--log-group", default="", help="log group of a filter-log-events export")
        parser.add_argument("--bucket", default="", help="bucket of a list-objects-v2 export")

    def handle(self, *args: Any, **options: Any) -> None:
        missing = [str(p) for p in options["files"] if not p.is_file()]
        if missing:
            raise CommandError(_("No such file: %(files)s") % {"files": ", ".join(missing)})
        try:
            results = aws_export_import(
                list(options["files"]),
                execution_arn=options["execution_arn"],
                log_group=options["log_group"],
                bucket=options["bucket"],
            )
        except ImportFormatError as exc:
            raise CommandError(str(exc)) from exc
        for result in results:
            self.stdout.write(f"{result.path}: {result.kind} → {result.target}: {result.rows} new")
        self.stdout.write(
            _("Imported %(files)d files, %(rows)d new rows.")
            % {"files": len(results), "rows": sum(r.rows for r in results)}
        )
