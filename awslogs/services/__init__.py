"""awslogs services: `store` (DB writes), `collect` (AWS → store), `importer` (CLI exports → store)."""

from awslogs.services.collect import evidence_pass, job_evidence_collect, jobs_needing_evidence
from awslogs.services.importer import aws_export_import

__all__ = ["aws_export_import", "evidence_pass", "job_evidence_collect", "jobs_needing_evidence"]
