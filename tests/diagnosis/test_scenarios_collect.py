"""One realistic scenario per covered failure mode, through the real path (issue #4, Tests):

    TOQ rows in MariaDB → `toq_sync` → AWS side served over HTTP (moto + the fake endpoint) →
    `collect_aws --job ID` → `diagnose ID --json`

with the job-37 incident (its real exports, moved in time) and variants of it (another ffmpeg error,
an image-branch error instead, several assets). The records of the other scenarios are written by
tests/diagnosis/scenario_pipeline.py, which replays TOQ's pipeline in the formats of the job-37
samples; scenario_world.py serves them. Each scenario asserts the (failure mode, cause, role) list
and that the evidence points at the records AWS holds: history event ids of the execution, the
CloudWatch eventIds moto gave the log lines, S3 keys, MediaConvert job ids, function names.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from awslogs.models import DlqMessage, Execution, LogEvent
from jobs.models import Job
from tests.conftest import TOQ_DATABASES
from tests.diagnosis import scenario_pipeline as sp
from tests.diagnosis.scenario_world import Outcome, Scenario

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)

V, PV, P = "VIDEO_VERTICAL", "PHOTO_VERTICAL", "PHOTO_HORIZONTAL"
VALIDATE = "/aws/lambda/listing-media-validate-staging"
THUMBNAILS = "/aws/lambda/listing-media-thumbnails-staging"
VIDEO_THUMBNAILS = "/aws/lambda/listing-media-video_thumbnails-staging"
CONSOLIDATE = "/aws/lambda/listing-media-consolidate-staging"
CALLBACK = "/aws/lambda/listing-media-callback-dispatch-staging"
ZIP = "/aws/lambda/listing-media-zip-staging"
SERVER = sp.SERVER_GROUP
JOB37_ARN = sp.execution_arn("258c102b-4bc5-4a36-9b51-f432df114aa4")
JOB37_VIDEO = "16/raw/video/vertical/vertical-01-VID_20260105_124137.mp4"
JOB37_MC = "1767628487824-jisa49"
START_DENIED = (
    "failed to start execution: operation error SFN: StartExecution, https response error StatusCode: 400, "
    "RequestID: 0c3c7e3e-2f4a-4b0e-9d55-5f1f0b1a9c11, api error AccessDeniedException: User: "
    "arn:aws:sts::123456789012:assumed-role/toq-media-processing-lambdas-staging/listing-media-validate-staging "
    "is not authorized to perform: states:StartExecution on resource: "
    "arn:aws:states:us-east-1:123456789012:stateMachine:listing-media-processing-sm-staging because no "
    "identity-based policy allows the states:StartExecution action"
)
START_MISSING = (
    "failed to start execution: operation error SFN: StartExecution, https response error StatusCode: 400, "
    "RequestID: 4f0d2b8e-1c3a-4e5f-8a9b-0c1d2e3f4a5b, api error StateMachineDoesNotExist: State Machine Does Not "
    "Exist: 'arn:aws:states:us-east-1:123456789012:stateMachine:listing-media-processing-sm-staging'"
)
TIMED_OUT = '{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: {rid} Error: Task timed out after %s seconds"}'
PASS_ROLE = (
    "User: arn:aws:sts::123456789012:assumed-role/toq-media-processing-stepfunctions-staging/b5f0c1d2 is not "
    "authorized to perform: iam:PassRole on resource: "
    "arn:aws:iam::123456789012:role/toq-media-processing-mediaconvert-staging "
    "(Service: MediaConvert, Status Code: 403, Request ID: {rid})"
)

# What the job-37 incident (and its replay) is diagnosed as.
JOB37_ROLES = [
    ("FM-12", "ffmpeg-missing", "origin"),
    ("FM-14", "derivative-errors-escalated", "contributing"),
    ("FM-39", "ffmpeg-layer-missing", "contributing"),
    ("FM-28", "bulk-failed-without-detail", "consequence"),
]


def logs(s: Scenario, group: str, *needles: str) -> set[tuple[str, str, str]]:
    """Evidence refs of the lines of `group` containing every needle, by the eventIds moto gave them."""
    ids = s.log_event_ids(group, *needles)
    assert ids, f"no line of {group} contains {needles}"
    return {("log_event", group, i) for i in ids}


def history(run: sp.Run | sp.ExecutionRecord, event_type: str, state: str | None = None) -> set[tuple[str, str, str]]:
    record = run.execution if isinstance(run, sp.Run) else run
    ids = record.ids(event_type, state)
    assert ids, f"no {event_type} in {state}"
    return {("history_event", record.arn, i) for i in ids}


def of_kind(out: Outcome, fm: str, *kinds: str) -> set[tuple[str, str, str]]:
    return {r for r in out.refs(fm) if r[0] in kinds}


# --- the job-37 incident --------------------------------------------------------------------------------


def test_job37_incident_through_collect_aws(scenario):
    """The real exports: rows, three executions (ListExecutions), five Lambda log groups, the server
    log, S3, MediaConvert, the video Lambda's configuration — collected over HTTP, then diagnosed."""
    s = scenario
    s.load_job37()
    out = s.run(37)

    assert "collect_aws: 1 jobs, 1 executions" in s.collect_output
    calls = Counter(s.servers.fake.calls)
    assert calls["ListExecutions"] and calls["DescribeExecution"] and calls["GetExecutionHistory"]
    assert calls["GetJob"] == 1 and calls["GetFunctionConfiguration"] >= 1
    assert out.data["status"] == "FAILED"
    assert out.roles == JOB37_ROLES
    origin = out.finding("FM-12")
    assert origin["confidence"] >= 0.9 and origin["missing_evidence"] == []
    assert "fork/exec /opt/ffmpeg/ffmpeg: no such file or directory" in origin["summary"]
    # the branch output (TaskStateExited of GenerateVideoThumbnails is event 27), the ERROR line of
    # video_thumbnails, consolidate's payload_preview of each try, the absent thumbnail next to the MP4
    # MediaConvert wrote, and the MediaConvert job
    assert out.refs("FM-12") == (
        {("history_event", JOB37_ARN, "27")}
        | logs(s, VIDEO_THUMBNAILS, "Video thumbnail generation failed")
        | logs(s, CONSOLIDATE, "Consolidation complete", '"job_id":37')
        | {
            ("s3_object", sp.BUCKET, "16/processed/video/vertical/thumbnail/vertical-01-VID_20260105_124137.mp4"),
            ("s3_object", sp.BUCKET, "16/processed/video/vertical/original/vertical-01-VID_20260105_124137.mp4"),
            ("mediaconvert_field", JOB37_MC, "Status"),
        }
    )
    assert {e["id"]: e["excerpt"] for e in out.items("FM-12", "s3_object")} == {
        "16/processed/video/vertical/thumbnail/vertical-01-VID_20260105_124137.mp4": "missing",
        "16/processed/video/vertical/original/vertical-01-VID_20260105_124137.mp4": "present",
    }
    assert of_kind(out, "FM-14", "history_event") == {("history_event", JOB37_ARN, i) for i in ("33", "36", "39")}
    assert of_kind(out, "FM-14", "log_event") == logs(s, CONSOLIDATE, "Branch reported errors", '"branch_index":1')
    drift = out.finding("FM-39")
    assert {e["id"]: e["excerpt"] for e in drift["evidence"]}["Layers"] == "[]"
    # LastModified 15:53:51.482, execution start 15:54:47.370 (both moved by the same whole seconds)
    assert "FFMPEG_PATH unset" in drift["summary"] and "deployed 55 s before the job started" in drift["summary"]
    assert out.refs("FM-28") >= {("db_column", "media_assets.status", "103")} | logs(
        s, SERVER, "service.media.callback.no_results_failure", '"job_id":37'
    )
    pt = s.diagnose(37, "--lang", "pt-br").finding("FM-12")
    assert pt["summary"].startswith(f"A miniatura do vídeo de {JOB37_VIDEO} não foi gerada: ffmpeg failed")


