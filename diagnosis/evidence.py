"""What the engine reasons over: plain dataclasses, built by diagnosis.selectors from the mirror
and the AWS evidence, and by tests/hypothesis directly. No ORM here.

Every fact keeps the identifiers of the record it came from (history event id, log event id, S3 key,
MediaConvert job id, function name) so a finding can point at the exact record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Branch states of the processing machine (reference §1.4) → which derivative they make.
IMAGE_BRANCH_STATE = "GenerateThumbnails"
VIDEO_BRANCH_STATE = "GenerateVideoThumbnails"
BRANCH_STATES = {IMAGE_BRANCH_STATE: "image", VIDEO_BRANCH_STATE: "video"}
FAILED_EVENT_TYPES = frozenset(
    {
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionScheduleFailed",
        "LambdaFunctionStartFailed",
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "ParallelStateFailed",
        "ExecutionFailed",
        "ExecutionAborted",
        "ExecutionTimedOut",
    }
)
EXCERPT_CHARS = 500


@dataclass
class AssetFacts:
    toq_id: int
    asset_type: str
    status: str
    s3_key_raw: str
    s3_key_processed: str
    metadata: dict[str, Any]
    in_job: bool  # the job's execution input / callback names this asset (or nothing says which)

    @property
    def is_video(self) -> bool:
        return "VIDEO" in (self.asset_type or "").upper()

    @property
    def error_code(self) -> str:
        value = self.metadata.get("errorCode") if isinstance(self.metadata, dict) else None
        return value if isinstance(value, str) else ""

    @property
    def error_message(self) -> str:
        value = self.metadata.get("error") if isinstance(self.metadata, dict) else None
        return value if isinstance(value, str) else ""


@dataclass
class JobFacts:
    toq_id: int
    generation: int = 1
    kind: str = "processing"  # processing / finalization / unknown
    status: str = ""
    provider: str = ""
    listing_identity_id: int = 0
    external_id: str = ""
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    first_seen_at: dt.datetime | None = None
    disappeared_at: dt.datetime | None = None
    superseded: bool = False
    last_error: str = ""
    callback_body: str = ""
    payload: Any = None
    callback_parse_error: str = ""
    callback_status: str = ""
    callback_error_code: str = ""
    callback_error_message: str = ""
    callback_error_type: str = ""
    callback_failure_reason: str = ""
    callback_outputs_empty: bool | None = None
    callback_results: list[dict[str, Any]] = field(default_factory=list)
    observation_count: int = 0

    @property
    def reference_time(self) -> dt.datetime | None:
        """When the job began, as well as we know (created_at is absent before 2026-01-16)."""
        return self.created_at or self.started_at or self.first_seen_at


@dataclass
class HistoryFact:
    """A history event that matters for diagnosis, attributed to its state via previousEventId."""

    event_id: int
    type: str
    state: str  # name of the enclosing state ("" for execution-level events)
    error: str = ""
    cause: str = ""
    output: str = ""  # JSON text (branch outputs, MediaConvert createJob output)


@dataclass
class ExecutionFacts:
    arn: str
    kind: str  # processing / finalization / unknown
    status: str
    start_date: dt.datetime | None = None
    stop_date: dt.datetime | None = None
    error: str = ""
    cause: str = ""
    input: str = ""
    is_duplicate: bool = False
    history_complete: bool = False
    events: list[HistoryFact] = field(default_factory=list)
    # [{"from_state", "to_state", "event_id", "error", "cause"}] (parsed timeline)
    catches: list[dict[str, Any]] = field(default_factory=list)
    mediaconvert_job_ids: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.arn.rsplit(":", 1)[-1]


@dataclass
class LogFact:
    event_id: str
    log_group: str
    level: str
    msg: str
    message: str
    timestamp: dt.datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    s3_key: str = ""

    @property
    def function(self) -> str:
        """listing-media-<cmd>-<env> for Lambda log groups, the group otherwise."""
        return self.log_group.removeprefix("/aws/lambda/")


@dataclass
class DerivativeFact:
    raw_key: str
    key: str
    kind: str  # photo size / video_thumbnail / video_mp4 / zip
    outcome: str  # present / missing / zero_bytes


@dataclass
class MediaConvertFact:
    job_id: str
    status: str
    error_code: int | None = None
    error_message: str = ""
    output_paths: list[str] = field(default_factory=list)


@dataclass
class LambdaConfigFact:
    function_name: str
    runtime: str = ""
    last_modified: dt.datetime | None = None
    last_modified_raw: str = ""
    code_sha256: str = ""
    layers: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    memory_size: int | None = None
    timeout: int | None = None
    ephemeral_storage: int | None = None
    role: str = ""


@dataclass
class Evidence:
    job: JobFacts
    now: dt.datetime
    assets: list[AssetFacts] = field(default_factory=list)
    executions: list[ExecutionFacts] = field(default_factory=list)
    logs: list[LogFact] = field(default_factory=list)
    derivatives: list[DerivativeFact] = field(default_factory=list)
    # True when an S3 listing of the job's listing prefix was stored: only then is absence evidence.
    s3_listed: bool = False
    mediaconvert: list[MediaConvertFact] = field(default_factory=list)
    lambda_configs: list[LambdaConfigFact] = field(default_factory=list)
    dlq_message_ids: list[str] = field(default_factory=list)
    # What the collector could not get (awslogs EvidenceStatus.missing).
    collector_missing: list[dict[str, Any]] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Hash of everything but `now`: a changed fingerprint means the evidence changed."""
        # The same JSON as json.dumps(dataclasses.asdict(self) minus "now"), without asdict's deep
        # copy of every value (half the time of a diagnosis, bench/diagnosis.py): nested dataclasses
        # are expanded by the encoder's `default` hook instead.
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "now"}
        text = json.dumps(data, sort_keys=True, default=_json_default, ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return str(value)


# --- pure helpers over raw history events -------------------------------------------------------


def history_facts(raw_events: list[tuple[int, str, int | None, dict[str, Any]]]) -> list[HistoryFact]:
    """(event_id, type, previous_event_id, details) rows → the facts the rules use.

    Parallel branches interleave, so the enclosing state is found by walking previousEventId back
    to a `…StateEntered` event (never by position). Bounded walk: a malformed history cannot loop.
    """
    by_id = {eid: (etype, prev, details) for eid, etype, prev, details in raw_events}
    state_of: dict[int, str] = {}

    def enclosing_state(event_id: int) -> str:
        seen: list[int] = []
        current: int | None = event_id
        name = ""
        for _ in range(len(by_id) + 1):
            if current is None or current not in by_id:
                break
            if current in state_of:
                name = state_of[current]
                break
            seen.append(current)
            etype, prev, details = by_id[current]
            if etype.endswith("StateEntered"):
                name = str(details.get("name", "")) if isinstance(details, dict) else ""
                break
            if prev == current:
                break
            current = prev
        for eid in seen:
            state_of[eid] = name
        return name

    facts: list[HistoryFact] = []
    for eid, etype, _prev, details in sorted(raw_events, key=lambda r: r[0]):
        det = details if isinstance(details, dict) else {}
        if etype in FAILED_EVENT_TYPES:
            state = "" if etype.startswith("Execution") else enclosing_state(eid)
            facts.append(
                HistoryFact(
                    event_id=eid,
                    type=etype,
                    state=state,
                    error=_str(det.get("error")),
                    cause=_str(det.get("cause")),
                )
            )
        elif etype == "TaskStateExited" and det.get("name") in BRANCH_STATES:
            facts.append(HistoryFact(event_id=eid, type=etype, state=str(det["name"]), output=_str(det.get("output"))))
        elif etype == "TaskSucceeded":
            output = _str(det.get("output"))
            if '"Job"' in output:
                facts.append(HistoryFact(event_id=eid, type=etype, state=enclosing_state(eid), output=output))
    return facts


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def loads(text: Any) -> Any:
    """JSON text → value, or None when it is not JSON (never raises)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def excerpt(text: Any, limit: int = EXCERPT_CHARS) -> str:
    value = _str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"
