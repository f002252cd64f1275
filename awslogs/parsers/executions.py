"""DescribeExecution and execution history → ExecutionRecord and Timeline (states, attempts, branches)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from awslogs.parsers.text import MAX_DETAIL_CHARS, int_or_none, loads_or_none, parse_timestamp, safe_text

FAILURE_STATES = frozenset({"ValidationFailed", "ReportFailure"})

# --- execution ------------------------------------------------------------------------------------


@dataclass
class ExecutionRecord:
    arn: str
    name: str
    state_machine_arn: str
    status: str
    start_date: dt.datetime | None
    stop_date: dt.datetime | None
    input: str
    output: str
    error: str
    cause: str
    job_toq_id: int | None
    listing_identity_id: int | None
    raw: dict[str, Any]

    @property
    def state_machine_name(self) -> str:
        return self.state_machine_arn.rsplit(":", 1)[-1] if self.state_machine_arn else ""

    @property
    def kind(self) -> str:
        return execution_kind(self.state_machine_name or self.arn)


def execution_kind(name_or_arn: str) -> str:
    if "finalization" in name_or_arn:
        return "finalization"
    if "processing" in name_or_arn:
        return "processing"
    return "unknown"


def parse_execution_input(text: Any) -> tuple[int | None, int | None]:
    """(jobId, listingIdentityId) from an execution input (numbers or numeric strings)."""
    data = loads_or_none(text)
    if not isinstance(data, dict):
        return None, None
    return int_or_none(data.get("jobId")), int_or_none(data.get("listingIdentityId"))


FINALIZATION_NAME = re.compile(r"^finalization-(\d+)-(\d+)$")


def parse_describe_execution(data: dict[str, Any]) -> ExecutionRecord:
    arn = str(data.get("executionArn", ""))
    job_id, listing_id = parse_execution_input(data.get("input"))
    name = str(data.get("name") or arn.rsplit(":", 1)[-1])
    if job_id is None and (m := FINALIZATION_NAME.match(name)):
        listing_id, job_id = int(m.group(1)), int(m.group(2))
    return ExecutionRecord(
        arn=arn,
        name=name,
        state_machine_arn=str(data.get("stateMachineArn", "")),
        status=str(data.get("status", "")),
        start_date=parse_timestamp(data.get("startDate")),
        stop_date=parse_timestamp(data.get("stopDate")),
        input=safe_text(data.get("input"), MAX_DETAIL_CHARS)[0],
        output=safe_text(data.get("output"), MAX_DETAIL_CHARS)[0],
        error=safe_text(data.get("error"), 2048)[0],
        cause=safe_text(data.get("cause"), MAX_DETAIL_CHARS)[0],
        job_toq_id=job_id,
        listing_identity_id=listing_id,
        raw=data,
    )


def describe_from_history(execution_arn: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A DescribeExecution-shaped dict built from a history export, for an execution whose
    describe-execution export is not at hand (the history alone is enough to analyse it)."""
    parsed = parse_history_events(events)
    started = next((e for e in parsed if e.type == "ExecutionStarted"), None)
    closing = {
        "ExecutionSucceeded": "SUCCEEDED",
        "ExecutionFailed": "FAILED",
        "ExecutionAborted": "ABORTED",
        "ExecutionTimedOut": "TIMED_OUT",
    }
    last = parsed[-1] if parsed else None
    status = closing.get(last.type, "RUNNING") if last else "RUNNING"
    machine = execution_arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0]
    out: dict[str, Any] = {
        "executionArn": execution_arn,
        "stateMachineArn": machine,
        "name": execution_arn.rsplit(":", 1)[-1],
        "status": status,
        "startDate": started.timestamp.isoformat() if started and started.timestamp else None,
        "input": started.details.get("input", "") if started else "",
    }
    if last is not None and status != "RUNNING":
        out["stopDate"] = last.timestamp.isoformat() if last.timestamp else None
        for key in ("error", "cause", "output"):
            if key in last.details:
                out[key] = last.details[key]
    return out


# --- history → timeline -------------------------------------------------------------------------


@dataclass
class HistoryEventRecord:
    event_id: int
    type: str
    timestamp: dt.datetime | None
    previous_event_id: int | None
    details: dict[str, Any]


