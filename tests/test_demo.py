"""The demo world of `make run`: TOQ rows in an SQLite source → the real sync → the bundled job-37
AWS exports through `import_aws` → diagnosis of every job. Job 37's origin is FM-12 ffmpeg-missing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connections

from awslogs.models import Execution, HistoryEvent, LogEvent
from diagnosis.models import Diagnosis, Finding
from jobs.demo import build_demo_source, demo_aws_exports, demo_evidence_load
from jobs.models import Job
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


def build_demo_world(tmp_path: Path) -> None:
    """What `load_demo` does on a first run, into the test database."""
    path = tmp_path / "demo-toq.sqlite3"
    build_demo_source(path)
    with toq_source(path):
        result = toq_sync()
    assert result.ok, result.summary()
    demo_evidence_load()


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
    assert django_settings.DATABASES["toq"]["ENGINE"] == "django.db.backends.mysql"  # restored
    text = out.getvalue()
    assert "demo AWS evidence imported: 4 jobs diagnosed, 4 diagnoses changed" in text
    assert "demo AWS evidence imported: 4 jobs diagnosed, 0 diagnoses changed" in text
    assert "support / support-demo" in text
    assert Finding.objects.get(diagnosis__job__toq_id=37, position=0).failure_mode == "FM-12"
