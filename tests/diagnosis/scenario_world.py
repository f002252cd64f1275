"""Scenario harness: a failure as it really reaches toqdash, then `collect_aws` and `diagnose`.

The path under test is the production one:

1. TOQ's rows are written to MariaDB (our own database, as TOQ's server would have left them) and
   mirrored by `toq_sync`;
2. the AWS side is put in place behind HTTP endpoints chosen the way production chooses them
   (AWS_ENDPOINT_URL*): moto for CloudWatch Logs (log groups, streams, the Lambda and server lines),
   S3 (raw and derivative objects), SQS (main queue, DLQ messages) and the state machines /
   ListExecutions; a small fake endpoint (tests/awslogs/conftest.py `FakeAws`, extended here with
   Lambda's GetFunctionConfiguration) for what moto cannot answer realistically: DescribeExecution
   and GetExecutionHistory pages (wire format: epoch timestamps, nextToken paging), MediaConvert
   GetJob, and function configurations with their real LastModified;
3. `python manage.py collect_aws --job ID` collects, `python manage.py diagnose ID --json` answers.

The records come from scenario_pipeline.py (TOQ's pipeline replayed) or, for the incident itself,
from the job-37 exports (tests/fixtures/aws/job37/, tests/fixtures/job37_toq_rows.sql) moved in time
to the last hours (CloudWatch — and moto — refuse log events older than 14 days).
"""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
from django.core.management import call_command
from django.utils import timezone
from moto.server import ThreadedMotoServer

from tests.awslogs.conftest import FakeAws, _free_port, _make_handler
from tests.conftest import ToqMySQL
from tests.diagnosis.conftest import diagnose_json, sync
from tests.diagnosis.scenario_pipeline import (
    BUCKET,
    FINALIZATION_SM,
    PROCESSING_SM,
    REGION,
    SERVER_GROUP,
    SERVER_STREAM,
    Asset,
    ExecutionRecord,
    LogLine,
    Pipeline,
    Processing,
    Run,
    World,
    function_name,
    ms,
)
from tests.jobs.toq_rows import add_asset, add_job, add_listing, add_user

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
JOB37 = FIXTURES / "aws" / "job37"
# When TOQ created job 37 (shared/samples/job37/README.md: 15:54:46.937), to the second.
JOB37_CREATED = dt.datetime(2026, 1, 5, 15, 54, 46, tzinfo=dt.UTC)
# Scenarios start this long before the test runs: old enough for a PENDING job to be stuck
# (DIAGNOSIS_STUCK_AFTER_MINUTES, 60) and for the reconciler's 30 minutes to have passed.
SCENARIO_AGE = dt.timedelta(minutes=90)
MACHINES = {
    PROCESSING_SM: "media_processing_pipeline.json",
    FINALIZATION_SM: "media_finalization_pipeline.json",
}


# --- the servers -------------------------------------------------------------------------------------


class ScenarioFake(FakeAws):
    """FakeAws plus Lambda GetFunctionConfiguration (moto stamps LastModified with its own clock,
    and FM-39 is about when the function was deployed relative to the job) and ListExecutions
    (moto lists the time a test started an execution, not when it started in the scenario — and
    the job's time window is how old executions of a reused job id are told apart, FM-38)."""

    def __init__(self, moto_url: str) -> None:
        super().__init__(moto_url)
        self.lambda_configs: dict[str, dict[str, Any]] = {}
        self.listings: dict[str, list[dict[str, Any]]] = {}  # state machine ARN → executions, newest first
        self.url = ""

    def reset(self) -> None:
        super().reset()
        self.lambda_configs.clear()
        self.listings.clear()


def _handler(fake: ScenarioFake) -> type[BaseHTTPRequestHandler]:
    base: Any = _make_handler(fake)

    class Handler(base):  # type: ignore[misc,valid-type]
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.loads(raw or b"{}")
            listed = fake.listings.get(body.get("stateMachineArn", ""))
            if self.headers.get("X-Amz-Target", "").endswith(".ListExecutions") and listed is not None:
                fake.calls.append("ListExecutions")
                start = int(body.get("nextToken") or 0)
                size = int(body.get("maxResults") or 100)
                page: dict[str, Any] = {"executions": listed[start : start + size]}
                if start + size < len(listed):
                    page["nextToken"] = str(start + size)
                self._send(200, page)
                return
            self.rfile: Any = io.BytesIO(raw)  # the fake's own handling reads the body again
            super().do_POST()

        def do_GET(self) -> None:
            m = re.match(r"^/2015-03-31/functions/([^/?]+)/configuration", self.path)
            if not m:
                super().do_GET()
                return
            fake.calls.append("GetFunctionConfiguration")
            config = fake.lambda_configs.get(urllib.parse.unquote(m.group(1)))
            if config is None:
                self._error(404, "ResourceNotFoundException", rest=True)
                return
            self._send(200, config, "application/json")

    return Handler


