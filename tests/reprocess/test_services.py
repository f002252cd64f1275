"""reprocess_job against moto's server: what is sent, idempotency, permission, audit."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction

from jobs.models import Job
from jobs.roles import ADMIN
from reprocess.models import AuditEntry, Outcome, ReprocessAction
from reprocess.services import ReprocessConflict, ReprocessNotAllowed, reprocess_job
from tests.jobs.factories import make_user

from .conftest import INPUT_37, MotoAws, add_execution

pytestmark = pytest.mark.django_db


def _key() -> str:
    return uuid.uuid4().hex


def test_resubmit_sends_toqs_message_exactly(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    row = reprocess_job(job=job37, action="resubmit", user=admin_user, reason="ffmpeg fixed", idempotency_key=_key())

    assert row.outcome == Outcome.SUCCEEDED, row.error
    messages = aws.receive_all()
    assert len(messages) == 1
    message = messages[0]
    # Byte for byte what TOQ's ProcessMedia sends (reference §3.2), retry = attempt 1.
    assert message["Body"] == (
        '{"jobId":37,"listingIdentityId":16,"assets":[{"key":'
        '"16/raw/video/vertical/vertical-01-VID_20260105_124137.mp4","type":"VIDEO_VERTICAL"}],"retry":1}'
    )
    assert message["MessageAttributes"] == {
        "ListingIdentityId": {"DataType": "String", "StringValue": "16"},
        "JobId": {"DataType": "String", "StringValue": "37"},
        "RetryCount": {"DataType": "String", "StringValue": "1"},
    }
    assert row.response is not None and row.response["MessageId"] == message["MessageId"]
    assert [e.event for e in AuditEntry.objects.filter(job=job37)] == ["requested", "succeeded"]

    second = reprocess_job(job=job37, action="resubmit", user=admin_user, reason="again", idempotency_key=_key())
    assert second.attempt == 2
    assert json.loads(aws.receive_all()[0]["Body"])["retry"] == 2


def test_resubmit_assets_from_callback_when_no_execution(aws: MotoAws, admin_user: AbstractUser, settings: Any) -> None:
    from tests.jobs.factories import make_asset, make_job, make_listing

    make_listing(16)
    make_asset(201, asset_type="PHOTO_VERTICAL", s3_key_raw="16/raw/photo/vertical/p1.jpg")
    body = json.dumps(
        {
            "jobId": 50,
            "status": "PROCESSING_FAILED",
            "outputs": [{"rawKey": "16/raw/photo/vertical/p1.jpg", "errorCode": "X"}],
        }
    )
    job = make_job(50, status="FAILED", kind="processing", callback_body=body, retry_count=2)

    reprocess_job(job=job, action="resubmit", user=admin_user, reason="retry", idempotency_key=_key())

    (message,) = aws.receive_all()
    assert json.loads(message["Body"]) == {
        "jobId": 50,
        "listingIdentityId": 16,
        "assets": [{"key": "16/raw/photo/vertical/p1.jpg", "type": "PHOTO_VERTICAL"}],
        "retry": 3,  # one higher than TOQ's retry_count 2
    }


def test_rerun_starts_named_execution_with_original_input(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    key = _key()
    row = reprocess_job(job=job37, action="rerun", user=admin_user, reason="rerun", idempotency_key=key)

    assert row.outcome == Outcome.SUCCEEDED, row.error
    executions = aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == ["toqdash-37-r1"]
    described = aws.sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert described["input"] == INPUT_37
    assert row.new_execution_arn == executions[0]["executionArn"]

    # A retried request with the same key: the same row, no second execution.
    again = reprocess_job(job=job37, action="rerun", user=admin_user, reason="rerun", idempotency_key=key)
    assert again.pk == row.pk
    assert len(aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]) == 1


def test_rerun_execution_already_exists_is_the_same_action(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    # The first try started the execution but its answer was lost (no row recorded it).
    aws.sfn.start_execution(stateMachineArn=aws.state_machine_arn, name="toqdash-37-r1", input='{"other":1}')

    row = reprocess_job(job=job37, action="rerun", user=admin_user, reason="rerun", idempotency_key=_key())

    assert row.outcome == Outcome.SUCCEEDED, row.error
    assert row.response is not None and row.response["alreadyExisted"] is True
    assert row.new_execution_arn.endswith(":toqdash-37-r1")
    assert len(aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]) == 1


def test_aws_error_is_recorded_and_audited(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)

    row = reprocess_job(job=job37, action="resubmit", user=admin_user, reason="x", idempotency_key=_key())

    assert row.outcome == Outcome.FAILED
    assert "QueueDoesNotExist" in row.error or "NonExistentQueue" in row.error
    last = AuditEntry.objects.filter(job=job37).last()
    assert last is not None and last.event == "failed" and last.error == row.error


def test_redrive_of_toq_processing_failure_is_refused(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    with pytest.raises(ReprocessNotAllowed, match="Fail state"):
        reprocess_job(job=job37, action="redrive", user=admin_user, reason="x", idempotency_key=_key())
    assert not ReprocessAction.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("role", ["Support", "Engineer", None])
def test_non_admins_refused(aws: MotoAws, job37: Job, role: str | None) -> None:
    user = make_user("someone", role)
    with pytest.raises(PermissionDenied):
        reprocess_job(job=job37, action="resubmit", user=user, reason="x", idempotency_key=_key())
    assert aws.receive_all() == []
    assert not ReprocessAction.objects.exists()


def test_reason_required(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    with pytest.raises(ValidationError):
        reprocess_job(job=job37, action="resubmit", user=admin_user, reason="  ", idempotency_key=_key())
    assert aws.receive_all() == []


def test_refuses_to_run_inside_a_transaction(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        reprocess_job(job=job37, action="resubmit", user=admin_user, reason="x", idempotency_key=_key())
    assert aws.receive_all() == []


def test_key_reused_for_another_action_is_refused(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    key = _key()
    reprocess_job(job=job37, action="resubmit", user=admin_user, reason="x", idempotency_key=key)
    with pytest.raises(ValidationError):
        reprocess_job(job=job37, action="rerun", user=admin_user, reason="x", idempotency_key=key)


def _race(calls: list[dict[str, Any]]) -> list[Any]:
    """Run reprocess_job concurrently, one thread (and DB connection) per call."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = reprocess_job(**calls[i])
        except Exception as exc:  # collected and asserted by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.django_db(transaction=True)
