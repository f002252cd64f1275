"""Lookup from what a person has in hand → jobs, over the job-37 sample (rows synced, AWS imported)."""

from __future__ import annotations

import json

import pytest

from diagnosis.lookup import job_lookup
from diagnosis.models import Finding
from tests.conftest import TOQ_DATABASES
from tests.diagnosis.conftest import JOB37_EXECUTION, diagnose_json, import_aws, sync
from tests.jobs.toq_rows import add_job, failed_callback, job_row

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)

ARN = f"arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:{JOB37_EXECUTION}"
WARN_LINE = {
    "time": "2026-01-05T15:55:03.824300164Z",
    "level": "WARN",
    "msg": "service.media.callback.no_results_failure",
    "request_id": "8cf041a5b067399df439d5a1c7f494e1",
    "job_id": 37,
    "status": "PROCESSING_FAILED",
    "callback_error_code": "ERRORSTRING",
    "callback_error": '{"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"}',
    "callback_error_metadata": None,
}


@pytest.fixture
def job37_world(toq_db, aws_copy):
    toq_db.load_job37()
    sync()
    import_aws(aws_copy)
    return toq_db


def _ids(query: str) -> list[tuple[int, str]]:
    return [(m.job.toq_id, m.matched_by) for m in job_lookup(query=query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (json.dumps(WARN_LINE), [(37, "job_id")]),
        # the same line without job_id: found through the callback's request id
        (json.dumps({k: v for k, v in WARN_LINE.items() if k != "job_id"}), [(37, "request_id")]),
        ("8cf041a5b067399df439d5a1c7f494e1", [(37, "request_id")]),
        (ARN, [(37, "execution_arn")]),
        (JOB37_EXECUTION, [(37, "execution_name")]),
        # the Lambda RequestId of the video_thumbnails invocation (START line)
        ("4cd8e257-32b5-4d87-b1d8-3ffea744fe39", [(37, "request_id")]),
        ("16/raw/video/vertical/vertical-01-VID_20260105_124137.mp4", [(37, "s3_key")]),
        ("listing 16", [(37, "listing_id")]),
        ("37", [(37, "job_id")]),
        ("job 36", [(36, "job_id")]),
        ("nothing to see here", []),
        ("", []),
    ],
)
def test_lookup(job37_world, query, expected):
    assert _ids(query) == expected


def test_same_failure_in_two_jobs_shares_a_group_signature(job37_world):
    """Job 39 (another listing, later) failed the same way: same FM-14 signature, ids and keys aside."""
    job37_world.execute("INSERT INTO listing_identities (id, listing_uuid, user_id, code) VALUES (15000, 'u', 4, 1)")
    add_job(
        job37_world,
        job_row(
            39,
            15000,
            status="FAILED",
            callback_body=failed_callback(39, 15000),
            last_error='code=ERRORSTRING | {"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"} | errorString',
        ),
        with_created_at=False,
    )
    sync()
    diagnose_json(37)
    diagnose_json(39)
    fm14 = Finding.objects.filter(failure_mode="FM-14").order_by("diagnosis__job__toq_id")
    assert [f.diagnosis.job.toq_id for f in fm14] == [37, 39]
    assert fm14[0].signature == fm14[1].signature
    assert (
        fm14[0].signature_text
        == "FM-14|derivative-errors-escalated|ConsolidateResults|errorString DERIVATIVE_ERRORS_DETECTED"
    )
    fm12 = Finding.objects.get(failure_mode="FM-12")
    assert fm12.signature != fm14[0].signature
    assert "<n>" not in fm12.signature_text or "ffmpeg" in fm12.signature_text
