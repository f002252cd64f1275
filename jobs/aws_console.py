"""Links into the AWS console for a job's evidence: pure functions of a region, ARNs, names, keys and
times (no ORM, no boto3), so each URL shape is tested as a string.

The CloudWatch console keeps its state in the URL fragment with its own escaping: each value is
percent-encoded twice and every `%` becomes `$` (so `/` is `$252F`, `?` `$3F`, `=` `$3D`, `&` `$26`);
Logs Insights serialises its query as JSURL (`~(key~value)`, strings prefixed with `'`, characters
other than [A-Za-z0-9_.-] as `*hh` / `**hhhh`) before that same escaping. The shapes below are the
ones the console itself produces (checked against console-generated links).

Standard partition only (`aws`): China and GovCloud consoles live on other hosts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

INSIGHTS_LIMIT = 10_000  # Logs Insights returns at most 10,000 rows per query


def _console(region: str, path: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{path}"


def region_of_arn(arn: str, default: str) -> str:
    """`arn:aws:states:us-east-1:…` → `us-east-1` (`default` when the ARN names none)."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else default


def sfn_execution_url(execution_arn: str, *, region: str) -> str:
    region = region_of_arn(execution_arn, region)
    return _console(region, f"states/home?region={region}#/v2/executions/details/{quote(execution_arn, safe=':')}")


def mediaconvert_job_url(job_id: str, *, region: str) -> str:
    return _console(region, f"mediaconvert/home?region={region}#/jobs/summary/{quote(job_id, safe='')}")


def s3_object_url(bucket: str, key: str, *, region: str) -> str:
    query = urlencode({"region": region, "bucketType": "general", "prefix": key}, quote_via=quote, safe="/")
    return _console(region, f"s3/object/{quote(bucket, safe='')}?{query}")


def s3_prefix_url(bucket: str, prefix: str, *, region: str) -> str:
    query = urlencode(
        {"region": region, "bucketType": "general", "prefix": prefix, "showversions": "false"},
        quote_via=quote,
        safe="/",
    )
    return _console(region, f"s3/buckets/{quote(bucket, safe='')}?{query}")


# --- CloudWatch -----------------------------------------------------------------------------------


def _cw_escape(value: str) -> str:
    """A value inside the CloudWatch console fragment: percent-encoded twice, `%` → `$`."""
    return quote(quote(value, safe=""), safe="").replace("%", "$")


def _cw_separator(char: str) -> str:
    """`?`, `=`, `&` of the fragment's own query: percent-encoded once, `%` → `$`."""
    return quote(char, safe="").replace("%", "$")


def _epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def log_group_events_url(log_group: str, *, region: str, start: datetime, end: datetime) -> str:
    """The log group's events (every stream) between `start` and `end`."""
    query = _cw_separator("&").join(
        f"{name}{_cw_separator('=')}{_cw_escape(str(value))}"
        for name, value in (("start", _epoch_ms(start)), ("end", _epoch_ms(end)))
    )
    return _console(
        region,
        f"cloudwatch/home?region={region}#logsV2:log-groups/log-group/{_cw_escape(log_group)}"
        f"/log-events{_cw_separator('?')}{query}",
    )


def _jsurl_string(value: str) -> str:
    """JSURL's string escaping (what the console's serialiser does): [A-Za-z0-9_.-] as is, `$` as `!`,
    other UTF-16 code units as `*hh` (below 0x100) or `**hhhh`."""
    out = []
    for char in value:
        if char.isascii() and (char.isalnum() or char in "_.-"):
            out.append(char)
        elif char == "$":
            out.append("!")
        else:
            data = char.encode("utf-16-be")
            for i in range(0, len(data), 2):
                unit = int.from_bytes(data[i : i + 2], "big")
                out.append(f"*{unit:02x}" if unit < 0x100 else f"**{unit:04x}")
    return "'" + "".join(out)


