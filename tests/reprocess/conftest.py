"""reprocess fixtures: moto's server over HTTP (as tests/awslogs/conftest.py), TOQ's queue and a
processing state machine created in it, and job 37 with its collected execution."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from django.contrib.auth.models import AbstractUser
from django.utils import translation
from moto.server import ThreadedMotoServer

from awslogs.models import Execution, HistoryEvent
from jobs.models import Job
from jobs.roles import ADMIN, ENGINEER, SUPPORT
from tests.jobs.factories import ARN_37, make_job37, make_user, utc

REGION = "us-east-1"
QUEUE = "listing-media-processing-staging"
SM_NAME = "listing-media-processing-sm-staging"
# The input TOQ's validate Lambda started execution 37 with (reference §3.3).
INPUT_37 = json.dumps(
    {
        "jobId": 37,
        "listingIdentityId": 16,
        "assets": [{"key": "16/raw/video/vertical/vertical-01-VID_20260105_124137.mp4", "type": "VIDEO_VERTICAL"}],
        "imageAssets": None,
        "videoAssets": None,
        "hasImages": False,
        "hasVideos": False,
        "traceparent": "",
    },
    separators=(",", ":"),
)
DEFINITION = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Assertions read the English messages, whatever language an earlier test left active."""
    with translation.override("en"):
        yield


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@dataclass
class MotoAws:
    url: str
    sqs: Any
    sfn: Any
    queue_url: str
    state_machine_arn: str

    def receive_all(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=300,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not page:
                return out
            out.extend(page)


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch, settings: Any) -> MotoAws:
    """Fresh moto state, selected through AWS_ENDPOINT_URL, with TOQ's queue and state machine."""
    host, port = moto_server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/moto-api/reset")
    assert conn.getresponse().status == 200
    conn.close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SFN", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    settings.AWS_MAX_ATTEMPTS = 2
    settings.TOQ_MAIN_QUEUE = QUEUE
    kwargs = {
        "region_name": REGION,
        "endpoint_url": moto_server,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    sqs = boto3.client("sqs", **kwargs)
    sfn = boto3.client("stepfunctions", **kwargs)
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    machine = sfn.create_state_machine(
        name=SM_NAME, definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/toq-sfn"
    )
    return MotoAws(moto_server, sqs, sfn, queue_url, machine["stateMachineArn"])


def add_execution(job: Job, *, state_machine_arn: str, arn: str = ARN_37, **kwargs: Any) -> Execution:
    """Execution 37 as awslogs collected it: failed through ReportFailure → ProcessingFailed."""
    values: dict[str, Any] = {
        "arn": arn,
        "name": arn.rsplit(":", 1)[-1],
        "state_machine_arn": state_machine_arn,
        "kind": "processing",
        "job": job,
        "job_toq_id": job.toq_id,
        "listing_identity_id": job.listing_identity_id,
        "found_via": "external_id",
        "status": "FAILED",
        "start_date": utc(2026, 1, 5, 15, 54, 47),
        "stop_date": utc(2026, 1, 5, 15, 55, 4),
        "input": INPUT_37,
        "error": "MediaProcessingFailed",
        "history_event_count": 40,
    }
    values.update(kwargs)
    execution = Execution.objects.create(**values)
    HistoryEvent.objects.create(
        execution=execution,
        event_id=1,
        type="ExecutionStarted",
        timestamp=values["start_date"],
        details={"input": INPUT_37, "roleArn": "arn:aws:iam::123456789012:role/toq-sfn"},
    )
    return execution


@pytest.fixture
def job37(aws: MotoAws) -> Job:
    job = make_job37()
    add_execution(job, state_machine_arn=aws.state_machine_arn)
    return job


@pytest.fixture
def admin_user(db: None) -> AbstractUser:
    return make_user("ada", ADMIN)


@pytest.fixture
def engineer_user(db: None) -> AbstractUser:
    return make_user("eng", ENGINEER)


@pytest.fixture
def support_user(db: None) -> AbstractUser:
    return make_user("sup", SUPPORT)


def make_failed_job(aws: MotoAws, toq_id: int, **kwargs: Any) -> Job:
    """A failed processing job with its collected execution (input: job 37's assets): eligible for
    resubmit and rerun."""
    from tests.jobs.factories import make_job

    arn = aws.state_machine_arn.replace(":stateMachine:", ":execution:") + f":e{toq_id}"
    values: dict[str, Any] = {"status": "FAILED", "kind": "processing", "external_id": arn}
    values.update(kwargs)
    job = make_job(toq_id, **values)
    add_execution(job, state_machine_arn=aws.state_machine_arn, arn=arn)
    return job


def make_finalization_job(toq_id: int) -> Job:
    """Not eligible for a resubmit: finalization jobs do not go through TOQ's queue."""
    from tests.jobs.factories import make_job

    return make_job(toq_id, status="FAILED", provider="STEP_FUNCTIONS_FINALIZATION", kind="finalization")


@pytest.fixture
def started_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch runs enqueued (on commit) instead of sent to the broker: tests call batch_run themselves."""
    from django.db import transaction

    started: list[int] = []
    monkeypatch.setattr(
        "reprocess.bulk._start_run", lambda batch_id: transaction.on_commit(lambda: started.append(batch_id))
    )
    return started
