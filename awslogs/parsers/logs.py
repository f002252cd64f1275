"""CloudWatch Logs events → LogEventRecord: Lambda platform lines, Go slog JSON, attribution."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from awslogs.parsers.text import (
    MAX_PARSE_BYTES,
    bound_fields,
    int_or_none,
    loads_or_none,
    parse_timestamp,
    safe_text,
)

# --- Lambda / server log lines ----------------------------------------------------------------------

_START = re.compile(r"^START RequestId: (?P<rid>[0-9a-fA-F-]{8,})")
_END = re.compile(r"^END RequestId: (?P<rid>[0-9a-fA-F-]{8,})")
_REPORT = re.compile(r"^REPORT RequestId: (?P<rid>[0-9a-fA-F-]{8,})")
_REPORT_FIELDS = {
    "duration_ms": re.compile(r"\bDuration: ([\d.]+) ms"),
    "billed_duration_ms": re.compile(r"Billed Duration: ([\d.]+) ms"),
    "memory_size_mb": re.compile(r"Memory Size: (\d+) MB"),
    "max_memory_used_mb": re.compile(r"Max Memory Used: (\d+) MB"),
    "init_duration_ms": re.compile(r"Init Duration: ([\d.]+) ms"),
}
_TIMEOUT = re.compile(r"(?:(?P<rid>[0-9a-f]{8}-[0-9a-f-]{27,}) )?Task timed out after (?P<secs>[\d.]+) seconds")
_RUNTIME_EXIT = re.compile(r"(?:RequestId: (?P<rid>[0-9a-f-]{36}) )?Error: Runtime exited(?P<rest>.*)", re.DOTALL)
_XRAY = re.compile(r"XRAY TraceId: (?P<trace>[0-9a-f-]+)")
_GO_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (?P<rest>.*)$", re.DOTALL)
_EXEC_ARN = re.compile(r"arn:aws:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]+:[A-Za-z0-9_.-]+")


@dataclass
class LogLine:
    kind: str  # start / end / report / init_start / timeout / runtime_exit / json / sfn / go_log / text
    request_id: str = ""
    level: str = ""
    msg: str = ""
    job_toq_id: int | None = None
    listing_identity_id: int | None = None
    execution_arn: str = ""
    s3_key: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


def parse_log_message(message: str) -> LogLine:
    """One CloudWatch/server log message → LogLine. Never raises."""
    text = message.strip()
    if text.startswith("START RequestId:"):
        m = _START.match(text)
        return LogLine(kind="start", request_id=m.group("rid") if m else "")
    if text.startswith("END RequestId:"):
        m = _END.match(text)
        return LogLine(kind="end", request_id=m.group("rid") if m else "")
    if text.startswith("REPORT RequestId:"):
        m = _REPORT.match(text)
        report: dict[str, Any] = {}
        for name, pattern in _REPORT_FIELDS.items():
            if found := pattern.search(text):
                report[name] = float(found.group(1))
        if found := _XRAY.search(text):
            report["xray_trace_id"] = found.group("trace")
        if "Status: timeout" in text:
            report["status"] = "timeout"
        return LogLine(kind="report", request_id=m.group("rid") if m else "", fields=report)
    if text.startswith("INIT_START"):
        return LogLine(kind="init_start", fields={"runtime": text.removeprefix("INIT_START").strip()[:200]})
    if text.startswith("XRAY TraceId:"):
        m = _XRAY.search(text)
        return LogLine(kind="xray", fields={"xray_trace_id": m.group("trace") if m else ""})
    if m := _TIMEOUT.search(text):
        return LogLine(
            kind="timeout", request_id=m.group("rid") or "", fields={"timeout_seconds": float(m.group("secs"))}
        )
    if m := _RUNTIME_EXIT.search(text):
        return LogLine(kind="runtime_exit", request_id=m.group("rid") or "", fields={"detail": m.group("rest")[:500]})
    if text.startswith("{"):
        data = loads_or_none(text)
        if isinstance(data, dict):
            return _json_line(data)
    if m := _GO_LOG_PREFIX.match(text):
        # The Lambda Go runtime prints a handler's returned error as `YYYY/MM/DD hh:mm:ss {json}`.
        data = loads_or_none(m.group("rest"))
        if isinstance(data, dict):
            return LogLine(
                kind="go_log",
                level="ERROR" if "errorMessage" in data else "",
                msg=str(data.get("errorMessage", ""))[:500],
                fields=data,
            )
    line = LogLine(kind="text")
    if m := _EXEC_ARN.search(text):
        line.execution_arn = m.group(0)
    return line


def _json_line(data: dict[str, Any]) -> LogLine:
    if "execution_arn" in data and "type" in data and "details" in data:
        # A Step Functions log-group record (same events as the history).
        return LogLine(
            kind="sfn",
            msg=str(data.get("type", "")),
            execution_arn=str(data.get("execution_arn", "")),
            fields=data,
        )
    line = LogLine(kind="json", level=str(data.get("level", "")), msg=str(data.get("msg", ""))[:500], fields=data)
    line.job_toq_id = int_or_none(data.get("job_id", data.get("jobId")))
    line.listing_identity_id = int_or_none(data.get("listing_identity_id", data.get("listingIdentityId")))
    arn = data.get("execution_arn") or data.get("executionArn")
    if isinstance(arn, str):
        line.execution_arn = arn
    key = data.get("key") or data.get("source_key") or data.get("raw_key") or data.get("asset_key")
    if isinstance(key, str):
        line.s3_key = key
    if not line.execution_arn and (m := _EXEC_ARN.search(json.dumps(data.get("payload", "")))):
        line.execution_arn = m.group(0)
    if line.job_toq_id is None and isinstance(data.get("payload"), str):
        payload = loads_or_none(data["payload"])
        if isinstance(payload, dict):
            line.job_toq_id = int_or_none(payload.get("jobId"))
    if line.job_toq_id is None:
        line.job_toq_id = _sqs_job_id(data)
    request_id = data.get("request_id")
    if isinstance(request_id, str):
        line.request_id = request_id
    return line


_BODY_JOB_ID = re.compile(r'"jobId"\s*:\s*"?(\d+)')


def _sqs_job_id(data: dict[str, Any]) -> int | None:
    """The job of a validate line that names none itself (FM-05): `Failed to unmarshal SQS body
    structure` carries the SQS `body` it could not decode (the text still says `"jobId":…`, e.g. a
    jobId sent as a string), and `Validate Lambda received raw event` the whole SQS event (used when
    it holds one record only: a batch names several jobs)."""
    body = data.get("body")
    if not isinstance(body, str):
        event = loads_or_none(data.get("raw_event")) if isinstance(data.get("raw_event"), str) else None
        records = event.get("Records") if isinstance(event, dict) else None
        if not (isinstance(records, list) and len(records) == 1 and isinstance(records[0], dict)):
            return None
        body = records[0].get("body")
        if not isinstance(body, str):
            return None
    m = _BODY_JOB_ID.search(body[:MAX_PARSE_BYTES])
    return int(m.group(1)) if m else None


@dataclass
class LogEventRecord:
    event_id: str
    log_group: str
    log_stream: str
    timestamp: dt.datetime | None
    ingestion_time: dt.datetime | None
    message: str
    truncated: bool
    message_bytes: int
    line: LogLine


def server_line_event_id(log_group: str, raw_line: str | bytes) -> str:
    """Stable id for lines without a CloudWatch eventId (the TOQ server's own log file)."""
    data = raw_line if isinstance(raw_line, bytes) else raw_line.encode("utf-8", "surrogateescape")
    return "sha256:" + hashlib.sha256(log_group.encode() + b"\n" + data).hexdigest()


def parse_log_events(log_group: str, events: list[dict[str, Any]]) -> list[LogEventRecord]:
    """Parse raw FilterLogEvents events and attribute them to invocations.

    App lines carry no request id (reference §3.11): within one log stream, a line between
    `START RequestId: X` and `END`/`REPORT RequestId: X` belongs to invocation X. Afterwards, the
    job id / execution ARN found on any line of an invocation is given to all its lines.
    """
    records: list[LogEventRecord] = []
    for raw in events:
        message = raw.get("message")
        if not isinstance(message, str | bytes):
            message = "" if message is None else str(message)
        original_len = len(message.encode("utf-8", "surrogatepass")) if isinstance(message, str) else len(message)
        # Parse the whole line (a 256 KB JSON line is still JSON), store a bounded copy.
        full_text, _ = safe_text(message, MAX_PARSE_BYTES)
        line = parse_log_message(full_text)
        line.fields = bound_fields(line.fields)
        text, truncated = safe_text(full_text)
        truncated = truncated or original_len > MAX_PARSE_BYTES
        event_id = str(raw.get("eventId") or "") or server_line_event_id(log_group, text)
        records.append(
            LogEventRecord(
                event_id=event_id,
                log_group=log_group,
                log_stream=str(raw.get("logStreamName", "")),
                timestamp=parse_timestamp(raw.get("timestamp")),
                ingestion_time=parse_timestamp(raw.get("ingestionTime")),
                message=text,
                truncated=truncated,
                message_bytes=original_len,
                line=line,
            )
        )
    attribute_invocations(records)
    return records


def attribute_invocations(records: list[LogEventRecord]) -> None:
    by_stream: dict[str, list[LogEventRecord]] = {}
    for record in records:
        by_stream.setdefault(record.log_stream, []).append(record)
    invocation_job: dict[str, int] = {}
    invocation_listing: dict[str, int] = {}
    invocation_arn: dict[str, str] = {}
    _epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    # TOQ server lines (file import or a CloudWatch group with streams alike) group by HTTP request.
    _attribute_http_requests(records)
    for stream_records in by_stream.values():
        if not stream_records[0].log_stream:
            continue
        stream_records.sort(key=lambda r: (r.timestamp or _epoch, r.event_id))
        current = ""
        for record in stream_records:
            line = record.line
            if line.kind == "start":
                current = line.request_id
            elif line.kind in ("end", "report", "timeout", "runtime_exit") and line.request_id:
                if line.kind == "report":
                    current = ""
                continue
            elif current and not line.request_id:
                line.request_id = current
            rid = line.request_id
            if not rid:
                continue
            if line.job_toq_id is not None:
                invocation_job.setdefault(rid, line.job_toq_id)
            if line.listing_identity_id is not None:
                invocation_listing.setdefault(rid, line.listing_identity_id)
            if line.execution_arn:
                invocation_arn.setdefault(rid, line.execution_arn)
    for record in records:
        line = record.line
        rid = line.request_id
        if not rid or line.kind == "json" and line.fields.get("request_id") == rid:
            # server lines: request_id is the HTTP request, not a Lambda invocation
            continue
        if line.job_toq_id is None and rid in invocation_job:
            line.job_toq_id = invocation_job[rid]
        if line.listing_identity_id is None and rid in invocation_listing:
            line.listing_identity_id = invocation_listing[rid]
        if not line.execution_arn and rid in invocation_arn:
            line.execution_arn = invocation_arn[rid]


def _attribute_http_requests(records: list[LogEventRecord]) -> None:
    """TOQ server lines (no log stream): lines of one HTTP request share `request_id`; a job id on
    any of them (e.g. the callback's `service.media.callback.received`) is given to all of them."""
    job_by_request: dict[str, int] = {}
    for record in records:
        request_id = record.line.fields.get("request_id")
        if isinstance(request_id, str) and record.line.job_toq_id is not None:
            job_by_request.setdefault(request_id, record.line.job_toq_id)
    for record in records:
        request_id = record.line.fields.get("request_id")
        if isinstance(request_id, str) and record.line.job_toq_id is None and request_id in job_by_request:
            record.line.job_toq_id = job_by_request[request_id]
