"""Annotations survive re-diagnosis and are audited; failure groups and regressions; incident report."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from diagnosis.annotations import annotation_add, verdicts_in_force
from diagnosis.groups import failure_group_trend, failure_groups_refresh
from diagnosis.models import Annotation, Diagnosis, FailureGroup, GroupNote, Verdict
from diagnosis.report import incident_report_markdown
from diagnosis.services import diagnose_job
from jobs.models import Job
from jobs.roles import ENGINEER, SUPPORT, ensure_roles
from tests.conftest import TOQ_DATABASES
from tests.diagnosis.conftest import JOB37_AWS, import_aws, sync

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)


def _user(name: str, role: str) -> User:
    ensure_roles()
    user = User.objects.create_user(name, password="x")
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def job37(toq_db) -> Job:
    toq_db.load_job37()
    sync()
    import_aws(JOB37_AWS)
    job = Job.objects.get(toq_id=37)
    diagnose_job(job_id=job.pk)
    return job


def test_annotations_survive_rediagnosis_and_are_audited(job37):
    engineer = _user("eng", ENGINEER)
    support = _user("sup", SUPPORT)
    annotation_add(job=job37, author=engineer, verdict=Verdict.CONFIRMED, failure_mode="FM-12", cause="ffmpeg-missing")
    annotation_add(job=job37, author=engineer, verdict=Verdict.REJECTED, failure_mode="FM-39", note="layer was fine")
    annotation_add(
        job=job37, author=engineer, verdict=Verdict.ADDED, failure_mode="FM-39", cause="deploy-script", note="deploy"
    )
    annotation_add(job=job37, author=support, verdict=Verdict.NOTE, note="customer informed")
    with pytest.raises(PermissionDenied):
        annotation_add(job=job37, author=support, verdict=Verdict.CONFIRMED, failure_mode="FM-12")
    # re-diagnosis replaces the findings...
    assert diagnose_job(job_id=job37.pk, force=True).changed
    # ...but the verdicts stay in force, keyed by failure mode + cause
    verdicts = verdicts_in_force(job=job37)
    assert verdicts[("FM-12", "ffmpeg-missing")].verdict == "confirmed"
    assert verdicts[("FM-12", "ffmpeg-missing")].author == "eng"
    assert verdicts[("FM-39", "")].verdict == "rejected"
    # a later verdict supersedes, the audit keeps both
    annotation_add(job=job37, author=engineer, verdict=Verdict.REJECTED, failure_mode="FM-12", cause="ffmpeg-missing")
    assert verdicts_in_force(job=job37)[("FM-12", "ffmpeg-missing")].verdict == "rejected"
    assert Annotation.objects.filter(job=job37, failure_mode="FM-12").count() == 2


def test_audit_rows_cannot_be_changed_or_deleted(job37):
    engineer = _user("eng", ENGINEER)
    a = annotation_add(job=job37, author=engineer, verdict=Verdict.NOTE, note="x")
    a.note = "rewritten"
    with pytest.raises(PermissionError):
        a.save()
    with pytest.raises(PermissionError):
        a.delete()
    assert Annotation.objects.get(pk=a.pk).note == "x"


def test_failure_groups_counts_trend_and_regression(job37):
    assert failure_groups_refresh() == 1
    group = FailureGroup.objects.get()
    assert (group.failure_mode, group.cause, group.job_count, group.listing_count) == ("FM-12", "ffmpeg-missing", 1, 1)
    assert group.regressed_at is None
    # The same failure on another job, 30 days later: same group, and a regression after the quiet period.
    later = Job.objects.get(pk=job37.pk)
    later.pk = None
    later.toq_id = 99
    later.completed_at = job37.completed_at + timedelta(days=30)
    later.listing_identity_id = 77
    later.save()
    # same origin finding (same signature) stored for the later job, as the engine would store it
    origin = job37.diagnosis.findings.get(role="origin")
    diag = Diagnosis.objects.create(job=later, engine_version="x", evidence_fingerprint="x", computed_at=timezone.now())
    origin.pk, origin.diagnosis = None, diag
    origin.save()
    assert failure_groups_refresh(quiet_days=7) == 1
    group.refresh_from_db()
    assert group.job_count == 2 and group.listing_count == 2
    assert group.first_seen_at == job37.completed_at
    assert group.regressed_at == later.completed_at
    failure_groups_refresh(quiet_days=60)
    group.refresh_from_db()
    assert group.regressed_at is None
    trend = failure_group_trend(signature=group.signature, days=40, now=later.completed_at)
    assert len(trend) == 40 and sum(n for _, n in trend) == 2
    # idempotent
    failure_groups_refresh(quiet_days=60)
    assert FailureGroup.objects.count() == 1
    note = GroupNote.objects.create(group=group, text="fixed by layer v6", author=_user("eng", ENGINEER))
    with pytest.raises(PermissionError):
        note.delete()


def test_incident_report_in_both_languages(job37):
    failure_groups_refresh()
    en = incident_report_markdown(job=job37, lang="en")
    assert en.startswith("# Incident report — TOQ media job 37")
    root = en.index("## Root cause")
    assert "FM-12 `ffmpeg-missing`" in en[root:]
    assert en.index("## Root cause") < en.index("## Contributing factors") < en.index("## What support sees")
    assert "1 job(s) on 1 listing(s)" in en
    assert "## Improvements to TOQ's pipeline" in en and "layer" in en
    pt = incident_report_markdown(job=job37, lang="pt-br")
    assert "## Causa raiz" in pt and "## Melhorias no pipeline do TOQ" in pt
    out = StringIO()
    call_command("incident_report", "37", "--lang", "pt-br", stdout=out)
    assert out.getvalue().strip() == pt.strip()
    with pytest.raises(CommandError, match="job 4242 is not in the mirror"):
        call_command("incident_report", "4242")


def test_report_neutralises_markup_in_toq_text(job37):
    finding = job37.diagnosis.findings.first()
    finding.summary_en = "<script>alert(1)</script> `rm -rf`"
    finding.save()
    report = incident_report_markdown(job=job37)
    assert "<script>" not in report and "&lt;script&gt;" in report
    assert timezone.now()  # report building never touches the clock-dependent stuck logic