def test_double_submit_same_key_concurrently_is_one_action(aws: MotoAws, admin_user: AbstractUser) -> None:
    from tests.jobs.factories import make_job37

    job = make_job37()
    add_execution(job, state_machine_arn=aws.state_machine_arn)
    key = _key()
    call = {"job": job, "action": "resubmit", "user": admin_user, "reason": "double click", "idempotency_key": key}

    results = _race([call] * 4)

    assert all(isinstance(r, ReprocessAction) for r in results), results
    assert {r.pk for r in results} == {ReprocessAction.objects.get().pk}
    assert len(aws.receive_all()) == 1
    assert AuditEntry.objects.filter(event="requested").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_admins_at_once_is_one_action(aws: MotoAws) -> None:
    from tests.jobs.factories import make_job37

    job = make_job37()
    add_execution(job, state_machine_arn=aws.state_machine_arn)
    admins = [make_user("ada", ADMIN), make_user("bob", ADMIN)]
    calls = [
        {"job": job, "action": "rerun", "user": u, "reason": "incident fixed", "idempotency_key": _key()}
        for u in admins
    ]

    results = _race(calls)

    done = [r for r in results if isinstance(r, ReprocessAction)]
    refused = [r for r in results if isinstance(r, ReprocessConflict)]
    assert len(done) == 1 and len(refused) == 1, results
    assert ReprocessAction.objects.count() == 1
    assert len(aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]) == 1


def test_resubmits_are_linked_to_the_executions_they_caused(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    from django.utils import timezone

    from reprocess.services import reprocess_link_executions

    first = reprocess_job(job=job37, action="resubmit", user=admin_user, reason="a", idempotency_key=_key())
    second = reprocess_job(job=job37, action="resubmit", user=admin_user, reason="b", idempotency_key=_key())
    assert reprocess_link_executions(job=job37) == 0  # the Lambda has not started anything yet

    base = aws.state_machine_arn.replace(":stateMachine:", ":execution:")
    now = timezone.now()
    # Collected by awslogs later: the original (already TOQ's), then the two new ones.
    add_execution(
        job37, state_machine_arn=aws.state_machine_arn, arn=f"{base}:n2", start_date=now + dt.timedelta(seconds=9)
    )
    add_execution(
        job37, state_machine_arn=aws.state_machine_arn, arn=f"{base}:n1", start_date=now + dt.timedelta(seconds=3)
    )

    assert reprocess_link_executions(job=job37) == 2
    assert reprocess_link_executions(job=job37) == 0
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.new_execution_arn, second.new_execution_arn) == (f"{base}:n1", f"{base}:n2")
