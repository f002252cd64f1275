"""The `process` action: ask TOQ's API to process the listing again, against a real local HTTP
server standing in for TOQ (what it receives is recorded; nothing of ours is patched)."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.management import CommandError, call_command
from django.test import Client

from jobs.models import Job, Listing
from reprocess.models import AuditEntry, Outcome, ReprocessAction
from reprocess.planner import plan_reprocess
from reprocess.selectors import bulk_preview
from reprocess.services import ReprocessNotAllowed, reprocess_job, reprocess_reconcile_action
from tests.jobs.factories import make_job, make_job37

pytestmark = pytest.mark.django_db

TOKEN = "eyJhbGciOiJIUzI1NiJ9.toq-secret-token.s1gn4tur3"
PATH = "/api/v2/listings/media/uploads/process"
PLAN = "/reprocess/jobs/37/g1/"
RUN = "/reprocess/jobs/37/g1/run/"
ACCEPTED = b'{"status":"processing_started"}'


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeToq:
    """What the fake TOQ answers (status, body, delay) and every request it received."""

    url: str = ""
    status: int = 202
    body: bytes = ACCEPTED
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def toq(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeToq]:
    state = FakeToq()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append(Received("POST", self.path, dict(self.headers.items()), self.rfile.read(length)))
            if state.delay:
                time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.TOQ_API_BASE_URL = state.url + "/"  # a trailing slash is tolerated
    settings.TOQ_API_TOKEN = TOKEN
    settings.TOQ_API_TIMEOUT_SECONDS = 2
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def unconfigured(settings: Any) -> None:
    settings.TOQ_API_BASE_URL = ""
    settings.TOQ_API_TOKEN = ""


@pytest.fixture
def job(db: None) -> Job:
    return make_job37()  # listing 16 in status 6; its video asset FAILED (TOQ picks it up)


def _key() -> str:
    return uuid.uuid4().hex


def _run(job: Job, user: AbstractUser, key: str | None = None) -> ReprocessAction:
    return reprocess_job(job=job, action="process", user=user, reason="ffmpeg fixed", idempotency_key=key or _key())  # type: ignore[arg-type]


def _no_token_anywhere() -> None:
    for entry in AuditEntry.objects.all():
        text = json.dumps([entry.sent, entry.response, entry.error, entry.reason])
        assert TOKEN not in text
    for row in ReprocessAction.objects.all():
        assert TOKEN not in json.dumps([row.sent, row.response, row.error])


# --- plan ----------------------------------------------------------------------------------------


def test_plan_shows_the_exact_request_with_the_token_masked(toq: FakeToq, job: Job) -> None:
    step = plan_reprocess(job).actions["process"]

    assert step.eligible, step.reasons
    assert step.request == {
        "operation": "TOQ.ProcessMedia",
        "method": "POST",
        "url": toq.url + PATH,
        "headers": {
            "Authorization": "Bearer ***",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "toqdash",
        },
        "body": '{"listingIdentityId":16}',
    }
    assert step.payload == '{"listingIdentityId":16}'
    assert TOKEN not in step.request_json
    assert any("new job id for listing 16" in s for s in step.side_effects)
    assert any("PENDING_UPLOAD or FAILED are processed again (1 in the mirror)" in s for s in step.side_effects)
    assert any("MediaConvert" in s for s in step.side_effects)  # the failed asset is a video
    assert step.warnings == []


def test_not_eligible_when_not_configured(unconfigured: None, job: Job) -> None:
    step = plan_reprocess(job).actions["process"]

    assert not step.eligible
    assert any("TOQ_API_BASE_URL is empty" in r for r in step.reasons)
    assert any("TOQ_API_TOKEN is empty" in r for r in step.reasons)
    assert step.request == {}


def test_not_eligible_with_a_non_http_base_url(settings: Any, job: Job) -> None:
    settings.TOQ_API_BASE_URL, settings.TOQ_API_TOKEN = "file:///etc", TOKEN
    assert any("not an http(s) address" in r for r in plan_reprocess(job).actions["process"].reasons)


def test_not_eligible_for_a_finalization_job(toq: FakeToq, db: None) -> None:
    job = make_job(60, status="FAILED", kind="finalization", provider="STEP_FUNCTIONS_FINALIZATION")
    step = plan_reprocess(job).actions["process"]
    assert not step.eligible and any("cannot redo" in r for r in step.reasons)


def test_warnings_listing_status_job_in_flight_no_assets(toq: FakeToq, job: Job, settings: Any) -> None:
    settings.TOQ_API_BASE_URL = "http://toq.internal:8080"  # plain http to another host
    Listing.objects.filter(toq_id=16).update(listing_status=7)
    make_job(38, status="PENDING", kind="processing")
    from jobs.models import MediaAsset

    MediaAsset.objects.update(status="PROCESSING")

    step = plan_reprocess(job).actions["process"]

    assert step.eligible  # TOQ decides; the plan warns
    text = " ".join(step.warnings)
    assert "409" in text and "status 7 PENDING_OWNER_APPROVAL" in text
    assert "Job 38 of this listing is still in flight" in text
    assert "no assets available for processing" in text
    assert "unencrypted" in text  # http:// base URL


# --- service -------------------------------------------------------------------------------------


def test_sends_toqs_request_exactly(
    toq: FakeToq, job: Job, admin_user: AbstractUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    row = _run(job, admin_user)

    assert row.outcome == Outcome.SUCCEEDED, row.error
    (received,) = toq.requests
    assert (received.method, received.path) == ("POST", PATH)
    assert received.headers["Authorization"] == f"Bearer {TOKEN}"
    assert received.headers["Content-Type"] == "application/json"
    assert received.body == b'{"listingIdentityId":16}'
    assert json.loads(received.body) == {"listingIdentityId": 16}
    row.refresh_from_db()
    assert row.response == {"operation": "TOQ.ProcessMedia", "status": 202, "body": {"status": "processing_started"}}
    assert row.sent["headers"]["Authorization"] == "Bearer ***"
    assert row.new_execution_arn == ""
    assert [e.event for e in AuditEntry.objects.filter(job=job)] == ["requested", "succeeded"]
    succeeded = AuditEntry.objects.get(event="succeeded")
    assert succeeded.sent == row.sent and succeeded.response == row.response
    _no_token_anywhere()
    assert TOKEN not in caplog.text


def test_toq_4xx_is_failed_with_toqs_message(
    toq: FakeToq, job: Job, admin_user: AbstractUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    toq.status = 409
    toq.body = b'{"code":409,"message":"listing is not awaiting media processing"}'

    row = _run(job, admin_user)

    assert row.outcome == Outcome.FAILED
    assert "HTTP 409" in row.error and "listing is not awaiting media processing" in row.error
    assert row.response == {
        "operation": "TOQ.ProcessMedia",
        "code": "HTTP 409",
        "message": "listing is not awaiting media processing",
        "status": 409,
        "body": {"code": 409, "message": "listing is not awaiting media processing"},
    }
    assert len(toq.requests) == 1  # never retried
    assert AuditEntry.objects.get(event="failed").error == row.error
    _no_token_anywhere()
    assert TOKEN not in caplog.text


def test_toq_5xx_with_a_long_text_body_is_truncated(toq: FakeToq, job: Job, admin_user: AbstractUser) -> None:
    toq.status = 502
    toq.body = b"<html>" + b"x" * 10_000 + TOKEN.encode() + b"</html>"

    row = _run(job, admin_user)

    assert row.outcome == Outcome.FAILED and "HTTP 502" in row.error
    assert row.response is not None
    assert isinstance(row.response["body"], str) and len(row.response["body"]) <= 4001
    _no_token_anywhere()


def test_an_echoed_token_is_scrubbed(toq: FakeToq, job: Job, admin_user: AbstractUser) -> None:
    toq.status = 401
    toq.body = json.dumps({"code": 401, "message": f"Invalid access token {TOKEN}"}).encode()

    row = _run(job, admin_user)

    assert row.outcome == Outcome.FAILED and "Invalid access token ***" in row.error
    _no_token_anywhere()


def test_timeout_is_failed_with_a_clear_error(
    toq: FakeToq, job: Job, admin_user: AbstractUser, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings.TOQ_API_TIMEOUT_SECONDS = 0.3
    toq.delay = 1.0

    row = _run(job, admin_user)

    assert row.outcome == Outcome.FAILED
    assert "Timeout" in row.error and "did not answer within 0.3 s" in row.error
    assert len(toq.requests) == 1
    _no_token_anywhere()
    assert TOKEN not in caplog.text


def test_connection_refused_is_failed_with_a_clear_error(
    toq: FakeToq, job: Job, admin_user: AbstractUser, settings: Any
) -> None:
    settings.TOQ_API_BASE_URL = f"http://127.0.0.1:{_free_port()}"

    row = _run(job, admin_user)

    assert row.outcome == Outcome.FAILED
    assert "ConnectionRefusedError" in row.error and "Could not reach TOQ" in row.error
    assert row.finished_at is not None
    _no_token_anywhere()


def test_redirect_is_not_followed(toq: FakeToq, job: Job, admin_user: AbstractUser) -> None:
    toq.status = 307
    toq.body = b""

    row = _run(job, admin_user)

    assert row.outcome == Outcome.FAILED and "HTTP 307" in row.error
    assert len(toq.requests) == 1


def test_same_key_sends_once(toq: FakeToq, job: Job, admin_user: AbstractUser) -> None:
    key = _key()
    first = _run(job, admin_user, key)
    second = _run(job, admin_user, key)

    assert first.pk == second.pk
    assert len(toq.requests) == 1
    assert ReprocessAction.objects.count() == 1


def test_unconfigured_service_refuses(unconfigured: None, job: Job, admin_user: AbstractUser) -> None:
    with pytest.raises(ReprocessNotAllowed, match="TOQ_API_BASE_URL"):
        _run(job, admin_user)
    assert not ReprocessAction.objects.exists() and not AuditEntry.objects.exists()


def test_pending_process_reconciles_to_unknown(toq: FakeToq, job: Job, admin_user: AbstractUser) -> None:
    row = ReprocessAction.objects.create(
        job=job,
        action="process",
        idempotency_key="k",
        attempt=1,
        requested_by=admin_user,  # type: ignore[misc]
        reason="r",
    )

    settled = reprocess_reconcile_action(action_id=row.pk)

    assert settled.outcome == Outcome.UNKNOWN and "TOQ cannot be asked" in settled.error
    assert toq.requests == []


# --- views ---------------------------------------------------------------------------------------


def _post(key: str) -> dict[str, str]:
    return {"action": "process", "reason": "ffmpeg fixed", "confirm": "on", "idempotency_key": key}


def test_plan_page_shows_request_never_the_token(
    client: Client, toq: FakeToq, job: Job, admin_user: AbstractUser
) -> None:
    client.force_login(admin_user)
    html = client.get(PLAN).content.decode()

    assert 'id="action-process"' in html and 'value="process" disabled' not in html
    assert "Ask TOQ to process the listing again" in html
    assert "Bearer ***" in html and PATH in html
    assert TOKEN not in html

    client.post(RUN, _post(_key()))
    toq.status, toq.body = 400, b'{"code":400,"message":"<b>no assets</b> available for processing"}'
    client.post(RUN, _post(_key()))
    after = client.get(PLAN).content.decode()
    assert TOKEN not in after
    assert "processing_started" in after  # TOQ's answer, in the history
    assert "&lt;b&gt;no assets&lt;/b&gt;" in after and "<b>no assets</b>" not in after  # escaped


def test_double_submit_sends_once(client: Client, toq: FakeToq, job: Job, admin_user: AbstractUser) -> None:
    client.force_login(admin_user)
    key = _key()

    first = client.post(RUN, _post(key))
    second = client.post(RUN, _post(key))

    assert first.status_code == 302 and second.status_code == 302
    assert len(toq.requests) == 1
    assert ReprocessAction.objects.get().outcome == Outcome.SUCCEEDED
    outcome = client.get("/reprocess/jobs/37/g1/outcome/").content.decode()
    assert "?listing=16" in outcome


def test_view_refuses_when_not_configured(
    client: Client, unconfigured: None, job: Job, admin_user: AbstractUser
) -> None:
    client.force_login(admin_user)
    assert 'value="process" disabled' in client.get(PLAN).content.decode()

    response = client.post(RUN, _post(_key()), headers={"HX-Request": "true"})

    assert response.status_code == 400
    assert "TOQ_API_BASE_URL is empty" in response.content.decode()
    assert not ReprocessAction.objects.exists()


@pytest.mark.parametrize("who", ["support_user", "engineer_user"])
def test_non_admins_get_403(client: Client, toq: FakeToq, job: Job, who: str, request: pytest.FixtureRequest) -> None:
    client.force_login(request.getfixturevalue(who))
    assert client.get(PLAN).status_code == 403
    assert client.post(RUN, _post(_key())).status_code == 403
    assert toq.requests == []
    assert not ReprocessAction.objects.exists()


# --- command -------------------------------------------------------------------------------------


def _command(*args: str) -> str:
    out = io.StringIO()
    call_command("reprocess", *args, stdout=out)
    return out.getvalue()


def test_command_process(toq: FakeToq, job: Job, admin_user: AbstractUser) -> None:
    out = _command("37", "--action", "process", "--reason", "ffmpeg back", "--user", "ada", "--yes")

    assert "attempt 1: succeeded" in out
    assert "Bearer ***" in out and '{"listingIdentityId":16}' in out
    assert TOKEN not in out
    assert len(toq.requests) == 1


def test_command_process_refused_by_toq(toq: FakeToq, job: Job, admin_user: AbstractUser) -> None:
    toq.status, toq.body = 404, b'{"code":404,"message":"listing not found"}'
    with pytest.raises(CommandError, match="TOQ refused attempt 1: .*listing not found"):
        _command("37", "--action", "process", "--reason", "r", "--user", "ada", "--yes")


def test_command_process_unconfigured(unconfigured: None, job: Job, admin_user: AbstractUser) -> None:
    with pytest.raises(CommandError, match="not eligible: .*TOQ_API_BASE_URL"):
        _command("37", "--action", "process", "--reason", "r", "--user", "ada", "--yes")


# --- bulk ----------------------------------------------------------------------------------------


def test_bulk_preview_asks_once_per_listing(toq: FakeToq, job: Job) -> None:
    make_job(38, status="FAILED", kind="processing")
    make_job(39, status="FAILED", kind="processing", listing_identity_id=17)

    preview = bulk_preview(query="listing=16", action="process")

    assert [(j.job.toq_id, j.eligible) for j in preview.jobs] == [(37, True), (38, False)]
    assert "same listing" in preview.jobs[1].reasons[-1]
