from __future__ import annotations

import datetime as dt
import json
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from awslogs.models import (
    DerivativeCheck,
    DlqMessage,
    EvidenceStatus,
    Execution,
    HistoryEvent,
    JobRawKey,
    LambdaConfigSnapshot,
    LogCursor,
    LogEvent,
    LogGroupStatus,
    MediaConvertJob,
    QueueSnapshot,
    S3Object,
    StateVisit,
)
from awslogs.services.collect import evidence_pass, job_evidence_collect
from tests.awslogs.conftest import PROCESSING_SM, FakeAws, load_fixture
from tests.awslogs.factories import big_history, execution_arn, make_job, running_history

JOB37_NAME = "258c102b-4bc5-4a36-9b51-f432df114aa4"
JOB37_ARN = execution_arn(JOB37_NAME)
ROLE = "arn:aws:iam::123456789012:role/toq-media-processing-stepfunctions-staging"
MINIMAL_DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
EVIDENCE_MODELS = (
    Execution,
    HistoryEvent,
    StateVisit,
    LogEvent,
    LogCursor,
    LogGroupStatus,
    S3Object,
    DerivativeCheck,
    MediaConvertJob,
    EvidenceStatus,
    JobRawKey,
)


def _snapshot() -> dict[str, Any]:
    """Every evidence row, entirely: a re-collection must leave this identical."""
    return {m.__name__: sorted(map(repr, m.objects.values())) for m in EVIDENCE_MODELS}


def _create_machine(sfn: Any) -> str:
    return sfn.create_state_machine(name=PROCESSING_SM, definition=MINIMAL_DEFINITION, roleArn=ROLE)["stateMachineArn"]


def _rebased_log_events(
    relative: str, base: dt.datetime, without: tuple[str, ...] = ()
) -> tuple[list[dict[str, Any]], dict[str, list[dict]]]:
    """Sample events moved to `base` (moto, like CloudWatch, refuses events older than 14 days);
    lines containing any of `without` left out."""
    events = [e for e in load_fixture(relative)["events"] if not any(w in e["message"] for w in without)]
    first = events[0]["timestamp"]
    offset = int(base.timestamp() * 1000) - first
    by_stream: dict[str, list[dict]] = {}
    for e in events:
        by_stream.setdefault(e["logStreamName"], []).append(
            {"timestamp": e["timestamp"] + offset, "message": e["message"]}
        )
    return events, by_stream


def _put_logs(logs: Any, group: str, by_stream: dict[str, list[dict]]) -> None:
    logs.create_log_group(logGroupName=group)
    for stream, events in by_stream.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def _setup_job37(
    aws: FakeAws, clients: dict[str, Any], *, with_mediaconvert: bool = True, without: tuple[str, ...] = ()
) -> None:
    """The job-37 incident in moto + the fake endpoint: execution found through ListExecutions."""
    sfn, logs, s3 = clients["stepfunctions"], clients["logs"], clients["s3"]
    sm_arn = _create_machine(sfn)
    describe = load_fixture(f"stepfunctions/{JOB37_NAME}.describe-execution.json")
    # noise: two other executions in the window (jobs 36 and 38 have no mirrored row → orphans)
    for name in ("1cf51314-3848-418c-bae6-6a993cb785b2", JOB37_NAME, "0f43c3d7-b8c6-4a0e-a0a2-6cd8523d2355"):
        other = load_fixture(f"stepfunctions/{name}.describe-execution.json")
        sfn.start_execution(stateMachineArn=sm_arn, name=name, input=other["input"])
        aws.describes[execution_arn(name)] = other
        aws.histories[execution_arn(name)] = load_fixture(f"stepfunctions/{name}.get-execution-history.json")["events"]
    aws.describes[JOB37_ARN] = describe
    if with_mediaconvert:
        aws.mediaconvert_jobs["1767628487824-jisa49"] = load_fixture("mediaconvert/1767628487824-jisa49.get-job.json")
    base = timezone.now() - dt.timedelta(minutes=3)
    for fn in ("validate", "thumbnails", "video_thumbnails", "consolidate", "callback-dispatch"):
        _, by_stream = _rebased_log_events(f"logs/listing-media-{fn}-staging.filter-log-events.json", base, without)
        _put_logs(logs, f"/aws/lambda/listing-media-{fn}-staging", by_stream)
    s3.create_bucket(Bucket="toq-listing-medias")
    for obj in load_fixture("s3/list-objects-v2.json")["Contents"]:
        s3.put_object(Bucket="toq-listing-medias", Key=obj["Key"], Body=b"x" * 10, ContentType="video/mp4")


