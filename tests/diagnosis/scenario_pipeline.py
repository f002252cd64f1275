"""TOQ's media pipeline replayed in Python, to build diagnosis scenarios from what it really writes.

A scenario describes a job and what went wrong in it (an ffmpeg error, a validate timeout, a 502 on
the callback...). `process` and `finalize` replay TOQ's code path for it, event by event, and record
what each component leaves behind, in the formats of the job-37 samples
(shared/samples/job37/, tests/fixtures/aws/job37/):

* TOQ's MariaDB rows, as the server's /process, callback handler and reconciler write them
  (reference §3.9, §5);
* the Step Functions executions (`describe-execution` and `get-execution-history`, CLI shape, event
  ids, previousEventId links, retries and catches of the real definitions in
  tests/fixtures/state_machines/);
* the Lambda log lines (START/END/REPORT platform lines, Go slog JSON lines, messages and keys of
  reference §3.11), the TOQ server's slog lines (§3.10);
* the S3 objects the Lambdas and MediaConvert wrote, MediaConvert `get-job`, the Lambda
  configurations (`get-function-configuration`), DLQ messages.

Nothing here talks to a database or a server: scenario_world.py serves these records over HTTP
(moto and a fake AWS endpoint) and writes the rows to MariaDB. Everything is deterministic (seeded).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "toq-listing-medias"
PROCESSING_SM = "listing-media-processing-sm-staging"
FINALIZATION_SM = "listing-media-finalization-sm-staging"
SFN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/toq-media-processing-stepfunctions-staging"
MC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/toq-media-processing-mediaconvert-staging"
MC_QUEUE = f"arn:aws:mediaconvert:{REGION}:{ACCOUNT}:queues/Default"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/listing-media-processing-staging"
SERVER_GROUP = "toq-server"
SERVER_STREAM = "i-0b7e3c9d1f24a6580"
CALLBACK_PATH = "/api/v2/listings/media/callback"
LAMBDA_CLIENT_IP = "44.204.137.91"
RECONCILED = "reconciler marked failed after 30m0s without callback"
DERIVATIVE_ERRORS = "DERIVATIVE_ERRORS_DETECTED"
# The ffmpeg layer that fixed the incident (reference §8, 16:26 / 16:45).
FFMPEG_LAYER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:toq-ffmpeg-layer-staging:5"
PHOTO_SIZES = ("thumbnail", "small", "medium", "large")
# Each Lambda's (memory MB, timeout s), as deployed.
LAMBDA_SIZES = {
    "validate": (512, 60),
    "thumbnails": (2048, 300),
    "video_thumbnails": (1024, 300),
    "consolidate": (128, 3),
    "callback-dispatch": (256, 10),
    "zip": (3008, 900),
}
SIZE_RANK = {"original": 4, "large": 3, "medium": 2, "small": 1, "thumbnail": 0}

# Error texts. FFMPEG_MISSING and IMAGE_UNKNOWN_FORMAT are verbatim (job-37 samples, reference §5);
# the other ffmpeg ones follow §5's `ffmpeg failed: <exec error> | output: <ffmpeg output>` with the
# exec errors it names and FFMPEG_PATH=/opt/bin/ffmpeg; HEAD_404 is §3.4's HeadObject error.
FFMPEG_MISSING = "ffmpeg failed: fork/exec /opt/ffmpeg/ffmpeg: no such file or directory | output: "
FFMPEG_PERMISSION = "ffmpeg failed: fork/exec /opt/bin/ffmpeg: permission denied | output: "
FFMPEG_EXEC_FORMAT = "ffmpeg failed: fork/exec /opt/bin/ffmpeg: exec format error | output: "
FFMPEG_DECODE = (
    "ffmpeg failed: exit status 1 | output: [mov,mp4,m4a,3gp,3g2,mj2 @ 0x5a1c2c0] moov atom not found\n"
    "/tmp/video-input-2318804127.mp4: Invalid data found when processing input\n"
)
IMAGE_UNKNOWN_FORMAT = "failed to decode image: image: unknown format"
HEAD_404 = (
    "failed to head object: operation error S3: HeadObject, https response error StatusCode: 404, "
    "RequestID: {rid}, HostID: {host}, api error NotFound: Not Found"
)


def execution_arn(name: str, machine: str = PROCESSING_SM) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}:{name}"


def state_machine_arn(machine: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine}"


def function_name(cmd: str) -> str:
    return f"listing-media-{cmd}-staging"


def compact(value: Any) -> str:
    """Go encoding/json of a struct: declaration order, no spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def go_sorted(value: Any) -> str:
    """Go encoding/json of a map (the callback Lambda re-serialises the body): keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def sfn_time(t: dt.datetime) -> str:
    """How the AWS CLI prints a Step Functions timestamp (the fraction is omitted when zero)."""
    return t.astimezone(dt.UTC).isoformat()


def iso_ms(t: dt.datetime) -> str:
    """`$$.Execution.StartTime` / `startedAt`: milliseconds and a Z."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def sql_time(t: dt.datetime) -> dt.datetime:
    """A MariaDB TIMESTAMP as TOQ stores it: UTC, whole seconds (MySQL rounds)."""
    return (t + dt.timedelta(microseconds=500_000)).astimezone(dt.UTC).replace(microsecond=0, tzinfo=None)


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


# --- TOQ's rows -------------------------------------------------------------------------------------

_SEGMENT = {
    "PHOTO_VERTICAL": ("photo", "vertical"),
    "PHOTO_HORIZONTAL": ("photo", "horizontal"),
    "VIDEO_VERTICAL": ("video", "vertical"),
    "VIDEO_HORIZONTAL": ("video", "horizontal"),
}


@dataclass
class Asset:
    """A `media_assets` row (reference §2.2) and its S3 keys (§4)."""

    id: int
    listing: int
    asset_type: str
    sequence: int
    filename: str
    size: int
    status: str = "PENDING_UPLOAD"
    s3_key_processed: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    date_folder: str = ""  # older keys: `{L}/raw/video/vertical/2026-01-05/uuid.mp4`

    @property
    def is_video(self) -> bool:
        return self.asset_type.startswith("VIDEO")

    @property
    def media(self) -> str:
        return _SEGMENT[self.asset_type][0]

    @property
    def orientation(self) -> str:
        return _SEGMENT[self.asset_type][1]

    @property
    def basename(self) -> str:
        return f"{self.orientation}-{self.sequence:02d}-{self.filename}"

    @property
    def raw_key(self) -> str:
        folder = f"{self.date_folder}/" if self.date_folder else ""
        return f"{self.listing}/raw/{self.media}/{self.orientation}/{folder}{self.basename}"

    def derivative(self, size: str) -> str:
        """Derivative keys drop the date folder (reference §4)."""
        return f"{self.listing}/processed/{self.media}/{self.orientation}/{size}/{self.basename}"

    @property
    def mp4_key(self) -> str:
        return f"{self.listing}/processed/video/{self.orientation}/original/{self.basename.rsplit('.', 1)[0]}.mp4"

    @property
    def content_type(self) -> str:
        ext = self.filename.rsplit(".", 1)[-1].lower()
        return {"mp4": "video/mp4", "mov": "video/quicktime", "heic": "image/heic", "png": "image/png"}.get(
            ext, "image/jpeg"
        )

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "listing_identity_id": self.listing,
            "asset_type": self.asset_type,
            "sequence": self.sequence,
            "status": self.status,
            "s3_key_raw": self.raw_key,
            "s3_key_processed": self.s3_key_processed,
            "title": None,
            "metadata": json.dumps(self.metadata),
        }


# A Lambda's slog line before it is timed and printed: (level, msg, fields).
Line = tuple[str, str, dict[str, Any]]


def lambda_started(what: str, job_id: int, listing: int, **fields: Any) -> Line:
    """`<what> Lambda started`, the first line every handler logs."""
    return ("INFO", f"{what} Lambda started", {"job_id": job_id, "listing_identity_id": listing, **fields})


@dataclass
class LogLine:
    group: str
    stream: str
    at: dt.datetime
    message: str


@dataclass
class ExecutionRecord:
    """What `describe-execution` and `get-execution-history` print, plus which state each event is in."""

    arn: str
    describe: dict[str, Any]
    events: list[dict[str, Any]]
    states: dict[int, str]  # event id → state name ("" at execution level)

    def ids(self, event_type: str, state: str | None = None) -> list[str]:
        return [
            str(e["id"])
            for e in self.events
            if e["type"] == event_type and (state is None or self.states.get(e["id"]) == state)
        ]


@dataclass
class Run:
    """One job as the scenario built it: its id, execution(s) and the lines worth pointing at."""

    job_id: int
    listing: int
    assets: list[Asset]
    executions: list[ExecutionRecord] = field(default_factory=list)
    callback_body: str | None = None
    mediaconvert_id: str = ""

    @property
    def execution(self) -> ExecutionRecord:
        return self.executions[0]

    @property
    def arn(self) -> str:
        return self.executions[0].arn


