"""Where TOQ's mirrored job and the AWS evidence about it contradict each other: a pure function of the
job row and what awslogs stored (no ORM access, no request), shown loud on the job page.

TOQ only ever learns what the callback told it, and never hears of MediaConvert at all; AWS knows
what actually ran. Each rule names the contradiction and the values that show it. Comparisons that
could be a race — an execution just closed (callback and sync on their way), or evidence collected
before the job's row last changed — wait for `grace` or for evidence collected after the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from . import aws_console
from .models import JobStatus

if TYPE_CHECKING:
    from awslogs.models import DerivativeCheck, Execution, MediaConvertJob

    from .models import Job

# Execution statuses (DescribeExecution): closed, or still going.
EXECUTION_CLOSED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
EXECUTION_RUNNING = frozenset({"RUNNING", "PENDING_REDRIVE"})
MEDIACONVERT_FAILED = frozenset({"ERROR", "CANCELED"})
# TOQ statuses that tell the person "the video was processed" (TOQ never checks MediaConvert).
TOQ_SUCCESS = frozenset({JobStatus.SUCCEEDED, JobStatus.PARTIAL_SUCCESS})
# Keys listed in a missing-derivatives disagreement; the derivatives panel has them all.
MISSING_KEYS_SHOWN = 5


@dataclass(frozen=True)
class EvidenceValue:
    label: str
    value: str = ""
    at: datetime | None = None  # shown as a time (display time zone, UTC on hover)
    url: str = ""  # AWS console link for the value


@dataclass(frozen=True)
class Disagreement:
    code: str  # stable slug (tests, CSS): mediaconvert-failed, execution-closed, …
    message: str  # translated, plain text (escaped by the template like any TOQ/AWS text)
    evidence: list[EvidenceValue] = field(default_factory=list)


@dataclass(frozen=True)
class AwsEvidence:
    """What the job page loads about a job's AWS side (jobs.selectors.job_aws_evidence)."""

    executions: list[Execution]  # oldest first
    mediaconvert_jobs: list[MediaConvertJob]
    failed_checks: list[DerivativeCheck]  # derivative checks whose outcome is missing / zero_bytes
    # Whether the stored evidence was collected against the job's current row (its row hash):
    # None when it was never collected.
    evidence_current: bool | None


def _latest(executions: list[Execution]) -> Execution | None:
    dated = [e for e in executions if e.start_date is not None]
    if dated:
        return max(dated, key=lambda e: (e.start_date, e.pk or 0))
    return executions[-1] if executions else None


def _execution_values(execution: Execution, region: str) -> list[EvidenceValue]:
    values = [
        EvidenceValue(_("Execution"), execution.name, url=aws_console.sfn_execution_url(execution.arn, region=region)),
        EvidenceValue(_("Execution status"), execution.status),
    ]
    if execution.start_date:
        values.append(EvidenceValue(_("Execution started"), at=execution.start_date))
    if execution.stop_date:
        values.append(EvidenceValue(_("Execution stopped"), at=execution.stop_date))
    if execution.error:
        values.append(EvidenceValue(_("Execution error"), execution.error))
    return values


def _job_changed_at(job: Job) -> datetime:
    """When TOQ's row last reached its current state, as well as the mirror can tell."""
    return job.completed_at or job.last_changed_at