def test_job37_replayed_matches_the_exports(scenario):
    """The pipeline replay (used by every other scenario) against the real incident: the same history
    shape (event types and their previous-event links), the same log messages, the same diagnosis."""
    s = scenario
    (video,) = s.listing(16, (103, V, "VID_20260105_124137.mp4"))
    video.size = 47_912_338
    s.video_lambda(sp.video_lambda_incident(s.at(-0.92), s.world))
    run = s.process(37, [video], video_errors={103: sp.FFMPEG_MISSING}, consolidate="escalate")

    real = json.loads(
        (
            Path(__file__).parent.parent
            / "fixtures/aws/job37/stepfunctions/258c102b-4bc5-4a36-9b51-f432df114aa4.get-execution-history.json"
        ).read_text()
    )["events"]

    def shape(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
        by_id = {e["id"]: e for e in events}
        return Counter((e["type"], by_id[e["previousEventId"]]["type"] if e["previousEventId"] else "") for e in events)

    assert shape(run.execution.events) == shape(real)
    for group in (VIDEO_THUMBNAILS, CONSOLIDATE, CALLBACK):
        mine = {json.loads(x.message)["msg"] for x in s.world.logs[group] if x.message.startswith("{")}
        name = group.removeprefix("/aws/lambda/")
        exported = json.loads(
            (Path(__file__).parent.parent / f"fixtures/aws/job37/logs/{name}.filter-log-events.json").read_text()
        )
        theirs = {json.loads(e["message"])["msg"] for e in exported["events"] if e["message"].startswith("{")}
        assert mine <= theirs, group
    assert s.world.jobs[37]["last_error"] == (
        'code=ERRORSTRING | {"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"} | errorString'
    )
    out = s.run(37)
    assert out.roles == JOB37_ROLES
    assert "deployed 55 s before the job started" in out.finding("FM-39")["summary"]


def _incident_listing(s: Scenario, *extra: tuple[int, str, str], fixed_lambda: bool) -> list[sp.Asset]:
    """Listing 16 of the incident; the video Lambda as deployed at 15:53:51 (no layer) or as fixed."""
    assets = s.listing(16, (103, V, "VID_20260105_124137.mp4"), *extra)
    if not fixed_lambda:
        s.video_lambda(sp.video_lambda_incident(s.at(-0.92), s.world))
    return assets


def _escalated_variant(s: Scenario, origin: tuple[str, str, str], **errors: Any) -> tuple[sp.Run, Outcome]:
    """Job 37 on the incident's video with the Lambda fixed and consolidate escalating `errors`:
    diagnosed as `origin`, the escalation, and the fail-safe (no FM-39)."""
    (video,) = _incident_listing(s, fixed_lambda=True)
    run = s.process(37, [video], consolidate="escalate", **errors)
    out = s.run(37)
    assert out.roles == [
        origin,
        ("FM-14", "derivative-errors-escalated", "contributing"),
        ("FM-28", "bulk-failed-without-detail", "consequence"),
    ]
    return run, out


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        (sp.FFMPEG_PERMISSION, "ffmpeg-permission-denied"),
        (sp.FFMPEG_EXEC_FORMAT, "ffmpeg-exec-format"),
        (sp.FFMPEG_DECODE, "ffmpeg-decode-failed"),
    ],
    ids=["permission-denied", "exec-format-error", "decode-failed"],
)
def test_job37_variant_another_ffmpeg_error(scenario, message, cause):
    """H1b/H3: the layer is attached and FFMPEG_PATH set, ffmpeg still fails: no FM-39."""
    s = scenario
    run, out = _escalated_variant(s, ("FM-12", cause, "origin"), video_errors={103: message})
    assert of_kind(out, "FM-12", "history_event", "log_event") == (
        history(run, "TaskStateExited", "GenerateVideoThumbnails")
        | logs(s, VIDEO_THUMBNAILS, "Video thumbnail generation failed")
        | logs(s, CONSOLIDATE, "Consolidation complete")
    )
    assert of_kind(out, "FM-14", "history_event") == history(run, "LambdaFunctionFailed", "ConsolidateResults")
    assert len(of_kind(out, "FM-14", "history_event")) == 3


