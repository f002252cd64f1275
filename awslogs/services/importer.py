"""Offline import of AWS CLI JSON exports through the same parsers and store as the collector."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q

from awslogs import parsers
from awslogs.models import Execution, FoundVia, JobRawKey, LogEvent
from awslogs.services import callbacks, rawkeys, store


class ImportFormatError(ValueError):
    """The file is not one of the supported AWS CLI exports (or lacks what it needs)."""


@dataclass
class ImportResult:
    path: str
    kind: str
    rows: int
    target: str


_LOGS_NAME = re.compile(r"^(?P<function>.+)\.filter-log-events\.json$")
_HISTORY_NAME = re.compile(r"^(?P<name>.+)\.get-execution-history\.json$")
_KIND_ORDER = {"describe-execution": 0, "get-execution-history": 1}


def _load(path: Path) -> Any:
    # surrogateescape: invalid UTF-8 survives decoding and is shown as \xNN by parsers.safe_text.
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    if path.suffix == ".jsonl":
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ImportFormatError(f"{path.name}: not JSON ({exc})") from exc


def detect_kind(data: Any, path: Path) -> str:
    if isinstance(data, str):
        return "server-log"
    if not isinstance(data, dict):
        raise ImportFormatError(f"{path.name}: unsupported export")
    if "executionArn" in data and "stateMachineArn" in data:
        return "describe-execution"
    events = data.get("events")
    if isinstance(events, list):
        first = events[0] if events else {}
        if "previousEventId" in first or "type" in first or _HISTORY_NAME.match(path.name):
            return "get-execution-history"
        return "filter-log-events"
    if "Contents" in data or ("Prefix" in data and "Name" not in data) or "KeyCount" in data:
        return "list-objects-v2"
    if isinstance(data.get("Job"), dict):
        return "mediaconvert-get-job"
    if "FunctionName" in data and "CodeSha256" in data:
        return "get-function-configuration"
    raise ImportFormatError(f"{path.name}: unsupported export")


def aws_export_import(
    paths: list[Path], *, execution_arn: str = "", log_group: str = "", bucket: str = ""
) -> list[ImportResult]:
    """Import AWS CLI exports. Describe files go first so that histories find their execution.

    `execution_arn` is needed for a history export (the export lacks it) unless a describe export of
    the same execution name was imported; `log_group` likewise for logs unless the file is named
    `<function>.filter-log-events.json`. Raises ImportFormatError. Idempotent."""
    loaded = [(path, _load(path)) for path in paths]
    kinds = [(path, data, detect_kind(data, path)) for path, data in loaded]
    kinds.sort(key=lambda item: _KIND_ORDER.get(item[2], 2))
    results = []
    for path, data, kind in kinds:
        results.append(_import_one(path, data, kind, execution_arn=execution_arn, log_group=log_group, bucket=bucket))
    # Logs and histories may come in any order and from several runs: link what can be linked now.
    for execution in Execution.objects.filter(history_event_count__gt=0):
        store.execution_link_invocations(execution=execution)
    _attribute_raw_keys({r.target for r in results if r.kind in _KIND_ORDER})
    callbacks.log_events_attribute_rejected_callbacks()
    return results


def _attribute_raw_keys(imported_arns: set[str]) -> None:
    """Lines that name only a raw key, given to the job whose execution input lists it: for the
    executions imported now, and for jobs linked to a key that unattributed lines name."""
    unattributed = LogEvent.objects.filter(job__isnull=True, job_toq_id__isnull=True).exclude(s3_key="")
    linked = Q(job__raw_keys__raw_key__in=unattributed.values("s3_key"))
    by_job: dict[int, list[Execution]] = {}
    for execution in Execution.objects.filter(Q(arn__in=imported_arns) | linked, job__isnull=False).distinct():
        if execution.job_id is not None:
            by_job.setdefault(execution.job_id, []).append(execution)
    for executions in by_job.values():
        job = executions[0].job
        if job is None:
            continue
        rawkeys.job_raw_keys_record(job=job, links=rawkeys.raw_key_links(job=job, executions=executions))
        keys = set(JobRawKey.objects.filter(job=job).values_list("raw_key", flat=True))
        rawkeys.log_events_attribute_by_raw_key(job=job, raw_keys=keys, windows=rawkeys.execution_windows(executions))


def _import_one(path: Path, data: Any, kind: str, *, execution_arn: str, log_group: str, bucket: str) -> ImportResult:
    if kind == "describe-execution":
        execution, changed = store.execution_store(describe=data, found_via=FoundVia.IMPORT)
        return ImportResult(str(path), kind, int(changed), execution.arn)
    if kind == "get-execution-history":
        arn = execution_arn
        if not arn and (m := _HISTORY_NAME.match(path.name)):
            found = Execution.objects.filter(name=m.group("name")).values_list("arn", flat=True).first()
            arn = found or ""
        known = Execution.objects.filter(arn=arn).first() if arn else None
        if known is None and arn:
            known, _ = store.execution_store(
                describe=parsers.describe_from_history(arn, data["events"]), found_via=FoundVia.IMPORT
            )
        if known is None:
            raise ImportFormatError(
                f"{path.name}: history without a known execution: pass --execution-arn or import its describe-execution"
            )
        _, changed = store.execution_store(describe=known.describe, found_via=known.found_via, history=data["events"])
        return ImportResult(str(path), kind, len(data["events"]) if changed else 0, known.arn)
    if kind == "filter-log-events":
        group = log_group
        if not group and (m := _LOGS_NAME.match(path.name)):
            group = f"/aws/lambda/{m.group('function')}"
        if not group:
            raise ImportFormatError(f"{path.name}: pass --log-group for a filter-log-events export")
        return ImportResult(str(path), kind, store.log_events_store(log_group=group, events=data["events"]), group)
    if kind == "server-log":
        group = log_group or settings.TOQ_SERVER_LOG_GROUP or "toq-server"
        events = [{"message": line, "timestamp": _line_time(line)} for line in data.splitlines() if line.strip()]
        return ImportResult(str(path), kind, store.log_events_store(log_group=group, events=events), group)
    if kind == "list-objects-v2":
        target = bucket or str(data.get("Name") or settings.TOQ_MEDIA_BUCKET)
        return ImportResult(
            str(path), kind, store.s3_objects_store(bucket=target, objects=data.get("Contents") or []), target
        )
    if kind == "mediaconvert-get-job":
        job_id = str(data["Job"].get("Id", ""))
        linked = _execution_of_mediaconvert_job(job_id)
        _, changed = store.mediaconvert_job_store(data=data, execution=linked)
        return ImportResult(str(path), kind, int(changed), job_id)
    _, created = store.lambda_config_store(data=data)
    return ImportResult(str(path), kind, int(created), str(data.get("FunctionName")))


def _execution_of_mediaconvert_job(job_id: str) -> Execution | None:
    """The execution whose ProcessVideos output named this MediaConvert job."""
    if connection.features.supports_json_field_contains:
        return Execution.objects.filter(timeline__mediaconvert_job_ids__contains=[job_id]).first()
    # SQLite (the embedded demo) has no JSON containment lookup: scan the executions' timelines.
    for execution in Execution.objects.only("id", "timeline").iterator():
        timeline = execution.timeline if isinstance(execution.timeline, dict) else {}
        if job_id in (timeline.get("mediaconvert_job_ids") or []):
            return execution
    return None


def _line_time(line: str) -> int | None:
    data = parsers.loads_or_none(line)
    if isinstance(data, dict):
        parsed = parsers.parse_timestamp(data.get("time"))
        if parsed is not None:
            return parsers.to_epoch_ms(parsed)
    return None
