"""Alerts delivered for real: to a local SMTP server (Django's SMTP backend) and a local HTTP receiver.

Both servers run in threads of the test process and record what they received, so every assertion
about "sent once" is about messages that crossed a socket, not about a mocked function.
"""

from __future__ import annotations

import email
import json
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings as django_settings

from diagnosis.alerts import alerts_evaluate, in_quiet_hours
from diagnosis.groups import failure_groups_refresh
from diagnosis.models import (
    AlertDelivery,
    AlertKind,
    AlertRule,
    DeliveryStatus,
    Diagnosis,
    FailureGroup,
    Finding,
    Role,
)
from diagnosis.tasks import alerts_evaluate_task
from jobs.models import Job
from tests.conftest import TOQ_DATABASES
from tests.diagnosis.conftest import JOB37_AWS, import_aws, sync

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)

BASE_URL = "http://toqdash.test"
NOW = datetime(2026, 3, 10, 15, 20, tzinfo=UTC)  # 12:20 in São Paulo (DISPLAY_TIME_ZONE)


# --- local SMTP server ---------------------------------------------------------------------------


@dataclass
class SMTPServer:
    port: int
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    reject_recipients: bool = False


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    server: _SMTPTCPServer

    def _reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        state = self.server.state
        self._reply("220 localhost test SMTP")
        sender, recipients = "", list[str]()
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250 localhost")
            elif verb == "MAIL":
                sender, recipients = command.partition(":")[2].strip(" <>"), []
                self._reply("250 OK")
            elif verb == "RCPT":
                if state.reject_recipients:
                    self._reply("550 mailbox unavailable")
                    continue
                recipients.append(command.partition(":")[2].strip(" <>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                data = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk  # dot-unstuffing
                state.messages.append((sender, recipients, email.message_from_bytes(bytes(data))))
                self._reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 not implemented")


class _SMTPTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    state: SMTPServer


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[SMTPServer]:
    server = _SMTPTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.state = SMTPServer(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.state.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "toqdash@toqdash.test"
    settings.TOQDASH_BASE_URL = BASE_URL
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()


# --- local HTTP receiver (webhook) -----------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _ReceiverHTTPServer

    def do_POST(self) -> None:
        state = self.server.state
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["Content-Type"] == "application/json"
        if state.status == 200:
            state.bodies.append(json.loads(body))
        self.send_response(state.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


class _ReceiverHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    state: Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = _ReceiverHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
    server.state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()


# --- data ------------------------------------------------------------------------------------------

_next_toq_id = iter(range(1000, 10**6))


def _failed_jobs(signature: str, times: list[datetime], *, cause: str = "ffmpeg-missing") -> None:
    """Failed jobs with a stored diagnosis whose origin finding has `signature` (as diagnose_job writes)."""
    jobs = Job.objects.bulk_create(
        Job(
            toq_id=next(_next_toq_id),
            row_hash=1,
            first_seen_at=at,
            last_changed_at=at,
            listing_identity_id=16 + i % 3,
            status="FAILED",
            provider="STEP_FUNCTIONS",
            created_at=at,
            started_at=at,
            completed_at=at,
            is_terminal=True,
        )
        for i, at in enumerate(times)
    )
    diagnoses = Diagnosis.objects.bulk_create(
        Diagnosis(job=job, engine_version="test", evidence_fingerprint="f", computed_at=at, job_status="FAILED")
        for job, at in zip(jobs, times, strict=True)
    )
    Finding.objects.bulk_create(
        Finding(
            diagnosis=d,
            position=0,
            failure_mode="FM-12",
            cause=cause,
            role=Role.ORIGIN,
            title_en=f"Video thumbnails failed: {cause}",
            title_pt_br=f"Miniaturas de vídeo falharam: {cause}",
            summary_en="s",
            summary_pt_br="s",
            confidence=0.9,
            failing_state="ProcessVideo",
            signature=signature,
        )
        for d in diagnoses
    )


def _rule(kind: str, receiver: Receiver | None = None, **kwargs: Any) -> AlertRule:
    return AlertRule.objects.create(
        name=f"{kind} rule",
        kind=kind,
        recipients="oncall@toqdash.test, support@toqdash.test",
        webhook_url=receiver.url if receiver else "",
        **kwargs,
    )


def _subjects(smtp: SMTPServer) -> list[str]:
    return [str(message["Subject"]) for _sender, _rcpts, message in smtp.messages]


def _body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


# --- tests -----------------------------------------------------------------------------------------


@pytest.fixture
def job37_group(toq_db) -> FailureGroup:
    """The job-37 incident through the real path (MariaDB → sync, AWS exports → diagnose), grouped."""
    from diagnosis.services import diagnose_job

    toq_db.load_job37()
    sync()
    import_aws(JOB37_AWS)
    diagnose_job(job_id=Job.objects.get(toq_id=37).pk)
    failure_groups_refresh()
    return FailureGroup.objects.get(failure_mode="FM-12", cause="ffmpeg-missing")


def test_new_group_is_delivered_once_by_email_and_webhook(job37_group, smtp_server, receiver):
    rule = _rule(AlertKind.NEW_GROUP, receiver)
    assert job37_group.first_seen_at is not None
    now = job37_group.first_seen_at + timedelta(hours=2)

    first = alerts_evaluate(now=now)
    second = alerts_evaluate(now=now + timedelta(minutes=5))

    assert (first.sent, first.failed, second.sent, second.failed) == (2, 0, 0, 0)
    link = f"{BASE_URL}/groups/{job37_group.pk}/"
    [(sender, recipients, message)] = smtp_server.messages
    assert sender == "toqdash@toqdash.test"
    assert recipients == ["oncall@toqdash.test", "support@toqdash.test"]
    assert "New failure group" in str(message["Subject"])
    assert link in _body(message)
    [body] = receiver.bodies
    assert link in body["text"]
    assert any(link in block["text"]["text"] for block in body["blocks"] if block["type"] == "section")
    deliveries = AlertDelivery.objects.filter(rule=rule)
    assert {(d.channel, d.status, d.attempts) for d in deliveries} == {("email", "sent", 1), ("webhook", "sent", 1)}
    assert {d.dedup_key for d in deliveries} == {f"new_group:{job37_group.signature}"}


def test_quiet_hours_defer_then_deliver(smtp_server, receiver):
    _failed_jobs("sig-quiet", [datetime(2026, 3, 10, 1, 0, tzinfo=UTC)])
    failure_groups_refresh()
    # 22:00–07:00 in São Paulo (UTC-3): 05:00 UTC is 02:00 there.
    rule = _rule(AlertKind.NEW_GROUP, receiver, quiet_start=time(22), quiet_end=time(7))

    deferred = alerts_evaluate(now=datetime(2026, 3, 10, 5, 0, tzinfo=UTC))

    assert (deferred.sent, deferred.deferred) == (0, 2)
    assert smtp_server.messages == [] and receiver.bodies == []
    assert not AlertDelivery.objects.filter(rule=rule).exists()

    delivered = alerts_evaluate(now=datetime(2026, 3, 10, 10, 5, tzinfo=UTC))  # 07:05 local

    assert (delivered.sent, delivered.deferred) == (2, 0)
    assert len(smtp_server.messages) == 1 and len(receiver.bodies) == 1


def test_failing_webhook_is_recorded_and_retried_without_resending_the_email(smtp_server, receiver):
    _failed_jobs("sig-retry", [NOW - timedelta(hours=3)])
    failure_groups_refresh()
    rule = _rule(AlertKind.NEW_GROUP, receiver)
    receiver.status = 500

    failed = alerts_evaluate(now=NOW)

    assert (failed.sent, failed.failed) == (1, 1)
    webhook = AlertDelivery.objects.get(rule=rule, channel="webhook")
    assert (webhook.status, webhook.attempts, webhook.sent_at) == (DeliveryStatus.FAILED, 1, None)
    assert "500" in webhook.error

    receiver.status = 200
    retried = alerts_evaluate(now=NOW + timedelta(minutes=5))
    again = alerts_evaluate(now=NOW + timedelta(minutes=10))

    assert (retried.sent, retried.failed, again.sent) == (1, 0, 0)
    webhook.refresh_from_db()
    assert (webhook.status, webhook.attempts, webhook.error) == (DeliveryStatus.SENT, 2, "")
    assert len(receiver.bodies) == 1
    assert len(smtp_server.messages) == 1  # the e-mail went out the first time and never again


def test_refused_email_is_recorded_and_retried(smtp_server):
    _failed_jobs("sig-smtp", [NOW - timedelta(hours=1)])
    failure_groups_refresh()
    rule = _rule(AlertKind.NEW_GROUP)
    smtp_server.reject_recipients = True

    assert alerts_evaluate(now=NOW).failed == 1
    delivery = AlertDelivery.objects.get(rule=rule)
    assert delivery.status == DeliveryStatus.FAILED and "SMTPRecipientsRefused" in delivery.error

    smtp_server.reject_recipients = False
    assert alerts_evaluate(now=NOW + timedelta(minutes=5)).sent == 1
    assert len(smtp_server.messages) == 1


def test_spike_compares_the_last_hour_with_the_usual_hourly_rate(smtp_server, receiver):
    week = [NOW - timedelta(hours=2 + h) for h in range(0, 7 * 24, 24)]  # once a day: ≈0.04/hour
    _failed_jobs("sig-spike", week + [NOW - timedelta(minutes=m) for m in range(1, 7)])
    # Busy every hour of the week (2/hour) and 6 in the last hour: usual for it, not a spike.
    busy = [NOW - timedelta(hours=1, minutes=30 * i) for i in range(1, 7 * 24 * 2)]
    _failed_jobs("sig-busy", busy + [NOW - timedelta(minutes=m) for m in range(1, 7)], cause="s3-upload-failed")
    # Never seen before but only 4 in the last hour: under the minimum count.
    _failed_jobs("sig-small", [NOW - timedelta(minutes=m) for m in range(1, 5)], cause="no-space-left")
    failure_groups_refresh()
    rule = _rule(AlertKind.SPIKE, receiver, spike_factor=5, spike_min_count=5)
    group = FailureGroup.objects.get(signature="sig-spike")

    result = alerts_evaluate(now=NOW)
    same_hour = alerts_evaluate(now=NOW + timedelta(minutes=5))

    assert (result.sent, same_hour.sent) == (2, 0)
    assert {d.dedup_key for d in AlertDelivery.objects.filter(rule=rule)} == {"spike:sig-spike:2026-03-10T15"}
    [subject] = _subjects(smtp_server)
    assert "6 jobs in the last hour" in subject
    assert f"{BASE_URL}/groups/{group.pk}/" in receiver.bodies[0]["text"]


def test_stuck_jobs_past_the_rule_threshold(smtp_server, receiver, settings):
    from tests.jobs.factories import make_job

    stuck = make_job(501, status="PENDING", created_at=NOW - timedelta(minutes=90))
    make_job(502, status="RUNNING", created_at=NOW - timedelta(minutes=20))  # not yet
    make_job(503, status="FAILED", created_at=NOW - timedelta(hours=5))  # terminal
    make_job(504, status="PENDING", created_at=NOW - timedelta(hours=5), superseded_at=NOW)  # old generation
    rule = _rule(AlertKind.STUCK_JOBS, receiver, stuck_after_minutes=60)

    assert alerts_evaluate(now=NOW).sent == 2
    assert alerts_evaluate(now=NOW + timedelta(minutes=5)).sent == 0

    assert [d.dedup_key for d in AlertDelivery.objects.filter(rule=rule, channel="email")] == [f"stuck:{stuck.pk}"]
    [(_sender, _rcpts, message)] = smtp_server.messages
    assert "Job 501 stuck in PENDING for 90 minutes" in str(message["Subject"])
    assert f"{BASE_URL}/jobs/501/" in _body(message)
    assert f"{BASE_URL}/jobs/501/" in receiver.bodies[0]["text"]


def test_regression_alerts_once_per_comeback_and_is_not_a_new_group(smtp_server, receiver):
    old = [NOW - timedelta(days=30, hours=h) for h in range(3)]
    _failed_jobs("sig-back", [*old, NOW - timedelta(hours=2)])
    failure_groups_refresh(quiet_days=7)
    group = FailureGroup.objects.get(signature="sig-back")
    assert group.regressed_at == NOW - timedelta(hours=2)
    regression = _rule(AlertKind.REGRESSION, receiver)
    new_group = _rule(AlertKind.NEW_GROUP, receiver)

    assert alerts_evaluate(now=NOW).sent == 2
    assert alerts_evaluate(now=NOW + timedelta(minutes=5)).sent == 0

    [delivery] = AlertDelivery.objects.filter(rule=regression, channel="webhook")
    assert delivery.dedup_key == "regression:sig-back:2026-03-10T13:20:00"
    assert not AlertDelivery.objects.filter(rule=new_group).exists()
    assert "Regression" in _subjects(smtp_server)[0]

    # It goes quiet again and comes back: a new comeback, a new alert.
    _failed_jobs("sig-back", [NOW + timedelta(days=10)])
    failure_groups_refresh(quiet_days=7)
    assert alerts_evaluate(now=NOW + timedelta(days=10, hours=1)).sent == 2
    assert len(smtp_server.messages) == 2 and len(receiver.bodies) == 2


def test_disabled_rule_sends_nothing(smtp_server, receiver):
    _failed_jobs("sig-off", [NOW - timedelta(hours=1)])
    failure_groups_refresh()
    _rule(AlertKind.NEW_GROUP, receiver, enabled=False)

    assert alerts_evaluate(now=NOW).sent == 0
    assert smtp_server.messages == [] and receiver.bodies == []


def test_task_is_idempotent_and_scheduled(smtp_server, receiver):
    _failed_jobs("sig-task", [datetime.now(UTC) - timedelta(hours=1)])
    failure_groups_refresh()
    _rule(AlertKind.NEW_GROUP, receiver)

    assert alerts_evaluate_task() == 2
    assert alerts_evaluate_task() == 0
    entry = django_settings.CELERY_BEAT_SCHEDULE["every-5m-diagnosis-alerts-evaluate"]
    assert entry["task"] == alerts_evaluate_task.name == "diagnosis.alerts_evaluate"


@pytest.mark.parametrize(
    ("start", "end", "utc_hour", "quiet"),
    [
        (time(22), time(7), 4, True),  # 01:00 local, inside a span over midnight
        (time(22), time(7), 10, False),  # 07:00 local: the end is exclusive
        (time(22), time(7), 1, True),  # 22:00 local: the start is inclusive
        (time(12), time(14), 16, True),  # 13:00 local, same-day span
        (time(12), time(14), 18, False),
        (None, None, 4, False),
        (time(8), time(8), 11, False),  # equal: no quiet hours
    ],
)
def test_quiet_hours_are_in_the_display_time_zone(start, end, utc_hour, quiet):
    rule = AlertRule(name="r", kind=AlertKind.NEW_GROUP, quiet_start=start, quiet_end=end)
    assert django_settings.DISPLAY_TIME_ZONE == "America/Sao_Paulo"

    assert in_quiet_hours(rule=rule, now=datetime(2026, 3, 10, utc_hour, tzinfo=UTC)) is quiet


def test_rules_are_edited_in_django_admin(admin_client):
    add = admin_client.get("/admin/diagnosis/alertrule/add/")
    assert add.status_code == 200 and b"quiet_start" in add.content

    response = admin_client.post(
        "/admin/diagnosis/alertrule/add/",
        {
            "name": "on-call spikes",
            "kind": "spike",
            "enabled": "on",
            "spike_factor": "4",
            "spike_min_count": "20",
            "stuck_after_minutes": "60",
            "recipients": "oncall@toqdash.test\nsupport@toqdash.test",
            "webhook_url": "https://hooks.slack.test/T000/B000",
            "quiet_start": "22:00",
            "quiet_end": "07:00",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    rule = AlertRule.objects.get(name="on-call spikes")
    assert (rule.kind, rule.spike_factor, rule.quiet_start) == ("spike", 4.0, time(22))
    assert rule.recipient_list == ["oncall@toqdash.test", "support@toqdash.test"]
    assert admin_client.get("/admin/diagnosis/alertdelivery/").status_code == 200