def test_job37_variant_image_branch_error(scenario):
    """H5: a stale image Lambda decoded the video as an image; the video thumbnail itself worked."""
    s = scenario
    run, out = _escalated_variant(
        s, ("FM-11", "video-sent-to-image-branch", "origin"), image_errors={103: sp.IMAGE_UNKNOWN_FORMAT}
    )
    assert of_kind(out, "FM-11", "history_event", "log_event") == (
        history(run, "TaskStateExited", "GenerateThumbnails")
        | logs(s, THUMBNAILS, "Failed to process asset")
        | logs(s, CONSOLIDATE, "Consolidation complete")
    )
    assert of_kind(out, "FM-14", "log_event") == logs(s, CONSOLIDATE, "Branch reported errors", '"branch_index":0')


def test_job37_variant_several_assets(scenario):
    """Two videos and two photos in job 37, and a photo of job 36 (same listing, still in flight):
    both thumbnails fail, only the first video is transcoded, the fail-safe fails all five assets."""
    s = scenario
    v1, v2, p1, p2, other = _incident_listing(
        s,
        (104, V, "VID_20260105_124410.mp4"),
        (105, PV, "IMG_20260105_124902.jpg"),
        (106, P, "IMG_20260105_124915.jpg"),
        (107, P, "IMG_20260105_125001.jpg"),
        fixed_lambda=False,
    )
    s.process(36, [other], minutes=-0.5, trigger="lost")
    run = s.process(
        37, [v1, v2, p1, p2], video_errors={103: sp.FFMPEG_MISSING, 104: sp.FFMPEG_MISSING}, consolidate="escalate"
    )
    out = s.run(37)
    assert out.roles == JOB37_ROLES
    origin = out.finding("FM-12")
    assert v1.raw_key in origin["summary"] and v2.raw_key in origin["summary"]
    # one branch output and one consolidate line per try name both videos: each cited once
    assert [e["id"] for e in origin["evidence"] if e["kind"] == "history_event"] == list(
        run.execution.ids("TaskStateExited", "GenerateVideoThumbnails")
    )
    assert of_kind(out, "FM-12", "log_event") == logs(s, VIDEO_THUMBNAILS, "Video thumbnail generation failed") | logs(
        s, CONSOLIDATE, "Consolidation complete"
    )
    assert {e["id"]: e["excerpt"] for e in out.items("FM-12", "s3_object")} == {
        v1.derivative("thumbnail"): "missing",
        v2.derivative("thumbnail"): "missing",
        v1.mp4_key: "present",  # MediaConvert transcodes only the first video of a job
    }
    bulk = out.finding("FM-28")
    assert [e["id"] for e in bulk["evidence"] if e["source"] == "media_assets.status"] == [
        "103",
        "104",
        "105",
        "106",
        "107",
    ]
    assert "assets: 5" in bulk["summary"] and "not in this job: 1" in bulk["summary"]