def parse_history_events(events: list[dict[str, Any]]) -> list[HistoryEventRecord]:
    out: list[HistoryEventRecord] = []
    for raw in events:
        event_id = int_or_none(raw.get("id"))
        if event_id is None:
            continue
        details: dict[str, Any] = {}
        for key, value in raw.items():
            if key.endswith("EventDetails") and isinstance(value, dict):
                details = value
                break
        out.append(
            HistoryEventRecord(
                event_id=event_id,
                type=str(raw.get("type", "")),
                timestamp=parse_timestamp(raw.get("timestamp")),
                previous_event_id=int_or_none(raw.get("previousEventId")),
                details=details,
            )
        )
    out.sort(key=lambda e: e.event_id)
    return out


@dataclass
class Attempt:
    number: int
    kind: str  # "lambda" or "task"
    resource: str = ""
    scheduled_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    outcome: str = "running"  # succeeded / failed / timed_out / schedule_failed / start_failed / running
    error: str = ""
    cause: str = ""
    backoff_seconds: float | None = None  # gap since the previous attempt ended


@dataclass
class StateVisitRecord:
    entered_event_id: int
    name: str
    state_type: str
    branch: str  # "" at top level, else "ParallelProcessing/GenerateThumbnails" (parallel/branch start state)
    entered_at: dt.datetime | None
    exited_at: dt.datetime | None = None
    status: str = "running"  # succeeded / failed / running
    error: str = ""
    cause: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    output: str = ""


@dataclass
class BranchResult:
    branch: str
    last_state: str
    status: str
    generated_assets: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    mediaconvert_job_id: str = ""


@dataclass
class Timeline:
    states: list[StateVisitRecord]
    branches: list[BranchResult]
    catches: list[dict[str, Any]]
    final_status: str
    final_error: str
    final_cause: str
    mediaconvert_job_ids: list[str]
    unknown_events: list[dict[str, Any]]
    event_count: int

    def summary(self) -> dict[str, Any]:
        """JSON for Execution.timeline (states are stored as rows)."""
        return {
            "branches": [asdict(b) for b in self.branches],
            "catches": self.catches,
            "final_status": self.final_status,
            "final_error": self.final_error,
            "final_cause": self.final_cause,
            "mediaconvert_job_ids": self.mediaconvert_job_ids,
            "unknown_events": self.unknown_events,
            "event_count": self.event_count,
        }


_STATE_TYPES = ("Task", "Parallel", "Choice", "Pass", "Fail", "Succeed", "Wait", "Map")
_ATTEMPT_END = {
    "LambdaFunctionSucceeded": "succeeded",
    "LambdaFunctionFailed": "failed",
    "LambdaFunctionTimedOut": "timed_out",
    "LambdaFunctionScheduleFailed": "schedule_failed",
    "LambdaFunctionStartFailed": "start_failed",
    "TaskSucceeded": "succeeded",
    "TaskFailed": "failed",
    "TaskTimedOut": "timed_out",
    "TaskStartFailed": "start_failed",
    "TaskSubmitFailed": "start_failed",
}
_KNOWN_TYPES = frozenset(
    {
        "ExecutionStarted",
        "ExecutionSucceeded",
        "ExecutionFailed",
        "ExecutionAborted",
        "ExecutionTimedOut",
        "ExecutionRedriven",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "TaskScheduled",
        "TaskStarted",
        "TaskSubmitted",
        "ParallelStateStarted",
        "ParallelStateSucceeded",
        "ParallelStateFailed",
        "ParallelStateAborted",
        "MapStateStarted",
        "MapStateSucceeded",
        "MapStateFailed",
        *_ATTEMPT_END,
    }
    | {f"{t}State{s}" for t in _STATE_TYPES for s in ("Entered", "Exited")}
)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _state_type(event_type: str) -> str:
    return event_type.removesuffix("StateEntered").removesuffix("StateExited")


