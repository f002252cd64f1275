"""Bench: one collection pass for 1,000 jobs against a local endpoint (moto's server), and the
share of the pass spent waiting for that endpoint (ratio = pass time / time inside AWS calls).

Run: DJANGO_SETTINGS_MODULE=toqdash.settings.test .venv/bin/python bench/aws_pass.py [N_JOBS] [--profile]
(--profile: cProfile of the pass, the top functions printed to stderr; --queries: the most
frequent SQL statement shapes)
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import re
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._aws_common import bench_database  # noqa: E402

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
N_JOBS = int(ARGS[0]) if ARGS else 1000
PROFILE = "--profile" in sys.argv
SHOW_QUERIES = "--queries" in sys.argv
ROLE = "arn:aws:iam::123456789012:role/sfn"


class CallTimer:
    """botocore event hooks: wall time spent inside AWS calls (request → parsed response)."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.total = 0.0
        self.calls = 0

    def before(self, **kwargs: Any) -> None:
        self.started[id(kwargs.get("context"))] = time.perf_counter()

    def after(self, **kwargs: Any) -> None:
        begin = self.started.pop(id(kwargs.get("context")), None)
        if begin is not None:
            self.total += time.perf_counter() - begin
            self.calls += 1


def main() -> int:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        with bench_database():
            import boto3
            from django.utils import timezone

            from awslogs import client
            from awslogs.services.collect import evidence_pass
            from jobs.models import Job

            endpoint = os.environ["AWS_ENDPOINT_URL"]
            sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name="us-east-1")
            logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1")
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            sm = sfn.create_state_machine(
                name="listing-media-processing-sm-staging",
                definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
                roleArn=ROLE,
            )["stateMachineArn"]
            group = "/aws/lambda/listing-media-validate-staging"
            logs.create_log_group(logGroupName=group)
            logs.create_log_stream(logGroupName=group, logStreamName="s")
            s3.create_bucket(Bucket="toq-listing-medias")
            now = timezone.now()
            now_ms = int(time.time() * 1000)
            batch: list[dict[str, Any]] = []
            for n in range(1, N_JOBS + 1):
                arn = sfn.start_execution(stateMachineArn=sm, name=f"e{n}", input=json.dumps({"jobId": n}))[
                    "executionArn"
                ]
                Job.objects.create(
                    toq_id=n,
                    row_hash=n,
                    first_seen_at=now,
                    last_changed_at=now,
                    listing_identity_id=n % 50,
                    status="PENDING",
                    provider="STEP_FUNCTIONS",
                    kind="processing",
                    created_at=now,
                    external_id=arn,
                )
                rid = f"{n:08d}-0000-0000-0000-000000000000"
                batch += [
                    {"timestamp": now_ms - 30_000, "message": f"START RequestId: {rid} Version: $LATEST"},
                    {
                        "timestamp": now_ms - 30_000,
                        "message": json.dumps(
                            {
                                "level": "INFO",
                                "msg": "Started Step Function execution",
                                "job_id": n,
                                "execution_arn": arn,
                            }
                        ),
                    },
                    {"timestamp": now_ms - 30_000, "message": f"END RequestId: {rid}"},
                ]
            for start in range(0, len(batch), 5000):
                logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=batch[start : start + 5000])

            timer = CallTimer()
            for service in ("stepfunctions", "logs", "s3", "lambda", "sqs", "mediaconvert"):
                events = client._client(service).meta.events
                events.register("before-call.*.*", timer.before)
                events.register("after-call.*.*", timer.after)
                events.register("after-call-error.*.*", timer.after)  # e.g. a missing log group
            from django.db import connection

            queries = 0
            shapes: Counter[str] = Counter()

            def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
                nonlocal queries
                queries += 1
                if SHOW_QUERIES:
                    shapes[re.sub(r"\s+", " ", sql)[:150]] += 1
                return execute(sql, params, many, context)

            job_ids = list(Job.objects.values_list("id", flat=True))
            profiler = cProfile.Profile() if PROFILE else None
            t0 = time.perf_counter()
            with connection.execute_wrapper(count):
                if profiler is not None:
                    profiler.enable()
                summary = evidence_pass(job_ids=job_ids)
                if profiler is not None:
                    profiler.disable()
            elapsed = time.perf_counter() - t0
            for shape, n in shapes.most_common(40):
                print(f"{n:6d}  {shape}", file=sys.stderr)
            if profiler is not None:
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(60)
    finally:
        server.stop()
    ratio = elapsed / timer.total if timer.total else float("inf")
    print(
        f"aws_pass: {summary.jobs} jobs, {summary.executions} executions, {summary.log_events} log events in "
        f"{elapsed:.1f} s ({elapsed / max(summary.jobs, 1) * 1000:.1f} ms/job); {timer.calls} AWS calls took "
        f"{timer.total:.1f} s at the endpoint; ratio pass/endpoint = {ratio:.2f}; "
        f"{queries / max(summary.jobs, 1):.0f} SQL queries/job"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
