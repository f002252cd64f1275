"""TOQ server lines of a rejected callback, linked to the job by time (FM-21).

TOQ checks a callback's signature before reading its body, so its
`adapter.stepfunctions.callback.signature_mismatch` WARN names no job (reference §3.7, §5 FM-21;
toq_server media_processing_callback_adapter.go logs the bare message, plus `request_id` when inside
the HTTP request). The callback Lambda that sent the POST logs `Callback response received` with
`status_code` 403 right after TOQ answered, and that line is attributed to the job (its invocation
names the job). So a server line is given to the job whose callback invocation logged a 403 within
`REJECTED_CALLBACK_WINDOW` of it, only when the match is one to one: exactly one such 403 near the
server line, and exactly one server line near that 403. Anything else (two jobs' callbacks rejected
in the same seconds, a 403 of an unknown job) stays unlinked: better no link than a wrong one.

No AWS calls here. Idempotent: a re-run writes nothing.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from django.db.models import Q

from awslogs import parsers
from awslogs.models import LogEvent

ATTRIBUTED_VIA_CALLBACK_TIME = "callback_time"
SIGNATURE_MISMATCH_MSG = "adapter.stepfunctions.callback.signature_mismatch"
CALLBACK_RESPONSE_MSG = "Callback response received"
# How far apart TOQ's server line and the callback Lambda's 403 line may be: the Lambda logs right
# after the answer (its HTTP client gives up after 10 s, but a 403 comes back at once); the rest
# is clock skew between the server host and CloudWatch.
REJECTED_CALLBACK_WINDOW = dt.timedelta(seconds=3)

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Rejection:
    """A callback Lambda line `Callback response received` with status 403."""

    timestamp: dt.datetime
    job_pk: int | None
    job_toq_id: int | None


def match_rejected_callbacks(
    server_lines: Sequence[tuple[K, dt.datetime]],
    rejections: Sequence[Rejection],
    window: dt.timedelta = REJECTED_CALLBACK_WINDOW,
) -> dict[K, Rejection]:
    """Pure: server line key → the 403 it answers, for one-to-one matches within `window` only.

    A 403 whose job is unknown still counts as a candidate (it makes a match ambiguous) but is
    never a link target."""
    by_time = sorted(rejections, key=lambda r: r.timestamp)
    times = [r.timestamp for r in by_time]
    server_times = sorted(t for _, t in server_lines)
    out: dict[K, Rejection] = {}
    for key, t in server_lines:
        near = by_time[bisect.bisect_left(times, t - window) : bisect.bisect_right(times, t + window)]
        if len(near) != 1 or near[0].job_toq_id is None:
            continue
        rejection = near[0]
        lo, hi = rejection.timestamp - window, rejection.timestamp + window
        if bisect.bisect_right(server_times, hi) - bisect.bisect_left(server_times, lo) != 1:
            continue  # another rejected POST's server line is as close: which is which is a guess
        out[key] = rejection
    return out


def _status(fields: object) -> str:
    value = fields.get("status_code") if isinstance(fields, dict) else None
    return str(value).strip() if value is not None else ""


def is_rejected_callback_line(line: parsers.LogLine) -> bool:
    """TOQ's signature_mismatch line or the callback Lambda's 403: worth a linking run."""
    return line.msg == SIGNATURE_MISMATCH_MSG or (line.msg == CALLBACK_RESPONSE_MSG and _status(line.fields) == "403")


def log_events_attribute_rejected_callbacks(
    *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> int:
    """Link the unattributed `signature_mismatch` lines in [since, until] (all when unbounded), and
    the other unattributed server lines of the same HTTP request, to the job of the matching 403.
    Returns how many lines changed (0 on a re-run)."""
    span = Q(msg=SIGNATURE_MISMATCH_MSG, job__isnull=True, job_toq_id__isnull=True, timestamp__isnull=False)
    if since is not None:
        span &= Q(timestamp__gte=since)
    if until is not None:
        span &= Q(timestamp__lte=until)
    pending = [(pk, t) for pk, t in LogEvent.objects.filter(span).values_list("id", "timestamp") if t is not None]
    if not pending:
        return 0
    # Everything that could compete for them: 403s within one window, server lines within two.
    first, last = min(t for _, t in pending), max(t for _, t in pending)
    reach = 2 * REJECTED_CALLBACK_WINDOW
    server_lines = [
        (pk, t)
        for pk, t in LogEvent.objects.filter(
            msg=SIGNATURE_MISMATCH_MSG, timestamp__gte=first - reach, timestamp__lte=last + reach
        ).values_list("id", "timestamp")
        if t is not None
    ]
    rejections = [
        Rejection(timestamp, job_pk, job_toq_id)
        for timestamp, job_pk, job_toq_id, fields in LogEvent.objects.filter(
            msg=CALLBACK_RESPONSE_MSG,
            timestamp__gte=first - REJECTED_CALLBACK_WINDOW,
            timestamp__lte=last + REJECTED_CALLBACK_WINDOW,
        ).values_list("timestamp", "job_id", "job_toq_id", "fields")
        if timestamp is not None and _status(fields) == "403"
    ]
    pending_ids = {pk for pk, _ in pending}
    matches = match_rejected_callbacks(server_lines, rejections)
    changed = 0
    for pk, rejection in matches.items():
        if pk not in pending_ids:
            continue
        values = {
            "job_id": rejection.job_pk,
            "job_toq_id": rejection.job_toq_id,
            "attributed_via": ATTRIBUTED_VIA_CALLBACK_TIME,
        }
        line = LogEvent.objects.filter(pk=pk).values_list("log_group", "request_id").first()
        same_request = Q(pk=pk)
        if line and line[1]:
            # the request's other lines (e.g. the access line `HTTP Response` status 403)
            same_request |= Q(log_group=line[0], request_id=line[1])
        changed += LogEvent.objects.filter(same_request, job__isnull=True, job_toq_id__isnull=True).update(**values)
    return changed
