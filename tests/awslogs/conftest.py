"""awslogs fixtures: moto's server over HTTP, plus a small fake AWS endpoint for what moto lacks.

moto has no MediaConvert and only canned Step Functions histories, so `FakeAws` (http.server in a
thread) serves MediaConvert GetJob and realistic histories/describes written from the real state
machines; any Step Functions call it has no canned answer for is proxied to moto. It is selected
the way production would select an endpoint: AWS_ENDPOINT_URL_SFN / AWS_ENDPOINT_URL_MEDIACONVERT.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "aws" / "job37"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PROCESSING_SM = "listing-media-processing-sm-staging"
FINALIZATION_SM = "listing-media-finalization-sm-staging"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


def _camel(value: Any) -> Any:
    """MediaConvert's wire format is camelCase (the CLI prints PascalCase member names)."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


class FakeAws:
    def __init__(self, moto_url: str) -> None:
        self.moto_url = moto_url
        self.histories: dict[str, list[dict[str, Any]]] = {}
        self.describes: dict[str, dict[str, Any]] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self.mediaconvert_jobs: dict[str, dict[str, Any]] = {}
        # operation → list of (HTTP status, error code) answered before the real answer, one per call
        self.failures: dict[str, list[tuple[int, str]]] = {}
        # operation → (status, code) answered every time for these targets (arn / job id)
        self.denied: dict[str, set[str]] = {}
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def reset(self) -> None:
        self.histories.clear()
        self.describes.clear()
        self.definitions.clear()
        self.mediaconvert_jobs.clear()
        self.failures.clear()
        self.denied.clear()
        self.calls.clear()

    def take_failure(self, operation: str) -> tuple[int, str] | None:
        with self.lock:
            self.calls.append(operation)
            queue = self.failures.get(operation)
            return queue.pop(0) if queue else None


def _make_handler(fake: FakeAws) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: Any, content_type: str = "application/x-amz-json-1.0") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str, rest: bool = False) -> None:
            if rest:
                self.send_response(status)
                data = json.dumps({"message": code}).encode()
                self.send_header("x-amzn-ErrorType", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self._send(status, {"__type": code, "message": f"fake {code}"})

        def do_GET(self) -> None:
            m = re.match(r"^/2017-08-29/jobs/([^/?]+)", self.path)
            if not m:
                self._error(404, "NotFoundException", rest=True)
                return
            job_id = m.group(1)
            failure = fake.take_failure("GetJob")
            if failure:
                self._error(failure[0], failure[1], rest=True)
                return
            if job_id in fake.denied.get("GetJob", set()):
                self._error(403, "ForbiddenException", rest=True)
                return
            job = fake.mediaconvert_jobs.get(job_id)
            if job is None:
                self._error(404, "NotFoundException", rest=True)
                return
            self._send(200, _camel(job), "application/json")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            target = self.headers.get("X-Amz-Target", "")
            operation = target.split(".")[-1]
            body = json.loads(raw or b"{}") if raw else {}
            failure = fake.take_failure(operation)
            if failure:
                self._error(*failure)
                return
            arn = body.get("executionArn", "")
            if arn and arn in fake.denied.get(operation, set()):
                self._error(400, "AccessDeniedException")
                return
            if operation == "GetExecutionHistory" and arn in fake.histories:
                events = fake.histories[arn]
                start = int(body.get("nextToken") or 0)
                size = int(body.get("maxResults") or 1000)
                page: dict[str, Any] = {"events": events[start : start + size]}
                if start + size < len(events):
                    page["nextToken"] = str(start + size)
                self._send(200, page)
                return
            if operation == "DescribeExecution" and arn in fake.describes:
                self._send(200, fake.describes[arn])
                return
            if operation == "DescribeStateMachineForExecution" and arn in fake.definitions:
                self._send(200, fake.definitions[arn])
                return
            self._proxy(raw)

        def _proxy(self, raw: bytes) -> None:
            host, port = fake.moto_url.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            conn.request("POST", self.path, body=raw, headers=headers)
            response = conn.getresponse()
            data = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

    return Handler


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def reset_moto(url: str) -> None:
    """Empty the session's moto server (every service), waiting for it before the test goes on."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/moto-api/reset")
    assert conn.getresponse().status == 200
    conn.close()


@pytest.fixture(scope="session")
def fake_aws_server(moto_server: str) -> Iterator[FakeAws]:
    fake = FakeAws(moto_server)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()


@pytest.fixture
def aws(
    moto_server: str, fake_aws_server: FakeAws, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> Iterator[FakeAws]:
    """Fresh moto state + fake endpoint, selected through the standard endpoint variables."""
    reset_moto(moto_server)
    fake_aws_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", fake_aws_server.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ENDPOINT_URL_MEDIACONVERT", fake_aws_server.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # Small pages so that every list is paged with nextToken; few fast retries.
    settings.AWS_PAGE_SIZE = 2
    settings.AWS_MAX_ATTEMPTS = 4
    settings.AWSLOGS_LOG_MARGIN_SECONDS = 60
    settings.TOQ_SERVER_LOG_GROUP = "toq-server"
    yield fake_aws_server


def boto(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def moto_clients(aws: FakeAws, moto_server: str) -> dict[str, Any]:
    """Clients that talk to moto directly (test setup only)."""
    return {name: boto(name, moto_server) for name in ("stepfunctions", "logs", "s3", "sqs", "lambda", "iam")}
