from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from awslogs import parsers
from tests.awslogs.conftest import load_fixture
from tests.awslogs.factories import big_history

JOB37 = "258c102b-4bc5-4a36-9b51-f432df114aa4"


def _timeline(name: str = JOB37) -> parsers.Timeline:
    history = load_fixture(f"stepfunctions/{name}.get-execution-history.json")
    return parsers.parse_history(parsers.parse_history_events(history["events"]))


def test_job37_consolidate_failed_three_times_with_backoff():
    timeline = _timeline()
    consolidate = next(s for s in timeline.states if s.name == "ConsolidateResults")
    assert [a.outcome for a in consolidate.attempts] == ["failed", "failed", "failed"]
    assert {a.error for a in consolidate.attempts} == {"errorString"}
    assert "DERIVATIVE_ERRORS_DETECTED" in consolidate.attempts[0].cause
    first, second, third = (a.backoff_seconds for a in consolidate.attempts)
    assert first is None and second is not None and third is not None
    assert 4.5 < second < 6 and 9.5 < third < 11  # interval 5 s, backoff 2.0
    assert consolidate.status == "failed"


def test_job37_branches_named_by_their_states_and_video_error():
    timeline = _timeline()
    branches = {b.branch: b for b in timeline.branches}
    assert set(branches) == {
        "ParallelProcessing/GenerateThumbnails",
        "ParallelProcessing/CheckVideoThumbnails",
        "ParallelProcessing/CheckVideoProcessing",
    }
    video = branches["ParallelProcessing/CheckVideoThumbnails"]
    assert video.last_state == "GenerateVideoThumbnails"
    assert video.errors[0]["errorCode"] == "VIDEO_THUMBNAIL_FAILED"
    assert "/opt/ffmpeg/ffmpeg" in video.errors[0]["errorMessage"]
    assert branches["ParallelProcessing/GenerateThumbnails"].errors == []
    assert timeline.mediaconvert_job_ids == ["1767628487824-jisa49"]
    states = {s.name: s for s in timeline.states}
    assert states["ProcessVideos"].branch == "ParallelProcessing/CheckVideoProcessing"
    assert states["ConsolidateResults"].branch == ""


def test_job37_catch_and_final_error():
    timeline = _timeline()
    assert timeline.catches == [
        {
            "from_state": "ConsolidateResults",
            "to_state": "ReportFailure",
            "event_id": 41,
            "error": "errorString",
            "cause": '{"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"}',
        }
    ]
    assert (timeline.final_status, timeline.final_error) == ("FAILED", "MediaProcessingFailed")
    assert timeline.final_cause == "Failed during media processing workflow"
    assert timeline.unknown_events == []


def test_healthy_execution_generated_assets():
    timeline = _timeline("1cf51314-3848-418c-bae6-6a993cb785b2")
    assert timeline.final_status == "SUCCEEDED"
    photos = next(b for b in timeline.branches if b.branch.endswith("/GenerateThumbnails"))
    assert photos.generated_assets and all("/processed/photo/" in g["key"] for g in photos.generated_assets)
    assert all(s.status == "succeeded" for s in timeline.states)


def test_old_two_branch_definition_identified_by_names():
    history = load_fixture(f"stepfunctions/{JOB37}.get-execution-history.json")["events"]
    # Drop the video-thumbnail branch (events 11, 12, 14, 17, 20, 26, 27): the pre-2026-01-05 shape.
    dropped = {11, 12, 14, 17, 20, 26, 27}
    events = [e for e in history if e["id"] not in dropped]
    for e in events:
        if e["previousEventId"] == 27:
            e["previousEventId"] = 25
    timeline = parsers.parse_history(parsers.parse_history_events(events))
    assert {b.branch for b in timeline.branches} == {
        "ParallelProcessing/GenerateThumbnails",
        "ParallelProcessing/CheckVideoProcessing",
    }
    assert next(s for s in timeline.states if s.name == "ConsolidateResults").branch == ""


