"""Property tests: the engine never crashes, and keeps its invariants, on arbitrary, partial or
contradictory evidence. No database: the engine is pure."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnosis import catalog, classify
from diagnosis.engine import diagnose, normalise_message
from diagnosis.evidence import (
    AssetFacts,
    DerivativeFact,
    Evidence,
    ExecutionFacts,
    HistoryFact,
    JobFacts,
    LambdaConfigFact,
    LogFact,
    MediaConvertFact,
    history_facts,
)
from diagnosis.rules import RULES, rule_stuck

# Vocabulary the rules look for, mixed with noise, so the strategies reach the interesting branches.
WORDS = [
    "FAILED",
    "PENDING",
    "SUCCEEDED",
    "PARTIAL_SUCCESS",
    "RUNNING",
    "PROCESSING_FAILED",
    "VALIDATION_FAILED",
    "FINALIZATION_FAILED",
    "DERIVATIVE_ERRORS_DETECTED",
    "errorString",
    "ERRORSTRING",
    "States.Runtime",
    "Sandbox.Timedout",
    "MediaConvert.BadRequestException",
    "VIDEO_THUMBNAIL_FAILED",
    "THUMBNAIL_PROCESSING_FAILED",
    "VALIDATION_ERROR",
    "MISSING_PROCESSED_KEY",
    "GenerateThumbnails",
    "GenerateVideoThumbnails",
    "ConsolidateResults",
    "ParallelProcessing",
    "ReportFailure",
    "CreateZipBundle",
    "reconciler marked failed after 30m0s without callback",
    "ffmpeg failed: fork/exec /opt/ffmpeg/ffmpeg: no such file or directory",
    "permission denied",
    "{",
    "}",
    "[]",
    "Video thumbnail generation failed",
    "Failed to process asset",
    "Consolidation complete",
    "Callback response received",
    "Failed to start Step Function",
    "service.media.callback.job_not_found",
    "processing",
    "finalization",
    "",
]
text = st.one_of(st.sampled_from(WORDS), st.text(max_size=40))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 500), text)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)),
    max_leaves=12,
)
json_dict = st.dictionaries(text, json_value, max_size=5)
json_text = st.one_of(text, json_value.map(lambda v: json.dumps(v)))
dates = st.one_of(
    st.none(),
    st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC)),
)
small_int = st.integers(min_value=0, max_value=200)

jobs = st.builds(
    JobFacts,
    toq_id=small_int,
    generation=st.integers(1, 3),
    kind=text,
    status=text,
    provider=text,
    listing_identity_id=small_int,
    external_id=text,
    started_at=dates,
    completed_at=dates,
    created_at=dates,
    first_seen_at=dates,
    disappeared_at=dates,
    superseded=st.booleans(),
    last_error=text,
    callback_body=json_text,
    payload=json_value,
    callback_parse_error=text,
    callback_status=text,
    callback_error_code=text,
    callback_error_message=json_text,
    callback_error_type=text,
    callback_failure_reason=text,
    callback_outputs_empty=st.one_of(st.none(), st.booleans()),
    callback_results=st.lists(json_dict, max_size=3),
    observation_count=small_int,
)
# Well-shaped branch outputs whose contents are arbitrary (errors[] of any type, missing keys, …).
branch_output = st.builds(
    lambda errors, generated: json.dumps(
        {"body": {"status": "SUCCESS", "errors": errors, "generatedAssets": generated}}
    ),
    st.one_of(json_value, st.lists(json_dict, max_size=3)),
    json_value,
)
history = st.one_of(
    st.builds(HistoryFact, event_id=small_int, type=text, state=text, error=text, cause=json_text, output=json_text),
    st.builds(
        HistoryFact,
        event_id=small_int,
        type=st.just("TaskStateExited"),
        state=st.sampled_from(["GenerateThumbnails", "GenerateVideoThumbnails"]),
        output=branch_output,
    ),
    st.builds(
        HistoryFact,
        event_id=small_int,
        type=st.sampled_from(["LambdaFunctionFailed", "TaskFailed", "ExecutionFailed"]),
        state=st.sampled_from(
            ["ConsolidateResults", "ValidateRawAssets", "ProcessVideos", "CreateZipBundle", "FinalizeAndCallback"]
        ),
        error=text,
        cause=json_text,
    ),
)
executions = st.builds(
    ExecutionFacts,
    arn=text,
    kind=text,
    status=text,
    start_date=dates,
    stop_date=dates,
    error=text,
    cause=json_text,
    input=json_text,
    is_duplicate=st.booleans(),
    history_complete=st.booleans(),
    events=st.lists(history, max_size=5),
    catches=st.lists(json_dict, max_size=2),
    mediaconvert_job_ids=st.lists(text, max_size=2),
)
assets = st.builds(
    AssetFacts,
    toq_id=small_int,
    asset_type=text,
    status=text,
    s3_key_raw=text,
    s3_key_processed=text,
    metadata=json_dict,
    in_job=st.booleans(),
)
log_msgs = st.sampled_from(
    [
        "Video thumbnail generation failed",
        "Failed to process asset",
        "Consolidation complete",
        "Callback response received",
        "Failed to start Step Function",
        "Asset validation failed",
        "service.media.callback.job_not_found",
        "lambda.zip.no_assets",
    ]
)
log_fields = st.one_of(
    json_dict,
    st.fixed_dictionaries(
        {"payload_preview": json_text, "status_code": json_value, "key": json_value, "error": json_value}
    ),
)
logs = st.builds(
    LogFact,
    event_id=text,
    log_group=text,
    level=text,
    msg=st.one_of(text, log_msgs),
    message=text,
    timestamp=dates,
    fields=log_fields,
    s3_key=text,
)
evidence = st.builds(
    Evidence,
    job=jobs,
    now=st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC)),
    assets=st.lists(assets, max_size=3),
    executions=st.lists(executions, max_size=2),
    logs=st.lists(logs, max_size=4),
    derivatives=st.lists(st.builds(DerivativeFact, raw_key=text, key=text, kind=text, outcome=text), max_size=3),
    s3_listed=st.booleans(),
    mediaconvert=st.lists(
        st.builds(
            MediaConvertFact,
            job_id=text,
            status=text,
            error_code=st.one_of(st.none(), small_int),
            error_message=text,
            output_paths=st.lists(text, max_size=2),
        ),
        max_size=2,
    ),
    lambda_configs=st.lists(
        st.builds(
            LambdaConfigFact,
            function_name=text,
            runtime=text,
            last_modified=dates,
            last_modified_raw=text,
            layers=st.lists(text, max_size=2),
            environment=st.dictionaries(text, text, max_size=2),
            role=text,
        ),
        max_size=2,
    ),
    dlq_message_ids=st.lists(text, max_size=2),
    collector_missing=st.lists(json_dict, max_size=2),
)

ROLES = ["origin", "contributing", "consequence"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ev=evidence, threshold=st.integers(0, 10_000))
def test_engine_never_crashes_and_keeps_its_invariants(ev, threshold):
    # every rule directly: the engine would log and skip a rule that raises, hiding the bug
    for rule in RULES:
        rule(ev)
    rule_stuck(ev, stuck_after_minutes=threshold)
    findings = diagnose(ev, stuck_after_minutes=threshold)
    assert [ROLES.index(f.role) for f in findings] == sorted(ROLES.index(f.role) for f in findings)
    for f in findings:
        assert f.failure_mode in catalog.FM_TEXT
        assert 0.0 <= f.confidence <= 1.0
        assert f.title_en and f.title_pt_br and f.summary_en and f.summary_pt_br
        assert len(f.signature) == 32
        assert all(
            e["kind"] in {"history_event", "log_event", "db_column", "s3_object", "mediaconvert_field", "lambda_config"}
            for e in f.evidence
        )
    assert len({(f.failure_mode, f.cause) for f in findings}) == len(findings)
    ev.fingerprint()  # always serialisable


@given(st.lists(st.tuples(small_int, text, st.one_of(st.none(), small_int), json_dict), max_size=30))
def test_history_facts_never_loop_or_crash(rows):
    facts = history_facts(rows)
    assert all(isinstance(f, HistoryFact) for f in facts)


@given(text, st.booleans())
def test_classifiers_are_total(message, flag):
    for value in (
        classify.video_thumbnail_cause(message),
        classify.image_thumbnail_cause(message, is_video=flag),
        classify.lambda_failure_cause(message, message),
        classify.validation_error_cause(message),
        classify.mediaconvert_cause(message),
        classify.zip_failure_cause(message),
        classify.start_execution_cause(message),
    ):
        assert value and value == value.lower()
    assert len(normalise_message(message)) <= 500


def test_classifier_examples():
    assert (
        classify.video_thumbnail_cause(
            "ffmpeg failed: fork/exec /opt/ffmpeg/ffmpeg: no such file or directory | output: "
        )
        == "ffmpeg-missing"
    )
    assert (
        classify.video_thumbnail_cause("ffmpeg failed: fork/exec /opt/bin/ffmpeg: permission denied | output: ")
        == "ffmpeg-permission-denied"
    )
    assert (
        classify.video_thumbnail_cause("ffmpeg failed: fork/exec /opt/bin/ffmpeg: exec format error | output: ")
        == "ffmpeg-exec-format"
    )
    assert (
        classify.video_thumbnail_cause("ffmpeg failed: exit status 1 | output: moov atom not found")
        == "ffmpeg-decode-failed"
    )
    assert (
        classify.video_thumbnail_cause("failed to write temp input file: write /tmp/in.mp4: no space left on device")
        == "no-space-left"
    )
    assert (
        classify.video_thumbnail_cause("failed to download video: failed to download from s3: AccessDenied")
        == "s3-download-failed"
    )
    assert classify.video_thumbnail_cause("failed to upload to s3: operation error S3: PutObject") == "s3-upload-failed"
    assert classify.video_thumbnail_cause("invalid key format: must contain 'raw/' segment") == "invalid-key"
    assert classify.image_thumbnail_cause("failed to decode image: image: unknown format") == "image-undecodable"
    assert (
        classify.image_thumbnail_cause("failed to decode image: image: unknown format", is_video=True)
        == "video-sent-to-image-branch"
    )
    assert (
        classify.lambda_failure_cause("Lambda.Unknown", "Runtime exited with error: signal: killed") == "out-of-memory"
    )


def test_signature_strips_ids_numbers_keys_and_hashes():
    a = normalise_message(
        "failed to download 16/raw/video/vertical/a.mp4 for job 37 arn:aws:states:us-east-1:1:execution:x:258c102b-4bc5-4a36-9b51-f432df114aa4 etag 3b68229605f7f0432cd34c1bf37e2e8a"
    )
    b = normalise_message(
        "failed to download 99/raw/photo/horizontal/b.jpg for job 4 arn:aws:states:us-east-1:1:execution:x:0f43c3d7-b8c6-4a0e-a0a2-6cd8523d2355 etag f6b8e60708d886c0adf8a383b42474fe"
    )
    assert a == b == "failed to download <key> for job <n> <arn> etag <hash>"
