"""Shared pieces of the diagnosis rules: candidate findings, evidence items, helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

from diagnosis.evidence import (
    AssetFacts,
    Evidence,
    ExecutionFacts,
    HistoryFact,
    LogFact,
    excerpt,
)

ORIGIN, CONTRIBUTING, CONSEQUENCE = "origin", "contributing", "consequence"
FAILED_CALLBACK_STATUSES = frozenset({"FAILED", "PROCESSING_FAILED", "VALIDATION_FAILED", "TIMED_OUT"})
MAPPED_CALLBACK_STATUSES = FAILED_CALLBACK_STATUSES | {"SUCCEEDED", "PARTIAL_SUCCESS"}
RECONCILER_PREFIX = "reconciler marked failed"
DERIVATIVE_ERRORS = "DERIVATIVE_ERRORS_DETECTED"
RETENTION_DAYS = 90


@dataclass
class EvidenceItem:
    kind: str  # history_event / log_event / db_column / s3_object / mediaconvert_field / lambda_config
    source: str  # execution ARN, log group, table.column, bucket, MediaConvert job id, function name
    ref: str  # event id, log event id, TOQ row id, S3 key, field name
    excerpt: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "source": self.source, "id": self.ref, "excerpt": self.excerpt}


@dataclass
class Candidate:
    failure_mode: str
    cause: str
    role: str
    confidence: float
    evidence: list[EvidenceItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # keys of catalog.MISSING
    params: dict[str, str] = field(default_factory=dict)  # values for the catalog's summary templates
    failing_state: str = ""
    message: str = ""  # the error text the failure group signature is built from
    # May become the origin when no rule found one (diagnosis.engine).
    can_be_origin: bool = False


# --- helpers ------------------------------------------------------------------------------------


def job_item(ev: Evidence, column: str, value: object) -> EvidenceItem:
    return EvidenceItem("db_column", f"media_processing_jobs.{column}", str(ev.job.toq_id), excerpt(value))


def asset_item(asset: AssetFacts, column: str, value: object) -> EvidenceItem:
    return EvidenceItem("db_column", f"media_assets.{column}", str(asset.toq_id), excerpt(value))


def history_item(execution: ExecutionFacts, fact: HistoryFact, text: str) -> EvidenceItem:
    return EvidenceItem(
        "history_event", execution.arn, str(fact.event_id), excerpt(f"{fact.type} {fact.state}: {text}")
    )


def log_item(line: LogFact) -> EvidenceItem:
    return EvidenceItem("log_event", line.log_group, line.event_id, excerpt(line.message.strip()))


def failed_events(ev: Evidence, states: set[str] | None = None) -> list[tuple[ExecutionFacts, HistoryFact]]:
    return [
        (e, f)
        for e in ev.executions
        for f in e.events
        if f.error and not f.type.startswith("Execution") and f.type != "TaskStateExited"
        if states is None or f.state in states
    ]


def state_failed(ev: Evidence, state: str) -> bool:
    """The state's failure escaped its Retry (caught to a failure state, or the execution failed in it);
    failed attempts that a retry recovered from are not a failure."""
    for execution in ev.executions:
        if any(c.get("from_state") == state for c in execution.catches):
            return True
        failed = [f for f in execution.events if f.error and f.type != "TaskStateExited"]
        if state == "ParallelProcessing" and any(f.type == "ParallelStateFailed" for f in failed):
            return True
        if execution.status == "FAILED" and failed and any(f.state == state for f in failed[-3:]):
            return True
    return False


def logs_with(ev: Evidence, *msgs: str) -> list[LogFact]:
    return [line for line in ev.logs if line.msg in msgs]


def field_text(line: LogFact, name: str) -> str:
    value = line.fields.get(name) if isinstance(line.fields, dict) else None
    return "" if value is None else str(value)


def short_keys(keys: list[str]) -> str:
    uniq = list(dict.fromkeys(k for k in keys if k))
    return ", ".join(uniq[:5]) + (f" (+{len(uniq) - 5})" if len(uniq) > 5 else "")


def callback_failed(ev: Evidence) -> bool:
    return ev.job.callback_status in FAILED_CALLBACK_STATUSES
