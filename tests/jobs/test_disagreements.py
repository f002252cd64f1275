"""TOQ vs AWS on the job page: the pure rules (unsaved rows, no database), then the loud header."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from awslogs.models import DerivativeCheck, EvidenceStatus, Execution, MediaConvertJob
from jobs.disagreements import AwsEvidence, job_disagreements
from jobs.models import Job
from jobs.roles import SUPPORT
from tests.jobs.factories import XSS, make_job, make_user, utc

NOW = utc(2026, 3, 10, 12, 0)
DONE = NOW - timedelta(hours=1)  # when the terminal jobs below completed
GRACE = timedelta(minutes=5)
ARN = "arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:e-1"


def _job(status: str, **kwargs) -> Job:
    values = {
        "toq_id": 40,
        "generation": 1,
        "row_hash": 1,
        "status": status,
        "is_terminal": status in ("SUCCEEDED", "PARTIAL_SUCCESS", "FAILED"),
        "listing_identity_id": 16,
        "provider": "STEP_FUNCTIONS",
        "first_seen_at": NOW - timedelta(hours=2),
        "last_changed_at": NOW - timedelta(hours=1),
        "completed_at": DONE if status in ("SUCCEEDED", "PARTIAL_SUCCESS", "FAILED") else None,
        "last_error": "reconciler marked failed after 30m0s without callback" if status == "FAILED" else None,
    }
    values.update(kwargs)
    return Job(**values)


def _execution(status: str, *, name: str = "e-1", start: datetime | None = None, stop: datetime | None = None):
    start = start or NOW - timedelta(hours=1, minutes=2)
    if stop is None and status not in ("RUNNING", "PENDING_REDRIVE"):
        stop = start + timedelta(minutes=1)
    return Execution(arn=ARN[: -len("e-1")] + name, name=name, status=status, start_date=start, stop_date=stop)


def _evidence(executions=(), mediaconvert=(), failed=(), current: bool | None = True) -> AwsEvidence:
    return AwsEvidence(
        executions=list(executions),
        mediaconvert_jobs=list(mediaconvert),
        failed_checks=list(failed),
        evidence_current=current,
    )


def _found(job: Job, evidence: AwsEvidence, now: datetime = NOW):
    return job_disagreements(job=job, evidence=evidence, now=now, grace=GRACE, region="us-east-1", bucket="b")


def _codes(job: Job, evidence: AwsEvidence, now: datetime = NOW) -> list[str]:
    return [d.code for d in _found(job, evidence, now)]


def test_agreement_is_silent():
    assert _codes(_job("SUCCEEDED"), _evidence([_execution("SUCCEEDED")])) == []
    assert _codes(_job("FAILED"), _evidence([_execution("FAILED")])) == []
    assert _codes(_job("PENDING", completed_at=None), _evidence([_execution("RUNNING")])) == []
    assert _codes(_job("PENDING"), _evidence()) == []  # no evidence: nothing to contradict


@pytest.mark.parametrize("toq_status", ["SUCCEEDED", "PARTIAL_SUCCESS"])
@pytest.mark.parametrize("mc_status", ["ERROR", "CANCELED"])
def test_toq_success_but_mediaconvert_failed(toq_status, mc_status):
    mc = MediaConvertJob(job_id="1767628487123-abc", status=mc_status, error_code=1010, error_message="Invalid input")
    found = _found(_job(toq_status), _evidence([_execution("SUCCEEDED")], [mc], current=None))
    assert [d.code for d in found] == ["mediaconvert-failed"]
    d = found[0]
    assert toq_status in d.message and "1767628487123-abc" in d.message and mc_status in d.message
    values = {e.label: e.value for e in d.evidence}
    assert values["MediaConvert status"] == mc_status
    assert values["Error code"] == "1010" and values["Error message"] == "Invalid input"
    assert d.evidence[0].url.endswith("#/jobs/summary/1767628487123-abc")
    # A COMPLETE or still running MediaConvert job, or a failed job in TOQ: no contradiction.
    for status in ("COMPLETE", "PROGRESSING"):
        ok = MediaConvertJob(job_id="x", status=status)
        assert _codes(_job(toq_status), _evidence([], [ok])) == []
    assert _codes(_job("FAILED"), _evidence([_execution("FAILED")], [mc])) == []
    # A rerun's MediaConvert job produced the MP4 after all: nothing is missing.
    rerun = MediaConvertJob(job_id="1767628999999-def", status="COMPLETE")
    assert _codes(_job(toq_status), _evidence([], [mc, rerun])) == []


def test_toq_failed_but_latest_execution_succeeded():
    job = _job("FAILED")
    found = _found(job, _evidence([_execution("SUCCEEDED")]))
    assert [d.code for d in found] == ["execution-succeeded"]
    values = {e.label: e for e in found[0].evidence}
    assert values["Execution"].value == "e-1" and "#/v2/executions/details/arn:aws:states:" in values["Execution"].url
    assert values["TOQ last error"].value.startswith("reconciler marked failed")
    assert values["Execution stopped"].at == NOW - timedelta(hours=1, minutes=1)
    # The latest execution decides: an earlier success followed by a failure agrees with FAILED.
    earlier = _execution("SUCCEEDED", name="e-0", start=NOW - timedelta(hours=3))
    assert _codes(job, _evidence([earlier, _execution("FAILED")])) == []
    later = _execution("SUCCEEDED", name="e-2", start=NOW - timedelta(minutes=30))
    assert _codes(job, _evidence([_execution("FAILED"), later])) == ["execution-succeeded"]


@pytest.mark.parametrize("exec_status", ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"])
@pytest.mark.parametrize("toq_status", ["PENDING", "RUNNING"])
def test_job_in_flight_but_execution_closed_past_the_grace(exec_status, toq_status):
    job = _job(toq_status, completed_at=None)
    stopped = NOW - timedelta(minutes=6)
    execution = _execution(exec_status, start=stopped - timedelta(minutes=1), stop=stopped)
    found = _found(job, _evidence([execution]))
    assert [d.code for d in found] == ["execution-closed"]
    assert toq_status in found[0].message and exec_status in found[0].message
    assert {e.label: e.at for e in found[0].evidence}["TOQ row last changed"] == job.last_changed_at
    # Within the grace (callback and sync on their way), or another execution still running: silent.
    assert _codes(job, _evidence([execution]), now=stopped + timedelta(minutes=4)) == []
    running = _execution("RUNNING", name="e-2", start=NOW - timedelta(minutes=2))
    assert _codes(job, _evidence([execution, running])) == []
    # A row gone from TOQ says nothing any more.
    gone = _job(toq_status, completed_at=None, disappeared_at=NOW - timedelta(minutes=1))
    assert _codes(gone, _evidence([execution])) == []


def test_toq_succeeded_but_derivatives_missing_or_empty():
    job = _job("SUCCEEDED")
    keys = [f"16/processed/photo/horizontal/{size}/IMG_{i}.jpg" for i in range(4) for size in ("small", "large")]
    failed = [
        DerivativeCheck(key=k, kind="small", outcome="zero_bytes" if i == 0 else "missing") for i, k in enumerate(keys)
    ]
    found = _found(job, _evidence([_execution("SUCCEEDED")], failed=failed))
    assert [d.code for d in found] == ["derivatives-missing"]
    d = found[0]
    assert "(8)" in d.message
    shown = [e for e in d.evidence if e.value.startswith("16/")]
    assert len(shown) == 5 and {e.label for e in shown} == {"Missing", "Empty (0 bytes)"}
    empty = next(e for e in shown if e.label == "Empty (0 bytes)")
    assert empty.url.startswith("https://us-east-1.console.aws.amazon.com/s3/object/b?")
    assert all(e.url == "" for e in shown if e.label == "Missing")  # no console page for what is not there
    assert d.evidence[-1].label == "More, in the Derivatives panel" and d.evidence[-1].value == "3"
    # Checks made before the job's row last changed (row hash differs) or within the grace: not yet.
    assert _codes(job, _evidence(failed=failed, current=False)) == []
    assert _codes(job, _evidence(failed=failed, current=None)) == []
    assert _codes(job, _evidence(failed=failed), now=DONE + timedelta(minutes=2)) == []
    # PARTIAL_SUCCESS already says some outputs failed.
    assert _codes(_job("PARTIAL_SUCCESS"), _evidence(failed=failed)) == []


@pytest.mark.parametrize("toq_status", ["SUCCEEDED", "PARTIAL_SUCCESS", "FAILED"])
def test_job_terminal_while_an_execution_still_runs(toq_status):
    job = _job(toq_status)
    running = _execution("RUNNING", start=NOW - timedelta(hours=1, minutes=5))
    found = _found(job, _evidence([running]))
    assert [d.code for d in found] == ["execution-running"]
    assert "RUNNING" in found[0].message and toq_status in found[0].message
    # Our RUNNING may be stale: only on evidence collected after the job's row changed, past the grace.
    assert _codes(job, _evidence([running], current=False)) == []
    assert _codes(job, _evidence([running]), now=DONE + timedelta(minutes=1)) == []


# --- on the page ------------------------------------------------------------------------------------


@pytest.fixture
def support(client):
    client.force_login(make_user("sam", SUPPORT))


@pytest.mark.django_db
def test_job_page_header_shows_each_disagreement_loudly_and_escaped(client, support):
    now = timezone.now()
    job = make_job(60, status="SUCCEEDED", completed_at=now - timedelta(hours=1), external_id=ARN)
    execution = Execution.objects.create(
        arn=ARN, name="e-1", job=job, found_via="external_id", status="SUCCEEDED", start_date=now - timedelta(hours=1)
    )
    MediaConvertJob.objects.create(job_id="mc-1", execution=execution, status="ERROR", error_message=XSS)
    DerivativeCheck.objects.create(
        job=job, raw_key="16/raw/a.jpg", key="16/processed/x/small/a.jpg", kind="small", outcome="missing"
    )
    EvidenceStatus.objects.create(job=job, complete=False, job_row_hash=str(job.row_hash), collected_at=now)

    html = client.get("/jobs/60/").content.decode()
    header = html[html.index('id="job-disagreements"') : html.index('id="job-summary"')]
    assert header.count('role="alert"') == 2
    assert "disagreement-mediaconvert-failed" in header and "disagreement-derivatives-missing" in header
    assert "TOQ and AWS disagree:" in header
    assert "<script>alert" not in header and "&lt;script&gt;alert" in header  # AWS text stays text
    assert (
        'href="https://us-east-1.console.aws.amazon.com/mediaconvert/home?region=us-east-1#/jobs/summary/mc-1"'
        in header
    )
    assert 'target="_blank" rel="noopener noreferrer"' in header

    # The job's row changed since the evidence was collected: the S3 comparison waits for a new collection.
    Job.objects.filter(pk=job.pk).update(row_hash=2)
    html = client.get("/jobs/60/").content.decode()
    assert "disagreement-derivatives-missing" not in html and "disagreement-mediaconvert-failed" in html
