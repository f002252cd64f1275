"""TOQ's `signature_mismatch` line (no job id) linked by time to the callback try that got the 403."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from awslogs import parsers
from awslogs.models import LogEvent
from awslogs.services import callbacks, store
from awslogs.services.callbacks import REJECTED_CALLBACK_WINDOW, Rejection, match_rejected_callbacks
from tests.awslogs.factories import make_job

CALLBACK_GROUP = "/aws/lambda/listing-media-callback-dispatch-staging"
SERVER_GROUP = "toq-server"
MISMATCH = "adapter.stepfunctions.callback.signature_mismatch"  # toq_server: logger.Warn(msg), no job id
T0 = dt.datetime(2026, 1, 12, 10, 15, 0, tzinfo=dt.UTC)


def _ms(t: dt.datetime) -> int:
    return parsers.to_epoch_ms(t)


def _callback_try(job_id: int, at: dt.datetime, status: int = 403) -> list[dict[str, Any]]:
    """One callback Lambda invocation (its own stream) that got `status` back at `at`."""
    rid = str(uuid.uuid4())
    stream = f"2026/01/12/[$LATEST]{uuid.uuid4().hex}"
    lines = [
        (at - dt.timedelta(milliseconds=90), f"START RequestId: {rid} Version: $LATEST"),
        (
            at - dt.timedelta(milliseconds=85),
            json.dumps({"level": "INFO", "msg": "Callback Lambda started", "job_id": job_id}),
        ),
        (at, json.dumps({"level": "INFO", "msg": "Callback response received", "status_code": status})),
        (at + dt.timedelta(milliseconds=2), f"END RequestId: {rid}"),
        (at + dt.timedelta(milliseconds=3), f"REPORT RequestId: {rid}\tDuration: 97.20 ms"),
    ]
    return [{"eventId": uuid.uuid4().hex, "logStreamName": stream, "timestamp": _ms(t), "message": m} for t, m in lines]


def _server_request(at: dt.datetime, status: int = 403) -> list[dict[str, Any]]:
    """TOQ's lines for one rejected POST: the WARN (no job id) and the access line of the same request."""
    rid = uuid.uuid4().hex
    warn = {"time": at.isoformat(), "level": "WARN", "msg": MISMATCH, "request_id": rid}
    access = {"time": at.isoformat(), "level": "WARN", "msg": "HTTP Response", "request_id": rid, "status": status}
    return [{"message": json.dumps(line), "timestamp": _ms(at)} for line in (warn, access)]


def _store(group: str, events: list[dict[str, Any]]) -> None:
    store.log_events_store(log_group=group, events=events)


def _mismatch_links() -> list[tuple[int | None, int | None, str]]:
    return list(LogEvent.objects.filter(msg=MISMATCH).values_list("job_id", "job_toq_id", "attributed_via"))


# --- the pure matcher --------------------------------------------------------------------------------


def test_matcher_one_candidate_within_the_window_is_linked():
    rejection = Rejection(T0, 1, 41)
    assert match_rejected_callbacks([("a", T0 - dt.timedelta(milliseconds=90))], [rejection]) == {"a": rejection}


def test_matcher_two_candidates_is_not_linked():
    """Two jobs' callbacks rejected in the same seconds: which is which would be a guess."""
    rejections = [Rejection(T0, 1, 41), Rejection(T0 + dt.timedelta(seconds=1), 2, 42)]
    assert match_rejected_callbacks([("a", T0)], rejections) == {}
    # nor when one 403 is close to two server lines
    assert match_rejected_callbacks([("a", T0), ("b", T0 + dt.timedelta(seconds=2))], rejections[:1]) == {}


def test_matcher_outside_the_window_or_unknown_job_is_not_linked():
    just_out = T0 + REJECTED_CALLBACK_WINDOW + dt.timedelta(milliseconds=1)
    assert match_rejected_callbacks([("a", just_out)], [Rejection(T0, 1, 41)]) == {}
    assert match_rejected_callbacks([("a", T0)], [Rejection(T0, None, None)]) == {}


# --- stored lines, as collection / import attribute them -------------------------------------------


@pytest.mark.django_db
def test_one_candidate_links_the_server_line_and_its_request():
    job = make_job(41)
    _store(CALLBACK_GROUP, _callback_try(41, T0))
    _store(SERVER_GROUP, _server_request(T0 - dt.timedelta(milliseconds=40)))
    assert _mismatch_links() == [(None, None, "")]  # the parser alone cannot link it

    assert callbacks.log_events_attribute_rejected_callbacks() == 2
    assert _mismatch_links() == [(job.pk, 41, "callback_time")]
    access = LogEvent.objects.get(log_group=SERVER_GROUP, msg="HTTP Response")
    assert (access.job_id, access.attributed_via) == (job.pk, "callback_time")
    assert callbacks.log_events_attribute_rejected_callbacks() == 0  # idempotent


@pytest.mark.django_db
def test_two_candidates_leave_the_server_line_unlinked():
    make_job(41)
    make_job(42)
    _store(CALLBACK_GROUP, _callback_try(41, T0) + _callback_try(42, T0 + dt.timedelta(seconds=1)))
    _store(SERVER_GROUP, _server_request(T0 + dt.timedelta(milliseconds=500)))
    assert callbacks.log_events_attribute_rejected_callbacks() == 0
    assert _mismatch_links() == [(None, None, "")]


@pytest.mark.django_db
def test_outside_the_window_or_not_a_403_leaves_the_server_line_unlinked():
    make_job(41)
    make_job(42)
    _store(CALLBACK_GROUP, _callback_try(41, T0) + _callback_try(42, T0 + dt.timedelta(minutes=1), status=502))
    _store(SERVER_GROUP, _server_request(T0 + REJECTED_CALLBACK_WINDOW + dt.timedelta(seconds=1)))
    _store(SERVER_GROUP, _server_request(T0 + dt.timedelta(minutes=1)))
    assert callbacks.log_events_attribute_rejected_callbacks() == 0
    assert _mismatch_links() == [(None, None, ""), (None, None, "")]