def test_unknown_event_types_are_kept_raw():
    events = big_history(dt.datetime(2026, 1, 5, tzinfo=dt.UTC), 20)
    timeline = parsers.parse_history(parsers.parse_history_events(events))
    assert timeline.unknown_events and timeline.unknown_events[0]["type"] == "FutureEventType"
    assert timeline.event_count == 20


def test_lambda_platform_lines():
    report = parsers.parse_log_message(
        "REPORT RequestId: 3715aacb-6c7c-43db-a638-d92c1f0e4d39\tDuration: 66.83 ms\tBilled Duration: 196 ms\t"
        "Memory Size: 512 MB\tMax Memory Used: 35 MB\tInit Duration: 128.96 ms\t\n"
        "XRAY TraceId: 1-695bdea4-2fb91c957aa4ca1e15a1f9cf\tSegmentId: 2e97e21f2cdf4f34\tSampled: true\t\n"
    )
    assert report.kind == "report" and report.request_id == "3715aacb-6c7c-43db-a638-d92c1f0e4d39"
    assert report.fields == {
        "duration_ms": 66.83,
        "billed_duration_ms": 196.0,
        "memory_size_mb": 512.0,
        "max_memory_used_mb": 35.0,
        "init_duration_ms": 128.96,
        "xray_trace_id": "1-695bdea4-2fb91c957aa4ca1e15a1f9cf",
    }
    timeout = parsers.parse_log_message(
        "2026-01-05T15:54:51.123Z 83f52816-2383-4b93-939d-8d03a8ea257d Task timed out after 3.00 seconds\n"
    )
    assert timeout.kind == "timeout" and timeout.fields["timeout_seconds"] == 3.0
    assert timeout.request_id == "83f52816-2383-4b93-939d-8d03a8ea257d"
    exited = parsers.parse_log_message(
        "RequestId: 83f52816-2383-4b93-939d-8d03a8ea257d Error: Runtime exited with error: signal: killed\n"
        "Runtime.ExitError\n"
    )
    assert exited.kind == "runtime_exit" and "signal: killed" in exited.fields["detail"]
    assert (
        parsers.parse_log_message("START RequestId: 4cd8e257-32b5-4d87-b1d8-3ffea744fe39 Version: $LATEST\n").kind
        == "start"
    )


def test_go_slog_line_keys():
    line = parsers.parse_log_message(
        json.dumps(
            {
                "time": "2026-01-05T15:54:47.5Z",
                "level": "INFO",
                "msg": "Started Step Function execution",
                "job_id": 37,
                "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:sm:abc",
            }
        )
    )
    assert (line.kind, line.level, line.msg, line.job_toq_id) == (
        "json",
        "INFO",
        "Started Step Function execution",
        37,
    )
    assert line.execution_arn.endswith(":abc")


def test_lines_attributed_to_invocation_by_stream():
    data = load_fixture("logs/listing-media-video_thumbnails-staging.filter-log-events.json")
    records = parsers.parse_log_events("/aws/lambda/listing-media-video_thumbnails-staging", data["events"])
    by_kind = {r.line.kind: r for r in records}
    assert by_kind["report"].line.job_toq_id == 37  # job_id comes from the invocation's first line
    assert by_kind["report"].line.fields["init_duration_ms"] == 145.51
    error = next(r for r in records if r.line.level == "ERROR")
    assert error.line.request_id == "4cd8e257-32b5-4d87-b1d8-3ffea744fe39"
    assert error.line.s3_key == "16/raw/video/vertical/vertical-01-VID_20260105_124137.mp4"


def test_safe_text_bounds_and_invalid_utf8():
    text, truncated = parsers.safe_text("é" * 200_000)
    assert truncated and len(text.encode()) <= parsers.MAX_LINE_BYTES
    text, truncated = parsers.safe_text(b"ok \xff\xfe bad")
    assert (text, truncated) == ("ok \\xff\\xfe bad", False)
    # a JSON-decoded lone surrogate and a NUL stay visible and storable
    text, _ = parsers.safe_text("a\udcffb\x00c")
    assert text == "a\\xffb\\x00c"


