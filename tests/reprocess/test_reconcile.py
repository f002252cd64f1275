"""Actions left pending by a process that died between the claim and AWS's answer: reconciled with AWS
after REPROCESS_CLAIM_TIMEOUT_SECONDS (DescribeExecution for a re-run or a redrive; `unknown` for a
resubmit, which SQS cannot confirm), on beat; and the resubmit ↔ execution linking on beat."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from django.utils import timezone

from jobs.models import Job
from reprocess.models import AuditEntry, Outcome, ReprocessAction
from reprocess.services import reprocess_job, reprocess_reconcile_action, reprocess_reconcile_pending
from reprocess.tasks import link_executions_task, reconcile_pending_task

from .conftest import MotoAws, add_execution
from .test_redrive import _Stub, sfn_stub, timed_out_job  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def _pending(
    job: Job, user: AbstractUser, action: str, *, age: dt.timedelta = dt.timedelta(hours=1)
) -> ReprocessAction:
    """What a process killed mid-action leaves: the claim and its `requested` audit entry only.

    Made through the real service, then wound back to its claimed state (the AWS call happened or
    not, depending on the test)."""
    row = reprocess_job(job=job, action=action, user=user, reason="incident 12", idempotency_key=uuid.uuid4().hex)
    ReprocessAction.objects.filter(pk=row.pk).update(
        outcome=Outcome.PENDING,
        response=None,
        error="",
        new_execution_arn="",
        finished_at=None,
        created_at=timezone.now() - age,
    )
    row.refresh_from_db()
    return row


def _events(row: ReprocessAction) -> list[str]:
    return list(AuditEntry.objects.filter(reprocess_action=row).order_by("id").values_list("event", flat=True))


def test_rerun_that_reached_aws_is_succeeded_and_linked(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    row = _pending(job37, admin_user, "rerun")  # StartExecution happened, the answer was lost

    assert reprocess_reconcile_pending() == 1

    row.refresh_from_db()
    assert row.outcome == Outcome.SUCCEEDED
    assert row.new_execution_arn.endswith(":toqdash-37-r1")
    assert row.response is not None and row.response["reconciled"] is True
    assert _events(row) == ["requested", "succeeded", "succeeded"]  # the original run's, then the reconcile's
    assert len(aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]) == 1


def test_rerun_that_never_reached_aws_is_failed_with_why(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    row = _pending(job37, admin_user, "rerun")
    # The process died before StartExecution: no execution of the action's name exists in AWS.
    ReprocessAction.objects.filter(pk=row.pk).update(sent={**row.sent, "name": "toqdash-37-r9"})

    assert reprocess_reconcile_pending() == 1

    row.refresh_from_db()
    assert row.outcome == Outcome.FAILED
    assert "no execution named toqdash-37-r9 exists, so nothing was started" in row.error
    assert AuditEntry.objects.filter(reprocess_action=row).last().event == "failed"


def test_resubmit_is_unknown_with_a_visible_explanation(
    client: Client, aws: MotoAws, job37: Job, admin_user: AbstractUser
) -> None:
    row = _pending(job37, admin_user, "resubmit")

    assert reprocess_reconcile_pending() == 1

    row.refresh_from_db()
    assert row.outcome == Outcome.UNKNOWN
    assert "SQS cannot be asked whether one message was sent" in row.error
    assert AuditEntry.objects.filter(reprocess_action=row).last().event == "unknown"
    # It no longer blocks the job (one pending action per job), and both pages explain it.
    assert reprocess_job(job=job37, action="rerun", user=admin_user, reason="r", idempotency_key="k2").attempt == 2
    client.force_login(admin_user)
    for url in ("/reprocess/jobs/37/g1/", "/reprocess/jobs/37/g1/outcome/"):
        html = client.get(url).content.decode()
        assert "Unknown (toqdash stopped before the answer)" in html, url
        assert "SQS cannot be asked whether one message was sent" in html, url


def test_not_reconciled_before_the_timeout(aws: MotoAws, job37: Job, admin_user: AbstractUser, settings: Any) -> None:
    settings.REPROCESS_CLAIM_TIMEOUT_SECONDS = 900
    row = _pending(job37, admin_user, "resubmit", age=dt.timedelta(minutes=5))  # may still be in flight

    assert reprocess_reconcile_pending() == 0
    row.refresh_from_db()
    assert row.outcome == Outcome.PENDING

    assert reprocess_reconcile_pending(now=timezone.now() + dt.timedelta(minutes=11)) == 1


def test_reconcile_task_twice_changes_nothing_the_second_time(
    aws: MotoAws, job37: Job, admin_user: AbstractUser, settings: Any
) -> None:
    row = _pending(job37, admin_user, "rerun")
    assert reconcile_pending_task() == 1
    assert reconcile_pending_task() == 0
    assert reprocess_reconcile_action(action_id=row.pk).outcome == Outcome.SUCCEEDED
    assert AuditEntry.objects.filter(reprocess_action=row).count() == 3
    entry = settings.CELERY_BEAT_SCHEDULE["every-5m-reprocess-reconcile-pending"]
    assert entry["task"] == reconcile_pending_task.name == "reprocess.reconcile_pending"
    assert entry["options"]["expires"]


def test_aws_down_leaves_it_pending_for_the_next_run(
    aws: MotoAws, job37: Job, admin_user: AbstractUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = _pending(job37, admin_user, "rerun")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there

    assert reprocess_reconcile_pending() == 0
    row.refresh_from_db()
    assert row.outcome == Outcome.PENDING


def test_redrive_reconciled_from_the_executions_redrive_date(
    sfn_stub: _Stub,  # noqa: F811
    timed_out_job: Job,  # noqa: F811
    admin_user: AbstractUser,
) -> None:
    row = _pending(timed_out_job, admin_user, "redrive")
    sfn_stub.answer = (
        200,
        {"executionArn": row.sent["executionArn"], "status": "RUNNING", "redriveDate": timezone.now().timestamp()},
    )

    assert reprocess_reconcile_action(action_id=row.pk).outcome == Outcome.SUCCEEDED

    other = _pending(timed_out_job, admin_user, "redrive")
    sfn_stub.answer = (200, {"executionArn": row.sent["executionArn"], "status": "TIMED_OUT"})
    reconciled = reprocess_reconcile_action(action_id=other.pk)
    assert reconciled.outcome == Outcome.FAILED and "was not redriven" in reconciled.error


def test_link_task_links_resubmits_on_beat(aws: MotoAws, job37: Job, admin_user: AbstractUser, settings: Any) -> None:
    row = reprocess_job(job=job37, action="resubmit", user=admin_user, reason="a", idempotency_key="k1")
    base = aws.state_machine_arn.replace(":stateMachine:", ":execution:")
    add_execution(
        job37,
        state_machine_arn=aws.state_machine_arn,
        arn=f"{base}:new1",
        start_date=timezone.now() + dt.timedelta(seconds=5),
    )

    assert link_executions_task() == 1
    assert link_executions_task() == 0
    row.refresh_from_db()
    assert row.new_execution_arn == f"{base}:new1"
    entry = settings.CELERY_BEAT_SCHEDULE["every-5m-reprocess-link-executions"]
    assert entry["task"] == link_executions_task.name == "reprocess.link_executions"
