"""Annotations on a job's diagnosis: engineers confirm or reject a finding, or add their own cause."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError

from diagnosis.models import Annotation, Verdict
from jobs.models import Job
from jobs.roles import ENGINEER, SUPPORT, user_has_role


def annotation_add(
    *, job: Job, author: AbstractBaseUser, verdict: str, failure_mode: str = "", cause: str = "", note: str = ""
) -> Annotation:
    """Record one annotation (append-only). Notes: Support and up; verdicts and own causes: Engineer and up."""
    if verdict not in Verdict.values:
        raise ValidationError(f"unknown verdict {verdict!r}")
    needed = SUPPORT if verdict == Verdict.NOTE else ENGINEER
    if not user_has_role(author, needed):
        raise PermissionDenied(f"{needed} role required")
    if verdict in (Verdict.CONFIRMED, Verdict.REJECTED) and not failure_mode:
        raise ValidationError("a verdict names the finding's failure mode")
    if verdict == Verdict.ADDED and not (failure_mode or note):
        raise ValidationError("an added cause needs a failure mode or a note")
    annotation = Annotation(
        job=job,
        author=author,  # type: ignore[misc]
        verdict=verdict,
        failure_mode=failure_mode[:8],
        cause=cause[:64],
        note=note[:4000],
    )
    annotation.full_clean()
    annotation.save()
    return annotation


@dataclass(frozen=True)
class VerdictInForce:
    failure_mode: str
    cause: str
    verdict: str
    note: str
    author: str
    at: str


def verdicts_in_force(*, job: Job) -> dict[tuple[str, str], VerdictInForce]:
    """Latest verdict per (failure mode, cause) of this job, surviving any re-diagnosis."""
    out: dict[tuple[str, str], VerdictInForce] = {}
    for a in Annotation.objects.filter(job=job).exclude(verdict=Verdict.NOTE).select_related("author"):
        out[(a.failure_mode, a.cause)] = VerdictInForce(
            a.failure_mode, a.cause, a.verdict, a.note, a.author.get_username(), a.created_at.isoformat()
        )
    return out
