"""python manage.py reprocess JOB_ID --action … --reason … --user … [--yes]: the service, from a shell.

Same checks as the UI (`services.reprocess_job`: Admin role, reason, eligibility, idempotency,
audit). Without --yes the plan is printed and confirmation asked on a terminal; without a
terminal, --yes is required.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.models import Job
from reprocess.models import ActionKind, Outcome
from reprocess.planner import plan_reprocess
from reprocess.services import reprocess_job


class Command(BaseCommand):
    help = (
        "Reprocess one TOQ job: through AWS (resubmit to TOQ's queue, re-run or redrive its execution) "
        "or through TOQ's API (process: ask TOQ to process the job's listing again)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_id", type=int, help="TOQ job id (its current generation)")
        parser.add_argument("--action", required=True, choices=ActionKind.values)
        parser.add_argument("--reason", required=True)
        parser.add_argument("--user", required=True, help="username of the admin acting")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--idempotency-key", default="", help="repeat a run safely: the same key never acts twice")

    def handle(self, *args: Any, **options: Any) -> None:
        job = Job.objects.current().filter(toq_id=options["job_id"]).first()
        if job is None:
            raise CommandError(f"job {options['job_id']} is not in the mirror")
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {options['user']!r}")
        action = options["action"]

        plan = plan_reprocess(job, user)
        step = plan.actions[action]
        self.stdout.write(f"{step.label} — job {job.toq_id}, attempt {plan.attempt}")
        self.stdout.write(step.does)
        for line in step.side_effects:
            self.stdout.write(f"  side effect: {line}")
        for line in step.warnings:
            self.stdout.write(self.style.WARNING(f"  warning: {line}"))
        for line in plan.warnings:
            self.stdout.write(self.style.WARNING(f"  warning: {line}"))
        if not step.eligible:
            raise CommandError("not eligible: " + " ".join(step.reasons))
        self.stdout.write(step.request_json)
        if step.payload:
            self.stdout.write(f"payload: {step.payload}")

        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("not a terminal: pass --yes to confirm")
            if input("Proceed? [y/N] ").strip().lower() not in ("y", "yes"):
                raise CommandError("cancelled")

        try:
            row = reprocess_job(
                job=job,
                action=action,
                user=user,
                reason=options["reason"],
                idempotency_key=options["idempotency_key"] or uuid.uuid4().hex,
            )
        except PermissionDenied as exc:
            raise CommandError(f"refused: {exc}") from exc
        except ValidationError as exc:
            raise CommandError("refused: " + " ".join(exc.messages)) from exc
        if row.outcome == Outcome.FAILED:
            who = "TOQ" if action == ActionKind.PROCESS else "AWS"
            raise CommandError(f"{who} refused attempt {row.attempt}: {row.error}")
        self.stdout.write(self.style.SUCCESS(f"attempt {row.attempt}: {row.outcome} {row.new_execution_arn}".rstrip()))
