"""Jobs mirror rows and realistic Step Functions histories, written from the real state machines."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from jobs.models import Job
from tests.jobs import factories as jobs_factories

ACCOUNT = "123456789012"
PROCESSING_SM_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:listing-media-processing-sm-staging"


def execution_arn(name: str, machine: str = "listing-media-processing-sm-staging") -> str:
    return f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{machine}:{name}"


def make_job(toq_id: int, **kwargs: Any) -> Job:
    """tests.jobs.factories.make_job, without created_at by default: TOQ databases older than
    2026-01-16 have none (the job-37 rows among them)."""
    return jobs_factories.make_job(toq_id, **{"created_at": None, **kwargs})


def iso(t: dt.datetime) -> str:
    return t.isoformat()


def running_history(start: dt.datetime, job_id: int) -> list[dict[str, Any]]:
    """A processing execution still inside ParallelProcessing."""
    payload = json.dumps({"jobId": job_id, "listingIdentityId": 16, "assets": []})
    return [
        {
            "timestamp": iso(start),
            "type": "ExecutionStarted",
            "id": 1,
            "previousEventId": 0,
            "executionStartedEventDetails": {"input": payload},
        },
        {
            "timestamp": iso(start),
            "type": "TaskStateEntered",
            "id": 2,
            "previousEventId": 0,
            "stateEnteredEventDetails": {"name": "ValidateRawAssets", "input": payload},
        },
        {
            "timestamp": iso(start),
            "type": "LambdaFunctionScheduled",
            "id": 3,
            "previousEventId": 2,
            "lambdaFunctionScheduledEventDetails": {"resource": "arn:aws:lambda:us-east-1:1:function:v"},
        },
    ]


def big_history(start: dt.datetime, n_events: int) -> list[dict[str, Any]]:
    """A history of exactly n_events: ConsolidateResults retried over and over (each try = 3 events)."""
    events: list[dict[str, Any]] = [
        {
            "timestamp": iso(start),
            "type": "ExecutionStarted",
            "id": 1,
            "previousEventId": 0,
            "executionStartedEventDetails": {"input": '{"jobId":90}'},
        },
        {
            "timestamp": iso(start),
            "type": "TaskStateEntered",
            "id": 2,
            "previousEventId": 0,
            "stateEnteredEventDetails": {"name": "ConsolidateResults", "input": "{}"},
        },
    ]
    i = 3
    while i + 2 <= n_events - 3:
        t = iso(start + dt.timedelta(milliseconds=i))
        events.append(
            {
                "timestamp": t,
                "type": "LambdaFunctionScheduled",
                "id": i,
                "previousEventId": i - 1,
                "lambdaFunctionScheduledEventDetails": {"resource": "arn:aws:lambda:x"},
            }
        )
        events.append({"timestamp": t, "type": "LambdaFunctionStarted", "id": i + 1, "previousEventId": i})
        events.append(
            {
                "timestamp": t,
                "type": "LambdaFunctionFailed",
                "id": i + 2,
                "previousEventId": i + 1,
                "lambdaFunctionFailedEventDetails": {"error": "Lambda.Unknown", "cause": "boom"},
            }
        )
        i += 3
    while i <= n_events - 2:
        events.append(
            {
                "timestamp": iso(start),
                "type": "FutureEventType",
                "id": i,
                "previousEventId": i - 1,
                "futureEventTypeEventDetails": {"x": 1},
            }
        )
        i += 1
    end = start + dt.timedelta(seconds=30)
    events.append(
        {
            "timestamp": iso(end),
            "type": "TaskStateExited",
            "id": i,
            "previousEventId": i - 1,
            "stateExitedEventDetails": {"name": "ConsolidateResults", "output": "{}"},
        }
    )
    events.append(
        {
            "timestamp": iso(end),
            "type": "ExecutionFailed",
            "id": i + 1,
            "previousEventId": i,
            "executionFailedEventDetails": {"error": "Lambda.Unknown", "cause": "boom"},
        }
    )
    return events