# --- one scenario per covered failure mode ----------------------------------------------------------------

CASES: dict[str, Callable[[Scenario], None]] = {}


def one_photo(s: Scenario, **plan: Any) -> tuple[sp.Asset, sp.Run, Outcome]:
    """Listing 40 with one photo (asset 400), processed as job 41 under `plan`, then collected and diagnosed."""
    (photo,) = s.listing(40, (400, P, "IMG_20260112_101500.jpg"))
    run = s.process(41, [photo], **plan)
    return photo, run, s.run(41)


def one_video(s: Scenario, **plan: Any) -> tuple[sp.Asset, sp.Run, Outcome]:
    """The same with one video."""
    (video,) = s.listing(40, (400, V, "VID_20260112_101500.mp4"))
    run = s.process(41, [video], **plan)
    return video, run, s.run(41)


def failed_uncaught(s: Scenario, origin: tuple[str, str, str], **plan: Any) -> Outcome:
    """A video job whose execution fails on an uncatchable States.* error: no callback, the job stays
    PENDING, and the origin's evidence is the ExecutionFailed event."""
    _, run, out = one_video(s, **plan)
    assert out.data["status"] == "PENDING"
    assert out.roles == [origin, ("FM-29", "execution-failed-without-callback", "consequence")]
    assert out.refs(origin[0]) == history(run, "ExecutionFailed")
    return out


def callback_answered(s: Scenario, answer: str, origin: tuple[str, str, str], *server_lines: str) -> Outcome:
    """A photo job whose four callback tries all got `answer`: the execution fails after its retries.
    The origin's evidence: each failed try in the history and the callback log, and `server_lines`."""
    _, run, out = one_photo(s, answers=[answer] * 4)
    assert out.roles == [origin, ("FM-29", "execution-failed-without-callback", "consequence")]
    expected = history(run, "LambdaFunctionFailed", "FinalizeAndCallback") | logs(
        s, CALLBACK, f'"status_code":{answer}'
    )
    for line in server_lines:
        expected |= logs(s, SERVER, line)
    assert out.refs(origin[0]) == expected
    return out


def case(fn: Callable[[Scenario], None]) -> Callable[[Scenario], None]:
    CASES[fn.__name__] = fn
    return fn