def _jsurl(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _jsurl_string(value)
    if isinstance(value, Mapping):
        return "(" + "~".join(f"{k}~{_jsurl(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):
        return "(" + "".join(f"~{_jsurl(v)}" for v in value) + ")"
    raise TypeError(f"not serialisable as JSURL: {type(value).__name__}")


def _insights_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def logs_insights_url(query: str, *, log_groups: Iterable[str], region: str, start: datetime, end: datetime) -> str:
    """Logs Insights with `query` prefilled over `log_groups` and the absolute window [start, end]."""
    detail = {
        "end": _insights_time(end),
        "start": _insights_time(start),
        "timeType": "ABSOLUTE",
        "tz": "UTC",
        "editorString": query,
        "isLiveTail": False,
        "source": list(log_groups),
    }
    # The serialised JSURL is ASCII: its `~`, `(`, `)`, `'` and `!` are percent-encoded twice (`%7E` →
    # `%257E` → `$257E`; Python's quote() would keep `~`), its `*hh` escapes stay as they are.
    serialised = "~" + _jsurl(detail)
    escaped = "".join(c if c.isalnum() or c in "*_.-" else f"$25{ord(c):02X}" for c in serialised)
    return _console(
        region,
        f"cloudwatch/home?region={region}#logsV2:logs-insights{_cw_separator('?')}queryDetail{_cw_separator('=')}{escaped}",
    )


def job_insights_query(*, toq_id: int, execution_arns: Iterable[str]) -> str:
    """Every line of the job: slog's `job_id` (Lambdas and TOQ server, a JSON number) or one of its
    execution ARNs (validate's start line, Step Functions records, callbacks)."""
    conditions = [f"job_id = {int(toq_id)}"]
    # ARNs come from AWS (no quotes in them); strip any anyway, a query is not the place to inject.
    conditions += [f'@message like "{arn.replace(chr(34), "")}"' for arn in dict.fromkeys(execution_arns) if arn]
    return (
        "fields @timestamp, @log, @logStream, @message\n"
        f"| filter {' or '.join(conditions)}\n"
        "| sort @timestamp asc\n"
        f"| limit {INSIGHTS_LIMIT}"
    )


# --- a job's links --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleLink:
    label: str
    url: str
    detail: str = ""  # a status, shown next to the link


@dataclass(frozen=True)
class JobConsoleLinks:
    start: datetime
    end: datetime
    executions: list[ConsoleLink]
    mediaconvert_jobs: list[ConsoleLink]
    insights: str
    log_groups: list[ConsoleLink]
    listing_prefix: str


def job_window(
    *,
    created_at: datetime | None,
    started_at: datetime | None,
    completed_at: datetime | None,
    first_seen_at: datetime,
    is_terminal: bool,
    executions: Iterable[tuple[datetime | None, datetime | None, bool]],
    margin: timedelta,
    search_back: timedelta,
    now: datetime,
) -> tuple[datetime, datetime]:
    """When the job's log lines can be: from its first known time (TOQ's, or an execution's start) to
    its completion or its last execution's stop (now while the job or an execution still runs), widened
    by `margin`. `executions` are (start, stop, running). A job with no time of its own (older schema,
    no callback) looks `search_back` before the mirror first saw it, like the collector."""
    spans = list(executions)
    starts = [t for t in (created_at, started_at, *(start for start, _, _ in spans)) if t is not None]
    start = min(starts) if starts else min(first_seen_at, completed_at or first_seen_at) - search_back
    if not is_terminal or any(running for _, _, running in spans):
        end = now
    else:
        end = max([t for t in (completed_at, *(stop for _, stop, _ in spans)) if t is not None], default=now)
    return start - margin, max(end, start) + margin


def job_console_links(
    *,
    toq_id: int,
    listing_identity_id: int,
    executions: Iterable[tuple[str, str, str]],
    mediaconvert_jobs: Iterable[tuple[str, str]],
    log_groups: Iterable[str],
    window: tuple[datetime, datetime],
    region: str,
    bucket: str,
) -> JobConsoleLinks:
    """Console links of one job: `executions` as (ARN, name, status), `mediaconvert_jobs` as (id, status)."""
    start, end = window
    executions = list(executions)
    groups = list(log_groups)
    return JobConsoleLinks(
        start=start,
        end=end,
        executions=[
            ConsoleLink(name, sfn_execution_url(arn, region=region), status) for arn, name, status in executions
        ],
        mediaconvert_jobs=[
            ConsoleLink(job_id, mediaconvert_job_url(job_id, region=region), status)
            for job_id, status in mediaconvert_jobs
        ],
        insights=logs_insights_url(
            job_insights_query(toq_id=toq_id, execution_arns=[arn for arn, _, _ in executions]),
            log_groups=groups,
            region=region,
            start=start,
            end=end,
        ),
        log_groups=[
            ConsoleLink(group, log_group_events_url(group, region=region, start=start, end=end)) for group in groups
        ],
        listing_prefix=s3_prefix_url(bucket, f"{listing_identity_id}/", region=region),
    )