class World:
    """Everything TOQ and AWS hold after the scenario's jobs ran. Times relative to `t0`."""

    def __init__(self, t0: dt.datetime, seed: int = 37) -> None:
        self.t0 = t0
        self.rng = random.Random(seed)
        self.users: dict[int, str] = {}
        self.listings: dict[int, int] = {}  # listing id → user id
        self.assets: dict[int, Asset] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.executions: dict[str, ExecutionRecord] = {}
        self.logs: dict[str, list[LogLine]] = defaultdict(list)
        self.objects: dict[str, tuple[int, str]] = {}  # key → (size, content type)
        self.mediaconvert: dict[str, dict[str, Any]] = {}
        self.lambda_configs: dict[str, dict[str, Any]] = {
            function_name(cmd): lambda_config(cmd, t0 - dt.timedelta(days=3, minutes=17 * i), self)
            for i, cmd in enumerate(("validate", "thumbnails", "consolidate", "callback-dispatch", "zip"))
        }
        self.lambda_configs[function_name("video_thumbnails")] = video_lambda_fixed(
            t0 - dt.timedelta(days=2, hours=5), self
        )
        self.dlq: list[dict[str, Any]] = []
        self._streams: dict[str, str] = {}
        self._warm: set[str] = set()

    # --- ids -------------------------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(4 * digits):0{digits}x}"

    # --- TOQ rows --------------------------------------------------------------------------------
    def listing(self, listing_id: int, *, user_id: int = 18) -> int:
        self.users.setdefault(user_id, "Bruno Henrique Castilho")
        self.listings[listing_id] = user_id
        return listing_id

    def asset(
        self,
        asset_id: int,
        listing: int,
        asset_type: str,
        filename: str,
        *,
        sequence: int | None = None,
        size: int = 3_912_407,
        status: str = "PENDING_UPLOAD",
        date_folder: str = "",
    ) -> Asset:
        seq = sequence if sequence is not None else 1 + sum(1 for a in self.assets.values() if a.listing == listing)
        asset = Asset(asset_id, listing, asset_type, seq, filename, size, status=status, date_folder=date_folder)
        checksum = base64.b64encode(hashlib.sha256(f"{asset_id}{filename}".encode()).digest()).decode()
        asset.metadata = {
            "checksum": checksum,
            "filename": filename,
            "size_bytes": str(size),
            "content_type": asset.content_type,
            "requested_by": str(self.listings.get(listing, 18)),
        }
        self.assets[asset_id] = asset
        self.objects[asset.raw_key] = (size, asset.content_type)  # the client's upload landed
        return asset

    def listing_assets(self, listing: int) -> list[Asset]:
        return [a for a in self.assets.values() if a.listing == listing]

    # --- logs ------------------------------------------------------------------------------------
    def log(self, group: str, stream: str, at: dt.datetime, message: str) -> None:
        self.logs[group].append(LogLine(group, stream, at, message if message.endswith("\n") else message + "\n"))

    def go_time(self, t: dt.datetime) -> str:
        return (
            t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}{self.rng.randrange(1000):03d}Z"
        )

    def slog(self, t: dt.datetime, level: str, msg: str, **fields: Any) -> str:
        return compact({"time": self.go_time(t), "level": level, "msg": msg, **fields})

    def server(self, t: dt.datetime, level: str, msg: str, **fields: Any) -> None:
        """A TOQ server line (slog JSON), shipped to the server's log group."""
        self.log(SERVER_GROUP, SERVER_STREAM, t, self.slog(t, level, msg, **fields))

    def stream(self, cmd: str, t: dt.datetime) -> str:
        if cmd not in self._streams:
            self._streams[cmd] = t.strftime("%Y/%m/%d/") + "[$LATEST]" + self.hex(32)
        return self._streams[cmd]

    def invoke(
        self,
        cmd: str,
        t: dt.datetime,
        lines: list[Line],
        *,
        duration_ms: float,
        error: tuple[str, str] | None = None,
        timeout_s: int | None = None,
    ) -> str:
        """One Lambda invocation's log lines from `t` (START) on; returns its RequestId.
        `error`: the (message, type) the handler returned; `timeout_s`: it timed out after that long."""
        memory = LAMBDA_SIZES[cmd][0]
        group = f"/aws/lambda/{function_name(cmd)}"
        stream = self.stream(cmd, t)
        rid = self.uuid()
        init = ""
        if cmd not in self._warm:
            self._warm.add(cmd)
            init = f"\tInit Duration: {self.rng.uniform(90, 160):.2f} ms"
            self.log(
                group,
                stream,
                t - dt.timedelta(milliseconds=140),
                "INIT_START Runtime Version: provided:al2.v117\tRuntime Version ARN: "
                "arn:aws:lambda:us-east-1::runtime:7e41a0b9c3d58f26e1b7a94c05d3f8e2b6a19c7d40e5f3b28a6c1d9e0f74b352",
            )
        self.log(group, stream, t, f"START RequestId: {rid} Version: $LATEST")
        step = min(duration_ms / (len(lines) + 1), 50.0)  # every line before END
        for i, (level, msg, fields) in enumerate(lines, start=1):
            at = t + dt.timedelta(milliseconds=step * i)
            self.log(group, stream, at, self.slog(at, level, msg, **fields))
        end = t + dt.timedelta(milliseconds=duration_ms)
        if error is not None:
            message, error_type = error
            self.log(
                group,
                stream,
                end,
                end.strftime("%Y/%m/%d %H:%M:%S ") + compact({"errorMessage": message, "errorType": error_type}),
            )
        status = ""
        if timeout_s is not None:
            stamp = end.strftime("%Y-%m-%dT%H:%M:%S.") + f"{end.microsecond // 1000:03d}Z"
            self.log(group, stream, end, f"{stamp} {rid} Task timed out after {timeout_s:.2f} seconds")
            status = "\tStatus: timeout"
        self.log(group, stream, end, f"END RequestId: {rid}")
        used = self.rng.randrange(19, 90) if timeout_s is None else memory
        self.log(
            group,
            stream,
            end + dt.timedelta(milliseconds=1),
            f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {int(duration_ms) + 1} ms\t"
            f"Memory Size: {memory} MB\tMax Memory Used: {used} MB{init}{status}\t",
        )
        return rid


def lambda_config(cmd: str, last_modified: dt.datetime, world: World) -> dict[str, Any]:
    """`aws lambda get-function-configuration`, shaped like the video_thumbnails sample."""
    memory, timeout = LAMBDA_SIZES[cmd]
    name = function_name(cmd)
    env: dict[str, str] = {}
    if cmd == "callback-dispatch":
        env = {"CALLBACK_URL": "https://api.staging.toq.example/api/v2/listings/media/callback", "CALLBACK_SECRET": "x"}
    elif cmd == "validate":
        env = {"STATE_MACHINE_ARN": state_machine_arn(PROCESSING_SM)}
    config: dict[str, Any] = {
        "FunctionName": name,
        "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "Runtime": "provided.al2",
        "Role": f"arn:aws:iam::{ACCOUNT}:role/toq-media-processing-lambdas-staging",
        "Handler": "bootstrap",
        "CodeSize": 7_000_000 + world.rng.randrange(900_000),
        "Description": "",
        "Timeout": timeout,
        "MemorySize": memory,
        "LastModified": last_modified.strftime("%Y-%m-%dT%H:%M:%S.") + f"{last_modified.microsecond // 1000:03d}+0000",
        "CodeSha256": base64.b64encode(hashlib.sha256(f"{name}{last_modified}".encode()).digest()).decode(),
        "Version": "$LATEST",
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": world.uuid(),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "RuntimeVersionConfig": {
            "RuntimeVersionArn": "arn:aws:lambda:us-east-1::runtime:7e41a0b9c3d58f26e1b7a94c05d3f8e2b6a19c7d40e5f3b28a6c1d9e0f74b352"
        },
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"},
    }
    if env:
        config["Environment"] = {"Variables": env}
    return config


def video_lambda_incident(last_modified: dt.datetime, world: World) -> dict[str, Any]:
    """The video-thumbnail function as scripts/deploy_lambdas.sh @2d2a5006 created it: no layer, no
    environment, the backend role (the job-37 sample's configuration)."""
    config = lambda_config("video_thumbnails", last_modified, world)
    config["Role"] = f"arn:aws:iam::{ACCOUNT}:role/toq-media-processing-backend-staging"
    config.pop("Environment", None)
    return config


def video_lambda_fixed(last_modified: dt.datetime, world: World) -> dict[str, Any]:
    """After the fix (06a56cb3/f1f61f08): the ffmpeg layer and FFMPEG_PATH=/opt/bin/ffmpeg."""
    config = lambda_config("video_thumbnails", last_modified, world)
    config["Environment"] = {"Variables": {"FFMPEG_PATH": "/opt/bin/ffmpeg"}}
    config["Layers"] = [{"Arn": FFMPEG_LAYER, "CodeSize": 28_734_112}]
    return config


# --- Step Functions history -----------------------------------------------------------------------

# A parallel branch's end: (last event key, time, output, the error if it failed after its retries).
Branch = tuple[int, dt.datetime, Any, "tuple[str, str] | None"]