def job_disagreements(
    *, job: Job, evidence: AwsEvidence, now: datetime, grace: timedelta, region: str, bucket: str
) -> list[Disagreement]:
    """Every contradiction between TOQ's job row and the AWS evidence, most telling first."""
    out: list[Disagreement] = []
    status = job.status
    latest = _latest(evidence.executions)

    # 1. TOQ reports success; MediaConvert (fire-and-forget from ProcessVideos) failed the MP4 — and
    # no other MediaConvert job of the job (a rerun's) produced it since.
    produced = any(mc.status == "COMPLETE" for mc in evidence.mediaconvert_jobs)
    if status in TOQ_SUCCESS and not produced:
        for mc in evidence.mediaconvert_jobs:
            if mc.status not in MEDIACONVERT_FAILED:
                continue
            values = [
                EvidenceValue(
                    _("MediaConvert job"), mc.job_id, url=aws_console.mediaconvert_job_url(mc.job_id, region=region)
                ),
                EvidenceValue(_("MediaConvert status"), mc.status),
            ]
            if mc.error_code is not None:
                values.append(EvidenceValue(_("Error code"), str(mc.error_code)))
            if mc.error_message:
                values.append(EvidenceValue(_("Error message"), mc.error_message))
            out.append(
                Disagreement(
                    "mediaconvert-failed",
                    _(
                        "TOQ says %(status)s, but MediaConvert job %(job)s ended %(mc_status)s: the video's MP4 was not produced."
                    )
                    % {"status": status, "job": mc.job_id, "mc_status": mc.status},
                    values,
                )
            )

    # 2. TOQ says FAILED; the job's latest execution succeeded (its success callback was delivered).
    if status == JobStatus.FAILED and latest is not None and latest.status == "SUCCEEDED":
        out.append(
            Disagreement(
                "execution-succeeded",
                _("TOQ says FAILED, but the job's latest execution %(execution)s SUCCEEDED.")
                % {"execution": latest.name},
                [*_execution_values(latest, region), EvidenceValue(_("TOQ last error"), job.last_error or "—")],
            )
        )

    # 3. TOQ still waits (PENDING/RUNNING); every execution closed a while ago and no callback came.
    # (Not for a row gone from TOQ: TOQ says nothing about it any more.)
    running = [e for e in evidence.executions if e.status in EXECUTION_RUNNING]
    if (
        not job.is_terminal
        and job.disappeared_at is None
        and not running
        and latest is not None
        and latest.status in EXECUTION_CLOSED
        and latest.stop_date is not None
        and now - latest.stop_date > grace
    ):
        out.append(
            Disagreement(
                "execution-closed",
                _(
                    "TOQ still says %(status)s, but the job's execution %(execution)s ended %(exec_status)s and TOQ's row has not changed since."
                )
                % {"status": status, "execution": latest.name, "exec_status": latest.status},
                [*_execution_values(latest, region), EvidenceValue(_("TOQ row last changed"), at=job.last_changed_at)],
            )
        )

    # The two rules below compare TOQ's final state with AWS state that may predate it: only on
    # evidence collected after the job's row last changed, and after the grace period.
    settled = evidence.evidence_current is True and now - _job_changed_at(job) > grace

    # 4. TOQ reports success; expected derivatives are missing or empty in S3.
    if status == JobStatus.SUCCEEDED and evidence.failed_checks and settled:
        checks = sorted(evidence.failed_checks, key=lambda c: c.key)
        values = [
            EvidenceValue(
                _("Empty (0 bytes)") if c.outcome == "zero_bytes" else _("Missing"),
                c.key,
                # A 0-byte object exists (link it); a missing one has no console page.
                url=aws_console.s3_object_url(bucket, c.key, region=region) if c.outcome == "zero_bytes" else "",
            )
            for c in checks[:MISSING_KEYS_SHOWN]
        ]
        if len(checks) > MISSING_KEYS_SHOWN:
            values.append(EvidenceValue(_("More, in the Derivatives panel"), str(len(checks) - MISSING_KEYS_SHOWN)))
        out.append(
            Disagreement(
                "derivatives-missing",
                _("TOQ says SUCCEEDED, but expected derivatives are missing or empty in S3 (%(count)d).")
                % {"count": len(checks)},
                values,
            )
        )

    # 5. TOQ's job is over; one of its executions is still running in AWS.
    if job.is_terminal and running and settled:
        for execution in running:
            out.append(
                Disagreement(
                    "execution-running",
                    _("TOQ says %(status)s, but the job's execution %(execution)s is still RUNNING in AWS.")
                    % {"status": status, "execution": execution.name},
                    _execution_values(execution, region),
                )
            )
    return out