@dataclass
class Servers:
    moto_url: str
    fake: ScenarioFake
    _stop: list[Any] = field(default_factory=list)

    def client(self, service: str) -> Any:
        """A client on moto itself (test setup and checks only; toqdash has its own)."""
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.moto_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        host, port = self.moto_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", "/moto-api/reset")
        assert conn.getresponse().status == 200
        conn.close()
        self.fake.reset()

    def stop(self) -> None:
        for stop in self._stop:
            stop()


def start_servers() -> Servers:
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    moto_url = f"http://127.0.0.1:{port}"
    fake = ScenarioFake(moto_url)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return Servers(moto_url, fake, [httpd.shutdown, moto.stop])


# --- wire formats ---------------------------------------------------------------------------------------

_SFN_TIMES = frozenset({"timestamp", "startDate", "stopDate", "redriveDate"})
_MC_TIMES = frozenset({"CreatedAt", "FinishTime", "StartTime", "SubmitTime"})


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _wire(value: Any, keys: frozenset[str], as_int: bool = False) -> Any:
    """CLI output → what the service sends: timestamps as epoch seconds (awsJson / restJson)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in keys and isinstance(v, str):
                out[k] = int(_epoch(v)) if as_int else _epoch(v)
            else:
                out[k] = _wire(v, keys, as_int)
        return out
    if isinstance(value, list):
        return [_wire(v, keys, as_int) for v in value]
    return value


def _spread(lines: list[LogLine]) -> list[dict[str, Any]]:
    """put_log_events input. CloudWatch's eventIds are fixed-width, so lines of one millisecond keep
    their order when sorted by (timestamp, eventId); moto numbers events with a process-wide counter
    ("99" sorts after "100"), so lines sharing a millisecond are spread 1 ms apart instead."""
    out: list[dict[str, Any]] = []
    for line in lines:
        stamp = ms(line.at)
        if out and stamp <= out[-1]["timestamp"]:
            stamp = out[-1]["timestamp"] + 1
        out.append({"timestamp": stamp, "message": line.message})
    return out


# --- moving the job-37 exports in time --------------------------------------------------------------------

_ISO = re.compile(r"(\d{4}-\d{2}-\d{2})([T ])(\d{2}:\d{2}:\d{2})")
_GO_LOG = re.compile(r"(\d{4}/\d{2}/\d{2}) (\d{2}:\d{2}:\d{2})")
_STREAM_DAY = re.compile(r"^(\d{4}/\d{2}/\d{2})/")


def shift_text(text: str, delta: dt.timedelta) -> str:
    """Every timestamp in a text (ISO 8601, SQL, Go's log prefix) moved by `delta` (whole seconds:
    fractions and offsets are kept as written)."""

    def iso(m: re.Match[str]) -> str:
        t = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(3)}") + delta
        return t.strftime(f"%Y-%m-%d{m.group(2)}%H:%M:%S")

    def go(m: re.Match[str]) -> str:
        t = dt.datetime.strptime(f"{m.group(1)} {m.group(2)}", "%Y/%m/%d %H:%M:%S") + delta
        return t.strftime("%Y/%m/%d %H:%M:%S")

    return _GO_LOG.sub(go, _ISO.sub(iso, text))


def _shift_json(path: Path, delta: dt.timedelta) -> Any:
    return json.loads(shift_text(path.read_text(), delta))


def _stream(name: str, delta: dt.timedelta) -> str:
    m = _STREAM_DAY.match(name)
    if not m:
        return name
    day = dt.datetime.strptime(m.group(1), "%Y/%m/%d") + dt.timedelta(hours=12) + delta
    return day.strftime("%Y/%m/%d/") + name[m.end() :]


# --- a scenario -------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """`diagnose ID --json` of one job, with helpers to look at it."""

    data: dict[str, Any]

    @property
    def roles(self) -> list[tuple[str, str, str]]:
        return [(f["failure_mode"], f["cause"], f["role"]) for f in self.data["findings"]]

    def finding(self, fm: str) -> dict[str, Any]:
        found = [f for f in self.data["findings"] if f["failure_mode"] == fm]
        assert len(found) == 1, f"{fm}: {self.roles}"
        return found[0]

    def refs(self, fm: str) -> set[tuple[str, str, str]]:
        return {(e["kind"], e["source"], e["id"]) for e in self.finding(fm)["evidence"]}

    def items(self, fm: str, kind: str) -> list[dict[str, str]]:
        return [e for e in self.finding(fm)["evidence"] if e["kind"] == kind]


class Scenario:
    """One world: build it (TOQ rows + AWS records), then `run(job_id)`."""

    def __init__(self, servers: Servers, toq_db: ToqMySQL) -> None:
        self.servers = servers
        self.toq_db = toq_db
        self.t0 = (timezone.now() - SCENARIO_AGE).replace(microsecond=0)
        self.world = World(self.t0)
        self.pipeline = Pipeline(self.world)
        self.rows_sql: str | None = None  # the job-37 rows instead of the world's
        self.rows_written = False
        self.published = False
        self.collect_output = ""

    # --- building -----------------------------------------------------------------------------------
    def at(self, minutes: float = 0) -> dt.datetime:
        return self.t0 + dt.timedelta(minutes=minutes)

    def listing(self, listing_id: int, *assets: tuple[int, str, str], user_id: int = 18) -> list[Asset]:
        """A listing with uploaded assets: (asset id, type, file name)."""
        self.world.listing(listing_id, user_id=user_id)
        return [self.world.asset(i, listing_id, t, f) for i, t, f in assets]

    def process(self, job_id: int, assets: list[Asset], *, minutes: float = 0, **plan: Any) -> Run:
        return self.pipeline.process(job_id, assets[0].listing, assets, self.at(minutes), Processing(**plan))

    def finalize(self, job_id: int, listing: int, *, minutes: float = 0, **kwargs: Any) -> Run:
        return self.pipeline.finalize(job_id, listing, self.at(minutes), **kwargs)

    def video_lambda(self, config: dict[str, Any]) -> None:
        self.world.lambda_configs[function_name("video_thumbnails")] = config

    # --- the job-37 incident, from its exports ------------------------------------------------------------
    def load_job37(self) -> dt.timedelta:
        """The real job-37 records (rows, histories, logs, S3, MediaConvert, Lambda configuration),
        every timestamp moved so that job 37 was created at `t0`. Returns the shift."""
        delta = self.t0 - JOB37_CREATED
        w = self.world
        self.rows_sql = shift_text((FIXTURES / "job37_toq_rows.sql").read_text(), delta)
        for describe_path in sorted((JOB37 / "stepfunctions").glob("*.describe-execution.json")):
            describe = _shift_json(describe_path, delta)
            history = _shift_json(
                describe_path.with_name(describe_path.name.replace("describe-execution", "get-execution-history")),
                delta,
            )
            w.executions[describe["executionArn"]] = ExecutionRecord(
                describe["executionArn"], describe, history["events"], {}
            )
        for path in sorted((JOB37 / "logs").glob("*.filter-log-events.json")):
            group = "/aws/lambda/" + path.name.removesuffix(".filter-log-events.json")
            for e in json.loads(path.read_text())["events"]:
                at = dt.datetime.fromtimestamp(e["timestamp"] / 1000, dt.UTC) + delta
                w.logs[group].append(
                    LogLine(group, _stream(e["logStreamName"], delta), at, shift_text(e["message"], delta))
                )
        for line in (JOB37 / "logs" / "toq-server.log.jsonl").read_text().splitlines():
            text = shift_text(line, delta)
            at = dt.datetime.fromisoformat(json.loads(text)["time"][:26] + "+00:00")
            w.logs[SERVER_GROUP].append(LogLine(SERVER_GROUP, SERVER_STREAM, at, text + "\n"))
        w.objects = {
            o["Key"]: (int(o["Size"]), "video/mp4")
            for o in json.loads((JOB37 / "s3" / "list-objects-v2.json").read_text())["Contents"]
        }
        for path in (JOB37 / "mediaconvert").glob("*.get-job.json"):
            job = _shift_json(path, delta)
            w.mediaconvert[job["Job"]["Id"]] = job
        config = _shift_json(
            JOB37 / "lambda" / "listing-media-video_thumbnails-staging.get-function-configuration.json", delta
        )
        self.video_lambda(config)
        return delta

    # --- running -----------------------------------------------------------------------------------------
    def write_rows(self) -> None:
        """TOQ's rows into MariaDB and `toq_sync` (call again after changing rows by hand)."""
        if not self.rows_written:
            self.rows_written = True
            if self.rows_sql is not None:
                self.toq_db.run_script(self.rows_sql)
            else:
                w = self.world
                for user_id, name in w.users.items():
                    add_user(self.toq_db, user_id, name)
                for listing_id, user_id in w.listings.items():
                    add_listing(self.toq_db, listing_id, user_id=user_id)
                for asset in w.assets.values():
                    row = asset.row()
                    add_asset(self.toq_db, row.pop("id"), row.pop("listing_identity_id"), **row)
                for job in w.jobs.values():
                    add_job(self.toq_db, dict(job))
        sync()

    def publish(self) -> None:
        """The AWS side, behind moto and the fake endpoint."""
        if self.published:
            return
        self.published = True
        w, fake = self.world, self.servers.fake
        sfn, logs, s3, sqs = (self.servers.client(s) for s in ("stepfunctions", "logs", "s3", "sqs"))
        role = "arn:aws:iam::123456789012:role/toq-media-processing-stepfunctions-staging"
        machines = {
            name: sfn.create_state_machine(
                name=name, definition=(FIXTURES / "state_machines" / file).read_text(), roleArn=role
            )["stateMachineArn"]
            for name, file in MACHINES.items()
        }
        for sm_arn in machines.values():
            fake.listings[sm_arn] = []
        # Newest first, as ListExecutions answers.
        for arn, record in sorted(w.executions.items(), key=lambda kv: kv[1].describe["startDate"], reverse=True):
            machine = arn.split(":execution:", 1)[1].split(":", 1)[0]
            sfn.start_execution(
                stateMachineArn=machines[machine], name=arn.rsplit(":", 1)[1], input=record.describe["input"]
            )
            describe = fake.describes[arn] = _wire(record.describe, _SFN_TIMES)
            fake.histories[arn] = _wire(record.events, _SFN_TIMES)
            fields = ("executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "redriveCount")
            fake.listings[machines[machine]].append({k: describe[k] for k in fields if k in describe})
        for group, lines in w.logs.items():
            logs.create_log_group(logGroupName=group)
            streams: dict[str, list[LogLine]] = {}
            for line in lines:
                streams.setdefault(line.stream, []).append(line)
            for stream, stream_lines in streams.items():
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                events = _spread(sorted(stream_lines, key=lambda x: x.at))
                for i in range(0, len(events), 500):
                    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i : i + 500])
        s3.create_bucket(Bucket=BUCKET)
        for key, (size, content_type) in w.objects.items():
            # Bodies are stand-ins: only "empty or not" matters to the diagnosis.
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x00" * min(size, 64), ContentType=content_type)
        sqs.create_queue(QueueName="listing-media-processing-staging")
        dlq = sqs.create_queue(QueueName="listing-media-processing-dlq-staging")["QueueUrl"]
        for message in w.dlq:
            sqs.send_message(QueueUrl=dlq, MessageBody=message["Body"], MessageAttributes=message["MessageAttributes"])
        for mc_id, job in w.mediaconvert.items():
            fake.mediaconvert_jobs[mc_id] = _wire(job, _MC_TIMES, as_int=True)
        fake.lambda_configs.update(w.lambda_configs)

    def collect(self, *job_ids: int) -> str:
        out = StringIO()
        args = [a for j in job_ids for a in ("--job", str(j))]
        call_command("collect_aws", *args, stdout=out)
        self.collect_output = out.getvalue()
        return self.collect_output

    def run(self, job_id: int, *others: int) -> Outcome:
        """Rows → sync → AWS → collect_aws --job → diagnose --json."""
        self.write_rows()
        self.publish()
        self.collect(job_id, *others)
        return Outcome(diagnose_json(job_id))

    def diagnose(self, job_id: int, *extra: str) -> Outcome:
        return Outcome(diagnose_json(job_id, *extra))

    # --- checks against what AWS holds -------------------------------------------------------------------
    def log_event_ids(self, group: str, *needles: str) -> list[str]:
        """The CloudWatch eventIds moto gave the lines of `group` that contain every needle."""
        return [str(e["eventId"]) for e in self._events(group) if all(n in e["message"] for n in needles)]

    def _events(self, group: str) -> Iterator[dict[str, Any]]:
        logs = self.servers.client("logs")
        kwargs: dict[str, Any] = {"logGroupName": group}
        while True:
            page = logs.filter_log_events(**kwargs)
            yield from page["events"]
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                return
            kwargs["nextToken"] = token


def configure(servers: Servers, monkeypatch: Any, settings: Any) -> None:
    """Select the servers the way production selects endpoints, with small pages and few retries."""
    servers.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", servers.moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", servers.fake.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_MEDIACONVERT", servers.fake.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", servers.fake.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings.AWS_PAGE_SIZE = 25  # every long list still takes several pages (nextToken followed)
    settings.AWS_MAX_ATTEMPTS = 2
    settings.TOQ_SERVER_LOG_GROUP = SERVER_GROUP