class History:
    """Events with their own clocks (parallel branches run at the same time); `finish` orders them
    by time, numbers them and turns the provisional previous-event links into event ids."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._keys = 0
        self.ids: dict[int, int] = {}  # provisional key → event id (after finish)

    def drop(self, key: int) -> int:
        """Remove an event (one AWS would not have written); returns its previous event's key."""
        event = next(e for e in self._events if e["_k"] == key)
        self._events.remove(event)
        return int(event["_prev"])

    def truncate_after(self, t: dt.datetime) -> None:
        """Forget what branches would have done after the execution failed at `t`."""
        self._events = [e for e in self._events if e["_t"] <= t]

    def add(
        self,
        t: dt.datetime,
        event_type: str,
        prev: int,
        details_key: str | None = None,
        details: dict[str, Any] | None = None,
        *,
        state: str = "",
    ) -> int:
        self._keys += 1
        key = self._keys
        event: dict[str, Any] = {"_k": key, "_prev": prev, "_t": t, "_state": state, "type": event_type}
        if details_key is not None:
            event[details_key] = details or {}
        self._events.append(event)
        return key

    def entered(self, t: dt.datetime, kind: str, prev: int, name: str, state_input: Any) -> int:
        """`{kind}StateEntered` of state `name` (kind: Task, Choice, Pass, Parallel, Succeed, Fail)."""
        details = {"name": name, **_io(state_input)}
        return self.add(t, f"{kind}StateEntered", prev, "stateEnteredEventDetails", details, state=name)

    def exited(self, t: dt.datetime, kind: str, prev: int, name: str, output: Any) -> int:
        details = {"name": name, **_io(output, "output")}
        return self.add(t, f"{kind}StateExited", prev, "stateExitedEventDetails", details, state=name)

    def started(self, t: dt.datetime, exec_input: Any) -> int:
        return self.add(
            t, "ExecutionStarted", 0, "executionStartedEventDetails", {**_io(exec_input), "roleArn": SFN_ROLE}
        )

    def failed(self, t: dt.datetime, prev: int, error: str, cause: str) -> int:
        return self.add(t, "ExecutionFailed", prev, "executionFailedEventDetails", {"error": error, "cause": cause})

    def succeeded(self, t: dt.datetime, prev: int, name: str, *, end_after_ms: float = 0) -> dt.datetime:
        """A Succeed state (entered and exited at `t`), then ExecutionSucceeded; returns the stop time."""
        exited = self.exited(t, "Succeed", self.entered(t, "Succeed", prev, name, "null"), name, "null")
        t += dt.timedelta(milliseconds=end_after_ms)
        self.add(t, "ExecutionSucceeded", exited, "executionSucceededEventDetails", _io("null", "output"))
        return t

    def check_videos(
        self,
        t: dt.datetime,
        prev: int,
        state: dict[str, Any],
        check: str,
        skip: str,
        status: str,
        *,
        exit_ms: float,
        next_ms: float,
    ) -> tuple[int, dt.datetime, Branch | None]:
        """A video branch's Choice on `$.validation.hasVideos`: returns its exit, when the next state is
        entered and, without videos, the branch as the Pass state `skip` ended it."""
        chosen, t = self.choice(t, prev, check, state, exit_ms=exit_ms, next_ms=next_ms)
        skipped = None if state["validation"]["hasVideos"] else self.skip(t, chosen, skip, state, status)
        return chosen, t, skipped

    def choice(
        self, t: dt.datetime, prev: int, name: str, state: Any, *, exit_ms: float, next_ms: float
    ) -> tuple[int, dt.datetime]:
        """A Choice state passing `state` on; returns its exit and when the next state is entered."""
        entered = self.entered(t, "Choice", prev, name, state)
        t += dt.timedelta(milliseconds=exit_ms)
        chosen = self.exited(t, "Choice", entered, name, state)
        return chosen, t + dt.timedelta(milliseconds=next_ms)

    def skip(self, t: dt.datetime, prev: int, name: str, state: Any, status: str) -> Branch:
        """A Pass state whose Result `{"status": ...}` ends the branch."""
        skipped = {"status": status}
        entered = self.entered(t, "Pass", prev, name, state)
        t += dt.timedelta(milliseconds=2)
        return self.exited(t, "Pass", entered, name, skipped), t, skipped, None

    def finish(self, arn: str) -> ExecutionRecord:
        ordered = sorted(self._events, key=lambda e: (e["_t"], e["_k"]))
        ids = self.ids = {e["_k"]: i for i, e in enumerate(ordered, start=1)}
        events, states = [], {}
        for e in ordered:
            out = {"timestamp": sfn_time(e["_t"]), "type": e["type"], "id": ids[e["_k"]]}
            out["previousEventId"] = ids.get(e["_prev"], 0)
            out.update({k: v for k, v in e.items() if not k.startswith("_") and k != "type"})
            events.append(out)
            states[ids[e["_k"]]] = e["_state"]
        return ExecutionRecord(arn=arn, describe={}, events=events, states=states)


def _io(value: Any, key: str = "input") -> dict[str, Any]:
    text = value if isinstance(value, str) else compact(value)
    return {key: text, f"{key}Details": {"truncated": False}}


@dataclass
class Attempt:
    """One try of a Lambda task: success with `output`, or a failure (Step Functions error, cause)."""

    duration_ms: float
    output: Any = None
    error: tuple[str, str] | None = None


def lambda_task(
    h: History,
    t: dt.datetime,
    prev: int,
    state: str,
    cmd: str,
    state_input: Any,
    task_input: Any,
    attempts: Callable[[int, dt.datetime], Attempt],
    *,
    max_attempts: int,
    interval: float,
    backoff: float = 2.0,
    timeout: int,
    catch: bool,
    result_path: str | None = None,
) -> tuple[int, dt.datetime, Any, tuple[str, str] | None]:
    """A Task state on a Lambda with its Retry (States.TaskFailed) and Catch (States.ALL → $.error).

    `attempts(n, start)` runs try n (emitting the function's log lines) and says how it ended.
    Returns (last event key, time, state output, the error if every try failed)."""
    last = h.entered(t, "Task", prev, state, state_input)
    wait = interval
    error: tuple[str, str] | None = None
    result: Any = None
    for n in range(1, max_attempts + 1):
        t += dt.timedelta(milliseconds=9)
        scheduled = h.add(
            t,
            "LambdaFunctionScheduled",
            last,
            "lambdaFunctionScheduledEventDetails",
            {
                "resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name(cmd)}",
                **_io(task_input),
                "timeoutInSeconds": timeout,
            },
            state=state,
        )
        started = h.add(t + dt.timedelta(milliseconds=30), "LambdaFunctionStarted", scheduled, state=state)
        attempt = attempts(n, t + dt.timedelta(milliseconds=35))
        t += dt.timedelta(milliseconds=35 + attempt.duration_ms + 15)
        if attempt.error is None:
            result = attempt.output
            last = h.add(
                t,
                "LambdaFunctionSucceeded",
                started,
                "lambdaFunctionSucceededEventDetails",
                _io(compact(attempt.output), "output"),
                state=state,
            )
            error = None
            break
        error = attempt.error
        last = h.add(
            t,
            "LambdaFunctionFailed",
            started,
            "lambdaFunctionFailedEventDetails",
            {"error": error[0], "cause": error[1]},
            state=state,
        )
        if n < max_attempts:
            t += dt.timedelta(seconds=wait)
            wait *= backoff
    if error is not None and not catch:
        return last, t, None, error
    t += dt.timedelta(milliseconds=7)
    if error is not None:
        output = {**state_input, "error": {"Error": error[0], "Cause": error[1]}}
    elif result_path:
        output = {**state_input, result_path: result}
    else:
        output = result
    return h.exited(t, "Task", last, state, compact(output)), t, output, error


# --- the processing pipeline ------------------------------------------------------------------------


@dataclass
class Processing:
    """What happens to one processing job. Defaults: everything works (HEAD code, reference §3.6)."""

    trigger: str = "ok"  # ok / unparseable / bad_assets / start_failed / lost
    start_error: str = ""  # validate's `Failed to start Step Function` error (FM-06)
    duplicate: bool = False  # the SQS message was delivered twice: two executions (FM-08)
    head_errors: dict[int, str] = field(default_factory=dict)  # asset id → HEAD error (FM-10)
    image_errors: dict[int, str] = field(default_factory=dict)  # asset id → THUMBNAIL_PROCESSING_FAILED
    video_errors: dict[int, str] = field(default_factory=dict)  # asset id → VIDEO_THUMBNAIL_FAILED
    empty_thumbnails: set[int] = field(default_factory=set)  # ffmpeg exit 0, no frame (FM-12 silent)
    orphan_sources: set[int] = field(default_factory=set)  # image Lambda names the key without its date folder
    validate_failure: tuple[str, str] | None = None  # (error, cause) of every ValidateRawAssets try (FM-09)
    branch_failure: tuple[str, str, str] | None = None  # (state, error, cause) of a branch task (FM-13)
    mediaconvert_failure: tuple[str, str] | None = None  # createJob rejected (FM-15)
    mediaconvert_error: tuple[int, str] | None = None  # the transcode itself failed (FM-17)
    no_video_paths: bool = False  # validate before 2026-01-05 14:21: no videoInput (FM-16)
    consolidate: str = "head"  # head / escalate (the 2026-01-05 15:54 build) / fail
    consolidate_failure: tuple[str, str] | None = None
    data_limit: bool = False  # consolidate's output over 256 KB (FM-14c)
    answers: list[str] = field(default_factory=lambda: ["200"])  # TOQ's (or a proxy's) answer per callback try
    quirks: set[str] = field(default_factory=set)  # listing_mismatch / asset_lookup_error (callback handling)


def asset_error_fields(asset: Asset, errors: dict[int, str]) -> dict[str, Any]:
    """The `key` and `error` fields of a thumbnail Lambda's line about an asset that failed."""
    return {"key": asset.raw_key, "error": errors[asset.id]}


def branch_error(asset: Asset, code: str, errors: dict[int, str]) -> dict[str, str]:
    """An item of a thumbnail branch's `errors`."""
    return {"sourceKey": asset.raw_key, "errorCode": code, "errorMessage": errors[asset.id]}


def branch_output(generated: list[dict[str, str]], errors: list[dict[str, str]]) -> dict[str, Any]:
    """What a thumbnail Lambda returns (its Task state's output)."""
    return {"body": {"status": "SUCCESS", "generatedAssets": generated, "errors": errors}}


def job_row(
    job_id: int,
    listing: int,
    created: dt.datetime,
    *,
    status: str = "PENDING",
    provider: str = "STEP_FUNCTIONS",
    execution: str | None = None,
    started: dt.datetime | None = None,
) -> dict[str, Any]:
    """A `media_processing_jobs` row as TOQ inserts it (PENDING on /process, RUNNING on /complete)."""
    return {
        "id": job_id,
        "listing_identity_id": listing,
        "status": status,
        "provider": provider,
        "external_id": execution,
        "payload": None,
        "retry_count": 0,
        "started_at": sql_time(started) if started is not None else None,
        "completed_at": None,
        "last_error": None,
        "callback_body": None,
        "created_at": sql_time(created),
    }