@given(st.text())
def test_parse_log_message_never_raises(message):
    line = parsers.parse_log_message(message)
    assert line.kind


@given(st.binary(max_size=3000), st.integers(min_value=4, max_value=2048))
def test_safe_text_always_storable(data, limit):
    text, _ = parsers.safe_text(data, limit)
    encoded = text.encode("utf-8")
    assert "\x00" not in text
    assert len(encoded) <= limit * 4 + 8  # escapes may expand a cut, never unbounded


def test_timestamps_in_every_aws_format():
    expected = dt.datetime(2026, 1, 5, 15, 53, 51, 482000, tzinfo=dt.UTC)
    assert parsers.parse_timestamp("2026-01-05T15:53:51.482+0000") == expected
    assert parsers.parse_timestamp("2026-01-05T15:53:51.482000+00:00") == expected
    assert parsers.parse_timestamp(1767628431482) == expected
    assert parsers.parse_timestamp("2026-01-05T15:53:51.482000123Z") == expected
    assert parsers.parse_timestamp("garbage") is None


def test_lambda_configuration_never_keeps_secrets():
    data = load_fixture("lambda/listing-media-video_thumbnails-staging.get-function-configuration.json")
    data["Environment"] = {
        "Variables": {"CALLBACK_SECRET": "s3cr3t-value", "FFMPEG_PATH": "/opt/bin/ffmpeg", "X": "A" * 40}
    }
    record = parsers.parse_lambda_configuration(data)
    assert record.environment == {"CALLBACK_SECRET": "<redacted>", "FFMPEG_PATH": "/opt/bin/ffmpeg", "X": "<redacted>"}
    assert "s3cr3t-value" not in json.dumps(record.config) + json.dumps(record.environment)
    assert record.layers == [] and record.runtime == "provided.al2"


def test_expected_derivatives():
    photo = parsers.expected_derivatives(
        "28/raw/photo/horizontal/2026-01-05/h-01-x.png", "PHOTO_HORIZONTAL", first_video=False
    )
    assert [d.key for d in photo] == [f"28/processed/photo/horizontal/{s}/h-01-x.png" for s in parsers.PHOTO_SIZES]
    video = parsers.expected_derivatives("16/raw/video/vertical/v-01-c.mp4", "VIDEO_VERTICAL", first_video=True)
    assert [d.key for d in video] == [
        "16/processed/video/vertical/thumbnail/v-01-c.mp4",
        "16/processed/video/vertical/original/v-01-c.mp4",
    ]


_EVENT_TYPES = st.sampled_from(
    [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskStateExited",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionFailed",
        "LambdaFunctionSucceeded",
        "ParallelStateEntered",
        "ParallelStateStarted",
        "ParallelStateSucceeded",
        "ParallelStateFailed",
        "ParallelStateExited",
        "ChoiceStateEntered",
        "TaskSucceeded",
        "ExecutionFailed",
        "SomethingNew",
    ]
)


@given(
    st.lists(
        st.tuples(
            _EVENT_TYPES,
            st.integers(min_value=-2, max_value=40),
            st.one_of(st.none(), st.text(max_size=20), st.just('{"Job": {"Id": "x"}}')),
        ),
        max_size=40,
    )
)
def test_any_history_parses_without_crashing(spec):
    """Histories can be truncated, reordered or of a newer format: never fatal."""
    events = []
    for i, (event_type, previous, text) in enumerate(spec, start=1):
        detail = {"name": text or "S", "output": text, "input": text, "error": text, "cause": text}
        events.append(
            {
                "id": i,
                "previousEventId": previous,
                "type": event_type,
                "timestamp": "2026-01-05T15:54:47.370000+00:00" if i % 3 else "junk",
                "someEventDetails": detail,
            }
        )
    timeline = parsers.parse_history(parsers.parse_history_events(events))
    assert timeline.event_count == len(events)
    assert all(u["type"] == "SomethingNew" for u in timeline.unknown_events)
