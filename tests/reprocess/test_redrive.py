"""RedriveExecution as sent (moto has no RedriveExecution: a stub endpoint records it, selected the
way production selects endpoints, through AWS_ENDPOINT_URL_SFN)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from jobs.models import Job
from reprocess.models import AuditEntry, Outcome
from reprocess.services import reprocess_job
from tests.jobs.factories import make_job

from .conftest import MotoAws, add_execution

pytestmark = pytest.mark.django_db


class _Stub:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answer: tuple[int, dict[str, Any]] = (200, {"redriveDate": 1767628800.0})


@pytest.fixture
def sfn_stub(aws: MotoAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Stub]:
    stub = _Stub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            stub.calls.append((self.headers.get("X-Amz-Target", ""), body))
            status, answer = stub.answer
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", f"http://127.0.0.1:{httpd.server_address[1]}")
    yield stub
    httpd.shutdown()


@pytest.fixture
def timed_out_job(aws: MotoAws) -> Job:
    """An execution that timed out in ProcessVideos (no Catch → Fail), closed 2 days ago."""
    job = make_job(70, status="PENDING", kind="processing")
    arn = aws.state_machine_arn.replace(":stateMachine:", ":execution:") + ":e70"
    add_execution(
        job,
        state_machine_arn=aws.state_machine_arn,
        arn=arn,
        status="TIMED_OUT",
        error="",
        stop_date=timezone.now() - dt.timedelta(days=2),
    )
    return job


def test_redrive_sends_execution_arn_and_client_token(
    sfn_stub: _Stub, timed_out_job: Job, admin_user: AbstractUser
) -> None:
    key = uuid.uuid4().hex
    row = reprocess_job(
        job=timed_out_job, action="redrive", user=admin_user, reason="video timeout", idempotency_key=key
    )

    assert row.outcome == Outcome.SUCCEEDED, row.error
    assert sfn_stub.calls == [
        ("AWSStepFunctions.RedriveExecution", {"executionArn": row.sent["executionArn"], "clientToken": key})
    ]
    assert row.new_execution_arn.endswith(":e70")


def test_redrive_refused_by_aws_is_recorded(sfn_stub: _Stub, timed_out_job: Job, admin_user: AbstractUser) -> None:
    sfn_stub.answer = (400, {"__type": "ExecutionNotRedrivable", "message": "Execution has exhausted the max redrive"})

    row = reprocess_job(job=timed_out_job, action="redrive", user=admin_user, reason="x", idempotency_key="k1")

    assert row.outcome == Outcome.FAILED
    assert "ExecutionNotRedrivable" in row.error
    assert [e.event for e in AuditEntry.objects.order_by("id")] == ["requested", "failed"]