@pytest.mark.django_db
def test_job37_collected_through_list_executions(aws, moto_clients):
    _setup_job37(aws, moto_clients)
    job = make_job(37)  # no created_at, no callback yet: the window reaches back AWSLOGS_SEARCH_BACK_DAYS
    result = job_evidence_collect(job_id=job.id)

    execution = Execution.objects.get(job=job)
    assert execution.arn == JOB37_ARN and execution.status == "FAILED"
    assert execution.found_via in ("validate_log", "list_executions")
    assert execution.history_event_count == 47 and execution.history_complete
    assert execution.definition is not None  # DescribeStateMachineForExecution, through moto
    consolidate = execution.state_visits.get(name="ConsolidateResults")
    assert [a["error"] for a in consolidate.attempts] == ["errorString"] * 3
    video = next(b for b in execution.timeline["branches"] if b["last_state"] == "GenerateVideoThumbnails")
    assert video["errors"][0]["errorCode"] == "VIDEO_THUMBNAIL_FAILED"
    assert Execution.objects.filter(is_orphan=True).count() == 2
    assert MediaConvertJob.objects.get().status == "COMPLETE"
    # the validate line links job and execution; every line of its invocation is attributed
    started = LogEvent.objects.get(msg="Started Step Function execution", job_toq_id=37)
    assert started.execution_arn == JOB37_ARN
    assert LogEvent.objects.filter(job=job, log_group__endswith="video_thumbnails-staging", kind="report").exists()
    # missing log groups recorded, not fatal
    assert LogGroupStatus.objects.get(name="/aws/lambda/listing-media-zip-staging").exists is False
    assert LogGroupStatus.objects.get(name="/aws/lambda/listing-media-validate-staging").exists is True
    # S3: MP4 present, video thumbnail missing
    checks = {c.kind: c.outcome for c in DerivativeCheck.objects.filter(job=job)}
    assert checks == {"mp4": "present", "video_thumbnail": "missing"}
    mp4 = DerivativeCheck.objects.get(job=job, kind="mp4")
    assert (mp4.content_type, mp4.size) == ("video/mp4", 10)  # HeadObject: ListObjectsV2 has no type
    assert mp4.last_modified is not None
    status = EvidenceStatus.objects.get(job=job)
    assert not status.complete
    assert {"item": "s3 derivative", "reason": "not_found"}.items() <= status.missing[-1].items()
    assert result.log_events == LogEvent.objects.count()


@pytest.mark.django_db
def test_recollection_writes_nothing_new(aws, moto_clients):
    _setup_job37(aws, moto_clients)
    now = timezone.now()
    job = make_job(
        37,
        external_id=JOB37_ARN,
        status="FAILED",
        is_terminal=True,
        completed_at=now - dt.timedelta(minutes=3),
    )
    job_evidence_collect(job_id=job.id)
    before = _snapshot()
    aws.calls.clear()
    job_evidence_collect(job_id=job.id)
    assert _snapshot() == before
    # closed + complete: neither history nor MediaConvert asked again
    assert "GetExecutionHistory" not in aws.calls and "GetJob" not in aws.calls


@pytest.mark.django_db
def test_running_execution_recollected_until_closed(aws, moto_clients):
    sfn = moto_clients["stepfunctions"]
    sm_arn = _create_machine(sfn)
    arn = sfn.start_execution(stateMachineArn=sm_arn, name="run-1", input=json.dumps({"jobId": 50}))["executionArn"]
    start = timezone.now() - dt.timedelta(minutes=1)
    aws.histories[arn] = running_history(start, 50)
    job = make_job(50, external_id=arn)

    job_evidence_collect(job_id=job.id)
    execution = Execution.objects.get(arn=arn)
    assert execution.status == "RUNNING" and not execution.history_complete
    assert execution.history_event_count == 3
    status = EvidenceStatus.objects.get(job=job)
    assert any(m["reason"] == "not_yet" and m["target"] == arn for m in status.missing)

    describe = sfn.describe_execution(executionArn=arn)
    closed = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in describe.items()}
    closed.pop("ResponseMetadata")
    closed.update(status="FAILED", stopDate=timezone.now().isoformat(), error="States.Timeout", cause="t")
    aws.describes[arn] = closed
    aws.histories[arn] = [
        *aws.histories[arn],
        {
            "timestamp": timezone.now().isoformat(),
            "type": "ExecutionTimedOut",
            "id": 4,
            "previousEventId": 3,
            "executionTimedOutEventDetails": {"error": "States.Timeout", "cause": "t"},
        },
    ]
    job_evidence_collect(job_id=job.id)
    execution.refresh_from_db()
    assert execution.status == "FAILED" and execution.history_complete and execution.history_event_count == 4
    assert execution.timeline["final_status"] == "TIMED_OUT"
    assert HistoryEvent.objects.filter(execution=execution).count() == 4


