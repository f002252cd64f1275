"""Lookup from anything a person has in hand → the matching jobs (issue 4 §5).

Accepted: a TOQ server log line (slog JSON: job_id, request_id, execution_arn, key), an execution
ARN or name, a request id (nginx 32-hex or Lambda UUID), an S3 key, `listing 16`, or a job id.
Read-only; every branch is one or two indexed queries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from awslogs.models import LogEvent
from jobs.models import Job, MediaAsset

MAX_MATCHES = 50
_ARN = re.compile(r"arn:aws:states:[\w-]+:\d+:execution:[\w.-]+:[\w.-]+")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b", re.I)
_S3_KEY = re.compile(r"\b(\d+)/(?:raw|processed)/[^\s\"',|]+")
_LISTING = re.compile(r"^\s*listing[\s:#=]*(\d+)\s*$", re.I)
_JOB = re.compile(r"^\s*(?:job[\s:#=]*)?(\d+)\s*$", re.I)


@dataclass
class LookupMatch:
    job: Job
    matched_by: str  # job_id / execution_arn / execution_name / request_id / s3_key / listing_id


def job_lookup(*, query: str) -> list[LookupMatch]:
    """Jobs matching what the person pasted, newest first; [] when nothing matches."""
    text = (query or "").strip()
    if not text:
        return []
    found: dict[int, LookupMatch] = {}

    def add(jobs: Iterable[Job], how: str) -> None:
        for job in jobs:
            found.setdefault(job.pk, LookupMatch(job=job, matched_by=how))

    line = _json_object(text)
    if line is not None:
        job_id = line.get("job_id")
        if isinstance(job_id, int):
            add(Job.objects.filter(toq_id=job_id).order_by("-generation")[:1], "job_id")
        for key in ("execution_arn", "executionArn", "request_id", "key", "raw_key"):
            value = line.get(key)
            if isinstance(value, str):
                text += " " + value
    elif m := _LISTING.match(text):
        add(Job.objects.filter(listing_identity_id=int(m.group(1))).order_by("-pk")[:MAX_MATCHES], "listing_id")
    elif m := _JOB.match(text):
        add(Job.objects.filter(toq_id=int(m.group(1))).order_by("-generation"), "job_id")

    for arn in _ARN.findall(text):
        add(Job.objects.filter(Q(external_id=arn) | Q(executions__arn=arn)).distinct(), "execution_arn")
    for rid in _HEX32.findall(text) + _UUID.findall(text):
        add(Job.objects.filter(executions__name=rid).distinct(), "execution_name")
        add(_jobs_of_log_lines(LogEvent.objects.filter(request_id=rid)), "request_id")
        # Lambda invocations: the START/END lines carry the RequestId in the message.
        add(_jobs_of_log_lines(LogEvent.objects.filter(message__startswith=f"START RequestId: {rid}")), "request_id")
    for key_match in _S3_KEY.finditer(text):
        key = key_match.group(0).rstrip(".")
        add(_jobs_of_key(key, int(key_match.group(1))), "s3_key")
    return sorted(found.values(), key=lambda m: (m.job.started_at or m.job.first_seen_at, m.job.pk), reverse=True)[
        :MAX_MATCHES
    ]


def _json_object(text: str) -> dict[str, object] | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _jobs_of_log_lines(lines: QuerySet[LogEvent]) -> list[Job]:
    rows = list(lines.values_list("job_id", "job_toq_id")[:MAX_MATCHES])
    pks = {pk for pk, _ in rows if pk}
    toq_ids = {t for pk, t in rows if not pk and t is not None}
    return list(Job.objects.filter(Q(pk__in=pks) | Q(toq_id__in=toq_ids, superseded_at__isnull=True)))


def _jobs_of_key(key: str, listing_id: int) -> list[Job]:
    """A raw or derivative key → the jobs that processed it (execution input, callback, log lines),
    else every job of the key's listing that could have (TOQ keeps no job↔asset link)."""
    raw = key
    if "/processed/" in key:
        asset = MediaAsset.objects.filter(
            Q(s3_key_processed=key) | Q(metadata__icontains=key), listing_identity_id=listing_id
        ).first()
        raw = asset.s3_key_raw if asset and asset.s3_key_raw else key
    direct = Job.objects.filter(
        Q(executions__input__contains=raw) | Q(callback_body__contains=raw) | Q(log_events__s3_key=raw),
        listing_identity_id=listing_id,
    ).distinct()
    jobs = list(direct[:MAX_MATCHES])
    if jobs:
        return jobs
    return list(Job.objects.filter(listing_identity_id=listing_id).order_by("-pk")[:MAX_MATCHES])
