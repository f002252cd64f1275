"""Bench: Lambda log ingestion, parse + attribute + store in PostgreSQL (target ≥ 10,000 events/s).

Run: DJANGO_SETTINGS_MODULE=toqdash.settings.test .venv/bin/python bench/aws_logs.py
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._aws_common import bench_database  # noqa: E402

N_EVENTS = 100_000
PAGE = 10_000  # FilterLogEvents' maximum page
TARGET_PER_SECOND = 10_000
GROUP = "/aws/lambda/listing-media-thumbnails-staging"


def events(n: int) -> list[dict[str, Any]]:
    """Invocations of 10 lines each (START, 7 slog JSON lines, END, REPORT), 20 streams interleaved."""
    out: list[dict[str, Any]] = []
    ts = 1767628440000
    seq = 0
    while len(out) < n:
        rid = str(uuid.UUID(int=seq))
        stream = f"2026/01/05/[$LATEST]{seq % 20:032x}"
        job = seq % 5000
        lines = [f"START RequestId: {rid} Version: $LATEST\n"]
        lines.append(
            json.dumps(
                {
                    "time": "2026-01-05T15:54:47.8Z",
                    "level": "INFO",
                    "msg": "Thumbnails Lambda started",
                    "job_id": job,
                    "listing_identity_id": 16,
                    "assets_to_process": 3,
                }
            )
            + "\n"
        )
        for k in range(6):
            lines.append(
                json.dumps(
                    {
                        "time": "2026-01-05T15:54:47.9Z",
                        "level": "INFO",
                        "msg": "Inspecting asset",
                        "index": k,
                        "key": f"16/raw/photo/horizontal/h-{k:02d}-IMG.jpg",
                        "type": "PHOTO_HORIZONTAL",
                    }
                )
                + "\n"
            )
        lines.append(f"END RequestId: {rid}\n")
        lines.append(
            f"REPORT RequestId: {rid}\tDuration: 502.99 ms\tBilled Duration: 649 ms\tMemory Size: 1024 MB\t"
            f"Max Memory Used: 48 MB\t\n"
        )
        for line in lines:
            out.append(
                {
                    "logStreamName": stream,
                    "timestamp": ts,
                    "message": line,
                    "ingestionTime": ts + 900,
                    "eventId": f"{ts:020d}{len(out):036d}",
                }
            )
            ts += 1
        seq += 1
    return out[:n]


def main() -> int:
    data = events(N_EVENTS)
    with bench_database():
        from awslogs.models import LogEvent
        from awslogs.services.store import log_events_store

        t0 = time.perf_counter()
        inserted = 0
        for start in range(0, len(data), PAGE):
            inserted += log_events_store(log_group=GROUP, events=data[start : start + PAGE])
        elapsed = time.perf_counter() - t0
        stored = LogEvent.objects.count()
        attributed = LogEvent.objects.filter(job_toq_id__isnull=False).count()
        t1 = time.perf_counter()
        again = sum(log_events_store(log_group=GROUP, events=data[s : s + PAGE]) for s in range(0, len(data), PAGE))
        elapsed_again = time.perf_counter() - t1
    rate = inserted / elapsed
    ok = rate >= TARGET_PER_SECOND and stored == N_EVENTS and again == 0
    print(
        f"aws_logs: {inserted} events parsed+attributed+stored in {elapsed:.2f} s = {rate:,.0f} events/s "
        f"({attributed} attributed to a job); re-ingestion of the same events: {again} new in {elapsed_again:.2f} s; "
        f"target >= {TARGET_PER_SECOND:,}/s: {'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