@case
def fm05_jobid_as_string(s: Scenario) -> None:
    _, _, out = one_video(s, trigger="unparseable")
    assert out.data["status"] == "PENDING"
    assert out.roles == [("FM-05", "unparseable-body", "origin"), ("FM-29", "no-execution-found", "consequence")]
    assert out.refs("FM-05") == logs(s, VALIDATE, "Failed to unmarshal SQS body structure")
    assert "cannot unmarshal string into Go struct field" in out.finding("FM-05")["summary"]


@case
def fm05_assets_neither_struct_nor_string(s: Scenario) -> None:
    _, _, out = one_video(s, trigger="bad_assets")
    assert out.roles == [("FM-05", "unparseable-body", "origin"), ("FM-29", "no-execution-found", "consequence")]
    assert out.refs("FM-05") == logs(s, VALIDATE, "Failed to parse assets as struct or string")


@case
def fm06_start_execution_denied_then_dlq(s: Scenario) -> None:
    _, _, out = one_photo(s, trigger="start_failed", start_error=START_DENIED)
    assert out.roles == [("FM-06", "access-denied", "origin"), ("FM-29", "no-execution-found", "consequence")]
    peeked = s.servers.client("sqs").receive_message(
        QueueUrl=s.servers.client("sqs").get_queue_url(QueueName="listing-media-processing-dlq-staging")["QueueUrl"],
        VisibilityTimeout=0,
    )["Messages"]
    assert DlqMessage.objects.get().message_id == peeked[0]["MessageId"]
    failed = logs(s, VALIDATE, "Failed to start Step Function")
    assert len(failed) == 5  # five receives before the DLQ
    assert out.refs("FM-06") == failed | {("log_event", "sqs-dlq", peeked[0]["MessageId"])}


@case
def fm06_state_machine_missing(s: Scenario) -> None:
    _, _, out = one_photo(s, trigger="start_failed", start_error=START_MISSING)
    assert out.roles == [("FM-06", "state-machine-missing", "origin"), ("FM-29", "no-execution-found", "consequence")]


@case
def fm08_duplicate_executions(s: Scenario) -> None:
    _, run, out = one_photo(s, duplicate=True)
    assert out.data["status"] == "SUCCEEDED"
    assert out.roles == [("FM-08", "duplicate-executions", "contributing")]
    assert {(k, src) for k, src, _ in out.refs("FM-08")} == {("history_event", e.arn) for e in run.executions}
    assert Job.objects.get(toq_id=41).external_id == run.executions[0].arn  # TOQ keeps the first ARN


@case
def fm09_validate_timed_out(s: Scenario) -> None:
    _, run, out = one_photo(s, validate_failure=("Sandbox.Timedout", TIMED_OUT % "60.00"))
    assert out.data["status"] == "FAILED"
    assert out.roles == [("FM-09", "lambda-timeout", "origin"), ("FM-28", "bulk-failed-without-detail", "consequence")]
    assert of_kind(out, "FM-09", "history_event") == history(run, "LambdaFunctionFailed", "ValidateRawAssets")
    assert len(of_kind(out, "FM-09", "history_event")) == 3
    assert ("db_column", "media_processing_jobs.last_error", "41") in out.refs("FM-09")


@case
def fm10_raw_object_deleted(s: Scenario) -> None:
    p1, p2 = s.listing(40, (400, P, "IMG_20260112_101500.jpg"), (401, P, "IMG_20260112_101522.jpg"))
    del s.world.objects[p2.raw_key]  # gone between /process and validate
    head = sp.HEAD_404.format(rid="QX5J2VN9T8KZ1M3B", host="Zx1k8H2q9VbY7nR4tL0pW3sD6fG5hJ8kL2mN1bV4cX7zA9qS0wE3rT6y=")
    s.process(41, [p1, p2], head_errors={401: head})
    out = s.run(41)
    assert out.data["status"] == "SUCCEEDED"
    assert out.roles == [("FM-10", "raw-object-missing", "origin")]
    assert out.refs("FM-10") == {
        ("db_column", "media_processing_jobs.callback_body", "41"),
        ("db_column", "media_assets.metadata", "401"),
    } | logs(s, VALIDATE, "Asset validation failed")


