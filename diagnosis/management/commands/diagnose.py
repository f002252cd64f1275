"""`python manage.py diagnose JOB_ID [--json] [--lang pt-br] [--force]`: diagnose one TOQ job.

JOB_ID is TOQ's job id (its latest generation when the id was reused). With --json, stdout holds
exactly one JSON object; logs go to stderr (settings.LOGGING).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from diagnosis.models import Diagnosis, Finding
from diagnosis.selectors import job_get_latest
from diagnosis.services import diagnose_job
from jobs.models import Job

ROLE_LABELS = {
    "en": {"origin": "ORIGIN", "contributing": "CONTRIBUTING", "consequence": "CONSEQUENCE"},
    "pt-br": {"origin": "ORIGEM", "contributing": "AGRAVANTE", "consequence": "CONSEQUÊNCIA"},
}
LABELS = {
    "en": {
        "job": "Job",
        "status": "status",
        "none": "No failure found.",
        "action": "Action",
        "missing": "Missing evidence",
        "confidence": "confidence",
        "evidence": "Evidence",
    },
    "pt-br": {
        "job": "Job",
        "status": "status",
        "none": "Nenhuma falha encontrada.",
        "action": "Ação",
        "missing": "Evidência ausente",
        "confidence": "confiança",
        "evidence": "Evidências",
    },
}


def finding_json(finding: Finding, lang: str) -> dict[str, Any]:
    return {
        "failure_mode": finding.failure_mode,
        "cause": finding.cause,
        "role": finding.role,
        "title": finding.title(lang),
        "summary": finding.summary(lang),
        "action": finding.action(lang),
        "confidence": finding.confidence,
        "failing_state": finding.failing_state,
        "signature": finding.signature,
        "evidence": finding.evidence,
        "missing_evidence": [m.get("pt_br" if lang == "pt-br" else "en", "") for m in finding.missing_evidence],
    }


def diagnosis_json(job: Job, diagnosis: Diagnosis, lang: str) -> dict[str, Any]:
    return {
        "job_id": job.toq_id,
        "generation": job.generation,
        "status": job.status,
        "kind": job.kind,
        "listing_id": job.listing_identity_id,
        "engine_version": diagnosis.engine_version,
        "computed_at": diagnosis.computed_at.isoformat(),
        "findings": [finding_json(f, lang) for f in diagnosis.findings.all()],
    }


class Command(BaseCommand):
    help = "Diagnose a TOQ media job: findings (origin first) with their evidence."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_id", type=int, help="TOQ's job id (media_processing_jobs.id)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--lang", choices=["en", "pt-br"], default="en")
        parser.add_argument("--force", action="store_true", help="recompute even if nothing changed")

    def handle(self, *args: Any, **options: Any) -> None:
        job = job_get_latest(toq_id=options["job_id"])
        if job is None:
            raise CommandError(f"job {options['job_id']} is not in the mirror (unknown TOQ job id, or not synced yet)")
        result = diagnose_job(job_id=job.pk, force=options["force"])
        lang = options["lang"]
        data = diagnosis_json(job, result.diagnosis, lang)
        if options["json"]:
            self.stdout.write(json.dumps(data, ensure_ascii=False))
            return
        self.stdout.write(self._report(data, lang))

    def _report(self, data: dict[str, Any], lang: str) -> str:
        labels, roles = LABELS[lang], ROLE_LABELS[lang]
        gen = f" (generation {data['generation']})" if data["generation"] > 1 else ""
        lines = [
            f"{labels['job']} {data['job_id']}{gen} — {labels['status']} {data['status']} — listing {data['listing_id']}",
            "",
        ]
        if not data["findings"]:
            lines.append(labels["none"])
        for f in data["findings"]:
            lines.append(
                f"[{roles.get(f['role'], f['role'])}] {f['failure_mode']} {f['cause']}: {f['title']} "
                f"({labels['confidence']} {f['confidence']:.0%})"
            )
            lines.append(f"  {f['summary']}")
            if f["action"]:
                lines.append(f"  {labels['action']}: {f['action']}")
            lines.append(f"  {labels['evidence']}:")
            for item in f["evidence"][:8]:
                lines.append(f"    - {item['kind']} {item['source']} #{item['id']}: {item['excerpt'][:160]}")
            if len(f["evidence"]) > 8:
                lines.append(f"    … +{len(f['evidence']) - 8}")
            for missing in f["missing_evidence"]:
                lines.append(f"  {labels['missing']}: {missing}")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"
