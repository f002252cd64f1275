"""The audit log is append-only through every path the app has (model, queryset, raw SQL)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AbstractUser
from django.db import DatabaseError, connection, transaction

from jobs.models import Job
from reprocess.models import AuditEntry, AuditEntryImmutableError
from tests.jobs.factories import make_job37

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(admin_user: AbstractUser) -> AuditEntry:
    job: Job = make_job37()
    return AuditEntry.objects.create(
        actor=admin_user,  # type: ignore[misc]
        actor_username=admin_user.username,
        job=job,
        action="resubmit",
        event="requested",
        reason="ffmpeg fixed",
        sent={"QueueName": "q"},
    )


def test_save_of_existing_entry_raises(entry: AuditEntry) -> None:
    entry.reason = "rewritten"
    with pytest.raises(AuditEntryImmutableError):
        entry.save()
    assert AuditEntry.objects.get(pk=entry.pk).reason == "ffmpeg fixed"


def test_instance_delete_raises(entry: AuditEntry) -> None:
    with pytest.raises(AuditEntryImmutableError):
        entry.delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_queryset_update_delete_and_bulk_update_raise(entry: AuditEntry) -> None:
    with pytest.raises(AuditEntryImmutableError):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="x")
    with pytest.raises(AuditEntryImmutableError):
        AuditEntry.objects.all().delete()
    entry.reason = "x"
    with pytest.raises(AuditEntryImmutableError):
        AuditEntry.objects.bulk_update([entry], ["reason"])
    assert AuditEntry.objects.get(pk=entry.pk).reason == "ffmpeg fixed"


@pytest.mark.parametrize("sql", ["UPDATE reprocess_auditentry SET reason = 'x'", "DELETE FROM reprocess_auditentry"])
def test_database_trigger_refuses_raw_sql(entry: AuditEntry, sql: str) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql)
    assert AuditEntry.objects.get(pk=entry.pk).reason == "ffmpeg fixed"


def test_job_with_audit_cannot_be_deleted(entry: AuditEntry) -> None:
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        entry.job.delete()