@case
def fm11_heic_photo(s: Scenario) -> None:
    p1, heic = s.listing(40, (400, P, "IMG_20260112_101500.jpg"), (401, P, "IMG_20260112_101522.heic"))
    run = s.process(41, [p1, heic], image_errors={401: sp.IMAGE_UNKNOWN_FORMAT})
    out = s.run(41)
    assert out.data["status"] == "PARTIAL_SUCCESS"
    assert out.roles == [("FM-11", "image-undecodable", "origin")]
    assert of_kind(out, "FM-11", "history_event", "log_event") == (
        history(run, "TaskStateExited", "GenerateThumbnails")
        | logs(s, THUMBNAILS, "Failed to process asset")
        | logs(s, CONSOLIDATE, "Consolidation complete")
    )
    assert {e["id"] for e in out.items("FM-11", "s3_object")} == {heic.derivative(x) for x in sp.PHOTO_SIZES}


@case
def fm12_empty_thumbnail(s: Scenario) -> None:
    """The silent variant: ffmpeg exits 0 without a frame; only S3 knows (a 0-byte thumbnail)."""
    video, _, out = one_video(s, empty_thumbnails={400})
    assert out.data["status"] == "SUCCEEDED"
    assert out.roles == [("FM-12", "empty-thumbnail", "origin")]
    assert out.refs("FM-12") == {("s3_object", sp.BUCKET, video.derivative("thumbnail"))}
    assert out.items("FM-12", "s3_object")[0]["excerpt"] == "zero_bytes"
    assert "VIDEO_THUMBNAIL_FAILED" not in out.finding("FM-12")["summary"]  # nothing reported it


@case
def fm13_video_branch_timed_out(s: Scenario) -> None:
    _, run, out = one_video(s, branch_failure=("GenerateVideoThumbnails", "Sandbox.Timedout", TIMED_OUT % "300.00"))
    assert out.roles == [("FM-13", "lambda-timeout", "origin"), ("FM-28", "bulk-failed-without-detail", "consequence")]
    assert out.refs("FM-13") == history(run, "LambdaFunctionFailed", "GenerateVideoThumbnails")
    assert out.finding("FM-13")["failing_state"] == "GenerateVideoThumbnails"


@case
def fm14_consolidate_timed_out(s: Scenario) -> None:
    _, run, out = one_photo(s, consolidate="fail", consolidate_failure=("Sandbox.Timedout", TIMED_OUT % "3.00"))
    assert out.roles == [("FM-14", "lambda-timeout", "origin"), ("FM-28", "bulk-failed-without-detail", "consequence")]
    assert out.refs("FM-14") == history(run, "LambdaFunctionFailed", "ConsolidateResults")


@case
def fm14_state_output_over_256kb(s: Scenario) -> None:
    failed_uncaught(s, ("FM-14", "data-limit-exceeded", "origin"), data_limit=True)


@case
def fm15_mediaconvert_pass_role_denied(s: Scenario) -> None:
    _, run, out = one_video(s, mediaconvert_failure=("MediaConvert.ForbiddenException", PASS_ROLE))
    assert out.roles == [("FM-15", "forbidden", "origin"), ("FM-28", "bulk-failed-without-detail", "consequence")]
    assert out.refs("FM-15") == history(run, "TaskFailed", "ProcessVideos")
    assert len(out.refs("FM-15")) == 2  # retried once


@case
def fm16_no_video_input(s: Scenario) -> None:
    out = failed_uncaught(s, ("FM-16", "jsonpath-unresolved", "origin"), no_video_paths=True)
    assert "$.validation.videoInput" in out.finding("FM-16")["summary"]


@case
def fm17_transcode_failed(s: Scenario) -> None:
    message = "Video codec [hevc] with profile [main10] is not supported in the input. Input: {input}"
    _, run, out = one_video(s, mediaconvert_error=(1030, message))
    assert out.data["status"] == "SUCCEEDED"
    assert out.roles == [("FM-17", "transcode-error", "origin")]
    assert out.refs("FM-17") == {("mediaconvert_field", run.mediaconvert_id, "Status")}


@case
def fm18_fm19_generated_asset_without_source(s: Scenario) -> None:
    """An old key with a date folder; the image Lambda names the source without it, consolidate drops
    the four derivatives (FM-18) and TOQ fails the photo with MISSING_PROCESSED_KEY (FM-19)."""
    (photo,) = s.listing(40, (400, P, "IMG_20260112_101500.jpg"))
    del s.world.objects[photo.raw_key]
    photo.date_folder = "2026-01-12"
    s.world.objects[photo.raw_key] = (photo.size, "image/jpeg")
    s.process(41, [photo], orphan_sources={400})
    out = s.run(41)
    assert out.roles == [
        ("FM-19", "no-derivative-reported", "origin"),
        ("FM-18", "orphan-derivative", "contributing"),
    ]
    assert out.refs("FM-19") == {("db_column", "media_assets.metadata", "400")}
    assert out.refs("FM-18") == logs(s, CONSOLIDATE, "Generated asset without matching source")
    assert len(out.refs("FM-18")) == 4


