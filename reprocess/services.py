"""reprocess_job: claim in the database, call AWS outside any transaction, record the answer.

Idempotency (issue 6 §3): the caller's idempotency key is UNIQUE (a double click or a retried
request with the same key returns the first action); (job, attempt) is UNIQUE and only one action
per job may wait for AWS (two admins at once: the second is refused); a re-run's execution name
is deterministic and a redrive carries a client token, so AWS itself refuses a second start.
The `process` action calls TOQ's API instead of AWS (reprocess.toq_api), once: TOQ's /process has
no idempotency token, so the claim above is what keeps a retried request from sending it twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from awslogs.models import Execution
from jobs.models import Job
from jobs.roles import ADMIN, user_has_role

from . import aws, toq_api
from .models import ActionKind, AuditEntry, AuditEvent, Outcome, ReprocessAction
from .planner import plan_reprocess

logger = logging.getLogger(__name__)


class ReprocessNotAllowed(ValidationError):
    """The action is not eligible for this job (the plan says why)."""


class ReprocessConflict(ValidationError):
    """Another reprocess of the job is in flight or took this attempt first."""


def _settle(row: ReprocessAction, user: User) -> bool:
    """Record the outcome set on `row` if the action is still pending (a conditional update: of
    two processes settling one action, one wins), with its audit entry. Whether this call won."""
    row.finished_at = timezone.now()
    with transaction.atomic(durable=True):
        updated = ReprocessAction.objects.filter(pk=row.pk, outcome=Outcome.PENDING).update(
            outcome=row.outcome,
            response=row.response,
            error=row.error,
            new_execution_arn=row.new_execution_arn,
            finished_at=row.finished_at,
        )
        if updated:
            event = {
                Outcome.SUCCEEDED: AuditEvent.SUCCEEDED,
                Outcome.FAILED: AuditEvent.FAILED,
            }.get(Outcome(row.outcome), AuditEvent.UNKNOWN)
            _audit(action=row, user=user, event=event)
    return bool(updated)


def _audit(*, action: ReprocessAction, user: User, event: str) -> None:
    AuditEntry.objects.create(
        actor=user,
        actor_username=user.get_username(),
        job_id=action.job_id,
        reprocess_action=action,
        action=action.action,
        event=event,
        reason=action.reason,
        sent=action.sent,
        response=action.response,
        error=action.error,
    )


def _execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def _call_aws(action: ReprocessAction) -> tuple[dict[str, Any], str]:
    """AWS's (or TOQ's) answer and the execution ARN it concerns. Raises aws.ReprocessAwsError
    (toq_api.ToqApiError for TOQ)."""
    sent = action.sent
    if action.action == ActionKind.PROCESS:
        # TOQ answers 202 without the new job's id (it reaches the mirror with the next sync) and
        # the validate Lambda names the execution later: neither is known here.
        return toq_api.post_process(url=sent["url"], headers=sent["headers"], body=sent["body"]), ""
    if action.action == ActionKind.RESUBMIT:
        answer = aws.sqs_send_message(
            queue_name=sent["QueueName"], body=sent["MessageBody"], attributes=sent["MessageAttributes"]
        )
        # The validate Lambda starts the execution later: its ARN is not known yet.
        return answer, ""
    if action.action == ActionKind.RERUN:
        try:
            answer = aws.sfn_start_execution(
                state_machine_arn=sent["stateMachineArn"], name=sent["name"], input=sent["input"]
            )
        except aws.ReprocessAwsError as exc:
            if exc.code != "ExecutionAlreadyExists":
                raise
            # Same deterministic name: this very action already started it (an earlier try whose
            # answer was lost). The existing execution is the result, not a second one.
            arn = _execution_arn(sent["stateMachineArn"], sent["name"])
            answer = aws.sfn_describe_execution(arn)
            answer["alreadyExisted"] = True
        return answer, str(answer.get("executionArn", ""))
    answer = aws.sfn_redrive_execution(execution_arn=sent["executionArn"], client_token=action.idempotency_key)
    return answer, str(sent["executionArn"])


def reprocess_job(*, job: Job, action: str, user: User, reason: str, idempotency_key: str) -> ReprocessAction:
    """Run one reprocess action on `job` as `user` (Admin). Returns the action row (new or the
    earlier one with the same idempotency key). Must be called outside a transaction."""
    if not user_has_role(user, ADMIN):
        raise PermissionDenied(_("Only admins can reprocess jobs."))
    reason = reason.strip()
    if not reason:
        raise ValidationError(_("A reason is required."), code="reason")
    if action not in ActionKind.values:
        raise ValidationError(_("Unknown action %s.") % action, code="action")
    if not idempotency_key or len(idempotency_key) > 64:
        raise ValidationError(_("A valid idempotency key is required."), code="idempotency_key")

    existing = ReprocessAction.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return _same_request(existing, job=job, action=action)

    plan = plan_reprocess(job, user)
    step = plan.actions[action]
    if not step.eligible:
        raise ReprocessNotAllowed(" ".join(step.reasons), code="not_eligible")

    try:
        # durable: fails loudly if a caller wraps us in a transaction (the AWS call must not be inside one).
        with transaction.atomic(durable=True):
            row = ReprocessAction.objects.create(
                job=job,
                action=action,
                idempotency_key=idempotency_key,
                attempt=plan.attempt,
                requested_by=user,
                reason=reason,
                sent=step.request,
            )
            _audit(action=row, user=user, event=AuditEvent.REQUESTED)
    except IntegrityError:
        existing = ReprocessAction.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_request(existing, job=job, action=action)
        raise ReprocessConflict(
            _("Another reprocess of this job is in flight or was just made; reload the plan."), code="conflict"
        ) from None

    # Outside any transaction: the claim is committed, whatever AWS does.
    try:
        answer, arn = _call_aws(row)
    except aws.ReprocessAwsError as exc:
        logger.warning("reprocess %s of job %s failed: %s", row.action, job.toq_id, exc)
        row.outcome, row.error, row.response = Outcome.FAILED, str(exc), exc.as_dict()
    else:
        row.outcome, row.response, row.new_execution_arn = Outcome.SUCCEEDED, answer, arn
    _settle(row, user)
    return row


def _same_request(existing: ReprocessAction, *, job: Job, action: str) -> ReprocessAction:
    if existing.job_id != job.pk or existing.action != action:
        raise ValidationError(_("This idempotency key was already used for another request."), code="key_reused")
    return existing


# How far an execution's start may precede our record of the SendMessage (clock skew between AWS
# and this host); the validate Lambda starts it seconds after the message at the earliest.
LINK_SKEW = dt.timedelta(seconds=60)


def reprocess_link_executions(*, job: Job) -> int:
    """Link resubmits to the executions the validate Lambda started for them (issue 6 §4).

    A resubmit's execution gets an AWS-generated name, so it is found afterwards among the
    executions awslogs collected for the job id: the first not yet linked that started after the
    message was sent, attempts in order. Idempotent (conditional update); returns rows linked.
    Run for every job waiting for a link by `reprocess_link_pending_jobs` (beat)."""
    linked = set(
        ReprocessAction.objects.filter(job=job)
        .exclude(new_execution_arn="")
        .values_list("new_execution_arn", flat=True)
    )
    if job.external_id:
        linked.add(job.external_id)
    count = 0
    waiting = ReprocessAction.objects.filter(
        job=job, action=ActionKind.RESUBMIT, outcome=Outcome.SUCCEEDED, new_execution_arn=""
    ).order_by("attempt")
    for row in waiting:
        candidate = (
            Execution.objects.filter(job_toq_id=job.toq_id, start_date__gte=row.created_at - LINK_SKEW)
            .exclude(arn__in=linked)
            .order_by("start_date", "id")
            .first()
        )
        if candidate is None:
            break
        if ReprocessAction.objects.filter(pk=row.pk, new_execution_arn="").update(new_execution_arn=candidate.arn):
            linked.add(candidate.arn)
            count += 1
    return count


# --- actions left pending (issue 6 §3) -----------------------------------------------------------

# How far before our claim AWS may date a redrive (clock skew between AWS and this host).
RECONCILE_SKEW = dt.timedelta(seconds=60)
# Pending actions reconciled per beat run: each costs at most one AWS call, and there are normally none.
RECONCILE_LIMIT = 100


def _claim_timeout() -> dt.timedelta:
    return dt.timedelta(seconds=settings.REPROCESS_CLAIM_TIMEOUT_SECONDS)


def _reconcile_check(row: ReprocessAction) -> tuple[str, dict[str, Any], str, str] | None:
    """(outcome, response, error, execution ARN) from what AWS says now; None when AWS could not be asked."""
    sent = row.sent
    if row.action == ActionKind.RESUBMIT:
        # SQS has no lookup of one sent message: whether it left is unknowable from here.
        error = _(
            "toqdash stopped between recording this resubmit and SQS's answer. SQS cannot be asked "
            "whether one message was sent, so it is unknown whether TOQ's queue received it. If no "
            "new execution of the job appears, reprocess the job again."
        )
        return Outcome.UNKNOWN, {"reconciled": True}, error, ""
    if row.action == ActionKind.PROCESS:
        # TOQ's API has no lookup of one /process call either.
        error = _(
            "toqdash stopped between recording this request and TOQ's answer. TOQ cannot be asked "
            "whether it received it, so it is unknown whether TOQ made a new job. Look for a new job "
            "of the listing before asking TOQ again."
        )
        return Outcome.UNKNOWN, {"reconciled": True}, error, ""
    if row.action == ActionKind.RERUN:
        arn = _execution_arn(sent["stateMachineArn"], sent["name"])
        try:
            answer = aws.sfn_describe_execution(arn)
        except aws.ReprocessAwsError as exc:
            if exc.code != "ExecutionDoesNotExist":
                logger.warning("reconcile of reprocess %s: %s", row.pk, exc)
                return None
            error = _(
                "toqdash stopped before AWS was called: no execution named %(name)s exists, so nothing "
                "was started. Reprocess the job again if it still needs it."
            ) % {"name": sent["name"]}
            return Outcome.FAILED, {"reconciled": True, **exc.as_dict()}, error, ""
        return Outcome.SUCCEEDED, {"reconciled": True, **answer}, "", arn
    # Redrive: the execution says whether (and when) it was last redriven.
    arn = str(sent["executionArn"])
    try:
        answer = aws.sfn_describe_execution(arn)
    except aws.ReprocessAwsError as exc:
        logger.warning("reconcile of reprocess %s: %s", row.pk, exc)
        return None
    redriven = parse_aws_date(answer.get("redriveDate"))
    if redriven is not None and redriven >= row.created_at - RECONCILE_SKEW:
        return Outcome.SUCCEEDED, {"reconciled": True, **answer}, "", arn
    error = _(
        "toqdash stopped before AWS was called: the execution was not redriven after this request. "
        "Reprocess the job again if it still needs it."
    )
    return Outcome.FAILED, {"reconciled": True, **answer}, error, ""


def parse_aws_date(value: Any) -> dt.datetime | None:
    """A date as awslogs.client.jsonable leaves it (ISO text) or as epoch seconds."""
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def reprocess_reconcile_action(*, action_id: int) -> ReprocessAction:
    """Resolve one action left pending (its process died between the claim and AWS's answer).

    Re-run: DescribeExecution by its deterministic name (exists: succeeded; does not: failed, nothing
    was started). Redrive: the execution's redriveDate. Resubmit: `unknown`, with the reason, since
    SQS cannot be asked about one message. Idempotent (conditional update, audited once); an AWS
    error leaves it pending for the next run. Does not check the timeout: callers do. Must be called
    outside a transaction."""
    row = ReprocessAction.objects.select_related("requested_by").get(pk=action_id)
    if row.outcome != Outcome.PENDING:
        return row
    checked = _reconcile_check(row)
    if checked is None:
        return row
    row.outcome, row.response, row.error, row.new_execution_arn = checked
    if not _settle(row, row.requested_by):
        row.refresh_from_db()  # the original process answered first
    logger.info("reconciled reprocess %s of job %s: %s", row.pk, row.job_id, row.outcome)
    return row


def reprocess_reconcile_pending(*, now: dt.datetime | None = None, limit: int = RECONCILE_LIMIT) -> int:
    """Reconcile actions pending for longer than REPROCESS_CLAIM_TIMEOUT_SECONDS; returns how many
    were resolved. Idempotent; meant for beat (reprocess.reconcile_pending)."""
    cutoff = (now or timezone.now()) - _claim_timeout()
    ids = list(
        ReprocessAction.objects.filter(outcome=Outcome.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(reprocess_reconcile_action(action_id=pk).outcome != Outcome.PENDING for pk in ids)


# Jobs whose resubmits are linked per beat run (database only, a few queries each).
LINK_LIMIT = 500
# A resubmit whose execution has not appeared after this long is not looked for any more.
LINK_WINDOW = dt.timedelta(days=7)


def reprocess_link_pending_jobs(*, now: dt.datetime | None = None, limit: int = LINK_LIMIT) -> int:
    """`reprocess_link_executions` for every job with a recent resubmit not yet linked; returns
    rows linked. Idempotent; meant for beat (reprocess.link_executions)."""
    since = (now or timezone.now()) - LINK_WINDOW
    job_ids = list(
        ReprocessAction.objects.filter(
            action=ActionKind.RESUBMIT, outcome=Outcome.SUCCEEDED, new_execution_arn="", created_at__gte=since
        )
        .order_by("job_id")
        .values_list("job_id", flat=True)
        .distinct()[:limit]
    )
    return sum(reprocess_link_executions(job=job) for job in Job.objects.filter(pk__in=job_ids))
