"""Speed of the diagnosis (issue 4 "Speed"). Run by hand:  .venv/bin/python bench/diagnosis.py [--jobs N --findings N]

1. diagnose   N failed jobs (default 10,000) with their evidence, diagnosed in one process the way
              the dispatcher fans them out (diagnose_jobs per DIAGNOSE_BATCH_SIZE jobs).
              Evidence: the job-37 incident loaded through the real path once (MariaDB → toq_sync,
              AWS exports → import_aws), then cloned in bulk via the ORM — job row, execution,
              history events, log lines, derivative checks, evidence status — so every job carries
              the incident's full evidence (the listing's assets and the Lambda configuration are
              shared, as they would be for jobs of one listing). Target ≤ 60 s.
2. regroup    failure_groups_refresh over N origin findings (default 100,000: one per job, 500
              signatures spread over 90 days). Target ≤ 30 s.

Uses its own PostgreSQL database toqdash_bench_diag (dropped and created, then migrated) and MariaDB
database toq_bench_diag (as root).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DASH_DB = "toqdash_bench_diag"
TOQ_DB = "toq_bench_diag"
DIAGNOSE_TARGET_S = 60.0
REGROUP_TARGET_S = 30.0


def setup_django() -> None:
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DASH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DASH_DB}")
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DASH_DB}"
    os.environ["TOQ_DATABASE_URL"] = f"mysql://toq_reader:toq_reader_pw@127.0.0.1:3306/{TOQ_DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "toqdash.settings.test")
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # no per-job INFO line in the timings
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed_job37() -> int:
    """The incident through the real path; returns the mirror pk of job 37."""
    from io import StringIO

    from django.core.management import call_command

    from jobs.models import Job
    from jobs.sync import toq_sync
    from tests.conftest import ToqMySQL

    toq = ToqMySQL(TOQ_DB)
    toq.reset(with_created_at=True)
    toq.load_job37()
    toq.close()
    assert toq_sync().ok
    aws = ROOT / "tests" / "fixtures" / "aws" / "job37"
    files = sorted(str(p) for p in aws.rglob("*") if p.suffix in (".json", ".jsonl"))
    call_command("import_aws", *files, stdout=StringIO())
    return Job.objects.get(toq_id=37).pk


def clone_job(seed_pk: int, count: int) -> list[int]:
    """`count` copies of the seed job with copies of its own evidence rows; returns their pks."""
    from django.db import transaction

    from awslogs.models import DerivativeCheck, EvidenceStatus, Execution, HistoryEvent, JobRawKey, LogEvent
    from jobs.models import Job

    seed = Job.objects.get(pk=seed_pk)
    executions = list(Execution.objects.filter(job=seed))
    events = list(HistoryEvent.objects.filter(execution__in=executions))
    logs = list(LogEvent.objects.filter(job=seed))
    checks = list(DerivativeCheck.objects.filter(job=seed))
    raw_keys = list(JobRawKey.objects.filter(job=seed))
    status = EvidenceStatus.objects.filter(job=seed).first()
    print(
        f"seed job 37: {len(executions)} executions, {len(events)} history events, {len(logs)} log lines,"
        f" {len(checks)} derivative checks",
        flush=True,
    )
    pks: list[int] = []
    batch = 500
    for start in range(0, count, batch):
        n = min(batch, count - start)
        with transaction.atomic():
            jobs = []
            for i in range(start, start + n):
                job = Job(**_fields(seed))
                job.toq_id = 100_000 + i
                jobs.append(job)
            jobs = Job.objects.bulk_create(jobs)
            new_execs: list[Execution] = []
            exec_map: list[dict[int, Execution]] = []
            for job in jobs:
                mapping = {}
                for e in executions:
                    copy = Execution(**_fields(e))
                    copy.arn = f"{e.arn}-{job.toq_id}"
                    copy.job = job
                    copy.job_toq_id = job.toq_id
                    mapping[e.pk] = copy
                    new_execs.append(copy)
                exec_map.append(mapping)
            Execution.objects.bulk_create(new_execs)
            HistoryEvent.objects.bulk_create(
                [
                    HistoryEvent(**{**_fields(ev), "execution": mapping[ev.execution_id]})
                    for mapping in exec_map
                    for ev in events
                ],
                batch_size=5000,
            )
            LogEvent.objects.bulk_create(
                [
                    LogEvent(
                        **{
                            **_fields(line),
                            "event_id": f"{line.event_id[:60]}-{job.toq_id}",
                            "job": job,
                            "job_toq_id": job.toq_id,
                        }
                    )
                    for job in jobs
                    for line in logs
                ],
                batch_size=5000,
            )
            DerivativeCheck.objects.bulk_create(
                [DerivativeCheck(**{**_fields(c), "job": job}) for job in jobs for c in checks], batch_size=5000
            )
            JobRawKey.objects.bulk_create(
                [JobRawKey(**{**_fields(k), "job": job}) for job in jobs for k in raw_keys], batch_size=5000
            )
            if status is not None:
                EvidenceStatus.objects.bulk_create([EvidenceStatus(**{**_fields(status), "job": job}) for job in jobs])
        pks.extend(j.pk for j in jobs)
    return pks


def _fields(obj: object) -> dict[str, object]:
    """Concrete column values of a model instance, without its pk and foreign-key ids."""
    meta = obj._meta  # type: ignore[attr-defined]
    return {f.attname: getattr(obj, f.attname) for f in meta.concrete_fields if not f.primary_key and not f.is_relation}


def bench_diagnose(jobs: int) -> float:
    from diagnosis.models import Finding
    from diagnosis.services import diagnose_jobs
    from diagnosis.tasks import DIAGNOSE_BATCH_SIZE

    seed_pk = seed_job37()
    t = time.monotonic()
    pks = [seed_pk, *clone_job(seed_pk, jobs - 1)]
    print(f"created {jobs:,} failed jobs with evidence in {time.monotonic() - t:.1f} s", flush=True)
    t = time.monotonic()
    # As the dispatcher fans out: diagnose_jobs_task per DIAGNOSE_BATCH_SIZE jobs, here in one process.
    changed = sum(
        diagnose_jobs(job_ids=pks[i : i + DIAGNOSE_BATCH_SIZE]) for i in range(0, len(pks), DIAGNOSE_BATCH_SIZE)
    )
    elapsed = time.monotonic() - t
    origins = Finding.objects.filter(role="origin", failure_mode="FM-12", cause="ffmpeg-missing").count()
    assert changed == jobs and origins == jobs, f"expected {jobs} FM-12 ffmpeg-missing origins, got {origins}"
    verdict = "OK" if elapsed <= DIAGNOSE_TARGET_S else "MISSED"
    print(
        f"diagnose: {jobs:,} jobs in {elapsed:.1f} s ({jobs / elapsed:,.0f} jobs/s)"
        f"  target ≤ {DIAGNOSE_TARGET_S:.0f} s: {verdict}",
        flush=True,
    )
    return elapsed


def bench_regroup(findings: int) -> float:
    from diagnosis.groups import failure_groups_refresh
    from diagnosis.models import Diagnosis, FailureGroup, Finding, Role
    from jobs.models import Job

    already = Finding.objects.filter(role=Role.ORIGIN).count()
    todo = max(0, findings - already)
    t = time.monotonic()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    batch = 10_000
    for start in range(0, todo, batch):
        n = min(batch, todo - start)
        times = [base + timedelta(minutes=(start + i) * 97 % (90 * 24 * 60)) for i in range(n)]
        jobs = Job.objects.bulk_create(
            Job(
                toq_id=1_000_000 + start + i,
                row_hash=1,
                first_seen_at=at,
                last_changed_at=at,
                listing_identity_id=(start + i) % 3000,
                status="FAILED",
                provider="STEP_FUNCTIONS",
                created_at=at,
                completed_at=at,
                is_terminal=True,
            )
            for i, at in enumerate(times)
        )
        diagnoses = Diagnosis.objects.bulk_create(
            Diagnosis(job=job, engine_version="bench", evidence_fingerprint="f", computed_at=at, job_status="FAILED")
            for job, at in zip(jobs, times, strict=True)
        )
        Finding.objects.bulk_create(
            Finding(
                diagnosis=d,
                position=0,
                failure_mode=f"FM-{(start + i) % 39 + 1:02d}",
                cause=f"cause-{(start + i) % 500}",
                role=Role.ORIGIN,
                title_en="t",
                title_pt_br="t",
                summary_en="s",
                summary_pt_br="s",
                confidence=0.9,
                failing_state="ProcessVideo",
                signature=f"{(start + i) % 500:064x}",
                signature_text="FM-xx cause ProcessVideo <message>",
            )
            for i, d in enumerate(diagnoses)
        )
    print(f"created {todo:,} more origin findings in {time.monotonic() - t:.1f} s", flush=True)
    total = Finding.objects.filter(role=Role.ORIGIN).count()
    t = time.monotonic()
    groups = failure_groups_refresh()
    elapsed = time.monotonic() - t
    assert FailureGroup.objects.filter(job_count__gt=0).count() == groups
    verdict = "OK" if elapsed <= REGROUP_TARGET_S else "MISSED"
    print(
        f"regroup: {total:,} origin findings into {groups:,} groups in {elapsed:.1f} s"
        f"  target ≤ {REGROUP_TARGET_S:.0f} s: {verdict}",
        flush=True,
    )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=100_000)
    args = parser.parse_args()
    setup_django()
    diagnose_s = bench_diagnose(args.jobs)
    regroup_s = bench_regroup(args.findings)
    return 0 if diagnose_s <= DIAGNOSE_TARGET_S and regroup_s <= REGROUP_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