@case
def fm20_proxy_answers_502(s: Scenario) -> None:
    out = callback_answered(s, "502", ("FM-20", "callback-http-error", "origin"))
    assert len(out.refs("FM-20")) == 8  # four tries (Retry 3), each in the history and the log


@case
def fm21_signature_rejected(s: Scenario) -> None:
    # TOQ's signature_mismatch line names no job: linked to the 403 of each try by time
    out = callback_answered(
        s, "403", ("FM-21", "signature-rejected", "origin"), "adapter.stepfunctions.callback.signature_mismatch"
    )
    assert len(of_kind(out, "FM-21", "log_event") & logs(s, SERVER, "signature_mismatch")) == 4
    linked = LogEvent.objects.filter(msg__endswith="signature_mismatch").values_list("job_toq_id", "attributed_via")
    assert set(linked) == {(41, "callback_time")}


@case
def fm23_fm37_job_deleted_before_its_callback(s: Scenario) -> None:
    (photo,) = s.listing(40, (400, P, "IMG_20260112_101500.jpg"))
    run = s.process(41, [photo], answers=["404"] * 4)
    s.world.jobs[41]["status"] = "PENDING"  # as mirrored before the row went away
    s.write_rows()
    s.toq_db.execute("DELETE FROM media_processing_jobs WHERE id = 41")
    out = s.run(41)
    assert out.roles == [("FM-23", "job-not-found", "origin"), ("FM-37", "row-deleted", "consequence")]
    assert out.refs("FM-23") == (
        logs(s, SERVER, "service.media.callback.job_not_found")
        | logs(s, CALLBACK, '"status_code":404')
        | history(run, "LambdaFunctionFailed", "FinalizeAndCallback")
    )


@case
def fm24_database_error_answers_500(s: Scenario) -> None:
    # one origin: the 500s TOQ answered are explained by its own database error
    callback_answered(s, "500", ("FM-24", "db-error", "origin"), "service.media.callback.update_job_error")


@case
def fm26_listing_mismatch(s: Scenario) -> None:
    _, _, out = one_photo(s, quirks={"listing_mismatch"})
    assert out.roles == [("FM-26", "listing-mismatch", "contributing")]
    assert out.refs("FM-26") == logs(s, SERVER, "service.media.callback.listing_mismatch")


@case
def fm27_asset_not_found(s: Scenario) -> None:
    _, _, out = one_photo(s, quirks={"asset_lookup_error"})
    assert out.roles == [("FM-27", "asset-not-found", "contributing")]
    assert out.refs("FM-27") == logs(s, SERVER, "service.media.callback.asset_lookup_error")


@case
def fm29_message_never_consumed(s: Scenario) -> None:
    _, _, out = one_photo(s, trigger="lost")
    assert out.roles == [("FM-29", "no-execution-found", "origin")]
    assert out.finding("FM-29")["confidence"] <= 0.6
    assert out.refs("FM-29") == {("db_column", "media_processing_jobs.status", "41")}
    assert "1 jobs with missing evidence" in s.collect_output


@case
def fm32_fm25_fm30_zip_download_failed(s: Scenario) -> None:
    (photo,) = s.listing(40, (400, P, "IMG_20260112_101500.jpg"))
    s.process(40, [photo])
    error = (
        f"failed to download {photo.raw_key}: failed to download from s3: operation error S3: GetObject, https "
        "response error StatusCode: 404, RequestID: 7Q1B9XK2M4N6P8R0, HostID: kz+1Vb3x9QeR0tYw==, NoSuchKey: "
    )
    run = s.finalize(41, 40, minutes=5, zip_error=error)
    out = s.run(41)
    assert out.roles == [
        ("FM-32", "raw-download-failed", "origin"),
        ("FM-25", "finalization-failed-unmapped", "contributing"),
        ("FM-30", "reconciled-without-callback", "consequence"),
    ]
    assert out.refs("FM-32") == (
        history(run, "LambdaFunctionFailed", "CreateZipBundle")
        | logs(s, ZIP, "lambda.zip.create_zip_error")
        | {("db_column", "media_processing_jobs.callback_body", "41")}
    )
    assert out.refs("FM-30") == {
        ("db_column", "media_processing_jobs.last_error", "41"),
        ("db_column", "media_processing_jobs.callback_body", "41"),
    }


