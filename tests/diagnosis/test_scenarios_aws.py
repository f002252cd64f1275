"""Scenarios that need AWS evidence: rows in MariaDB → toq_sync → import_aws (CLI-shaped exports
written to tmp_path) → diagnose. Also the Celery task (ids only, idempotent)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from diagnosis.models import Diagnosis, Finding
from diagnosis.tasks import diagnose_dispatch_task, diagnose_job_task, diagnose_jobs_task
from jobs.models import Job
from tests.conftest import TOQ_DATABASES
from tests.diagnosis.conftest import diagnose_json, import_aws, roles, sync
from tests.jobs.toq_rows import add_asset, add_job, add_listing, add_user, job_row
from toqdash.celery import app

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)

L = 41
NAME = "7d6c1a52-0000-4000-8000-000000000009"
ARN = f"arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:{NAME}"
START = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)


def _pending_job(db: Any) -> None:
    add_user(db, 1)
    add_listing(db, L)
    add_asset(db, 600, L, asset_type="VIDEO_HORIZONTAL", s3_key_raw=f"{L}/raw/video/horizontal/horizontal-01-clip.mov")
    add_job(db, job_row(9, L, created_at=START.replace(tzinfo=None)))


def _describe(root: Path, **over: Any) -> None:
    data = {
        "executionArn": ARN,
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:listing-media-processing-sm-staging",
        "name": NAME,
        "status": "FAILED",
        "startDate": (START + dt.timedelta(seconds=5)).isoformat(),
        "stopDate": (START + dt.timedelta(seconds=9)).isoformat(),
        "input": json.dumps({"jobId": 9, "listingIdentityId": L, "assets": []}),
        "inputDetails": {"included": True},
    }
    data.update(over)
    (root / "stepfunctions").mkdir(parents=True, exist_ok=True)
    (root / "stepfunctions" / f"{NAME}.describe-execution.json").write_text(json.dumps(data, indent=4))


def test_fm16_states_runtime_leaves_the_job_pending(toq_db, tmp_path):
    _pending_job(toq_db)
    _describe(
        tmp_path,
        error="States.Runtime",
        cause="An error occurred while executing the state 'ProcessVideos'. The JSONPath '$.validation.videoInput' specified for the field 'Input.$' could not be found in the input",
    )
    sync()
    import_aws(tmp_path)
    data = diagnose_json(9)
    assert data["status"] == "PENDING"
    assert roles(data) == [
        ("FM-16", "jsonpath-unresolved", "origin"),
        ("FM-29", "execution-failed-without-callback", "consequence"),
    ]
    assert "$.validation.videoInput" in data["findings"][0]["summary"]
    assert data["findings"][0]["evidence"][0]["source"] == ARN


def test_fm20_callback_rejected_by_a_proxy(toq_db, tmp_path):
    """The callback Lambda got 502 from the endpoint three times; FinalizeAndCallback failed; no callback."""
    _pending_job(toq_db)
    _describe(
        tmp_path,
        error="errorString",
        cause='{"errorMessage":"callback failed with status: 502","errorType":"errorString"}',
    )
    start_ms = int((START + dt.timedelta(seconds=8)).timestamp() * 1000)
    lines = [
        {"time": "t", "level": "INFO", "msg": "Callback Lambda started", "job_id": 9, "listing_identity_id": L},
        {"time": "t", "level": "INFO", "msg": "Callback response received", "status_code": 502, "batch_id": None},
    ]
    events = [
        {
            "logStreamName": "2026/01/20/[$LATEST]abc",
            "timestamp": start_ms,
            "message": "START RequestId: 11111111-2222-3333-4444-555555555555 Version: $LATEST\n",
            "ingestionTime": start_ms,
            "eventId": "1" * 56,
        }
    ]
    for i, line in enumerate(lines, start=2):
        events.append(
            {
                "logStreamName": "2026/01/20/[$LATEST]abc",
                "timestamp": start_ms + i,
                "message": json.dumps(line) + "\n",
                "ingestionTime": start_ms + i,
                "eventId": str(i) * 56,
            }
        )
    events.append(
        {
            "logStreamName": "2026/01/20/[$LATEST]abc",
            "timestamp": start_ms + 9,
            "message": "END RequestId: 11111111-2222-3333-4444-555555555555\n",
            "ingestionTime": start_ms + 9,
            "eventId": "9" * 56,
        }
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "listing-media-callback-dispatch-staging.filter-log-events.json").write_text(
        json.dumps({"events": events, "searchedLogStreams": []})
    )
    sync()
    import_aws(tmp_path)
    data = diagnose_json(9)
    assert roles(data) == [
        ("FM-20", "callback-http-error", "origin"),
        ("FM-29", "execution-failed-without-callback", "consequence"),
    ]
    origin = data["findings"][0]
    assert "502" in origin["summary"]
    assert [e["id"] for e in origin["evidence"]] == ["3" * 56]


def test_task_takes_an_id_and_is_idempotent(toq_db, tmp_path):
    _pending_job(toq_db)
    sync()
    job = Job.objects.get(toq_id=9)
    assert diagnose_job_task(job.pk) is True
    snapshot = list(Finding.objects.values_list("id", "failure_mode", "cause", "role"))
    assert [r[1:] for r in snapshot] == [("FM-29", "no-execution-found", "origin")]
    assert diagnose_job_task(job.pk) is False
    assert list(Finding.objects.values_list("id", "failure_mode", "cause", "role")) == snapshot
    assert Diagnosis.objects.count() == 1
    assert diagnose_job_task(job.pk + 1000) is False  # gone job: no-op, no exception


@pytest.fixture
def eager():
    """Run enqueued tasks in-process (never on the shared broker)."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_dispatch_picks_new_changed_and_outdated_jobs(toq_db, eager, django_capture_on_commit_callbacks, monkeypatch):
    # the second and third runs only count: enqueuing is replaced so nothing reaches a broker
    queued: list[list[int]] = []

    _pending_job(toq_db)
    add_job(toq_db, job_row(10, L, status="SUCCEEDED", completed_at=START.replace(tzinfo=None)))
    sync()
    done = Job.objects.get(toq_id=10)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert diagnose_dispatch_task() == 2
    assert len(callbacks) == 1 and Diagnosis.objects.count() == 2  # one batch
    # the terminal, unchanged job is not picked again; the PENDING one is (stuck depends on the clock)
    monkeypatch.setattr(diagnose_jobs_task, "delay_on_commit", queued.append)
    assert diagnose_dispatch_task() == 1
    Diagnosis.objects.filter(job=done).update(engine_version="old")
    assert diagnose_dispatch_task() == 2
    pending = Job.objects.get(toq_id=9)
    assert queued[0] == [pending.pk]
    assert sorted(queued[1]) == sorted([pending.pk, done.pk])


def test_batch_task_diagnoses_like_the_single_one_and_is_idempotent(toq_db):
    _pending_job(toq_db)
    add_job(toq_db, job_row(10, L, status="SUCCEEDED", completed_at=START.replace(tzinfo=None)))
    sync()
    pks = list(Job.objects.order_by("toq_id").values_list("pk", flat=True))
    assert diagnose_jobs_task([*pks, max(pks) + 1000]) == 2  # a vanished job is skipped
    batched = sorted(Finding.objects.values_list("diagnosis__job_id", "position", "failure_mode", "cause", "role"))
    fingerprints = dict(Diagnosis.objects.values_list("job_id", "evidence_fingerprint"))
    assert diagnose_jobs_task(pks) == 0
    Diagnosis.objects.all().delete()
    for pk in pks:
        assert diagnose_job_task(pk) is True
    single = sorted(Finding.objects.values_list("diagnosis__job_id", "position", "failure_mode", "cause", "role"))
    assert batched == single and ("FM-29", "no-execution-found", "origin") in [r[2:] for r in single]
    assert dict(Diagnosis.objects.values_list("job_id", "evidence_fingerprint")) == fingerprints
