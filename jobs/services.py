"""Writes of the dashboard's own data (never the mirror: only jobs.sync writes that)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from .models import Job, JobNote


@transaction.atomic
def job_note_create(*, job: Job, author: User, text: str) -> JobNote:
    """Add a note to one job generation. Raises ValidationError on an empty or too long text."""
    note = JobNote(job=job, author=author, text=text.strip())
    # job and author are instances the caller already holds: no need to re-read them to validate.
    note.full_clean(exclude=["job", "author"])
    note.save()
    return note