@case
def fm33_empty_zip(s: Scenario) -> None:
    s.listing(40, (400, P, "IMG_20260112_101500.jpg"))
    s.finalize(41, 40, minutes=5, no_assets=True)
    out = s.run(41)
    assert out.data["status"] == "SUCCEEDED"
    assert out.roles == [("FM-33", "no-assets-zipped", "origin")]
    assert out.refs("FM-33") == logs(s, ZIP, "lambda.zip.no_assets") | {
        ("db_column", "media_processing_jobs.payload", "41")
    }


@case
def fm34_fm30_traceparent_missing(s: Scenario) -> None:
    (photo,) = s.listing(40, (400, P, "IMG_20260112_101500.jpg"))
    s.process(40, [photo])
    run = s.finalize(41, 40, minutes=5, traceparent=False)
    out = s.run(41)
    assert out.roles == [
        ("FM-34", "traceparent-missing", "origin"),
        ("FM-30", "reconciled-without-callback", "consequence"),
    ]
    assert out.refs("FM-34") == history(run, "ExecutionFailed")


@case
def fm37_row_deleted(s: Scenario) -> None:
    (photo,) = s.listing(40, (400, P, "IMG_20260112_101500.jpg"))
    s.process(41, [photo])
    s.write_rows()
    s.toq_db.execute("DELETE FROM media_processing_jobs WHERE id = 41")
    out = s.run(41)
    assert out.roles == [("FM-37", "row-deleted", "consequence")]
    assert out.refs("FM-37") == {("db_column", "media_processing_jobs.id", "41")}


@case
def fm38_job_id_reused(s: Scenario) -> None:
    """TOQ's database recreated 40 minutes later: id 41 names another job; the first job's execution
    (jobId 41 too, still listed by ListExecutions) stays with the first generation."""
    (photo,) = s.listing(40, (400, P, "IMG_20260112_101500.jpg"))
    first = s.process(41, [photo])
    s.write_rows()
    s.toq_db.reset(with_created_at=True)
    for rows in (s.world.users, s.world.listings, s.world.assets, s.world.jobs):
        rows.clear()
    s.rows_written = False
    (other,) = s.listing(7, (70, P, "IMG_20260112_111500.jpg"))
    second = s.process(41, [other], minutes=40)
    out = s.run(41)
    assert (out.data["generation"], out.data["status"]) == (2, "SUCCEEDED")
    assert out.roles == [("FM-38", "job-id-reused", "consequence")]
    assert out.refs("FM-38") == {("db_column", "media_processing_jobs.id", "41")}
    # collected for generation 2: its own execution only, not the one of the job id's first life
    assert list(Execution.objects.filter(job__generation=2).values_list("arn", flat=True)) == [second.arn]
    assert not Execution.objects.filter(arn=first.arn, job__generation=2).exists()


@case
def healthy_job_has_no_finding(s: Scenario) -> None:
    photo, video = s.listing(40, (400, P, "IMG_20260112_101500.jpg"), (401, V, "VID_20260112_101530.mp4"))
    s.process(41, [photo, video])
    out = s.run(41)
    assert out.data["status"] == "SUCCEEDED" and out.roles == []
    assert "0 jobs with missing evidence" in s.collect_output
    assert LogEvent.objects.filter(job__toq_id=41).count() > 30


@pytest.mark.parametrize("name", list(CASES))
def test_failure_mode_scenario(scenario, name):
    CASES[name](scenario)


def test_every_covered_failure_mode_has_a_scenario():
    """docs/diagnosis.md's table of covered modes ↔ the modes these scenarios end on."""
    text = (Path(settings.BASE_DIR) / "docs" / "diagnosis.md").read_text()
    covered_section = text.split("## Failure modes covered", 1)[1].split("## Not covered", 1)[0]
    covered = set(re.findall(r"^\| (FM-\d\d) \|", covered_section, re.M))
    here = Path(__file__).read_text()
    asserted = set(re.findall(r'\("(FM-\d\d)", "[a-z0-9-]+", "(?:origin|contributing|consequence)"\)', here))
    assert covered and covered == asserted
