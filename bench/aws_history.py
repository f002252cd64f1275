"""Bench: a 25,000-event Step Functions history parsed and stored (target ≤ 2 s).

Run: DJANGO_SETTINGS_MODULE=toqdash.settings.test .venv/bin/python bench/aws_history.py
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._aws_common import bench_database  # noqa: E402

N_EVENTS = 25_000
TARGET_SECONDS = 2.0
ARN = "arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:bench"


def history(n: int) -> list[dict[str, Any]]:
    """Parallel branches interleaved, Lambda retries, ~AWS-sized details, exactly n events."""
    start = dt.datetime(2026, 1, 5, 15, 54, tzinfo=dt.UTC)
    payload = json.dumps({"jobId": 1, "listingIdentityId": 2, "assets": [{"key": "2/raw/photo/h/x.jpg"}] * 5})
    events: list[dict[str, Any]] = [
        {
            "timestamp": start.isoformat(),
            "type": "ExecutionStarted",
            "id": 1,
            "previousEventId": 0,
            "executionStartedEventDetails": {"input": payload},
        },
        {
            "timestamp": start.isoformat(),
            "type": "ParallelStateEntered",
            "id": 2,
            "previousEventId": 0,
            "stateEnteredEventDetails": {"name": "ParallelProcessing", "input": payload},
        },
        {"timestamp": start.isoformat(), "type": "ParallelStateStarted", "id": 3, "previousEventId": 2},
    ]
    branches = ["GenerateThumbnails", "GenerateVideoThumbnails", "ProcessVideos"]
    last: dict[str, int] = {}
    i = 4
    for b in branches:
        events.append(
            {
                "timestamp": start.isoformat(),
                "type": "TaskStateEntered",
                "id": i,
                "previousEventId": 3,
                "stateEnteredEventDetails": {"name": b, "input": payload},
            }
        )
        last[b] = i
        i += 1
    k = 0
    while i + 3 <= n - 4:
        b = branches[k % 3]
        t = (start + dt.timedelta(milliseconds=i)).isoformat()
        events.append(
            {
                "timestamp": t,
                "type": "LambdaFunctionScheduled",
                "id": i,
                "previousEventId": last[b],
                "lambdaFunctionScheduledEventDetails": {"resource": f"arn:aws:lambda:::{b}", "input": payload},
            }
        )
        events.append({"timestamp": t, "type": "LambdaFunctionStarted", "id": i + 1, "previousEventId": i})
        events.append(
            {
                "timestamp": t,
                "type": "LambdaFunctionFailed",
                "id": i + 2,
                "previousEventId": i + 1,
                "lambdaFunctionFailedEventDetails": {"error": "Lambda.Unknown", "cause": "x" * 200},
            }
        )
        last[b] = i + 2
        i += 3
        k += 1
    while i <= n - 4:
        events.append(
            {"timestamp": start.isoformat(), "type": "MapIterationStarted", "id": i, "previousEventId": i - 1}
        )
        i += 1
    end = (start + dt.timedelta(minutes=10)).isoformat()
    events.append(
        {
            "timestamp": end,
            "type": "TaskStateExited",
            "id": i,
            "previousEventId": last[branches[0]],
            "stateExitedEventDetails": {"name": branches[0], "output": "{}"},
        }
    )
    events.append(
        {
            "timestamp": end,
            "type": "ParallelStateFailed",
            "id": i + 1,
            "previousEventId": i,
            "parallelStateFailedEventDetails": {"error": "Lambda.Unknown", "cause": "x"},
        }
    )
    events.append(
        {
            "timestamp": end,
            "type": "ParallelStateExited",
            "id": i + 2,
            "previousEventId": i + 1,
            "stateExitedEventDetails": {"name": "ParallelProcessing"},
        }
    )
    events.append(
        {
            "timestamp": end,
            "type": "ExecutionFailed",
            "id": i + 3,
            "previousEventId": i + 2,
            "executionFailedEventDetails": {"error": "Lambda.Unknown", "cause": "x"},
        }
    )
    return events


def main() -> int:
    events = history(N_EVENTS)
    assert len(events) == N_EVENTS, len(events)
    describe = {
        "executionArn": ARN,
        "stateMachineArn": ARN.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0],
        "name": "bench",
        "status": "FAILED",
        "startDate": "2026-01-05T15:54:00+00:00",
        "stopDate": "2026-01-05T16:04:00+00:00",
        "input": events[0]["executionStartedEventDetails"]["input"],
    }
    with bench_database():
        from awslogs.models import HistoryEvent
        from awslogs.services.store import execution_store

        t0 = time.perf_counter()
        execution, _ = execution_store(describe=describe, found_via="import", history=events)
        elapsed = time.perf_counter() - t0
        stored = HistoryEvent.objects.filter(execution=execution).count()
        visits = execution.state_visits.count()
        attempts = sum(len(v.attempts) for v in execution.state_visits.all())
    ok = elapsed <= TARGET_SECONDS and stored == N_EVENTS
    print(
        f"aws_history: {stored} events parsed+stored in {elapsed:.3f} s "
        f"({stored / elapsed:,.0f} events/s; {visits} state visits, {attempts} attempts); "
        f"target <= {TARGET_SECONDS} s: {'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
