"""The embedded demo source (SQLite with TOQ's schema) goes through the same sync as MySQL."""

from __future__ import annotations

import pytest

from jobs.demo import build_demo_source
from jobs.models import Job, Listing
from jobs.sync import toq_sync
from tests.conftest import TOQ_DATABASES
from tests.test_demo import toq_source

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)


def test_demo_source_is_mirrored_by_the_real_sync(tmp_path):
    path = tmp_path / "toq.sqlite3"
    counts = build_demo_source(path)
    assert counts["media_processing_jobs"] == 4
    with toq_source(path):
        first = toq_sync(chunk_size=2)
        second = toq_sync(chunk_size=2)
    assert first.ok, first.summary()
    assert first.stats.inserted == 4 + 9 + 4
    assert second.stats.rows_changed == 0, second.summary()
    job = Job.objects.get(toq_id=37)
    assert job.status == "FAILED" and job.callback_error_message == "DERIVATIVE_ERRORS_DETECTED"
    assert Job.objects.get(toq_id=39).status == "PENDING"
    assert Listing.objects.get(toq_id=16).owner_name == "Helena Prado Quintino"