@pytest.mark.django_db
def test_25000_event_history_paged_and_stored(aws, moto_clients):
    sfn = moto_clients["stepfunctions"]
    sm_arn = _create_machine(sfn)
    arn = sfn.start_execution(stateMachineArn=sm_arn, name="huge", input=json.dumps({"jobId": 90}))["executionArn"]
    aws.histories[arn] = big_history(timezone.now() - dt.timedelta(minutes=2), 25_000)
    describe = sfn.describe_execution(executionArn=arn)
    aws.describes[arn] = {
        **{
            k: (v.isoformat() if isinstance(v, dt.datetime) else v)
            for k, v in describe.items()
            if k != "ResponseMetadata"
        },
        "status": "FAILED",
        "stopDate": timezone.now().isoformat(),
    }
    job = make_job(90, external_id=arn)
    job_evidence_collect(job_id=job.id)
    execution = Execution.objects.get(arn=arn)
    assert HistoryEvent.objects.filter(execution=execution).count() == 25_000
    assert aws.calls.count("GetExecutionHistory") == 25  # 1,000 per page, nextToken followed
    visit = execution.state_visits.get(name="ConsolidateResults")
    assert len(visit.attempts) > 8000
    assert execution.timeline["unknown_events"]


@pytest.mark.django_db
def test_throttling_then_success(aws, moto_clients):
    sfn = moto_clients["stepfunctions"]
    sm_arn = _create_machine(sfn)
    arn = sfn.start_execution(stateMachineArn=sm_arn, name="t-1", input=json.dumps({"jobId": 51}))["executionArn"]
    aws.histories[arn] = running_history(timezone.now(), 51)
    aws.failures["GetExecutionHistory"] = [(400, "ThrottlingException"), (503, "ServiceUnavailable")]
    job = make_job(51, external_id=arn)
    job_evidence_collect(job_id=job.id)
    assert aws.calls.count("GetExecutionHistory") == 3
    assert Execution.objects.get(arn=arn).history_event_count == 3
    assert not any(m["item"] == "execution history" for m in EvidenceStatus.objects.get(job=job).missing)


@pytest.mark.django_db
def test_access_denied_recorded(aws, moto_clients):
    _setup_job37(aws, moto_clients)
    aws.denied["GetJob"] = {"1767628487824-jisa49"}
    aws.denied["GetExecutionHistory"] = {execution_arn("0f43c3d7-b8c6-4a0e-a0a2-6cd8523d2355")}
    job = make_job(37, external_id=JOB37_ARN)
    job38 = make_job(38, listing_identity_id=18, external_id=execution_arn("0f43c3d7-b8c6-4a0e-a0a2-6cd8523d2355"))
    job_evidence_collect(job_id=job.id)
    job_evidence_collect(job_id=job38.id)
    missing = EvidenceStatus.objects.get(job=job).missing
    assert {"item": "mediaconvert job", "target": "1767628487824-jisa49", "reason": "access_denied"}.items() <= next(
        m for m in missing if m["item"] == "mediaconvert job"
    ).items()
    missing38 = EvidenceStatus.objects.get(job=job38).missing
    assert any(m["item"] == "execution history" and m["reason"] == "access_denied" for m in missing38)
    assert not EvidenceStatus.objects.get(job=job38).complete


