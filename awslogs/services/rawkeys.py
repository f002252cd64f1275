"""Job ↔ raw S3 key links, and attribution of log lines that name only a raw `key`.

No AWS calls here. Idempotent: recording the same links twice, or attributing twice, writes nothing.

Sources of a link (reference §3.13): the execution input `assets[].key` (§3.3), the SQS message
body `assets[].key` (§3.2, DLQ messages), the callback `outputs[].rawKey` (§3.7, mirrored as
`Job.callback_results[].raw_key`). A listing's raw keys are reused by every job that reprocesses it,
so a line is given to a job only when its time falls inside that job's executions (with a margin)
and inside no other job's that shares the key: better no link than a wrong one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from awslogs import parsers
from awslogs.models import DlqMessage, Execution, JobRawKey, LogEvent, RawKeySource
from jobs.models import Job

ATTRIBUTED_VIA_RAW_KEY = "raw_key"


@dataclass(frozen=True)
class RawKeyLink:
    raw_key: str
    asset_type: str
    source: str
    source_ref: str = ""


def assets_raw_keys(data: Any) -> list[tuple[str, str]]:
    """`assets` of an execution input / SQS body → [(raw key, type)]; legacy bodies list key strings."""
    assets = data.get("assets") if isinstance(data, dict) else None
    out: list[tuple[str, str]] = []
    for asset in assets if isinstance(assets, list) else []:
        if isinstance(asset, dict) and isinstance(asset.get("key"), str) and asset["key"]:
            out.append((asset["key"], str(asset.get("type") or "")))
        elif isinstance(asset, str) and asset:
            out.append((asset, "VIDEO" if "/video/" in asset else "PHOTO"))
    return out


def raw_key_links(
    *, job: Job, executions: Iterable[Execution], dlq_messages: Iterable[DlqMessage] = ()
) -> list[RawKeyLink]:
    """Every raw key this job's own evidence names, with where it was read."""
    links: list[RawKeyLink] = []
    for execution in executions:
        for key, asset_type in assets_raw_keys(parsers.loads_or_none(execution.input)):
            links.append(RawKeyLink(key, asset_type, RawKeySource.EXECUTION_INPUT, execution.arn))
    for message in dlq_messages:
        for key, asset_type in assets_raw_keys(parsers.loads_or_none(message.body)):
            links.append(RawKeyLink(key, asset_type, RawKeySource.SQS_MESSAGE, message.message_id))
    for result in job.callback_results or []:
        raw_key = result.get("raw_key") if isinstance(result, dict) else None
        if isinstance(raw_key, str) and raw_key:
            links.append(RawKeyLink(raw_key, "", RawKeySource.CALLBACK))
    return links


def job_raw_keys_record(*, job: Job, links: list[RawKeyLink], known: set[tuple[str, str]] | None = None) -> int:
    """Store the links not stored yet; returns how many were added. `known`: (raw_key, source) pairs
    already stored for the job, when the caller has them (a pass prefetches them)."""
    if not links:
        return 0
    if known is None:
        known = set(JobRawKey.objects.filter(job=job).values_list("raw_key", "source"))
    new: dict[tuple[str, str], JobRawKey] = {}
    for link in links:
        key = (link.raw_key[:1024], link.source)
        if key in known or key in new:
            continue
        new[key] = JobRawKey(
            job=job,
            raw_key=key[0],
            asset_type=link.asset_type[:32],
            source=link.source,
            source_ref=link.source_ref[:512],
        )
    JobRawKey.objects.bulk_create(new.values(), ignore_conflicts=True)
    known.update(new)
    return len(new)


Window = tuple[dt.datetime, dt.datetime]


def execution_windows(executions: Iterable[Execution]) -> list[Window]:
    """[start - margin, stop (or now) + margin] of each execution that has started."""
    margin = dt.timedelta(seconds=settings.AWSLOGS_LOG_MARGIN_SECONDS)
    now = timezone.now()
    return [(e.start_date - margin, (e.stop_date or now) + margin) for e in executions if e.start_date is not None]


def _inside(t: dt.datetime | None, windows: list[Window]) -> bool:
    return t is not None and any(lo <= t <= hi for lo, hi in windows)


def log_events_attribute_by_raw_key(*, job: Job, raw_keys: set[str], windows: list[Window]) -> int:
    """Give `job` the unattributed lines naming one of its raw keys inside its windows, then the other
    lines of the same Lambda invocations. Returns how many lines changed (0 on a re-run)."""
    if not raw_keys or not windows:
        return 0
    in_windows = Q()
    for lo, hi in windows:
        in_windows |= Q(timestamp__gte=lo, timestamp__lte=hi)
    candidates = list(
        LogEvent.objects.filter(in_windows, job__isnull=True, job_toq_id__isnull=True, s3_key__in=raw_keys).values_list(
            "id", "s3_key", "timestamp", "log_group", "request_id"
        )
    )
    if not candidates:
        return 0
    # Another job naming the same key (a reprocessing of the listing) claims the lines inside its
    # executions' windows; a rival with no known execution ran no Lambda and claims nothing.
    pairs = list(
        JobRawKey.objects.filter(raw_key__in={c[1] for c in candidates})
        .exclude(job=job)
        .values_list("job_id", "raw_key")
        .distinct()
    )
    rivals: dict[str, list[Window]] = {}
    if pairs:
        by_job: dict[int, list[Window]] = {}
        rival_executions = Execution.objects.filter(job_id__in={p[0] for p in pairs})
        for rival in rival_executions.only("job_id", "start_date", "stop_date"):
            if rival.job_id is not None:
                by_job.setdefault(rival.job_id, []).extend(execution_windows([rival]))
        for rival_pk, key in pairs:
            rivals.setdefault(key, []).extend(by_job.get(rival_pk, []))
    ids, invocations = [], set()
    for pk, key, timestamp, group, request_id in candidates:
        if _inside(timestamp, rivals.get(key, [])):
            continue
        ids.append(pk)
        if request_id:
            invocations.add((group, request_id))
    values = {"job_id": job.pk, "job_toq_id": job.toq_id, "attributed_via": ATTRIBUTED_VIA_RAW_KEY}
    changed = LogEvent.objects.filter(id__in=ids).update(**values)
    if invocations:
        same_invocation = Q()
        for group, request_id in invocations:
            same_invocation |= Q(log_group=group, request_id=request_id)
        changed += LogEvent.objects.filter(same_invocation, job__isnull=True, job_toq_id__isnull=True).update(**values)
    return changed