class Pipeline:
    def __init__(self, world: World) -> None:
        self.w = world

    # --- TOQ server -------------------------------------------------------------------------------
    def toq_process(self, job_id: int, listing: int, assets: list[Asset], at: dt.datetime) -> dict[str, Any]:
        """POST /uploads/process: job PENDING, assets PROCESSING, one SQS message (reference §3.2)."""
        w = self.w
        for a in assets:
            a.status = "PROCESSING"
        w.jobs[job_id] = job_row(job_id, listing, at)
        rid, message_id = w.hex(32), w.uuid()
        sent = at + dt.timedelta(milliseconds=121)
        w.server(
            sent,
            "INFO",
            "adapter.sqs.media.send_success",
            request_id=rid,
            queue=QUEUE_URL,
            listing_identity_id=listing,
            message_id=message_id,
        )
        w.server(
            sent + dt.timedelta(milliseconds=3),
            "INFO",
            "service.media.process.started",
            request_id=rid,
            listing_identity_id=listing,
            assets_count=len(assets),
            job_id=job_id,
        )
        return {
            "message_id": message_id,
            "sent": sent,
            "body": compact(
                {
                    "jobId": job_id,
                    "listingIdentityId": listing,
                    "assets": [{"key": a.raw_key, "type": a.asset_type} for a in assets],
                    "retry": 0,
                }
            ),
        }

    def toq_callback(self, raw: str, at: dt.datetime, quirks: AbstractSet[str] = frozenset()) -> None:
        """The server's callback handling (reference §3.9), for a request it accepted."""
        w = self.w
        body = json.loads(raw)
        rid = w.hex(32)
        job_id = int(body["jobId"])
        status = str(body.get("status") or "UNKNOWN").strip().upper()
        provider = str(body.get("provider") or "").strip().upper()
        self._received(at, rid, job_id, status, forwarded_as=provider)
        job = w.jobs[job_id]
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        code = str(error.get("code") or "").upper()
        message = str(error.get("message") or "")
        job["callback_body"] = raw
        if not job["external_id"] and body.get("executionArn"):
            job["external_id"] = body["executionArn"]
        if job["started_at"] is None and body.get("startedAt"):
            job["started_at"] = sql_time(dt.datetime.fromisoformat(body["startedAt"].replace("Z", "+00:00")))
        mapped = {
            "SUCCEEDED": "SUCCEEDED",
            "PARTIAL_SUCCESS": "PARTIAL_SUCCESS",
            "FAILED": "FAILED",
            "PROCESSING_FAILED": "FAILED",
            "VALIDATION_FAILED": "FAILED",
            "TIMED_OUT": "FAILED",
        }.get(status)
        if "listing_mismatch" in quirks:
            w.server(
                at,
                "WARN",
                "service.media.callback.listing_mismatch",
                request_id=rid,
                job_id=job_id,
                job_listing=job["listing_identity_id"],
                payload_listing=body.get("listingIdentityId"),
            )
        if mapped is None:  # FM-25: FINALIZATION_FAILED and unknown statuses change nothing else
            self._access(at, rid, 200)
            return
        job["status"] = mapped
        job["completed_at"] = sql_time(at)
        if provider == "STEP_FUNCTIONS_FINALIZATION" and mapped == "SUCCEEDED":
            job["payload"] = json.dumps(
                {k: body.get(k) for k in ("zipBundles", "assetsZipped", "zipSizeBytes", "unzippedSizeBytes")}
            )
        fragments = [f"code={code}" if code else "", message, str(body.get("failureReason") or "")]
        job["last_error"] = " | ".join(f for f in fragments if f) or None
        outputs = body.get("outputs") or []
        listing_assets = w.listing_assets(job["listing_identity_id"])
        failed_codes: dict[str, int] = defaultdict(int)
        processed = 0
        for out in outputs:
            asset = next((a for a in listing_assets if a.raw_key == out.get("rawKey")), None)
            if asset is None or "asset_lookup_error" in quirks:
                w.server(
                    at,
                    "ERROR",
                    "service.media.callback.asset_lookup_error",
                    request_id=rid,
                    asset_id=asset.id if asset else 0,
                    raw_key=out.get("rawKey"),
                    err="sql: no rows in result set",
                )
                quirks = quirks - {"asset_lookup_error"}
                continue
            if out.get("errorCode") or out.get("errorMessage"):
                asset.status = "FAILED"
                asset.metadata = {**asset.metadata, "errorCode": out.get("errorCode"), "error": out.get("errorMessage")}
                failed_codes[str(out.get("errorCode"))] += 1
            elif not out.get("processedKey"):
                asset.status = "FAILED"
                asset.metadata = {
                    **asset.metadata,
                    "errorCode": "MISSING_PROCESSED_KEY",
                    "error": "processed asset returned without processedKey",
                }
                w.server(
                    at,
                    "WARN",
                    "service.media.callback.processed_missing_key",
                    request_id=rid,
                    asset_id=asset.id,
                    raw_key=asset.raw_key,
                )
                w.server(
                    at,
                    "WARN",
                    "service.media.callback.asset_result_error",
                    request_id=rid,
                    asset_id=asset.id,
                    err="processed asset returned without processedKey",
                )
                failed_codes["MISSING_PROCESSED_KEY"] += 1
            else:
                asset.status = "PROCESSED"
                asset.s3_key_processed = out["processedKey"]
                asset.metadata = {
                    **asset.metadata,
                    "thumbnailKey": out.get("thumbnailKey"),
                    **(out.get("outputs") or {}),
                }
                processed += 1
        if mapped == "FAILED" and not outputs:
            for a in listing_assets:  # FM-28: the fail-safe
                if a.status == "PROCESSING":
                    a.status = "FAILED"
            if code or message:
                w.server(
                    at,
                    "WARN",
                    "service.media.callback.no_results_failure",
                    request_id=rid,
                    job_id=job_id,
                    status=status,
                    callback_error_code=code,
                    callback_error=message,
                    callback_error_metadata=None,
                )
        partial = mapped == "PARTIAL_SUCCESS"
        if failed_codes:
            w.server(
                at,
                "WARN",
                "service.media.callback.assets_failed",
                request_id=rid,
                job_id=job_id,
                failed_assets=sum(failed_codes.values()),
                error_codes=dict(failed_codes),
                callback_error_code=code,
                callback_error_metadata=None,
                partial_success=partial,
            )
        if processed:
            w.server(
                at,
                "INFO",
                "service.media.callback.assets_processed",
                request_id=rid,
                job_id=job_id,
                processed_assets=processed,
                partial_success=partial,
            )
        self._access(at, rid, 200)

    def _received(
        self, at: dt.datetime, rid: str, job_id: int, status: Any, *, forwarded_as: str | None = None
    ) -> None:
        """The handler's forward line (when it got that far) and the service's received line."""
        if forwarded_as is not None:
            self.w.server(
                at, "INFO", "handler.media.callback.forward", job_id=job_id, status=status, provider=forwarded_as
            )
        self.w.server(at, "INFO", "service.media.callback.received", request_id=rid, job_id=job_id, status=status)

    def _access(self, at: dt.datetime, rid: str, status: int) -> None:
        msg = "HTTP Request" if status < 400 else ("HTTP Response" if status < 500 else "HTTP Error")
        self.w.server(
            at + dt.timedelta(milliseconds=6),
            "INFO" if status < 400 else ("WARN" if status < 500 else "ERROR"),
            msg,
            request_id=rid,
            method="POST",
            path=CALLBACK_PATH,
            status=status,
            duration=7_099_583,
            size=45,
            client_ip=LAMBDA_CLIENT_IP,
            user_agent="Go-http-client/2.0",
        )

    def toq_answer(self, answer: str, raw: str, at: dt.datetime, quirks: AbstractSet[str]) -> int:
        """What the callback's POST gets back: TOQ handles it, rejects it, or a proxy answers."""
        w = self.w
        if answer == "200":
            self.toq_callback(raw, at, quirks)
            return 200
        rid = w.hex(32)
        job_id = json.loads(raw)["jobId"]
        if answer == "403":  # FM-21: secrets differ
            w.server(at, "WARN", "adapter.stepfunctions.callback.signature_mismatch", request_id=rid)
            self._access(at, rid, 403)
        elif answer == "404":  # FM-23: the row is gone
            self._received(at, rid, job_id, json.loads(raw).get("status"), forwarded_as="STEP_FUNCTIONS")
            w.server(at, "WARN", "service.media.callback.job_not_found", request_id=rid, job_id=job_id)
            self._access(at, rid, 404)
        elif answer == "500":  # FM-24
            self._received(at, rid, job_id, json.loads(raw).get("status"))
            w.server(
                at,
                "ERROR",
                "service.media.callback.update_job_error",
                request_id=rid,
                job_id=job_id,
                err="Error 1205 (HY000): Lock wait timeout exceeded; try restarting transaction",
            )
            self._access(at, rid, 500)
        # "502" and "transport": a proxy answered / nothing answered; TOQ logs nothing
        return int(answer) if answer.isdigit() else 0

    # --- Lambda tries ------------------------------------------------------------------------------
    def _failed_try(
        self,
        cmd: str,
        at: dt.datetime,
        lines: list[Line],
        error: tuple[str, str],
        *,
        duration_ms: float,
        timeout_s: int | None = None,
    ) -> Attempt:
        """A try Step Functions reports as `error` (error, cause); `{rid}` in the cause is the RequestId."""
        rid = self.w.invoke(cmd, at, lines, duration_ms=duration_ms, timeout_s=timeout_s)
        return Attempt(duration_ms, error=(error[0], error[1].replace("{rid}", rid)))

    def _returned_error(
        self,
        cmd: str,
        at: dt.datetime,
        lines: list[Line],
        message: str,
        error_type: str,
        *,
        duration_ms: float,
    ) -> Attempt:
        """A try whose Go handler returned an error: Step Functions' error is its type, the cause its JSON."""
        self.w.invoke(cmd, at, lines, duration_ms=duration_ms, error=(message, error_type))
        return Attempt(duration_ms, error=(error_type, compact({"errorMessage": message, "errorType": error_type})))

    # --- the callback Lambda ---------------------------------------------------------------------
    def callback_attempt(self, t: dt.datetime, body: dict[str, Any], answer: str, quirks: AbstractSet[str]) -> Attempt:
        w = self.w
        raw = go_sorted(body)
        lines: list[Line] = [
            lambda_started("Callback", body["jobId"], int(body["listingIdentityId"]), batch_id=None),
            ("INFO", "Sending callback payload", {"payload": raw}),
        ]
        outputs = body.get("outputs") or []
        codes: dict[str, int] = defaultdict(int)
        for out in outputs:
            if out.get("errorCode"):
                codes[out["errorCode"]] += 1
        if body.get("status") != "SUCCEEDED" or codes:
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            lines.append(
                (
                    "WARN",
                    "Callback payload telemetry",
                    {
                        "job_id": body["jobId"],
                        "listing_identity_id": int(body["listingIdentityId"]),
                        "status": body.get("status"),
                        "failure_reason": body.get("failureReason", ""),
                        "callback_error_code": str(error.get("code") or "").upper(),
                        "asset_error_codes": dict(codes),
                    },
                )
            )
        sent_at = t + dt.timedelta(milliseconds=80)
        status = self.toq_answer(answer, raw, sent_at, quirks)
        if status == 0:
            err = f'failed to send callback: Post "https://api.staging.toq.example{CALLBACK_PATH}": dial tcp 203.0.113.10:443: connect: connection refused'
            lines.append(("ERROR", "Callback request failed", {"error": err}))
        else:
            lines.append(("INFO", "Callback response received", {"status_code": status, "batch_id": None}))
            err = "" if status < 400 else f"callback failed with status: {status}"
            if not err:
                lines.append(("INFO", "Callback sent successfully", {"status": status}))
        if err:
            return self._returned_error("callback-dispatch", t, lines, err, "errorString", duration_ms=97.2)
        w.invoke("callback-dispatch", t, lines, duration_ms=97.2)
        return Attempt(97.2, output=None)

    # --- one processing job ----------------------------------------------------------------------
    def process(self, job_id: int, listing: int, assets: list[Asset], at: dt.datetime, plan: Processing) -> Run:
        w = self.w
        run = Run(job_id, listing, assets)
        sqs = self.toq_process(job_id, listing, assets, at)
        message = {
            "MessageId": sqs["message_id"],
            "Body": sqs["body"],
            "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(ms(sqs["sent"]))},
            "MessageAttributes": {
                "ListingIdentityId": {"StringValue": str(listing), "DataType": "String"},
                "JobId": {"StringValue": str(job_id), "DataType": "String"},
                "RetryCount": {"StringValue": "0", "DataType": "String"},
            },
        }
        t = sqs["sent"] + dt.timedelta(milliseconds=290)
        if plan.trigger == "lost":  # FM-07: no event-source mapping: nothing ever reads the queue
            return run
        if plan.trigger == "unparseable":  # FM-05: a body re-sent by hand, jobId as a string
            body = sqs["body"].replace(f'"jobId":{job_id}', f'"jobId":"{job_id}"')
            error = "json: cannot unmarshal string into Go struct field MediaProcessingJobMessage.jobId of type uint64"
            self._validate_trigger(
                t, message, body, [("ERROR", "Failed to unmarshal SQS body structure", {"error": error, "body": body})]
            )
            return run
        if plan.trigger == "bad_assets":  # FM-05: assets neither objects nor key strings
            keys = ",".join(a.raw_key for a in assets)
            body = compact({"jobId": job_id, "listingIdentityId": listing, "assets": keys, "retry": 0})
            self._validate_trigger(t, message, body, [("ERROR", "Failed to parse assets as struct or string", {})])
            return run
        if plan.trigger == "start_failed":  # FM-06: five receives, then the DLQ
            for receive in range(1, 6):
                msg = {**message, "Attributes": {**message["Attributes"], "ApproximateReceiveCount": str(receive)}}
                self._validate_trigger(
                    t,
                    msg,
                    sqs["body"],
                    [("ERROR", "Failed to start Step Function", {"error": plan.start_error, "job_id": job_id})],
                )
                t += dt.timedelta(seconds=61)
            w.dlq.append({"Body": sqs["body"], "MessageAttributes": message["MessageAttributes"]})
            return run
        deliveries = 2 if plan.duplicate else 1
        for delivery in range(deliveries):
            name = w.uuid()
            arn = execution_arn(name)
            start = t + dt.timedelta(milliseconds=27)
            self._validate_trigger(
                t,
                message,
                sqs["body"],
                [("INFO", "Started Step Function execution", {"job_id": job_id, "execution_arn": arn})],
            )
            record = self._execution(run, arn, start, plan, last=delivery == deliveries - 1)
            run.executions.append(record)
            w.executions[arn] = record
            t = start + dt.timedelta(seconds=43)  # a redelivery after the visibility timeout
        return run

    def _validate_trigger(self, t: dt.datetime, message: dict[str, Any], body: str, lines: list[Line]) -> None:
        """The validate Lambda invoked by SQS (reference §3.11)."""
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": "AQEB" + base64.b64encode(self.w.rng.randbytes(120)).decode(),
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"],
                "SentTimestamp": message["Attributes"]["SentTimestamp"],
                "SenderId": "AROA2X5ZQ7K3HVNU4LMRT:i-0b7e3c9d1f24a6580",
                "ApproximateFirstReceiveTimestamp": str(ms(t)),
            },
            "messageAttributes": {
                k: {
                    "stringValue": v["StringValue"],
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": "String",
                }
                for k, v in message["MessageAttributes"].items()
            },
            "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:listing-media-processing-staging",
            "awsRegion": REGION,
        }
        self.w.invoke(
            "validate",
            t,
            [
                ("INFO", "Validate Lambda received raw event", {"raw_event": compact({"Records": [record]})}),
                ("INFO", "Detected SQS Event", {"record_count": 1}),
                ("INFO", "Processing SQS record", {"message_id": message["MessageId"]}),
                *lines,
            ],
            duration_ms=58.52,
        )

    def _execution(self, run: Run, arn: str, start: dt.datetime, plan: Processing, *, last: bool) -> ExecutionRecord:
        """One processing execution of the real definition (tests/fixtures/state_machines/)."""
        w = self.w
        job_id, listing, assets = run.job_id, run.listing, run.assets
        h = History()
        exec_input = {
            "jobId": job_id,
            "listingIdentityId": listing,
            "assets": [{"key": a.raw_key, "type": a.asset_type} for a in assets],
            "imageAssets": None,
            "videoAssets": None,
            "hasImages": False,
            "hasVideos": False,
            "traceparent": "",
        }
        h.started(start, exec_input)
        t = start + dt.timedelta(milliseconds=40)
        # ValidateRawAssets ---------------------------------------------------------------------
        validated = self._validated(run, plan)

        def validate(n: int, at: dt.datetime) -> Attempt:
            lines: list[Line] = [
                ("INFO", "Validate Lambda received raw event", {"raw_event": compact(exec_input)}),
                lambda_started("Validate", job_id, listing, input_assets_count=len(assets)),
            ]
            if plan.validate_failure:
                timeout = 60 if "Timedout" in plan.validate_failure[0] else None
                duration = 60000.0 if timeout else 31.0
                return self._failed_try(
                    "validate", at, lines, plan.validate_failure, duration_ms=duration, timeout_s=timeout
                )
            for a in assets:
                if a.id in plan.head_errors:
                    lines.append(
                        (
                            "ERROR",
                            "Asset validation failed",
                            {"key": a.raw_key, "job_id": job_id, "error": plan.head_errors[a.id]},
                        )
                    )
            if validated.get("videoInput"):
                lines.append(
                    (
                        "INFO",
                        "Video processing paths prepared",
                        {
                            "job_id": job_id,
                            "video_input": validated["videoInput"],
                            "video_output_path": validated["videoOutputPath"],
                        },
                    )
                )
            lines.append(
                (
                    "INFO",
                    "Validation complete",
                    {
                        "job_id": job_id,
                        "total_assets": len(assets),
                        "image_assets": len(validated["imageAssets"]),
                        "video_assets": len(validated["videoAssets"]),
                        "has_images": validated["hasImages"],
                        "has_videos": validated["hasVideos"],
                    },
                )
            )
            w.invoke("validate", at, lines, duration_ms=31.58)
            return Attempt(31.58, output=validated)

        last_key, t, state, error = lambda_task(
            h,
            t,
            0,
            "ValidateRawAssets",
            "validate",
            exec_input,
            exec_input,
            validate,
            max_attempts=3,
            interval=2,
            timeout=120,
            catch=True,
            result_path="validation",
        )
        if error is not None:
            return self._report_failure(
                h, run, arn, start, t, last_key, "ValidationFailed", state, exec_input, last=last
            )
        # ParallelProcessing --------------------------------------------------------------------
        t += dt.timedelta(milliseconds=15)
        parallel = h.entered(t, "Parallel", last_key, "ParallelProcessing", state)
        t += dt.timedelta(milliseconds=11)
        par_started = h.add(t, "ParallelStateStarted", parallel, state="ParallelProcessing")
        if plan.no_video_paths and validated["hasVideos"]:
            # FM-16: ProcessVideos' Parameters name $.validation.videoInput, which this validate
            # build never set: the execution fails as the branch starts (States.Runtime, uncatchable),
            # before the other branches got anywhere.
            end2, t2, _, _ = self._mediaconvert_branch(
                h, run, plan, state, par_started, t + dt.timedelta(milliseconds=6)
            )
            t = t2 + dt.timedelta(milliseconds=4)
            h.truncate_after(t)
            cause = (
                "An error occurred while executing the state 'ProcessVideos' (entered at the event id #{entered}). "
                "The JSONPath '$.validation.videoInput' specified for the field 'FileInput.$' could not be found "
                f"in the input '{compact(state)}'"
            )
            return self._fail(h, arn, start, t, end2, exec_input, "States.Runtime", cause, entered=end2)
        branches = [
            self._image_branch(h, run, plan, state, par_started, t + dt.timedelta(milliseconds=27)),
            self._video_branch(h, run, plan, state, par_started, t + dt.timedelta(milliseconds=14)),
            self._mediaconvert_branch(h, run, plan, state, par_started, t + dt.timedelta(milliseconds=6)),
        ]
        results = [out for _, _, out, _ in branches]
        failed = [(end, at, err) for end, at, _, err in branches if err is not None]
        last_branch, t = max(((end, at) for end, at, _, _ in branches), key=lambda e: e[1])
        t += dt.timedelta(milliseconds=9)
        if failed:
            # A branch failed after its retries: the Parallel fails, its Catch goes to ReportFailure.
            end, at, failure = failed[0]
            t = at + dt.timedelta(milliseconds=9)
            h.truncate_after(t)
            par_failed = h.add(t, "ParallelStateFailed", end, state="ParallelProcessing")
            t += dt.timedelta(milliseconds=1)
            caught = {**state, "error": {"Error": failure[0], "Cause": failure[1]}}
            exited = h.exited(t, "Parallel", par_failed, "ParallelProcessing", caught)
            return self._report_failure(h, run, arn, start, t, exited, "ReportFailure", caught, exec_input, last=last)
        h.add(t, "ParallelStateSucceeded", last_branch, state="ParallelProcessing")
        t += dt.timedelta(milliseconds=1)
        state = {**state, "parallelResults": results}
        exited = h.exited(t, "Parallel", last_branch, "ParallelProcessing", state)
        # ConsolidateResults ---------------------------------------------------------------------
        t += dt.timedelta(milliseconds=25)
        cons_input = {
            "jobId": job_id,
            "listingIdentityId": listing,
            "executionArn": arn,
            "startedAt": iso_ms(start),
            "assets": validated["assets"],
            "parallelResults": results,
            "traceparent": "",
        }
        body, branch_errors = self._consolidated(run, plan, arn, start, validated, results)

        def consolidate(n: int, at: dt.datetime) -> Attempt:
            lines = [lambda_started("Consolidate", job_id, listing, raw_input_size=len(compact(cons_input)))]
            if plan.consolidate == "fail" and plan.consolidate_failure:
                error, cause = plan.consolidate_failure
                if "Timedout" in error:  # 3-second timeout, 128 MB (reference FM-14b)
                    return self._failed_try("consolidate", at, lines, (error, cause), duration_ms=3000.0, timeout_s=3)
                message = json.loads(cause)["errorMessage"]
                w.invoke("consolidate", at, lines, duration_ms=1.9, error=(message, error))
                return Attempt(1.9, error=plan.consolidate_failure)
            for index, result in enumerate(results):
                generated = (result.get("body") or {}).get("generatedAssets") if isinstance(result, dict) else None
                if generated:
                    lines.append(
                        (
                            "INFO",
                            "Processing generated assets from branch",
                            {"branch_index": index, "count": len(generated)},
                        )
                    )
                    for g in generated:
                        if g["sourceKey"] not in {a["key"] for a in validated["assets"]}:
                            lines.append(
                                (
                                    "WARN",
                                    "Generated asset without matching source",
                                    {"source_key": g["sourceKey"], "generated_key": g["key"]},
                                )
                            )
            for index, count in branch_errors.items():
                lines.append(("WARN", "Branch reported errors", {"branch_index": index, "count": count}))
            lines.append(
                (
                    "INFO",
                    "Consolidation complete",
                    {
                        "job_id": job_id,
                        "output_items": len(body["outputs"]),
                        "payload_preview": compact(body["outputs"]),
                    },
                )
            )
            if plan.consolidate == "escalate" and branch_errors:
                return self._returned_error(
                    "consolidate", at, lines, DERIVATIVE_ERRORS, "errorString", duration_ms=1.78
                )
            w.invoke("consolidate", at, lines, duration_ms=2.4)
            return Attempt(2.4, output={"body": body})

        last_key, t, out, error = lambda_task(
            h,
            t,
            exited,
            "ConsolidateResults",
            "consolidate",
            state,
            cons_input,
            consolidate,
            max_attempts=3,
            interval=5,
            timeout=3,
            catch=True,
            result_path="consolidation",
        )
        if error is not None:
            return self._report_failure(h, run, arn, start, t, last_key, "ReportFailure", out, exec_input, last=last)
        if plan.data_limit:
            # The result is over 256 KB: no TaskStateExited, the execution fails (uncatchable).
            last_key = h.drop(last_key)
            cause = "The state/task 'ConsolidateResults' returned a result with a size exceeding the maximum number of bytes service limit."
            return self._fail(h, arn, start, t, last_key, exec_input, "States.DataLimitExceeded", cause)
        # FinalizeAndCallback --------------------------------------------------------------------
        t += dt.timedelta(milliseconds=26)
        answers = plan.answers if last else ["200"]
        last_key, t, error = self._callback_task(
            h, t, last_key, "FinalizeAndCallback", out, body, answers=answers, quirks=plan.quirks
        )
        if error is not None:
            t += dt.timedelta(milliseconds=4)
            return self._fail(h, arn, start, t, last_key, exec_input, *error)
        run.callback_body = go_sorted(body)
        t = h.succeeded(t + dt.timedelta(milliseconds=15), last_key, "ProcessingSucceeded", end_after_ms=4)
        return self._close(h, arn, start, t, exec_input, "SUCCEEDED")

    def _validated(self, run: Run, plan: Processing) -> dict[str, Any]:
        """ValidateRawAssets' output (reference §3.4)."""
        assets = []
        for a in run.assets:
            item: dict[str, Any] = {"key": a.raw_key, "type": a.asset_type, "sourceKey": a.raw_key}
            if a.id in plan.head_errors:
                item["error"] = plan.head_errors[a.id]
            else:
                item.update(size=a.size, etag=f'"{hashlib.md5(a.raw_key.encode()).hexdigest()}"')
            assets.append(item)
        images = [x for x, a in zip(assets, run.assets, strict=True) if not a.is_video]
        videos = [x for x, a in zip(assets, run.assets, strict=True) if a.is_video]
        out: dict[str, Any] = {
            "jobId": run.job_id,
            "listingIdentityId": run.listing,
            "assets": assets,
            "imageAssets": images,
            "videoAssets": videos,
            "hasImages": bool(images),
            "hasVideos": bool(videos),
            "traceparent": "",
        }
        first = next((a for a in run.assets if a.is_video), None)
        if first is not None and not plan.no_video_paths:
            out["videoInput"] = f"s3://{BUCKET}/{first.raw_key}"
            out["videoOutputPath"] = f"s3://{BUCKET}/{run.listing}/processed/video/{first.orientation}/original/"
        return out

    def _image_branch(
        self, h: History, run: Run, plan: Processing, state: dict[str, Any], prev: int, t: dt.datetime
    ) -> Branch:
        w = self.w

        def thumbnails(n: int, at: dt.datetime) -> Attempt:
            lines = [lambda_started("Thumbnails", run.job_id, run.listing, assets_to_process=len(run.assets))]
            generated, errors = [], []
            for index, a in enumerate(run.assets):
                lines.append(("INFO", "Inspecting asset", {"index": index, "key": a.raw_key, "type": a.asset_type}))
                if a.id in plan.head_errors:
                    lines.append(
                        ("WARN", "Skipping asset with previous error", asset_error_fields(a, plan.head_errors))
                    )
                    continue
                if a.id in plan.image_errors:  # a HEIC, a corrupt file, or a video an old build tried to decode
                    lines.append(("ERROR", "Failed to process asset", asset_error_fields(a, plan.image_errors)))
                    errors.append(branch_error(a, "THUMBNAIL_PROCESSING_FAILED", plan.image_errors))
                    continue
                if a.is_video:
                    lines.append(
                        ("INFO", "Skipping video asset for image thumbnails", {"key": a.raw_key, "type": a.asset_type})
                    )
                    continue
                for size in PHOTO_SIZES:
                    key = a.derivative(size)
                    source = a.raw_key.replace(f"/{a.date_folder}/", "/") if a.id in plan.orphan_sources else a.raw_key
                    generated.append({"key": key, "type": a.asset_type, "sourceKey": source})
                    w.objects[key] = (a.size // (9 - 2 * PHOTO_SIZES.index(size)), "image/jpeg")
            timed_out = self._branch_timed_out(plan, "GenerateThumbnails", "thumbnails", at, lines)
            if timed_out:
                return timed_out
            lines.append(("INFO", "Thumbnails Lambda finished", {"generated_count": len(generated)}))
            duration = 8.41 + 1200.0 * sum(1 for a in run.assets if not a.is_video)
            w.invoke("thumbnails", at, lines, duration_ms=duration)
            return Attempt(duration, output=branch_output(generated, errors))

        return self._thumbnail_task(h, t, prev, "GenerateThumbnails", "thumbnails", state, thumbnails)

    def _video_branch(
        self, h: History, run: Run, plan: Processing, state: dict[str, Any], prev: int, t: dt.datetime
    ) -> Branch:
        w = self.w
        chosen, t, skipped = h.check_videos(
            t,
            prev,
            state,
            "CheckVideoThumbnails",
            "SkipVideoThumbnails",
            "no_videos_to_thumbnail",
            exit_ms=4,
            next_ms=6,
        )
        if skipped:
            return skipped
        videos = [a for a in run.assets if a.is_video]

        def video_thumbnails(n: int, at: dt.datetime) -> Attempt:
            lines = [lambda_started("Video Thumbnails", run.job_id, run.listing, assets_to_process=len(videos))]
            generated, errors = [], []
            for index, a in enumerate(videos):
                lines.append(
                    ("INFO", "Processing video asset", {"index": index, "key": a.raw_key, "type": a.asset_type})
                )
                if a.id in plan.head_errors:
                    lines.append(
                        ("WARN", "Skipping asset with previous error", asset_error_fields(a, plan.head_errors))
                    )
                    continue
                if a.id in plan.video_errors:
                    lines.append(
                        ("ERROR", "Video thumbnail generation failed", asset_error_fields(a, plan.video_errors))
                    )
                    errors.append(branch_error(a, "VIDEO_THUMBNAIL_FAILED", plan.video_errors))
                    continue
                key = a.derivative("thumbnail")
                generated.append({"key": key, "type": "VIDEO_THUMBNAIL", "sourceKey": a.raw_key})
                w.objects[key] = (0 if a.id in plan.empty_thumbnails else 18_344, "image/jpeg")
            timed_out = self._branch_timed_out(plan, "GenerateVideoThumbnails", "video_thumbnails", at, lines)
            if timed_out:
                return timed_out
            lines.append(
                ("INFO", "Video thumbnails completed", {"generated_count": len(generated), "error_count": len(errors)})
            )
            w.invoke("video_thumbnails", at, lines, duration_ms=502.99)
            return Attempt(502.99, output=branch_output(generated, errors))

        return self._thumbnail_task(
            h, t, chosen, "GenerateVideoThumbnails", "video_thumbnails", state, video_thumbnails
        )

    def _thumbnail_task(
        self,
        h: History,
        t: dt.datetime,
        prev: int,
        state_name: str,
        cmd: str,
        state: dict[str, Any],
        attempts: Callable[[int, dt.datetime], Attempt],
    ) -> Branch:
        """A thumbnail branch's Task state on `$.validation` (Retry ×2 every 5 s, no Catch)."""
        return lambda_task(
            h,
            t,
            prev,
            state_name,
            cmd,
            state,
            state["validation"],
            attempts,
            max_attempts=3,
            interval=5,
            timeout=600,
            catch=False,
        )

    def _branch_timed_out(
        self, plan: Processing, state_name: str, cmd: str, at: dt.datetime, lines: list[Line]
    ) -> Attempt | None:
        """FM-13: the plan makes this branch's Lambda time out (after its first two lines)."""
        if plan.branch_failure is None or plan.branch_failure[0] != state_name:
            return None
        return self._failed_try(cmd, at, lines[:2], plan.branch_failure[1:], duration_ms=300000.0, timeout_s=300)

    def _mediaconvert_branch(
        self, h: History, run: Run, plan: Processing, state: dict[str, Any], prev: int, t: dt.datetime
    ) -> Branch:
        w = self.w
        validation = state["validation"]
        chosen, t, skipped = h.check_videos(
            t, prev, state, "CheckVideoProcessing", "SkipVideoProcessing", "no_videos_to_process", exit_ms=5, next_ms=7
        )
        if skipped:
            return skipped
        entered = h.entered(t, "Task", chosen, "ProcessVideos", state)
        if plan.no_video_paths:
            return entered, t, None, None  # Parameters cannot be resolved: States.Runtime (caller)
        video = next(a for a in run.assets if a.is_video)
        settings = {
            "Inputs": [{"FileInput": validation["videoInput"]}],
            "OutputGroups": [
                {
                    "Name": "File Group",
                    "OutputGroupSettings": {
                        "Type": "FILE_GROUP_SETTINGS",
                        "FileGroupSettings": {"Destination": validation["videoOutputPath"]},
                    },
                    "Outputs": [
                        {
                            "ContainerSettings": {
                                "Container": "MP4",
                                "Mp4Settings": {
                                    "CslgAtom": "INCLUDE",
                                    "FreeSpaceBox": "EXCLUDE",
                                    "MoovPlacement": "PROGRESSIVE_DOWNLOAD",
                                },
                            },
                            "VideoDescription": {
                                "Width": 1920,
                                "Height": 1080,
                                "CodecSettings": {
                                    "Codec": "H_264",
                                    "H264Settings": {
                                        "RateControlMode": "QVBR",
                                        "QualityTuningLevel": "SINGLE_PASS_HQ",
                                        "QvbrSettings": {"QvbrQualityLevel": 8},
                                        "MaxBitrate": 5000000,
                                        "SceneChangeDetect": "TRANSITION_DETECTION",
                                    },
                                },
                            },
                        }
                    ],
                }
            ],
        }
        tries = 2 if plan.mediaconvert_failure else 1  # Retry States.TaskFailed once after 10 s
        last = entered
        for n in range(tries):
            t += dt.timedelta(milliseconds=20)
            scheduled = h.add(
                t,
                "TaskScheduled",
                last,
                "taskScheduledEventDetails",
                {
                    "resourceType": "aws-sdk:mediaconvert",
                    "resource": "createJob",
                    "region": REGION,
                    "parameters": compact({"Role": MC_ROLE, "Settings": settings}),
                    "timeoutInSeconds": 3600,
                },
                state="ProcessVideos",
            )
            t += dt.timedelta(milliseconds=35)
            started = h.add(
                t,
                "TaskStarted",
                scheduled,
                "taskStartedEventDetails",
                {"resourceType": "aws-sdk:mediaconvert", "resource": "createJob"},
                state="ProcessVideos",
            )
            t += dt.timedelta(milliseconds=250)
            if plan.mediaconvert_failure:
                error, cause = plan.mediaconvert_failure
                last = h.add(
                    t,
                    "TaskFailed",
                    started,
                    "taskFailedEventDetails",
                    {
                        "resourceType": "aws-sdk:mediaconvert",
                        "resource": "createJob",
                        "error": error,
                        "cause": cause.replace("{rid}", w.uuid()),
                    },
                    state="ProcessVideos",
                )
                if n + 1 < tries:
                    t += dt.timedelta(seconds=10)
                continue
            created = t
            job_id = f"{ms(created)}-{''.join(w.rng.choice('abcdefghijklmnopqrstuvwxyz0123456789') for _ in range(6))}"
            run.mediaconvert_id = job_id
            job = {
                "AccelerationSettings": {"Mode": "DISABLED"},
                "AccelerationStatus": "NOT_APPLICABLE",
                "Arn": f"arn:aws:mediaconvert:{REGION}:{ACCOUNT}:jobs/{job_id}",
                "BillingTagsSource": "JOB",
                "ClientRequestToken": w.uuid(),
                "CreatedAt": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Id": job_id,
                "Messages": {"Info": [], "Warning": []},
                "Priority": 0,
                "Queue": MC_QUEUE,
                "Role": MC_ROLE,
                "Settings": settings,
                "Status": "SUBMITTED",
                "StatusUpdateInterval": "SECONDS_60",
                "Timing": {"SubmitTime": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
                "UserMetadata": {},
            }
            output = {"Job": job}
            last = h.add(
                t,
                "TaskSucceeded",
                started,
                "taskSucceededEventDetails",
                {"resourceType": "aws-sdk:mediaconvert", "resource": "createJob", **_io(output, "output")},
                state="ProcessVideos",
            )
            t += dt.timedelta(milliseconds=3)
            end = h.exited(t, "Task", last, "ProcessVideos", output)
            finished = created + dt.timedelta(seconds=27)
            get_job = {k: v for k, v in job.items() if k != "Timing"}
            get_job.update(
                JobEngineVersionUsed="2025-06-26",
                RetryCount=0,
                SimulateReservedQueue="DISABLED",
                CreatedAt=created.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                Timing={
                    "FinishTime": finished.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                    "StartTime": (created + dt.timedelta(seconds=6)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                    "SubmitTime": created.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                },
            )
            if plan.mediaconvert_error:
                code, message = plan.mediaconvert_error
                get_job.update(
                    Status="ERROR", ErrorCode=code, ErrorMessage=message.format(input=validation["videoInput"])
                )
            else:
                get_job.update(
                    Status="COMPLETE",
                    OutputGroupDetails=[
                        {
                            "OutputDetails": [
                                {"DurationInMs": 22618, "VideoDetails": {"HeightInPx": 1080, "WidthInPx": 1920}}
                            ]
                        }
                    ],
                )
                w.objects[video.mp4_key] = (12_546_861, "video/mp4")
            w.mediaconvert[job_id] = {"Job": get_job}
            return end, t, output, None
        return last, t, None, plan.mediaconvert_failure

    def _consolidated(
        self, run: Run, plan: Processing, arn: str, start: dt.datetime, validated: dict[str, Any], results: list[Any]
    ) -> tuple[dict[str, Any], dict[int, int]]:
        """The callback body consolidate builds (reference §3.6) and the errors per branch index."""
        keys = {a["key"] for a in validated["assets"]}
        derived: dict[str, dict[str, str]] = defaultdict(dict)
        branch_errors: dict[int, int] = {}
        errors: dict[str, tuple[str, str]] = {}
        for index, result in enumerate(results):
            branch = result.get("body") if isinstance(result, dict) else None
            if not isinstance(branch, dict):
                continue
            for g in branch.get("generatedAssets") or []:
                if g["sourceKey"] in keys:
                    size = g["key"].split("/processed/", 1)[1].split("/")[2]
                    derived[g["sourceKey"]][size] = g["key"]
            if branch.get("errors"):
                branch_errors[index] = len(branch["errors"])
                for e in branch["errors"]:
                    errors[e["sourceKey"]] = (e["errorCode"], e["errorMessage"])
        outputs = []
        for a, item in zip(run.assets, validated["assets"], strict=True):
            sizes = derived.get(a.raw_key, {})
            best = max(sizes, key=lambda s: SIZE_RANK.get(s, -1)) if sizes else ""
            out = {
                "rawKey": a.raw_key,
                "processedKey": sizes.get(best, ""),
                "thumbnailKey": sizes.get("thumbnail", ""),
                "outputs": {f"{s}_{a.asset_type.lower()}": k for s, k in sizes.items()},
                "errorCode": "",
                "errorMessage": "",
            }
            if "error" in item:
                out.update(errorCode="VALIDATION_ERROR", errorMessage=item["error"])
            if a.raw_key in errors:
                out.update(errorCode=errors[a.raw_key][0], errorMessage=errors[a.raw_key][1])
            outputs.append(out)
        body: dict[str, Any] = {
            "jobId": run.job_id,
            "listingIdentityId": run.listing,
            "executionArn": arn,
            "startedAt": iso_ms(start),
            "provider": "STEP_FUNCTIONS",
            "status": "SUCCEEDED",
            "failureReason": "",
            "error": None,
            "outputs": outputs,
        }
        if branch_errors:
            body.update(
                status="PARTIAL_SUCCESS",
                failureReason=DERIVATIVE_ERRORS,
                error={"code": DERIVATIVE_ERRORS, "message": "one or more derivative branches reported errors"},
            )
        return body, branch_errors

    def _report_failure(
        self,
        h: History,
        run: Run,
        arn: str,
        start: dt.datetime,
        t: dt.datetime,
        prev: int,
        state_name: str,
        caught: dict[str, Any],
        exec_input: dict[str, Any],
        *,
        last: bool,
    ) -> ExecutionRecord:
        """ValidationFailed / ReportFailure: the callback Lambda posts `outputs: []`, then ProcessingFailed."""
        error = caught["error"]
        body = {
            "jobId": run.job_id,
            "listingIdentityId": run.listing,
            "executionArn": arn,
            "startedAt": iso_ms(start),
            "provider": "STEP_FUNCTIONS",
            "status": "VALIDATION_FAILED" if state_name == "ValidationFailed" else "PROCESSING_FAILED",
            "failureReason": error["Error"],
            "error": {"code": error["Error"], "message": error["Cause"]},
            "outputs": [],
            "traceparent": "",
        }
        last_key, t, _ = self._callback_task(h, t + dt.timedelta(milliseconds=26), prev, state_name, caught, body)
        run.callback_body = go_sorted(body)
        t += dt.timedelta(milliseconds=15)
        fail = h.entered(t, "Fail", last_key, "ProcessingFailed", "null")
        t += dt.timedelta(milliseconds=4)
        cause = "Failed during media processing workflow"
        return self._fail(h, arn, start, t, fail, exec_input, "MediaProcessingFailed", cause)

    def _callback_task(
        self,
        h: History,
        t: dt.datetime,
        prev: int,
        state_name: str,
        state_input: Any,
        body: dict[str, Any],
        *,
        answers: list[str] | None = None,
        quirks: AbstractSet[str] = frozenset(),
    ) -> tuple[int, dt.datetime, tuple[str, str] | None]:
        """The callback Lambda's Task state: FinalizeAndCallback (Retry ×3 every 5 s) or a failure report
        (no retry). `answers`: TOQ's answer per try (the last one repeats). Returns (last key, time, error)."""
        final = state_name == "FinalizeAndCallback"
        tries = ["200"] if answers is None else answers

        def callback(n: int, at: dt.datetime) -> Attempt:
            answer = tries[min(n, len(tries)) - 1] if tries else "200"
            return self.callback_attempt(at, body, answer, quirks)

        last_key, t, _, error = lambda_task(
            h,
            t,
            prev,
            state_name,
            "callback-dispatch",
            state_input,
            {"statusCode": 200, "body": body} if final else {"body": body},
            callback,
            max_attempts=4 if final else 1,
            interval=5 if final else 0,
            timeout=120 if final else 60,
            catch=False,
        )
        return last_key, t, error

    def _fail(
        self,
        h: History,
        arn: str,
        start: dt.datetime,
        t: dt.datetime,
        prev: int,
        exec_input: dict[str, Any],
        error: str,
        cause: str,
        *,
        entered: int | None = None,
        machine: str = PROCESSING_SM,
    ) -> ExecutionRecord:
        """ExecutionFailed at `t`, then the execution's record."""
        h.failed(t, prev, error, cause)
        return self._close(
            h, arn, start, t, exec_input, "FAILED", error=error, cause=cause, entered=entered, machine=machine
        )

    def _close(
        self,
        h: History,
        arn: str,
        start: dt.datetime,
        stop: dt.datetime | None,
        exec_input: dict[str, Any],
        status: str,
        *,
        error: str = "",
        cause: str = "",
        entered: int | None = None,
        machine: str = PROCESSING_SM,
    ) -> ExecutionRecord:
        record = h.finish(arn)
        if entered is not None:  # the runtime cause names the entered event's final id
            cause = cause.replace("{entered}", str(h.ids[entered]))
            for e in record.events:
                if e["type"] == "ExecutionFailed":
                    e["executionFailedEventDetails"]["cause"] = cause
        describe: dict[str, Any] = {
            "executionArn": arn,
            "stateMachineArn": state_machine_arn(machine),
            "name": arn.rsplit(":", 1)[1],
            "status": status,
            "startDate": sfn_time(start),
        }
        if stop is not None:
            describe["stopDate"] = sfn_time(stop)
        describe.update(input=compact(exec_input), inputDetails={"included": True})
        if status == "SUCCEEDED":
            describe.update(output="null", outputDetails={"included": True})
        if error:
            describe.update(error=error, cause=cause)
        describe.update(redriveCount=0, redriveStatus="REDRIVABLE" if status == "FAILED" else "NOT_REDRIVABLE")
        if status == "SUCCEEDED":
            describe["redriveStatusReason"] = "Execution is SUCCEEDED and cannot be redriven"
        record.describe = describe
        return record

    # --- finalization ----------------------------------------------------------------------------
    def finalize(
        self,
        job_id: int,
        listing: int,
        at: dt.datetime,
        *,
        zip_error: str = "",
        no_assets: bool = False,
        traceparent: bool = True,
    ) -> Run:
        """POST /uploads/complete → finalization execution `finalization-{L}-{J}` (reference §1.5, §3.8)."""
        w = self.w
        assets = [a for a in w.listing_assets(listing) if a.status == "PROCESSED"] if not no_assets else []
        run = Run(job_id, listing, assets)
        name = f"finalization-{listing}-{job_id}"
        arn = execution_arn(name, FINALIZATION_SM)
        start = at + dt.timedelta(milliseconds=210)
        w.jobs[job_id] = job_row(
            job_id, listing, at, status="RUNNING", provider="STEP_FUNCTIONS_FINALIZATION", execution=arn, started=start
        )
        trace = f"00-{w.hex(32)}-{w.hex(16)}-01"
        rid = w.hex(32)
        w.server(
            start,
            "INFO",
            "service.media.complete.started_zip",
            request_id=rid,
            listing_identity_id=listing,
            job_id=job_id,
            execution_arn=arn,
            assets_count=len(assets),
        )
        exec_input: dict[str, Any] = {
            "jobId": job_id,
            "listingIdentityId": listing,
            "assets": [{"key": a.raw_key, "type": a.asset_type} for a in assets],
        }
        if traceparent:
            exec_input["traceparent"] = trace
        h = History()
        h.started(start, exec_input)
        t = start + dt.timedelta(milliseconds=40)
        if not traceparent:  # FM-34: CreateZipBundle's Parameters name $.traceparent
            entered = h.entered(t, "Task", 0, "CreateZipBundle", exec_input)
            t += dt.timedelta(milliseconds=5)
            cause = (
                "An error occurred while executing the state 'CreateZipBundle' (entered at the event id #2). "
                f"The JSONPath '$.traceparent' specified for the field 'traceparent.$' could not be found in the input '{compact(exec_input)}'"
            )
            record = self._fail(h, arn, start, t, entered, exec_input, "States.Runtime", cause, machine=FINALIZATION_SM)
            return self._finalized(run, record, reconcile_from=start)
        zip_key = f"{listing}/processed/zip/listing-media.zip"
        task_input = {
            "jobId": job_id,
            "listingIdentityId": listing,
            "assets": exec_input["assets"],
            "traceparent": trace,
        }

        def create_zip(n: int, at: dt.datetime) -> Attempt:
            lines: list[Line] = [
                (
                    "INFO",
                    "lambda.zip.start",
                    {"job_id": job_id, "listing_identity_id": listing, "assets_count": len(assets)},
                )
            ]
            if zip_error:
                lines.append(
                    (
                        "ERROR",
                        "lambda.zip.create_zip_error",
                        {"error": zip_error, "bucket": BUCKET, "destination": zip_key},
                    )
                )
                return self._returned_error("zip", at, lines, zip_error, "wrapError", duration_ms=412.0)
            if not assets:
                lines.append(("WARN", "lambda.zip.no_assets", {"job_id": job_id, "listing_identity_id": listing}))
                w.invoke("zip", at, lines, duration_ms=12.0)
                return Attempt(
                    12.0,
                    output={
                        "body": {
                            "zipKey": "",
                            "assetsZipped": 0,
                            "zipBundles": [],
                            "zipSizeBytes": 0,
                            "unzippedSizeBytes": 0,
                        }
                    },
                )
            size = sum(a.size for a in assets)
            lines.append(
                (
                    "INFO",
                    "lambda.zip.completed",
                    {
                        "job_id": job_id,
                        "listing_identity_id": listing,
                        "zip_key": zip_key,
                        "zip_size_bytes": int(size * 0.93),
                        "unzipped_size_bytes": size,
                    },
                )
            )
            w.invoke("zip", at, lines, duration_ms=4100.0)
            w.objects[zip_key] = (int(size * 0.93), "application/zip")
            return Attempt(
                4100.0,
                output={
                    "body": {
                        "zipKey": zip_key,
                        "assetsZipped": len(assets),
                        "zipBundles": [zip_key],
                        "zipSizeBytes": int(size * 0.93),
                        "unzippedSizeBytes": size,
                    }
                },
            )

        last_key, t, out, error = lambda_task(
            h,
            t,
            0,
            "CreateZipBundle",
            "zip",
            exec_input,
            task_input,
            create_zip,
            max_attempts=3,
            interval=10,
            timeout=1800,
            catch=True,
            result_path="zipResult",
        )
        if error is not None:
            body = {
                "jobId": job_id,
                "listingIdentityId": str(listing),
                "status": "FINALIZATION_FAILED",
                "traceparent": trace,
                "error": out["error"],
            }
            last_key, t, _ = self._callback_task(
                h, t + dt.timedelta(milliseconds=26), last_key, "ReportFailure", out, body
            )
            run.callback_body = go_sorted(body)
            t += dt.timedelta(milliseconds=12)
            fail = h.entered(t, "Fail", last_key, "FinalizationFailed", "null")
            cause = "Failed during media finalization workflow"
            record = self._fail(
                h, arn, start, t, fail, exec_input, "MediaFinalizationFailed", cause, machine=FINALIZATION_SM
            )
            return self._finalized(run, record, reconcile_from=start)
        zipped = out["zipResult"]["body"]
        body = {
            "jobId": job_id,
            "status": "SUCCEEDED",
            "provider": "STEP_FUNCTIONS_FINALIZATION",
            "listingIdentityId": str(listing),
            "traceparent": trace,
            **{k: zipped[k] for k in ("assetsZipped", "zipBundles", "zipSizeBytes", "unzippedSizeBytes")},
        }
        last_key, t, _ = self._callback_task(
            h, t + dt.timedelta(milliseconds=26), last_key, "FinalizeAndCallback", out, body
        )
        run.callback_body = go_sorted(body)
        h.succeeded(t, last_key, "FinalizationSucceeded")
        return self._finalized(run, self._close(h, arn, start, t, exec_input, "SUCCEEDED", machine=FINALIZATION_SM))

    def _finalized(self, run: Run, record: ExecutionRecord, *, reconcile_from: dt.datetime | None = None) -> Run:
        """The finalization's one execution recorded; the reconciler runs when no callback came."""
        run.executions.append(record)
        self.w.executions[record.arn] = record
        if reconcile_from is not None:
            self._reconcile(run.job_id, reconcile_from)
        return run

    def _reconcile(self, job_id: int, started: dt.datetime) -> None:
        """The reconciler (every 5 min, 30 min timeout) fails a RUNNING job with no callback (FM-30)."""
        job = self.w.jobs[job_id]
        if job["status"] != "RUNNING":
            return
        at = started + dt.timedelta(minutes=32, seconds=11)
        job.update(status="FAILED", completed_at=sql_time(at), last_error=RECONCILED)
        cutoff = at - dt.timedelta(minutes=30)
        self.w.server(
            at,
            "WARN",
            "service.media.reconcile.completed",
            stuck_jobs=1,
            cutoff=cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            timeout="30m0s",
        )
