"""Writes of the diagnosis app: compute and store a job's findings (idempotent)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from diagnosis.engine import ENGINE_VERSION, diagnose
from diagnosis.models import Diagnosis, Finding
from diagnosis.selectors import evidence_for_job
from jobs.models import Job

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
    now = timezone.now()
    evidence = evidence_for_job(job=job, now=now)
    stuck_after = settings.DIAGNOSIS_STUCK_AFTER_MINUTES
    findings = diagnose(evidence, stuck_after_minutes=stuck_after)
    # `now` is not part of the evidence, but whether the job counts as stuck is.
    fingerprint = evidence.fingerprint()[:48] + ("-stuck" if any(f.failure_mode == "FM-29" for f in findings) else "")
    existing = Diagnosis.objects.filter(job=job).first()
    if (
        existing is not None
        and not force
        and existing.engine_version == ENGINE_VERSION
        and existing.evidence_fingerprint == fingerprint
    ):
        return DiagnoseResult(diagnosis=existing, changed=False)
    with transaction.atomic():
        diagnosis, _created = Diagnosis.objects.update_or_create(
            job=job,
            defaults={
                "engine_version": ENGINE_VERSION,
                "evidence_fingerprint": fingerprint,
                "computed_at": now,
                "job_status": job.status,
            },
        )
        diagnosis.findings.all().delete()
        Finding.objects.bulk_create(
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
                for i, f in enumerate(findings)
            ]
        )
    logger.info("diagnosed job %s (pk %s): %d findings", job.toq_id, job.pk, len(findings))
    return DiagnoseResult(diagnosis=diagnosis, changed=True)


def diagnoses_outdated(*, limit: int) -> list[int]:
    """Mirror job pks whose stored diagnosis was computed by another engine version (bounded)."""
    return list(
        Diagnosis.objects.exclude(engine_version=ENGINE_VERSION)
        .order_by("computed_at")
        .values_list("job_id", flat=True)[:limit]
    )
