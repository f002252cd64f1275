"""The demo world of `make run`: TOQ rows in an SQLite source → the real sync → the bundled job-37
AWS exports through `import_aws` → diagnosis of every job. Job 37's origin is FM-12 ffmpeg-missing."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.models import Count
from django.utils import timezone

from awslogs.models import Execution, HistoryEvent, LogEvent
from diagnosis.groups import failure_groups_refresh
from diagnosis.models import Diagnosis, FailureGroup, Finding
from jobs.demo import build_demo_source, demo_aws_exports, demo_evidence_load
from jobs.models import Job, MediaAsset
from jobs.sync import toq_sync
from tests.conftest import TOQ_DATABASES

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "aws" / "job37"


@contextmanager
def toq_source(path: Path) -> Iterator[None]:
    """Point the `toq` alias at an SQLite TOQ source for the duration (as `make run` configures it)."""
    original = connections.settings["toq"]
    connections["toq"].close()
    connections.settings["toq"] = {
        **original,
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": f"file:{path}?mode=ro",
        "OPTIONS": {"uri": True},
        "HOST": "",
        "PORT": "",
        "USER": "",
        "PASSWORD": "",
    }
    try:
        yield
    finally:
        connections["toq"].close()
        connections.settings["toq"] = original


def build_demo_world(tmp_path: Path, *, world: bool = False) -> None:
    """What `load_demo` does on a first run, into the test database (`world=True`: the ~200 jobs
    `load_demo` builds; without it only the incident and its neighbours, for the panel tests)."""
    path = tmp_path / "demo-toq.sqlite3"
    build_demo_source(path, world=world)
    with toq_source(path):
        result = toq_sync()
    assert result.ok, result.summary()
    demo_evidence_load(path)


def test_demo_exports_are_bundled_copies_of_the_job37_fixtures():
    # The demo must not read tests/ at run time, and its copies must not drift from the fixtures.
    bundled = demo_aws_exports()
    assert bundled and all("tests" not in p.parts for p in bundled)
    for path in bundled:
        fixture = FIXTURES / path.parent.name / path.name
        assert path.read_bytes() == fixture.read_bytes(), path.name
    assert {p.parent.name for p in bundled} == {"stepfunctions", "logs", "s3", "mediaconvert", "lambda"}


def test_demo_world_diagnoses_job_37_as_ffmpeg_missing(tmp_path):
    build_demo_world(tmp_path)

    job = Job.objects.get(toq_id=37)
    assert Execution.objects.filter(job=job).count() == 1
    assert HistoryEvent.objects.filter(execution__job=job).count() == 47
    assert LogEvent.objects.filter(job=job).exists()
    origin = Finding.objects.filter(diagnosis__job=job).order_by("position").first()
    assert origin is not None
    assert (origin.failure_mode, origin.cause, origin.role) == ("FM-12", "ffmpeg-missing", "origin")
    assert "/opt/ffmpeg/ffmpeg" in origin.summary_en
    # every mirrored job is diagnosed, not only 37
    assert Diagnosis.objects.count() == Job.objects.count() == 4


def test_demo_evidence_load_is_idempotent(tmp_path):
    build_demo_world(tmp_path)
    counts = (LogEvent.objects.count(), HistoryEvent.objects.count(), Finding.objects.count())
    computed = list(Diagnosis.objects.order_by("pk").values_list("computed_at", flat=True))

    again = demo_evidence_load()

    assert again["diagnoses changed"] == 0
    assert (LogEvent.objects.count(), HistoryEvent.objects.count(), Finding.objects.count()) == counts
    assert list(Diagnosis.objects.order_by("pk").values_list("computed_at", flat=True)) == computed


def test_load_demo_command_imports_and_diagnoses(tmp_path, settings):
    path = tmp_path / "demo-toq.sqlite3"
    settings.TOQ_SQLITE_PATH = str(path)
    out = StringIO()
    with toq_source(path):
        # load_demo refuses anything but an SQLite source; settings.DATABASES is the very dict
        # toq_source swaps (connections.settings), so the command sees the SQLite source.
        assert django_settings.DATABASES["toq"]["ENGINE"] == "django.db.backends.sqlite3"
        call_command("load_demo", stdout=out)
        call_command("load_demo", stdout=out)  # rerun: reuses the source, changes nothing
        # --reset over a mirrored world flushes only an SQLite dashboard database; this one is not
        with pytest.raises(CommandError, match="flush it first"):
            call_command("load_demo", "--reset", stdout=out)
    assert django_settings.DATABASES["toq"]["ENGINE"] == "django.db.backends.mysql"  # restored
    text = out.getvalue()
    assert "demo AWS evidence imported: 200 jobs diagnosed, 200 diagnoses changed" in text
    assert "demo AWS evidence imported: 200 jobs diagnosed, 0 diagnoses changed" in text
    assert "support / support-demo" in text
    assert Finding.objects.get(diagnosis__job__toq_id=37, position=0).failure_mode == "FM-12"
    # the failure groups are built too (no beat in the demo): the dozen-job HEAD 404 group among them
    assert re.search(r"failure groups: \d+", text)
    assert FailureGroup.objects.order_by("-job_count").first().job_count >= 10


def test_demo_world_has_200_jobs_and_the_failure_modes_support_meets(tmp_path):
    build_demo_world(tmp_path, world=True)

    jobs = Job.objects.all()
    assert jobs.count() == 200
    assert set(Job.objects.filter(toq_id__in=[36, 37, 38, 39]).values_list("toq_id", flat=True)) == {36, 37, 38, 39}
    assert not jobs.filter(toq_id__gt=39, toq_id__lt=100).exists()
    kinds = dict(jobs.values_list("kind").annotate(n=Count("pk")))
    statuses = dict(jobs.values_list("status").annotate(n=Count("pk")))
    assert kinds["processing"] > 100 and kinds["finalization"] > 40, kinds
    assert statuses["SUCCEEDED"] > 150 and statuses["PARTIAL_SUCCESS"] >= 1 and statuses["FAILED"] >= 8, statuses
    assert jobs.filter(status="PENDING").count() == 3 and jobs.filter(status="RUNNING").count() == 1
    assert MediaAsset.objects.filter(s3_key_raw__endswith=".mp4").count() >= 20
    # the last 30 days (the incident keeps its January dates)
    recent = jobs.filter(toq_id__gte=100)
    assert recent.filter(created_at__lt=timezone.now() - timedelta(days=30)).count() == 0

    origin = Finding.objects.filter(diagnosis__job__toq_id=37).order_by("position").first()
    assert origin is not None and (origin.failure_mode, origin.cause) == ("FM-12", "ffmpeg-missing")
    assert Diagnosis.objects.count() == 200

    origins = Finding.objects.filter(role="origin")
    per_fm = dict(origins.values_list("failure_mode").annotate(n=Count("diagnosis__job", distinct=True)))
    expected = {
        "FM-09",
        "FM-10",
        "FM-11",
        "FM-12",
        "FM-13",
        "FM-15",
        "FM-17",
        "FM-19",
        "FM-29",
        "FM-30",
        "FM-32",
        "FM-33",
    }
    assert expected <= set(per_fm), per_fm
    # FM-25 (the FINALIZATION_FAILED TOQ ignores) amplifies the ZIP failure (FM-32, the origin)
    assert Finding.objects.filter(failure_mode="FM-25", role="contributing").exists()
    # the stuck job, the partial success and the findings around the failure modes
    assert Finding.objects.filter(diagnosis__job__toq_id=39, failure_mode="FM-29").exists()
    assert Finding.objects.filter(failure_mode="FM-11", diagnosis__job__status="PARTIAL_SUCCESS").exists()
    assert Finding.objects.filter(failure_mode="FM-28").exists()  # TOQ's fail-safe after FM-09/13/15
    # a MediaConvert failure TOQ never noticed: the job SUCCEEDED, its get-job says ERROR (imported exports)
    unnoticed = Finding.objects.get(failure_mode="FM-17")
    assert unnoticed.diagnosis.job.status == "SUCCEEDED" and unnoticed.role == "origin"
    assert Execution.objects.filter(job=unnoticed.diagnosis.job, status="SUCCEEDED").count() == 1
    # the fixed video-thumbnail configuration (16:12) is the one later jobs ran with: FM-39 is job 37's only
    assert set(Finding.objects.filter(failure_mode="FM-39").values_list("diagnosis__job__toq_id", flat=True)) == {37}
    # healthy jobs have no finding at all
    healthy = Diagnosis.objects.filter(job__status="SUCCEEDED", findings__isnull=True).count()
    assert healthy > 140

    failure_groups_refresh()
    biggest = FailureGroup.objects.order_by("-job_count").first()
    assert biggest is not None and biggest.job_count >= 10
    assert (biggest.failure_mode, biggest.cause) == ("FM-10", "raw-object-missing")


def test_demo_world_is_deterministic_and_relative_to_now(tmp_path):
    now = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
    a, b = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    assert build_demo_source(a, now=now, world=True) == build_demo_source(b, now=now, world=True)

    def dump(path: Path) -> list[tuple[object, ...]]:
        with closing(sqlite3.connect(path)) as db:
            return db.execute("SELECT * FROM media_processing_jobs ORDER BY id").fetchall()

    assert dump(a) == dump(b)
    later = tmp_path / "later.sqlite3"
    build_demo_source(later, now=now + timedelta(days=3), world=True)
    with closing(sqlite3.connect(later)) as db:
        newest = db.execute("SELECT MAX(created_at) FROM media_processing_jobs").fetchone()[0]
    assert newest > (now + timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")


def test_demo_world_second_load_changes_nothing(tmp_path):
    build_demo_world(tmp_path, world=True)
    counts = (Job.objects.count(), HistoryEvent.objects.count(), Finding.objects.count())

    with toq_source(tmp_path / "demo-toq.sqlite3"):
        again = toq_sync()
    assert again.ok and again.stats.rows_changed == 0, again.summary()
    assert demo_evidence_load(tmp_path / "demo-toq.sqlite3")["diagnoses changed"] == 0
    assert (Job.objects.count(), HistoryEvent.objects.count(), Finding.objects.count()) == counts
