"""Writes of the diagnosis app: compute and store a job's findings (idempotent)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from diagnosis.engine import ENGINE_VERSION, diagnose
from diagnosis.engine import Finding as EngineFinding
from diagnosis.models import Diagnosis, Finding
from diagnosis.selectors import evidence_for_jobs
from jobs.models import Job
from toqdash.bulk import bulk_insert

logger = logging.getLogger(__name__)


@dataclass
class DiagnoseResult:
    diagnosis: Diagnosis
    changed: bool  # False: evidence and engine unchanged, the stored findings were kept


def diagnose_job(*, job_id: int, force: bool = False) -> DiagnoseResult:
    """Diagnose one mirror job (pk) and store the findings.

    Idempotent: when the stored diagnosis has the same engine version and evidence fingerprint, nothing
    is written. Otherwise its findings are replaced in one transaction. Raises Job.DoesNotExist.
    """
    job = Job.objects.get(pk=job_id)
    return _diagnose([job], force=force)[job.pk]


def diagnose_jobs(*, job_ids: list[int], force: bool = False) -> int:
    """Diagnose several mirror jobs (pks) like diagnose_job, with batched reads and writes.

    Returns how many stored diagnoses changed. Vanished jobs are skipped. Callers bound the batch
    (DIAGNOSE_BATCH_SIZE): the evidence of the whole batch is held in memory.
    """
    jobs = list(Job.objects.filter(pk__in=job_ids).order_by("pk"))
    return sum(r.changed for r in _diagnose(jobs, force=force).values()) if jobs else 0


def _diagnose(jobs: list[Job], *, force: bool) -> dict[int, DiagnoseResult]:
    now = timezone.now()
    evidences = evidence_for_jobs(jobs=jobs, now=now)
    existing = {d.job_id: d for d in Diagnosis.objects.filter(job__in=jobs)}
    stuck_after = settings.DIAGNOSIS_STUCK_AFTER_MINUTES
    results: dict[int, DiagnoseResult] = {}
    changed: list[tuple[Diagnosis, list[EngineFinding]]] = []
    for job in jobs:
        findings = diagnose(evidences[job.pk], stuck_after_minutes=stuck_after)
        # `now` is not part of the evidence, but whether the job counts as stuck is.
        stuck = "-stuck" if any(f.failure_mode == "FM-29" for f in findings) else ""
        fingerprint = evidences[job.pk].fingerprint()[:48] + stuck
        old = existing.get(job.pk)
        if (
            old is not None
            and not force
            and old.engine_version == ENGINE_VERSION
            and old.evidence_fingerprint == fingerprint
        ):
            results[job.pk] = DiagnoseResult(diagnosis=old, changed=False)
            continue
        diagnosis = old or Diagnosis(job=job)
        diagnosis.engine_version = ENGINE_VERSION
        diagnosis.evidence_fingerprint = fingerprint
        diagnosis.computed_at = now
        diagnosis.job_status = job.status
        changed.append((diagnosis, findings))
        results[job.pk] = DiagnoseResult(diagnosis=diagnosis, changed=True)
    if not changed:
        return results
    with transaction.atomic():
        fields = ["engine_version", "evidence_fingerprint", "computed_at", "job_status"]
        Diagnosis.objects.bulk_update([d for d, _ in changed if d.pk is not None], fields)
        # One row per job (OneToOne): an upsert, so a concurrent first diagnosis of the same job
        # updates the row the other worker inserted instead of failing. PostgreSQL returns the pks.
        Diagnosis.objects.bulk_create(
            [d for d, _ in changed if d.pk is None], update_conflicts=True, unique_fields=["job"], update_fields=fields
        )
        Finding.objects.filter(diagnosis__in=[d.pk for d, _ in changed]).delete()
        # COPY: Django 5.2's bulk_create sends UNNEST arrays whose text elements (evidence JSON,
        # summaries) psycopg escapes one by one, a fifth of the diagnosis time (bench/diagnosis.py).
        bulk_insert(
            [
                Finding(
                    diagnosis=diagnosis,
                    position=i,
                    failure_mode=f.failure_mode,
                    cause=f.cause[:64],
                    role=f.role,
                    title_en=f.title_en[:255],
                    title_pt_br=f.title_pt_br[:255],
                    summary_en=f.summary_en,
                    summary_pt_br=f.summary_pt_br,
                    action_en=f.action_en,
                    action_pt_br=f.action_pt_br,
                    confidence=f.confidence,
                    evidence=f.evidence,
                    missing_evidence=f.missing_evidence,
                    failing_state=f.failing_state[:128],
                    signature=f.signature,
                    signature_text=f.signature_text,
                )
                for diagnosis, findings in changed
                for i, f in enumerate(findings)
            ]
        )
    toq_ids = {j.pk: j.toq_id for j in jobs}
    for diagnosis, findings in changed:
        logger.info("diagnosed job %s (pk %s): %d findings", toq_ids[diagnosis.job_id], diagnosis.job_id, len(findings))
    return results


def diagnoses_outdated(*, limit: int) -> list[int]:
    """Mirror job pks whose stored diagnosis was computed by another engine version (bounded)."""
    return list(
        Diagnosis.objects.exclude(engine_version=ENGINE_VERSION)
        .order_by("computed_at")
        .values_list("job_id", flat=True)[:limit]
    )