def parse_history(events: list[HistoryEventRecord]) -> Timeline:
    """Build the timeline. Events of parallel branches interleave, so every event is attributed to
    its state by walking `previousEventId` (never by position); a branch is named by its first state."""
    by_id = {e.event_id: e for e in events}
    # event id → (entered event id of its state or None, branch path tuple of (parallel entered id, start state))
    ctx: dict[int, tuple[int | None, tuple[tuple[int, str], ...]]] = {}
    visits: dict[int, StateVisitRecord] = {}
    open_attempt: dict[int, Attempt] = {}  # state entered id → attempt in progress
    last_attempt_end: dict[int, dt.datetime] = {}
    catches: list[dict[str, Any]] = []
    unknown: list[dict[str, Any]] = []
    mediaconvert_ids: list[str] = []
    final_status, final_error, final_cause = "RUNNING", "", ""

    def branch_name(path: tuple[tuple[int, str], ...]) -> str:
        parts = []
        for parallel_id, start in path:
            parallel = visits.get(parallel_id)
            parts.append(f"{parallel.name if parallel else parallel_id}/{start}")
        return "/".join(parts)

    for e in events:
        prev = e.previous_event_id or 0
        prev_ctx = ctx.get(prev, (None, ()))
        t = e.type
        if t.endswith("StateEntered"):
            path = prev_ctx[1]
            prev_event = by_id.get(prev)
            if prev_event is not None and prev_event.type in ("ParallelStateStarted", "MapIterationStarted"):
                parallel_id = prev_ctx[0]
                if parallel_id is not None:
                    path = (*path, (parallel_id, str(e.details.get("name", ""))))
            name = str(e.details.get("name", ""))
            visits[e.event_id] = StateVisitRecord(
                entered_event_id=e.event_id,
                name=name,
                state_type=_state_type(t),
                branch=branch_name(path),
                entered_at=e.timestamp,
            )
            ctx[e.event_id] = (e.event_id, path)
            if name in FAILURE_STATES:
                caught = loads_or_none(e.details.get("input"))
                error = caught.get("error") if isinstance(caught, dict) else None
                source_id = prev_ctx[0]
                catches.append(
                    {
                        "from_state": visits[source_id].name if source_id in visits else "",
                        "to_state": name,
                        "event_id": e.event_id,
                        "error": str(error.get("Error", "")) if isinstance(error, dict) else "",
                        "cause": str(error.get("Cause", "")) if isinstance(error, dict) else "",
                    }
                )
            continue
        if t in ("ParallelStateSucceeded", "ParallelStateFailed", "ParallelStateAborted", "ParallelStateExited"):
            state_id, path = prev_ctx
            state = visits.get(state_id) if state_id is not None else None
            if not (state and state.state_type == "Parallel") and path:
                # prev is the last event of a branch: the parallel is the innermost open one.
                parallel_id = path[-1][0]
                ctx[e.event_id] = ctx.get(parallel_id, (parallel_id, path[:-1]))
            else:
                ctx[e.event_id] = prev_ctx
        else:
            ctx[e.event_id] = prev_ctx
        state_id = ctx[e.event_id][0]
        visit = visits.get(state_id) if state_id is not None else None

        if t in ("LambdaFunctionScheduled", "TaskScheduled") and visit is not None:
            number = len(visit.attempts) + 1
            attempt = Attempt(
                number=number,
                kind="lambda" if t.startswith("Lambda") else "task",
                resource=str(e.details.get("resource", "")),
                scheduled_at=_iso(e.timestamp),
            )
            if t == "TaskScheduled":
                attempt.resource = f"{e.details.get('resourceType', '')}:{e.details.get('resource', '')}"
            if state_id in last_attempt_end and e.timestamp:
                attempt.backoff_seconds = round((e.timestamp - last_attempt_end[state_id]).total_seconds(), 3)
            visit.attempts.append(attempt)
            open_attempt[visit.entered_event_id] = attempt
        elif t in ("LambdaFunctionStarted", "TaskStarted") and visit is not None:
            if started := open_attempt.get(visit.entered_event_id):
                started.started_at = _iso(e.timestamp)
        elif t in _ATTEMPT_END and visit is not None:
            ended = open_attempt.pop(visit.entered_event_id, None)
            if ended is None:
                ended = Attempt(number=len(visit.attempts) + 1, kind="task")
                visit.attempts.append(ended)
            attempt = ended
            attempt.ended_at = _iso(e.timestamp)
            attempt.outcome = _ATTEMPT_END[t]
            attempt.error = safe_text(e.details.get("error"), 2048)[0]
            attempt.cause = safe_text(e.details.get("cause"), MAX_DETAIL_CHARS)[0]
            if e.timestamp:
                last_attempt_end[visit.entered_event_id] = e.timestamp
            if t == "TaskSucceeded":
                job_id = _mediaconvert_job_id(loads_or_none(e.details.get("output")))
                if job_id and job_id not in mediaconvert_ids:
                    mediaconvert_ids.append(job_id)
        elif t.endswith("StateExited") and visit is not None:
            visit.exited_at = e.timestamp
            visit.output = safe_text(e.details.get("output"), MAX_DETAIL_CHARS)[0]
            last = visit.attempts[-1] if visit.attempts else None
            if last is not None and last.outcome != "succeeded":
                visit.status, visit.error, visit.cause = "failed", last.error, last.cause
            else:
                visit.status = "succeeded"
        elif t == "ParallelStateFailed" and visit is not None:
            visit.status = "failed"
            visit.error = safe_text(e.details.get("error"), 2048)[0]
            visit.cause = safe_text(e.details.get("cause"), MAX_DETAIL_CHARS)[0]
        elif t == "ExecutionSucceeded":
            final_status = "SUCCEEDED"
        elif t in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
            final_status = {"ExecutionFailed": "FAILED", "ExecutionAborted": "ABORTED"}.get(t, "TIMED_OUT")
            final_error = safe_text(e.details.get("error"), 2048)[0]
            final_cause = safe_text(e.details.get("cause"), MAX_DETAIL_CHARS)[0]
        if t not in _KNOWN_TYPES:
            unknown.append(
                {
                    "event_id": e.event_id,
                    "type": t,
                    "timestamp": _iso(e.timestamp),
                    "details": e.details,
                }
            )

    for visit in visits.values():
        if visit.state_type == "Fail":
            visit.status = "failed"
        elif visit.state_type == "Succeed":
            visit.status = "succeeded"

    branches = _branch_results(list(visits.values()))
    for branch in branches:
        if branch.mediaconvert_job_id and branch.mediaconvert_job_id not in mediaconvert_ids:
            mediaconvert_ids.append(branch.mediaconvert_job_id)
    return Timeline(
        states=sorted(visits.values(), key=lambda v: v.entered_event_id),
        branches=branches,
        catches=catches,
        final_status=final_status,
        final_error=final_error,
        final_cause=final_cause,
        mediaconvert_job_ids=mediaconvert_ids,
        unknown_events=unknown,
        event_count=len(events),
    )