@pytest.mark.django_db
def test_huge_and_invalid_utf8_log_lines(aws, moto_clients):
    logs = moto_clients["logs"]
    group = "/aws/lambda/listing-media-validate-staging"
    now_ms = int(time.time() * 1000) - 60_000
    huge = json.dumps(
        {"level": "INFO", "msg": "Validate Lambda received raw event", "job_id": 52, "raw_event": "x" * 262_000}
    )
    _put_logs(
        logs,
        group,
        {
            "s1": [
                {
                    "timestamp": now_ms,
                    "message": "START RequestId: 11111111-2222-3333-4444-555555555555 Version: $LATEST",
                },
                {"timestamp": now_ms + 1, "message": huge},
                {"timestamp": now_ms + 2, "message": "bad bytes: \udcff\udcfe and a NUL \x00 here"},
                {"timestamp": now_ms + 3, "message": "END RequestId: 11111111-2222-3333-4444-555555555555"},
            ]
        },
    )
    job = make_job(52)
    job_evidence_collect(job_id=job.id)
    big = LogEvent.objects.get(msg="Validate Lambda received raw event")
    assert big.message_truncated and big.message_bytes > 256_000 and len(big.message.encode()) <= 32 * 1024
    assert big.job == job
    bad = LogEvent.objects.get(message__startswith="bad bytes")
    assert bad.message in ("bad bytes: \\xff\\xfe and a NUL \\x00 here", "bad bytes: \ufffd\ufffd and a NUL \\x00 here")
    assert bad.job == job and bad.request_id == "11111111-2222-3333-4444-555555555555"


@pytest.mark.django_db
def test_sqs_dlq_peeked_never_consumed_and_lambda_configs(aws, moto_clients):
    sqs, lam, iam = moto_clients["sqs"], moto_clients["lambda"], moto_clients["iam"]
    sqs.create_queue(QueueName="listing-media-processing-staging")
    dlq = sqs.create_queue(QueueName="listing-media-processing-dlq-staging")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"jobId": 60, "listingIdentityId": 3, "assets": []}))
    job = make_job(60, listing_identity_id=3)
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(
        FunctionName="listing-media-video_thumbnails-staging",
        Runtime="provided.al2",
        Role=role,
        Handler="bootstrap",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={"Variables": {"CALLBACK_SECRET": "do-not-store", "FFMPEG_PATH": "/opt/bin/ffmpeg"}},
    )
    summary = evidence_pass(job_ids=[])
    assert summary.dlq_messages_new == 1
    message = DlqMessage.objects.get()
    assert message.job == job and message.job_toq_id == 60
    # not consumed: still there for anyone else
    attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"
    assert QueueSnapshot.objects.filter(queue_name="listing-media-processing-dlq-staging", visible=1).exists()
    snapshot = LambdaConfigSnapshot.objects.get()
    assert snapshot.environment == {"CALLBACK_SECRET": "<redacted>", "FFMPEG_PATH": "/opt/bin/ffmpeg"}
    assert "do-not-store" not in json.dumps(snapshot.config)
    # unchanged configuration: no new snapshot; a change: one more row (history of changes)
    evidence_pass(job_ids=[])
    assert LambdaConfigSnapshot.objects.count() == 1
    assert (QueueSnapshot.objects.count(), DlqMessage.objects.count()) == (2, 1)  # idle pass: nothing new
    lam.update_function_configuration(FunctionName="listing-media-video_thumbnails-staging", MemorySize=2048)
    evidence_pass(job_ids=[])
    assert LambdaConfigSnapshot.objects.count() == 2


@pytest.mark.django_db
def test_collect_aws_command(aws, moto_clients):
    _setup_job37(aws, moto_clients)
    make_job(37, external_id=JOB37_ARN)
    out = StringIO()
    call_command("collect_aws", "--job", "37", stdout=out)
    assert "collect_aws: 1 jobs, 1 executions" in out.getvalue()
    assert "1 jobs with missing evidence" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("collect_aws", "--job", "999", stdout=StringIO())


@pytest.mark.django_db
def test_every_list_is_paged_with_next_token(aws, moto_clients):
    _setup_job37(aws, moto_clients)
    moto_clients["s3"].put_object(Bucket="toq-listing-medias", Key="16/processed/video/vertical/thumbnail/x", Body=b"")
    job = make_job(37)  # no created_at, no callback yet: the window reaches back AWSLOGS_SEARCH_BACK_DAYS
    job_evidence_collect(job_id=job.id)
    # AWS_PAGE_SIZE=2 in tests: 3 executions, 41 validate lines, 3 objects all need several pages
    assert aws.calls.count("ListExecutions") >= 2
    assert LogEvent.objects.filter(log_group="/aws/lambda/listing-media-validate-staging").count() == 41
    assert S3Object.objects.count() == 3
    assert S3Object.objects.get(key__endswith="thumbnail/x").size == 0


