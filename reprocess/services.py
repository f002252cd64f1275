"""reprocess_job: claim in the database, call AWS outside any transaction, record the answer.

Idempotency (issue 6 §3): the caller's idempotency key is UNIQUE (a double click or a retried
request with the same key returns the first action); (job, attempt) is UNIQUE and only one action
per job may wait for AWS (two admins at once: the second is refused); a re-run's execution name
is deterministic and a redrive carries a client token, so AWS itself refuses a second start.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from awslogs.models import Execution
from jobs.models import Job
from jobs.roles import ADMIN, user_has_role

from . import aws
from .models import ActionKind, AuditEntry, AuditEvent, Outcome, ReprocessAction
from .planner import plan_reprocess

logger = logging.getLogger(__name__)


class ReprocessNotAllowed(ValidationError):
    """The action is not eligible for this job (the plan says why)."""


class ReprocessConflict(ValidationError):
    """Another reprocess of the job is in flight or took this attempt first."""


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
    """AWS's answer and the execution ARN it concerns. Raises aws.ReprocessAwsError."""
    sent = action.sent
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
            event = AuditEvent.SUCCEEDED if row.outcome == Outcome.SUCCEEDED else AuditEvent.FAILED
            _audit(action=row, user=user, event=event)
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
    Meant for a periodic task once one is scheduled."""
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