def _mediaconvert_job_id(output: Any) -> str:
    if isinstance(output, dict) and isinstance(output.get("Job"), dict):
        return str(output["Job"].get("Id", ""))
    return ""


def _branch_results(visits: list[StateVisitRecord]) -> list[BranchResult]:
    """One result per branch: the output of the branch's last exited state (its End state)."""
    last_by_branch: dict[str, StateVisitRecord] = {}
    for visit in visits:
        if not visit.branch or visit.exited_at is None:
            continue
        current = last_by_branch.get(visit.branch)
        if current is None or visit.entered_event_id > current.entered_event_id:
            last_by_branch[visit.branch] = visit
    results: list[BranchResult] = []
    for branch, visit in sorted(last_by_branch.items()):
        output = loads_or_none(visit.output)
        body = output.get("body") if isinstance(output, dict) else None
        generated: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        status = ""
        if isinstance(body, dict):
            generated = [g for g in body.get("generatedAssets") or [] if isinstance(g, dict)]
            errors = [g for g in body.get("errors") or [] if isinstance(g, dict)]
            status = str(body.get("status", ""))
        elif isinstance(output, dict):
            status = str(output.get("status", "") or (output.get("Job") or {}).get("Status", ""))
        results.append(
            BranchResult(
                branch=branch,
                last_state=visit.name,
                status=status,
                generated_assets=generated,
                errors=errors,
                mediaconvert_job_id=_mediaconvert_job_id(output),
            )
        )
    return results
