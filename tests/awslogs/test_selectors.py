from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command

from awslogs.models import Execution
from awslogs.selectors import execution_list_for_job, lambda_config_live_at, log_event_list_for_job
from awslogs.services.store import execution_link_job, lambda_config_store
from tests.awslogs.conftest import FIXTURES, load_fixture
from tests.awslogs.factories import execution_arn, make_job

JOB37_ARN = execution_arn("258c102b-4bc5-4a36-9b51-f432df114aa4")


@pytest.mark.django_db
def test_lambda_config_live_at_a_jobs_time():
    before = load_fixture("lambda/listing-media-video_thumbnails-staging.get-function-configuration.json")
    fixed = {
        **before,
        "LastModified": "2026-01-05T16:26:02.000+0000",
        "Layers": [{"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:toq-ffmpeg-layer-staging:5"}],
        "Environment": {"Variables": {"FFMPEG_PATH": "/opt/bin/ffmpeg"}},
    }
    lambda_config_store(data=before)
    lambda_config_store(data=fixed)
    name = "listing-media-video_thumbnails-staging"
    job37_time = dt.datetime(2026, 1, 5, 15, 54, 47, tzinfo=dt.UTC)
    at_job = lambda_config_live_at(function_name=name, at=job37_time)
    assert at_job is not None and at_job.layers == [] and at_job.environment == {}
    later = lambda_config_live_at(function_name=name, at=job37_time + dt.timedelta(hours=1))
    assert later is not None and later.environment == {"FFMPEG_PATH": "/opt/bin/ffmpeg"}
    assert lambda_config_live_at(function_name=name, at=job37_time - dt.timedelta(days=1)) is None


@pytest.mark.django_db
def test_history_alone_with_execution_arn_and_orphan_relinked(django_assert_num_queries):
    history = FIXTURES / "stepfunctions" / "258c102b-4bc5-4a36-9b51-f432df114aa4.get-execution-history.json"
    call_command("import_aws", str(history), "--execution-arn", JOB37_ARN, stdout=StringIO())
    execution = Execution.objects.get()
    # describe synthesised from the history: status, dates, error and the job from the input
    assert (execution.status, execution.error, execution.job_toq_id) == ("FAILED", "MediaProcessingFailed", 37)
    assert execution.is_orphan and execution.history_event_count == 47
    job = make_job(37)
    logs = FIXTURES / "logs" / "listing-media-consolidate-staging.filter-log-events.json"
    call_command("import_aws", str(logs), stdout=StringIO())
    assert list(execution_list_for_job(job_id=job.pk)) == []  # import does not link; collection does
    execution_link_job(execution=execution, job=job)
    with django_assert_num_queries(2):
        executions = list(execution_list_for_job(job_id=job.pk))
        assert len(executions[0].state_visits.all()) == 10
    assert not executions[0].is_orphan
    with django_assert_num_queries(1):
        lines = list(log_event_list_for_job(job_id=job.pk, toq_id=37))
    assert lines and {line.job_toq_id for line in lines} == {37}
