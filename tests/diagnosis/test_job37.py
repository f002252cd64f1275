"""The job-37 incident through the real path: TOQ rows in MariaDB → toq_sync → import_aws → diagnose.

Variants edit copies of the AWS CLI exports (tmp_path), never the fixtures themselves.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from diagnosis import engine
from diagnosis.models import Diagnosis, Finding
from diagnosis.services import diagnose_job
from jobs.models import Job
from tests.conftest import TOQ_DATABASES
from tests.diagnosis.conftest import (
    JOB37_EXECUTION,
    diagnose_json,
    edit_json,
    import_aws,
    replace_text,
    roles,
    sync,
)
from tests.jobs.toq_rows import add_asset

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)

ARN = f"arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:{JOB37_EXECUTION}"
VIDEO_KEY = "16/raw/video/vertical/vertical-01-VID_20260105_124137.mp4"
FFMPEG_MISSING = "fork/exec /opt/ffmpeg/ffmpeg: no such file or directory"


def _by_fm(data, fm):
    return [f for f in data["findings"] if f["failure_mode"] == fm]


def test_job37_incident(toq_db, aws_copy):
    toq_db.load_job37()
    sync()
    import_aws(aws_copy)

    data = diagnose_json(37)

    assert data["job_id"] == 37 and data["status"] == "FAILED"
    assert roles(data) == [
        ("FM-12", "ffmpeg-missing", "origin"),
        ("FM-14", "derivative-errors-escalated", "contributing"),
        ("FM-39", "ffmpeg-layer-missing", "contributing"),
        ("FM-28", "bulk-failed-without-detail", "consequence"),
    ]
    origin = data["findings"][0]
    assert FFMPEG_MISSING in origin["summary"] and VIDEO_KEY in origin["summary"]
    assert origin["confidence"] >= 0.9 and origin["missing_evidence"] == []
    refs = {(e["kind"], e["source"], e["id"]) for e in origin["evidence"]}
    # the branch output in the history (TaskStateExited of GenerateVideoThumbnails is event 27) …
    assert ("history_event", ARN, "27") in refs
    # … the video_thumbnails ERROR line, the absent thumbnail, and the MP4 MediaConvert did write
    video_log = [e for e in origin["evidence"] if e["source"] == "/aws/lambda/listing-media-video_thumbnails-staging"]
    assert len(video_log) == 1 and "Video thumbnail generation failed" in video_log[0]["excerpt"]
    assert (
        "s3_object",
        "toq-listing-medias",
        "16/processed/video/vertical/thumbnail/vertical-01-VID_20260105_124137.mp4",
    ) in refs
    assert {e["excerpt"] for e in origin["evidence"] if e["kind"] == "s3_object"} == {"missing", "present"}
    assert ("mediaconvert_field", "1767628487824-jisa49", "Status") in refs

    consolidate = _by_fm(data, "FM-14")[0]
    failed = [e["id"] for e in consolidate["evidence"] if e["kind"] == "history_event"]
    assert failed == ["33", "36", "39"]  # three LambdaFunctionFailed, one per try
    assert "3 failed attempts" in consolidate["summary"]

    drift = _by_fm(data, "FM-39")[0]
    assert {e["id"]: e["excerpt"] for e in drift["evidence"]}["Layers"] == "[]"
    assert "FFMPEG_PATH unset" in drift["summary"]
    # LastModified 15:53:51.482, execution start 15:54:47.370
    assert "deployed 55 s before the job started" in drift["summary"]

    bulk = _by_fm(data, "FM-28")[0]
    assert ("db_column", "media_assets.status", "103") in {(e["kind"], e["source"], e["id"]) for e in bulk["evidence"]}
    assert any("no_results_failure" in e["excerpt"] for e in bulk["evidence"])

    # stored, with both languages
    stored = Diagnosis.objects.get(job__toq_id=37)
    assert stored.engine_version == engine.ENGINE_VERSION
    first = stored.findings.get(position=0)
    assert first.title_pt_br == "Falha ao gerar a miniatura do vídeo"
    assert "binário do ffmpeg não existe" in first.summary_pt_br
    assert "layer do ffmpeg" in first.action_pt_br
    drift_pt = stored.findings.get(failure_mode="FM-39").summary_pt_br
    assert "nenhuma layer, FFMPEG_PATH não definida" in drift_pt and "implantada 55 s antes" in drift_pt


def test_portuguese_json_and_readable_report(toq_db, aws_copy):
    toq_db.load_job37()
    sync()
    import_aws(aws_copy)
    pt = diagnose_json(37, "--lang", "pt-br")
    assert pt["findings"][0]["title"] == "Falha ao gerar a miniatura do vídeo"
    assert pt["findings"][1]["title"] == "Etapa de consolidação falhou"

    out = StringIO()
    call_command("diagnose", "37", stdout=out)
    report = out.getvalue()
    assert report.startswith("Job 37 — status FAILED — listing 16")
    assert "[ORIGIN] FM-12 ffmpeg-missing" in report
    assert report.index("[ORIGIN]") < report.index("[CONTRIBUTING]") < report.index("[CONSEQUENCE]")
    with pytest.raises(json.JSONDecodeError):
        json.loads(report)

    out = StringIO()
    call_command("diagnose", "37", "--lang", "pt-br", stdout=out)
    assert "[ORIGEM] FM-12 ffmpeg-missing: Falha ao gerar a miniatura do vídeo" in out.getvalue()


def test_healthy_jobs_of_the_same_minutes_have_no_finding(toq_db, aws_copy):
    toq_db.load_job37()
    sync()
    import_aws(aws_copy)
    for job_id in (36, 38):
        data = diagnose_json(job_id)
        assert data["status"] == "SUCCEEDED"
        assert data["findings"] == [], job_id


def test_rediagnosis_is_idempotent_and_follows_evidence_and_engine(toq_db, aws_copy, monkeypatch):
    toq_db.load_job37()
    sync()
    job = Job.objects.get(toq_id=37)

    # rows only: the callback says DERIVATIVE_ERRORS_DETECTED but not why
    before = diagnose_job(job_id=job.pk)
    assert before.changed
    origin = before.diagnosis.findings.get(role="origin")
    assert (origin.failure_mode, origin.cause) == ("FM-14", "derivative-errors-escalated")
    assert origin.confidence <= 0.6
    assert {m["en"] for m in origin.missing_evidence} >= {
        "execution history (branch outputs, consolidate attempts)",
        "the evidence naming the first failure (execution history, Lambda logs)",
    }
    ids = list(Finding.objects.values_list("id", flat=True))
    assert diagnose_job(job_id=job.pk).changed is False
    assert list(Finding.objects.values_list("id", flat=True)) == ids

    # new evidence arrives → re-diagnosed
    import_aws(aws_copy)
    after = diagnose_job(job_id=job.pk)
    assert after.changed
    assert after.diagnosis.findings.get(position=0).cause == "ffmpeg-missing"
    assert Diagnosis.objects.count() == 1

    # a new engine version → re-diagnosed even though nothing else changed
    assert diagnose_job(job_id=job.pk).changed is False
    monkeypatch.setattr("diagnosis.services.ENGINE_VERSION", "test-next")
    again = diagnose_job(job_id=job.pk)
    assert again.changed and again.diagnosis.engine_version == "test-next"


def test_variant_ffmpeg_permission_denied_with_layer_attached(toq_db, aws_copy):
    """H1b: the binary is there (layer attached, FFMPEG_PATH set) but not executable: no FM-39."""
    for path in [*aws_copy.glob("stepfunctions/*.json"), *aws_copy.glob("logs/*")]:
        text = path.read_text()
        if FFMPEG_MISSING in text:
            path.write_text(text.replace(FFMPEG_MISSING, "fork/exec /opt/bin/ffmpeg: permission denied"))
    config = aws_copy / "lambda" / "listing-media-video_thumbnails-staging.get-function-configuration.json"
    edit_json(
        config,
        lambda c: c.update(
            Layers=[{"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:toq-ffmpeg-layer-staging:5", "CodeSize": 1}],
            Environment={"Variables": {"FFMPEG_PATH": "/opt/bin/ffmpeg"}},
        ),
    )
    toq_db.load_job37()
    sync()
    import_aws(aws_copy)
    data = diagnose_json(37)
    assert roles(data)[0] == ("FM-12", "ffmpeg-permission-denied", "origin")
    assert "chmod +x" in data["findings"][0]["action"]
    assert not _by_fm(data, "FM-39")
    assert [r[0] for r in roles(data)] == ["FM-12", "FM-14", "FM-28"]


def _set_branch_output(history: dict, state: str, body: dict) -> None:
    """Rewrite the output of a branch state (its Lambda result and TaskStateExited)."""
    events = {e["id"]: e for e in history["events"]}
    exited = next(
        e for e in history["events"] if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == state
    )
    exited["stateExitedEventDetails"]["output"] = json.dumps({"body": body})
    events[exited["previousEventId"]]["lambdaFunctionSucceededEventDetails"]["output"] = json.dumps({"body": body})


def test_variant_image_branch_error_instead(toq_db, aws_copy):
    """H5: the image branch (an image Lambda older than 2026-01-05 15:54) decoded the video as an image;
    the video thumbnail itself succeeded."""
    history_path = aws_copy / "stepfunctions" / f"{JOB37_EXECUTION}.get-execution-history.json"
    image_error = "failed to decode image: image: unknown format"

    def change(history):
        _set_branch_output(
            history,
            "GenerateThumbnails",
            {
                "status": "SUCCESS",
                "generatedAssets": [],
                "errors": [
                    {"sourceKey": VIDEO_KEY, "errorCode": "THUMBNAIL_PROCESSING_FAILED", "errorMessage": image_error}
                ],
            },
        )
        thumb = VIDEO_KEY.replace("/raw/", "/processed/").replace(
            "/vertical/vertical-01", "/vertical/thumbnail/vertical-01"
        )
        _set_branch_output(
            history,
            "GenerateVideoThumbnails",
            {
                "status": "SUCCESS",
                "generatedAssets": [{"key": thumb, "type": "VIDEO_THUMBNAIL", "sourceKey": VIDEO_KEY}],
                "errors": [],
            },
        )

    edit_json(history_path, change)
    (aws_copy / "logs" / "listing-media-video_thumbnails-staging.filter-log-events.json").unlink()
    consolidate_log = aws_copy / "logs" / "listing-media-consolidate-staging.filter-log-events.json"
    replace_text(consolidate_log, "VIDEO_THUMBNAIL_FAILED", "THUMBNAIL_PROCESSING_FAILED")
    replace_text(consolidate_log, f"ffmpeg failed: {FFMPEG_MISSING} | output: ", image_error)
    toq_db.load_job37()
    sync()
    import_aws(aws_copy)

    data = diagnose_json(37)

    assert roles(data)[0] == ("FM-11", "video-sent-to-image-branch", "origin")
    assert not _by_fm(data, "FM-12")
    assert ("FM-14", "derivative-errors-escalated", "contributing") in roles(data)
    assert ("FM-28", "bulk-failed-without-detail", "consequence") in roles(data)
    origin_refs = {(e["kind"], e["id"]) for e in data["findings"][0]["evidence"]}
    assert ("history_event", "23") in origin_refs  # TaskStateExited of GenerateThumbnails


def test_variant_several_assets_bulk_failed(toq_db, aws_copy):
    """Listing 16 also had a photo of another in-flight job PROCESSING: the fail-safe failed it too."""
    toq_db.load_job37()
    add_asset(toq_db, 106, 16, status="FAILED", sequence=1)  # bulk-failed by job 37's callback
    add_asset(
        toq_db,
        107,
        16,
        status="PROCESSED",
        sequence=2,
        s3_key_processed="16/processed/photo/horizontal/large/horizontal-107-IMG_107.jpg",
    )
    sync()
    import_aws(aws_copy)

    data = diagnose_json(37)

    assert roles(data)[0] == ("FM-12", "ffmpeg-missing", "origin")
    bulk = _by_fm(data, "FM-28")[0]
    asset_refs = [e["id"] for e in bulk["evidence"] if e["source"] == "media_assets.status"]
    assert asset_refs == ["103", "106"]
    assert "assets: 2" in bulk["summary"] and "not in this job: 1" in bulk["summary"]
    assert "horizontal-106-IMG_106.jpg" in bulk["summary"]


def test_evidence_query_count_is_pinned(toq_db, aws_copy, django_assert_num_queries):
    from diagnosis.selectors import evidence_for_job

    toq_db.load_job37()
    sync()
    import_aws(aws_copy)
    job = Job.objects.get(toq_id=37)
    # executions, history events, job observations, assets, log lines (by job, by TOQ id), MediaConvert,
    # evidence status, derivative checks, DLQ messages, function configs (all at once), S3 objects
    # (expected keys), S3 prefix exists: independent of the number of events, lines and assets.
    with django_assert_num_queries(13):
        evidence = evidence_for_job(job=job)
    assert len(evidence.logs) > 20 and len(evidence.executions) == 1


def test_batched_evidence_equals_per_job_evidence_in_a_fixed_number_of_queries(
    toq_db, aws_copy, django_assert_num_queries
):
    from diagnosis.selectors import evidence_for_job, evidence_for_jobs

    toq_db.load_job37()
    sync()
    import_aws(aws_copy)
    jobs = list(Job.objects.order_by("pk"))
    listings = {j.listing_identity_id for j in jobs}
    assert len(jobs) >= 3
    now = timezone.now()
    single = {j.pk: evidence_for_job(job=j, now=now) for j in jobs}

    # The same queries as for one job, plus one S3 prefix check per distinct listing.
    with django_assert_num_queries(12 + len(listings)):
        batched = evidence_for_jobs(jobs=jobs, now=now)

    assert batched == single
    assert {pk: e.fingerprint() for pk, e in batched.items()} == {pk: e.fingerprint() for pk, e in single.items()}
