from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from awslogs.models import (
    Execution,
    HistoryEvent,
    LambdaConfigSnapshot,
    LogEvent,
    MediaConvertJob,
    S3Object,
    StateVisit,
)
from tests.awslogs.conftest import FIXTURES
from tests.awslogs.factories import execution_arn, make_job

JOB37_ARN = execution_arn("258c102b-4bc5-4a36-9b51-f432df114aa4")


def _all_files() -> list[str]:
    return sorted(str(p) for p in FIXTURES.rglob("*") if p.suffix in (".json", ".jsonl"))


def _counts() -> tuple[int, ...]:
    return tuple(
        m.objects.count()
        for m in (Execution, HistoryEvent, StateVisit, LogEvent, S3Object, MediaConvertJob, LambdaConfigSnapshot)
    )


@pytest.mark.django_db
def test_import_every_job37_sample():
    job = make_job(37)
    out = StringIO()
    call_command("import_aws", *_all_files(), stdout=out)
    assert "Imported 15 files" in out.getvalue()
    execution = Execution.objects.get(arn=JOB37_ARN)
    assert execution.job == job and execution.status == "FAILED" and not execution.is_orphan
    assert execution.history_event_count == 47 and execution.history_complete
    assert execution.timeline["mediaconvert_job_ids"] == ["1767628487824-jisa49"]
    consolidate = execution.state_visits.get(name="ConsolidateResults")
    # each failed try linked to its own Lambda invocation (START line inside the attempt's window)
    assert [a["request_id"][:8] for a in consolidate.attempts] == ["83f52816", "a2d28dff", "a3bb675d"]
    assert consolidate.attempts[0]["report"]["max_memory_used_mb"] == 21.0
    video = execution.state_visits.get(name="GenerateVideoThumbnails")
    assert video.attempts[0]["request_id"] == "4cd8e257-32b5-4d87-b1d8-3ffea744fe39"
    # jobs 36 and 38 have no mirrored row here: visible as orphans, never dropped
    assert Execution.objects.filter(is_orphan=True).count() == 2
    assert LogEvent.objects.filter(log_group="/aws/lambda/listing-media-consolidate-staging").count() == 34
    assert LogEvent.objects.filter(log_group="toq-server").count() == 23
    assert LogEvent.objects.count() == 23 + 34 + 23 + 41 + 8 + 23
    started = LogEvent.objects.get(msg="Started Step Function execution", job_toq_id=37)
    assert started.execution_arn == JOB37_ARN and started.job == job
    warn = LogEvent.objects.get(msg="service.media.callback.no_results_failure")
    assert warn.job_toq_id == 37 and warn.level == "WARN"
    # the access-log line of the same HTTP request carries no job_id: attributed through request_id
    access = LogEvent.objects.get(msg="HTTP Request", fields__request_id="8cf041a5b067399df439d5a1c7f494e1")
    assert access.job == job
    assert MediaConvertJob.objects.get().status == "COMPLETE"
    assert MediaConvertJob.objects.get().execution == execution
    config = LambdaConfigSnapshot.objects.get()
    assert config.layers == [] and config.environment == {} and config.runtime == "provided.al2"
    assert S3Object.objects.filter(key__contains="/thumbnail/").count() == 0
    assert S3Object.objects.count() == 2


@pytest.mark.django_db
def test_reimport_writes_nothing_new():
    make_job(37)
    call_command("import_aws", *_all_files(), stdout=StringIO())
    before = _counts()
    out = StringIO()
    call_command("import_aws", *_all_files(), stdout=out)
    assert _counts() == before
    assert "0 new rows" in out.getvalue()


@pytest.mark.django_db
def test_history_needs_its_execution():
    history = FIXTURES / "stepfunctions" / "258c102b-4bc5-4a36-9b51-f432df114aa4.get-execution-history.json"
    with pytest.raises(CommandError, match="execution-arn"):
        call_command("import_aws", str(history), stdout=StringIO())


@pytest.mark.django_db
def test_logs_with_explicit_log_group(tmp_path):
    target = tmp_path / "export.json"
    target.write_bytes(
        b'{"events": [{"logStreamName": "s", "timestamp": 1767628487678, "eventId": "1", '
        b'"message": "bad \xff\xfe bytes\\n"}], "searchedLogStreams": []}'
    )
    call_command("import_aws", str(target), "--log-group", "/aws/lambda/x", stdout=StringIO())
    event = LogEvent.objects.get()
    assert event.log_group == "/aws/lambda/x" and event.message == "bad \\xff\\xfe bytes\n"


@pytest.mark.django_db
def test_reused_job_id_links_the_generation_that_existed(tmp_path):
    """FM-38: TOQ's database was recreated, id 37 reused. The incident execution (2026-01-05) belongs
    to generation 1, not to the new job 37 created months later."""
    old = make_job(
        37,
        generation=1,
        created_at=dt.datetime(2026, 1, 5, 15, 54, 46, tzinfo=dt.UTC),
        superseded_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    )
    new = make_job(37, generation=2, created_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    describe = FIXTURES / "stepfunctions" / "258c102b-4bc5-4a36-9b51-f432df114aa4.describe-execution.json"
    call_command("import_aws", str(describe), stdout=StringIO())
    assert Execution.objects.get(arn=JOB37_ARN).job == old
    late = json.loads(describe.read_text())
    late.update(executionArn=JOB37_ARN + "-late", name="late", startDate="2026-03-02T00:00:05+00:00")
    (tmp_path / "late.describe-execution.json").write_text(json.dumps(late))
    call_command("import_aws", str(tmp_path / "late.describe-execution.json"), stdout=StringIO())
    assert Execution.objects.get(name="late").job == new