@pytest.mark.django_db
def test_duplicate_executions_and_old_schema_window(aws, moto_clients):
    """FM-08 (two executions of one job) for a job with no created_at and no started_at (old schema,
    no callback): the window is bounded by the previous job, and both executions are kept, flagged."""
    sfn = moto_clients["stepfunctions"]
    sm_arn = _create_machine(sfn)
    for name in ("dup-a", "dup-b", "other"):
        job_id = 70 if name.startswith("dup") else 71
        arn = sfn.start_execution(stateMachineArn=sm_arn, name=name, input=json.dumps({"jobId": job_id}))[
            "executionArn"
        ]
        aws.histories[arn] = running_history(timezone.now(), job_id)
    make_job(69, created_at=timezone.now() - dt.timedelta(days=3))
    job = make_job(70, created_at=None)
    job_evidence_collect(job_id=job.id)
    executions = Execution.objects.filter(job=job)
    assert sorted(e.name for e in executions) == ["dup-a", "dup-b"]
    assert all(e.is_duplicate for e in executions)
    other = Execution.objects.get(name="other")
    assert other.is_orphan and other.job is None and other.job_toq_id == 71


@pytest.mark.django_db
def test_finalization_found_by_name(aws, moto_clients):
    sfn = moto_clients["stepfunctions"]
    sm_arn = sfn.create_state_machine(
        name="listing-media-finalization-sm-staging", definition=MINIMAL_DEFINITION, roleArn=ROLE
    )["stateMachineArn"]
    arn = sfn.start_execution(
        stateMachineArn=sm_arn, name="finalization-12-51", input=json.dumps({"jobId": 51, "listingIdentityId": 12})
    )["executionArn"]
    aws.histories[arn] = running_history(timezone.now(), 51)
    job = make_job(51, listing_identity_id=12, kind="finalization", provider="STEP_FUNCTIONS_FINALIZATION")
    job_evidence_collect(job_id=job.id)
    execution = Execution.objects.get(job=job)
    assert execution.arn == arn and execution.found_via == "name" and execution.kind == "finalization"


@pytest.mark.django_db
def test_throttling_that_outlives_retries_is_recorded_by_the_foreground_pass(aws, moto_clients, settings):
    settings.AWS_MAX_ATTEMPTS = 2
    sfn = moto_clients["stepfunctions"]
    sm_arn = _create_machine(sfn)
    arn = sfn.start_execution(stateMachineArn=sm_arn, name="t-2", input=json.dumps({"jobId": 53}))["executionArn"]
    aws.histories[arn] = running_history(timezone.now(), 53)
    aws.failures["GetExecutionHistory"] = [(400, "ThrottlingException")] * 2
    make_job(53, external_id=arn)
    out = StringIO()
    call_command("collect_aws", "--job", "53", stdout=out)  # completes: exit 0
    status = EvidenceStatus.objects.get(job__toq_id=53)
    assert aws.calls.count("GetExecutionHistory") == 2
    assert not status.complete and len(status.missing) == 1
    assert status.missing[0]["reason"] == "error" and "ThrottlingException" in status.missing[0]["detail"]
    call_command("collect_aws", "--job", "53", stdout=out)  # throttling over: completes the job
    assert Execution.objects.get(arn=arn).history_event_count == 3


@pytest.mark.django_db
def test_collect_aws_without_credentials_cannot_run(aws, monkeypatch, tmp_path):
    make_job(54)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CommandError, match="credentials"):
        call_command("collect_aws", stdout=StringIO())
    assert not EvidenceStatus.objects.exists()


@pytest.mark.django_db
def test_orphan_execution_linked_once_its_job_row_appears(aws, moto_clients):
    sfn = moto_clients["stepfunctions"]
    sm_arn = _create_machine(sfn)
    arn = sfn.start_execution(stateMachineArn=sm_arn, name="late", input=json.dumps({"jobId": 81}))["executionArn"]
    aws.histories[arn] = running_history(timezone.now(), 81)
    job80 = make_job(80)
    job_evidence_collect(job_id=job80.id)  # lists executions: 81 has no row yet → orphan
    orphan = Execution.objects.get(arn=arn)
    assert orphan.is_orphan and orphan.job is None
    job81 = make_job(81)
    job_evidence_collect(job_id=job81.id)
    linked = Execution.objects.get(arn=arn)
    assert linked.job == job81 and not linked.is_orphan and linked.history_event_count == 3
