"""Job ↔ raw S3 key links, and lines that name only a raw `key` attributed through them."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from awslogs import parsers
from awslogs.models import DlqMessage, Execution, JobRawKey, LogEvent
from awslogs.services import rawkeys, store
from awslogs.services.collect import job_evidence_collect
from tests.awslogs.conftest import FIXTURES, load_fixture
from tests.awslogs.factories import execution_arn, make_job
from tests.awslogs.test_collect import JOB37_ARN, JOB37_NAME, _setup_job37, _snapshot

VIDEO_KEY = "16/raw/video/vertical/vertical-01-VID_20260105_124137.mp4"
# Without these lines no job id reaches the invocations of thumbnails / video_thumbnails.
STARTED_LINES = ("Video Thumbnails Lambda started", "Thumbnails Lambda started")


@pytest.mark.django_db
def test_job37_video_failure_attributed_through_the_raw_key(aws, moto_clients):
    _setup_job37(aws, moto_clients, without=STARTED_LINES)
    # The log samples were moved to "now" (moto refuses old events): move the execution with them.
    now = timezone.now()
    aws.describes[JOB37_ARN] = {
        **aws.describes[JOB37_ARN],
        "startDate": (now - dt.timedelta(minutes=6)).isoformat(),
        "stopDate": (now - dt.timedelta(seconds=150)).isoformat(),
    }
    # no created_at, no started_at: found through ListExecutions; terminal, so its windows are over
    job = make_job(37, status="FAILED", is_terminal=True, completed_at=now - dt.timedelta(minutes=3))
    job_evidence_collect(job_id=job.id)

    links = set(JobRawKey.objects.filter(job=job).values_list("raw_key", "asset_type", "source", "source_ref"))
    assert links == {(VIDEO_KEY, "VIDEO_VERTICAL", "execution_input", JOB37_ARN)}
    failed = LogEvent.objects.get(msg="Video thumbnail generation failed")
    assert failed.s3_key == VIDEO_KEY and failed.level == "ERROR"
    assert (failed.job, failed.job_toq_id, failed.attributed_via) == (job, 37, "raw_key")
    # the other lines of that invocation (no key on them) follow it
    completed = LogEvent.objects.get(msg="Video thumbnails completed")
    assert completed.job == job and completed.request_id == failed.request_id
    report = LogEvent.objects.get(kind="report", request_id=failed.request_id)
    assert report.job == job
    # thumbnails: job 37's `Inspecting asset` is 37's; jobs 36/38 (other listings' keys) stay unattributed
    inspecting = {e.s3_key.split("/")[0]: e for e in LogEvent.objects.filter(msg="Inspecting asset")}
    assert inspecting["16"].job == job
    assert {inspecting[k].job_toq_id for k in ("15", "18")} == {None}
    assert not LogEvent.objects.filter(job=job).exclude(s3_key="").exclude(s3_key=VIDEO_KEY).exists()
    # re-collection: nothing new, nothing changed
    before = _snapshot()
    job_evidence_collect(job_id=job.id)
    assert _snapshot() == before


@pytest.mark.django_db
def test_full_job37_sample_attributes_the_video_failure_to_job37(aws, moto_clients):
    _setup_job37(aws, moto_clients)
    job = make_job(37)
    job_evidence_collect(job_id=job.id)
    failed = LogEvent.objects.get(msg="Video thumbnail generation failed")
    assert failed.job == job and failed.attributed_via == ""  # the invocation's start line named job 37
    assert JobRawKey.objects.filter(job=job, raw_key=VIDEO_KEY).exists()


def _execution(job: Any, name: str, start: dt.datetime, minutes: int, keys: list[str]) -> Execution:
    payload = {"jobId": job.toq_id, "assets": [{"key": k, "type": "PHOTO_HORIZONTAL"} for k in keys]}
    return Execution.objects.create(
        arn=execution_arn(name),
        name=name,
        found_via="import",
        status="SUCCEEDED",
        job=job,
        job_toq_id=job.toq_id,
        start_date=start,
        stop_date=start + dt.timedelta(minutes=minutes),
        input=json.dumps(payload),
    )


def _line(event_id: str, at: dt.datetime, key: str, stream: str = "s") -> dict[str, Any]:
    message = json.dumps({"level": "ERROR", "msg": "Failed to process asset", "key": key, "error": "x"})
    return {"eventId": event_id, "timestamp": parsers.to_epoch_ms(at), "message": message, "logStreamName": stream}


@pytest.mark.django_db
def test_a_reused_raw_key_goes_to_the_job_whose_execution_covers_the_line(settings):
    """A listing reprocessed: two jobs share a raw key. Each line goes to the job whose execution
    window holds it; a line inside both windows goes to neither."""
    settings.AWSLOGS_LOG_MARGIN_SECONDS = 60
    key = "16/raw/photo/horizontal/horizontal-01-a.jpg"
    t0 = timezone.now() - dt.timedelta(days=2)
    first, second = make_job(40), make_job(41)
    e1 = _execution(first, "first", t0, 10, [key])
    e2 = _execution(second, "second", t0 + dt.timedelta(minutes=8), 10, [key])
    for job, execution in ((first, e1), (second, e2)):
        rawkeys.job_raw_keys_record(job=job, links=rawkeys.raw_key_links(job=job, executions=[execution]))
    group = "/aws/lambda/listing-media-thumbnails-staging"
    store.log_events_store(
        log_group=group,
        events=[
            _line("early", t0 + dt.timedelta(minutes=2), key),
            _line("overlap", t0 + dt.timedelta(minutes=9), key),
            _line("late", t0 + dt.timedelta(minutes=15), key),
            _line("other-key", t0 + dt.timedelta(minutes=2), "16/raw/photo/horizontal/zzz.jpg"),
            _line("long-after", t0 + dt.timedelta(hours=5), key),
        ],
    )
    assert (
        rawkeys.log_events_attribute_by_raw_key(job=first, raw_keys={key}, windows=rawkeys.execution_windows([e1])) == 1
    )
    assert (
        rawkeys.log_events_attribute_by_raw_key(job=second, raw_keys={key}, windows=rawkeys.execution_windows([e2]))
        == 1
    )
    owners = dict(LogEvent.objects.values_list("event_id", "job__toq_id"))
    assert owners == {"early": 40, "overlap": None, "late": 41, "other-key": None, "long-after": None}
    # idempotent
    assert (
        rawkeys.log_events_attribute_by_raw_key(job=first, raw_keys={key}, windows=rawkeys.execution_windows([e1])) == 0
    )


@pytest.mark.django_db
def test_links_from_sqs_body_and_callback_recorded_once():
    job = make_job(60, listing_identity_id=3, callback_results=[{"raw_key": "3/raw/photo/vertical/b.jpg"}])
    body = json.dumps({"jobId": 60, "listingIdentityId": 3, "assets": ["3/raw/video/vertical/a.mp4"]})
    message = DlqMessage.objects.create(
        message_id="m-1", queue_name="dlq", body=body, job=job, job_toq_id=60, first_seen_at=timezone.now()
    )
    links = rawkeys.raw_key_links(job=job, executions=[], dlq_messages=[message])
    assert rawkeys.job_raw_keys_record(job=job, links=links) == 2
    assert rawkeys.job_raw_keys_record(job=job, links=links) == 0
    stored = set(JobRawKey.objects.values_list("raw_key", "asset_type", "source", "source_ref"))
    assert stored == {
        ("3/raw/video/vertical/a.mp4", "VIDEO", "sqs_message", "m-1"),
        ("3/raw/photo/vertical/b.jpg", "", "callback", ""),
    }


@pytest.mark.django_db
def test_import_attributes_key_only_lines_through_the_execution_input(tmp_path):
    job = make_job(37)
    logs = load_fixture("logs/listing-media-video_thumbnails-staging.filter-log-events.json")
    logs["events"] = [e for e in logs["events"] if "Video Thumbnails Lambda started" not in e["message"]]
    path = tmp_path / "listing-media-video_thumbnails-staging.filter-log-events.json"
    path.write_text(json.dumps(logs))
    describe = FIXTURES / "stepfunctions" / f"{JOB37_NAME}.describe-execution.json"
    # the describe first, the logs in a later run: the stored raw-key link still attributes them
    call_command("import_aws", str(describe), stdout=StringIO())
    assert JobRawKey.objects.get(job=job).raw_key == VIDEO_KEY
    call_command("import_aws", str(path), stdout=StringIO())
    failed = LogEvent.objects.get(msg="Video thumbnail generation failed")
    assert failed.job == job and failed.attributed_via == "raw_key"
    assert LogEvent.objects.get(msg="Video thumbnails completed").job == job
