"""The engine on hand-built Evidence, for modes whose evidence is awkward to stage through AWS exports."""

from __future__ import annotations

import datetime as dt

from diagnosis.engine import diagnose
from diagnosis.evidence import (
    AssetFacts,
    DerivativeFact,
    Evidence,
    ExecutionFacts,
    JobFacts,
    LogFact,
    MediaConvertFact,
)

NOW = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
VIDEO = "7/raw/video/vertical/vertical-01-clip.mp4"
THUMB = "7/processed/video/vertical/thumbnail/vertical-01-clip.mp4"


def _ev(**over) -> Evidence:
    values = {
        "job": JobFacts(
            toq_id=70,
            status="SUCCEEDED",
            kind="processing",
            listing_identity_id=7,
            callback_status="SUCCEEDED",
            callback_body="{}",
            callback_outputs_empty=False,
        ),
        "now": NOW,
        "assets": [AssetFacts(70, "VIDEO_VERTICAL", "PROCESSED", VIDEO, THUMB, {}, True)],
        "s3_listed": True,
    }
    values.update(over)
    return Evidence(**values)


def _roles(findings):
    return [(f.failure_mode, f.cause, f.role) for f in findings]


def test_healthy_video_job_has_no_finding():
    ev = _ev(derivatives=[DerivativeFact(VIDEO, THUMB, "video_thumbnail", "present")])
    assert diagnose(ev) == []


def test_fm12_silent_empty_thumbnail():
    ev = _ev(derivatives=[DerivativeFact(VIDEO, THUMB, "video_thumbnail", "zero_bytes")])
    findings = diagnose(ev)
    assert _roles(findings) == [("FM-12", "empty-thumbnail", "origin")]
    assert findings[0].evidence[0] == {
        "kind": "s3_object",
        "source": "toq-listing-medias",
        "id": THUMB,
        "excerpt": "zero_bytes",
    }
    assert "menos de 1 segundo" in findings[0].summary_pt_br


def test_fm17_mediaconvert_error_is_invisible_to_toq():
    ev = _ev(mediaconvert=[MediaConvertFact("1767-abc", "ERROR", 1010, "Unable to open input file")])
    findings = diagnose(ev)
    assert _roles(findings) == [("FM-17", "transcode-error", "origin")]
    assert (
        findings[0].evidence[0]["kind"] == "mediaconvert_field"
        and "Unable to open input file" in findings[0].summary_en
    )


def test_fm21_signature_mismatch_and_fm08_duplicates():
    line = LogFact("sha256:x", "toq-server", "WARN", "adapter.stepfunctions.callback.signature_mismatch", "{...}")
    executions = [
        ExecutionFacts(f"arn:aws:states:us-east-1:1:execution:sm:{n}", "processing", "FAILED", is_duplicate=True)
        for n in "ab"
    ]
    job = JobFacts(
        toq_id=70, status="PENDING", kind="processing", listing_identity_id=7, created_at=NOW - dt.timedelta(minutes=5)
    )
    findings = diagnose(_ev(job=job, logs=[line], executions=executions))
    assert _roles(findings) == [
        ("FM-21", "signature-mismatch", "origin"),
        ("FM-08", "duplicate-executions", "contributing"),
    ]


def test_fm21_403_cites_the_server_line_linked_by_time():
    """The callback's 403 and TOQ's signature_mismatch line (linked by time) are one finding."""
    server = LogFact("sha256:s", "toq-server", "WARN", "adapter.stepfunctions.callback.signature_mismatch", "{...}")
    response = LogFact(
        "e403",
        "/aws/lambda/listing-media-callback-dispatch-staging",
        "INFO",
        "Callback response received",
        "{...}",
        fields={"status_code": 403},
    )
    job = JobFacts(
        toq_id=70, status="PENDING", kind="processing", listing_identity_id=7, created_at=NOW - dt.timedelta(minutes=5)
    )
    findings = diagnose(_ev(job=job, logs=[response, server]))
    assert [r for r in _roles(findings) if r[0] == "FM-21"] == [("FM-21", "signature-rejected", "origin")]
    assert {e["id"] for e in findings[0].evidence if e["kind"] == "log_event"} == {"e403", "sha256:s"}


def test_stuck_threshold_is_configurable():
    job = JobFacts(
        toq_id=70, status="PENDING", kind="processing", listing_identity_id=7, created_at=NOW - dt.timedelta(minutes=45)
    )
    assert diagnose(_ev(job=job), stuck_after_minutes=60) == []
    assert _roles(diagnose(_ev(job=job), stuck_after_minutes=30)) == [("FM-29", "no-execution-found", "origin")]


def test_dates_are_only_a_hint_content_decides():
    """The incident's signature at a shifted date (an export replayed a year later) is still FM-14."""
    job = JobFacts(
        toq_id=70,
        status="FAILED",
        kind="processing",
        listing_identity_id=7,
        callback_status="PROCESSING_FAILED",
        callback_body="{}",
        callback_outputs_empty=True,
        callback_error_code="errorString",
        callback_error_type="errorString",
        callback_error_message="DERIVATIVE_ERRORS_DETECTED",
        completed_at=dt.datetime(2027, 6, 1, tzinfo=dt.UTC),
    )
    findings = diagnose(_ev(job=job, now=dt.datetime(2027, 6, 2, tzinfo=dt.UTC)))
    assert ("FM-14", "derivative-errors-escalated", "origin") in _roles(findings)


def test_docs_list_every_mode_and_cause_the_catalog_words():
    from pathlib import Path

    from diagnosis import catalog

    docs = (Path(__file__).resolve().parents[2] / "docs" / "diagnosis.md").read_text()
    covered = docs.split("## Failure modes covered")[1].split("## Not covered")[0]
    for fm in catalog.FM_TEXT:
        assert f"| {fm} |" in covered, fm
    for fm, cause in catalog.CAUSE_TEXT:
        row = next(line for line in covered.splitlines() if line.startswith(f"| {fm} |"))
        assert f"`{cause}`" in row, (fm, cause)
