"""The TOQ sync against real MariaDB (source, read through the read-only user) and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from jobs.models import Job, JobObservation, Listing, MediaAsset, ObservationKind, SyncRun
from jobs.sync import toq_sync
from tests.conftest import TOQ_DATABASES
from tests.jobs.toq_rows import (
    add_asset,
    add_job,
    add_listing,
    add_user,
    assert_mirror_equals_source,
    failed_callback,
    job_row,
)

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)


@contextmanager
def count_writes() -> Iterator[list[str]]:
    """Collect every INSERT/UPDATE/DELETE the dashboard DB receives."""
    writes: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if re.match(r"\s*(INSERT|UPDATE|DELETE|COPY)", sql, re.I):
            writes.append(sql.split(" ", 3)[:3].__str__())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield writes


def _seed(db: Any, *, with_created_at: bool = True, jobs: int = 12) -> None:
    add_user(db, 1)
    add_user(db, 2, "João Pereira")
    add_listing(db, 10, user_id=1)
    add_listing(db, 11, user_id=2, status=7, title="Apartamento <b>centro</b>")
    for i in range(1, 7):
        add_asset(db, 100 + i, 10 if i < 4 else 11)
    add_asset(
        db, 120, 11, asset_type="VIDEO_VERTICAL", sequence=1, s3_key_raw="11/raw/video/vertical/vertical-01-clip.mp4"
    )
    for j in range(1, jobs + 1):
        add_job(db, job_row(j, 10 if j % 2 else 11), with_created_at=with_created_at)


def test_first_pass_mirrors_every_column(toq_mysql):
    _seed(toq_mysql)
    result = toq_sync(chunk_size=5)
    assert result.ok, result.summary()
    assert result.stats.inserted == 12 + 7 + 2
    assert_mirror_equals_source(toq_mysql)
    listing = Listing.objects.get(toq_id=11)
    assert listing.owner_name == "João Pereira"
    assert listing.listing_status == 7
    assert listing.listing_status_name == "PENDING_OWNER_APPROVAL"
    assert listing.title == "Apartamento <b>centro</b>"
    assert result.run.schema == {"media_processing_jobs.created_at": True}


def test_job37_incident_rows_on_the_old_schema(toq_mysql):
    """The sample's own rows: a database created before 2026-01-16 (no created_at)."""
    toq_mysql.load_job37()
    result = toq_sync()
    assert result.ok, result.summary()
    assert result.run.schema == {"media_processing_jobs.created_at": False}
    assert_mirror_equals_source(toq_mysql)
    job = Job.objects.get(toq_id=37)
    assert job.status == "FAILED"
    assert job.created_at is None
    assert job.kind == "processing"
    assert job.is_terminal
    assert job.callback_status == "PROCESSING_FAILED"
    assert job.callback_error_code == "errorString"
    assert job.callback_error_message == "DERIVATIVE_ERRORS_DETECTED"
    assert job.callback_error_type == "errorString"
    assert job.callback_failure_reason == "errorString"
    assert job.callback_outputs_empty is True
    assert job.last_error_fragments == [
        "code=ERRORSTRING",
        '{"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"}',
        "errorString",
    ]
    ok = Job.objects.get(toq_id=36)
    assert ok.callback_outputs_empty is False
    assert ok.callback_results and all(r["status"] == "PROCESSED" for r in ok.callback_results)
    video = MediaAsset.objects.get(toq_id=103)
    assert video.status == "FAILED" and video.is_video


def test_second_pass_writes_nothing(toq_mysql):
    _seed(toq_mysql)
    assert toq_sync(chunk_size=4).ok
    jobs_before = list(Job.objects.order_by("id").values())
    with count_writes() as writes:
        result = toq_sync(chunk_size=4)
    assert result.ok
    assert result.stats.rows_changed == 0
    # Only the SyncRun record itself (its insert and final update) is written.
    assert all("jobs_syncrun" in w for w in writes), writes
    assert list(Job.objects.order_by("id").values()) == jobs_before
    assert JobObservation.objects.count() == 0


def test_a_new_hash_function_rewrites_hashes_silently(toq_mysql):
    """Stored hashes from another hash function (an upgrade) differ from the source's for every
    row: the pass rewrites them without observations or "rows changed", then converges."""
    _seed(toq_mysql)
    assert toq_sync(chunk_size=4).ok
    hashes = dict(Job.objects.values_list("toq_id", "row_hash"))
    Job.objects.update(row_hash=0)
    MediaAsset.objects.update(row_hash=1)
    Listing.objects.update(row_hash=2)
    result = toq_sync(chunk_size=4)
    assert result.ok
    assert result.stats.rows_changed == 0
    assert result.stats.rehashed == Job.objects.count() + MediaAsset.objects.count() + Listing.objects.count()
    assert dict(Job.objects.values_list("toq_id", "row_hash")) == hashes
    assert JobObservation.objects.count() == 0 and not MediaAsset.objects.filter(observations__isnull=False).exists()
    assert_mirror_equals_source(toq_mysql)
    with count_writes() as writes:
        assert toq_sync(chunk_size=4).stats.rehashed == 0
    assert all("jobs_syncrun" in w for w in writes), writes


def test_changes_are_mirrored_and_observed(toq_mysql):
    _seed(toq_mysql)
    assert toq_sync(chunk_size=4).ok
    body = failed_callback(3, 10)
    toq_mysql.execute(
        "UPDATE media_processing_jobs SET status='FAILED', external_id=%s, started_at='2026-01-20 12:10:00',"
        " completed_at='2026-01-20 12:11:00', callback_body=%s,"
        ' last_error=\'code=ERRORSTRING | {"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"} | errorString\''
        " WHERE id=3",
        [json.loads(body)["executionArn"], body],
    )
    # a terminal (cold) row changes too: found by the chunk checksum, not the in-flight re-read
    toq_mysql.execute("UPDATE media_processing_jobs SET status='SUCCEEDED', completed_at=NOW() WHERE id=4")
    assert toq_sync(chunk_size=4).ok
    toq_mysql.execute("UPDATE media_processing_jobs SET callback_body='{}' WHERE id=4")
    toq_mysql.execute("UPDATE media_assets SET status='FAILED' WHERE listing_identity_id=10")
    toq_mysql.execute("UPDATE listing_versions SET status=7 WHERE id=10")
    result = toq_sync(chunk_size=4)
    assert result.ok
    assert result.stats.updated == 1 + 3 + 1
    assert_mirror_equals_source(toq_mysql)
    job3 = Job.objects.get(toq_id=3)
    obs = list(job3.observations.all())
    assert [o.kind for o in obs] == [ObservationKind.CHANGED]
    assert obs[0].changes["status"] == ["PENDING", "FAILED"]
    assert obs[0].changes["started_at"][0] is None
    assert job3.callback_error_message == "DERIVATIVE_ERRORS_DETECTED"
    job4 = Job.objects.get(toq_id=4)
    assert [list(o.changes) for o in job4.observations.all()] == [["status", "completed_at"], ["callback_body"]]
    asset = MediaAsset.objects.get(toq_id=101)
    assert asset.observations.get().changes == {"status": ["PROCESSING", "FAILED"]}
    assert Listing.objects.get(toq_id=10).listing_status == 7


def test_deleted_rows_are_kept_and_marked_then_reappear(toq_mysql):
    _seed(toq_mysql)
    assert toq_sync(chunk_size=4).ok
    toq_mysql.execute(
        "UPDATE media_processing_jobs SET status='SUCCEEDED', completed_at='2026-01-20 13:00:00' WHERE id <= 8"
    )
    assert toq_sync(chunk_size=4).ok
    # the retention cleaner deletes old terminal jobs (FM-37)
    saved = toq_mysql.query("SELECT * FROM media_processing_jobs WHERE id IN (1, 2, 5)")
    toq_mysql.execute("DELETE FROM media_processing_jobs WHERE id IN (1, 2, 5)")
    toq_mysql.execute("DELETE FROM media_assets WHERE id = 106")
    result = toq_sync(chunk_size=4)
    assert result.stats.disappeared == 4
    gone = Job.objects.get(toq_id=5)
    assert gone.disappeared_at is not None and gone.status == "SUCCEEDED"
    assert gone.observations.last().kind == ObservationKind.DISAPPEARED
    assert Job.objects.filter(toq_id__in=[1, 2, 5]).count() == 3
    assert_mirror_equals_source(toq_mysql)
    assert toq_sync(chunk_size=4).stats.rows_changed == 0
    # a restored backup brings job 5 back unchanged: same generation, reappeared
    cols = [r[0] for r in toq_mysql.query("SHOW COLUMNS FROM media_processing_jobs")]
    row5 = next(r for r in saved if r[0] == 5)
    toq_mysql.execute(
        f"INSERT INTO media_processing_jobs ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})", list(row5)
    )
    result = toq_sync(chunk_size=4)
    assert result.stats.updated == 1
    back = Job.objects.get(toq_id=5)
    assert back.disappeared_at is None and back.generation == 1
    assert back.observations.last().kind == ObservationKind.REAPPEARED


def test_reused_ids_become_a_new_generation(toq_mysql):
    """FM-38: the database is recreated from db_creation.sql and ids restart at 1."""
    _seed(toq_mysql)
    toq_mysql.execute("UPDATE media_processing_jobs SET status='FAILED', completed_at='2026-01-20 13:00:00' WHERE id=2")
    assert toq_sync(chunk_size=4).ok
    toq_mysql.reset(with_created_at=True)
    add_user(toq_mysql, 1, "Outra Pessoa")
    add_listing(toq_mysql, 10, user_id=1, title="Recriada")
    toq_mysql.execute("UPDATE listing_identities SET listing_uuid='11111111-2222-3333-4444-555555555555' WHERE id=10")
    add_asset(
        toq_mysql,
        101,
        10,
        asset_type="PHOTO_VERTICAL",
        sequence=1,
        s3_key_raw="10/raw/photo/vertical/vertical-01-new.jpg",
    )
    add_job(toq_mysql, job_row(1, 10, created_at=job_row(1, 10)["created_at"].replace(year=2027)))
    add_job(toq_mysql, job_row(2, 10))  # same listing and created_at, but FAILED → PENDING is impossible in TOQ
    result = toq_sync(chunk_size=4)
    assert result.ok
    assert result.stats.new_generation == 2 + 1 + 1  # jobs 1, 2; asset 101; listing 10
    old, new = Job.objects.filter(toq_id=2).order_by("generation")
    assert (old.generation, old.status, old.superseded_at is not None) == (1, "FAILED", True)
    assert (new.generation, new.status, new.superseded_at) == (2, "PENDING", None)
    assert old.observations.get().kind == ObservationKind.SUPERSEDED
    assert Listing.objects.get(toq_id=10, superseded_at__isnull=True).title == "Recriada"
    assert_mirror_equals_source(toq_mysql)
    # the jobs that did not come back are kept, marked disappeared
    assert Job.objects.filter(toq_id=12, disappeared_at__isnull=False).exists()
    assert toq_sync(chunk_size=4).stats.rows_changed == 0


def test_unknown_values_are_stored_and_flagged(toq_mysql):
    add_user(toq_mysql, 1)
    add_listing(toq_mysql, 10)
    add_job(toq_mysql, job_row(1, 10, status="QUEUED_V2", provider="LAMBDA_DIRECT"))
    add_job(toq_mysql, job_row(2, 10, status="FAILED", provider="STEP_FUNCTIONS"))
    add_asset(toq_mysql, 1, 10, asset_type="HOLOGRAM", status="ARCHIVED")
    assert toq_sync().ok
    odd = Job.objects.get(toq_id=1)
    assert (odd.status, odd.status_known, odd.provider, odd.provider_known, odd.kind) == (
        "QUEUED_V2",
        False,
        "LAMBDA_DIRECT",
        False,
        "unknown",
    )
    assert not odd.is_terminal
    normal = Job.objects.get(toq_id=2)
    assert normal.status_known and normal.provider_known
    asset = MediaAsset.objects.get(toq_id=1)
    assert (asset.status_known, asset.type_known, asset.asset_type) == (False, False, "HOLOGRAM")


def test_finalization_jobs_recognised_across_versions(toq_mysql):
    add_user(toq_mysql, 1)
    add_listing(toq_mysql, 10)
    fin_arn = "arn:aws:states:us-east-1:123456789012:execution:listing-media-finalization-sm-staging:finalization-10-2"
    add_job(toq_mysql, job_row(1, 10, provider="STEP_FUNCTIONS_FINALIZATION", status="RUNNING"))
    # before 2026-01-13 finalization jobs were written with provider STEP_FUNCTIONS
    add_job(toq_mysql, job_row(2, 10, provider="STEP_FUNCTIONS", status="RUNNING", external_id=fin_arn))
    add_job(toq_mysql, job_row(3, 10, provider="STEP_FUNCTIONS", status="PENDING"))
    assert toq_sync().ok
    kinds = dict(Job.objects.values_list("toq_id", "kind"))
    assert kinds == {1: "finalization", 2: "finalization", 3: "processing"}


@pytest.mark.parametrize(
    ("body", "expected_error"),
    [
        ("this is not json", "not valid JSON"),
        ('{"status":"FAILED","error":{"code":"x","message":"trunc', "not valid JSON"),
        ("[1, 2, 3]", "JSON list, expected an object"),
    ],
)
def test_malformed_callback_bodies_are_recorded(toq_mysql, body, expected_error):
    add_user(toq_mysql, 1)
    add_listing(toq_mysql, 10)
    add_job(toq_mysql, job_row(1, 10, status="FAILED", callback_body=body))
    result = toq_sync()
    assert result.ok
    job = Job.objects.get(toq_id=1)
    assert expected_error in job.callback_parse_error
    assert job.callback_body == body
    assert job.callback_status == ""


def test_64kb_callback_body(toq_mysql):
    add_user(toq_mysql, 1)
    add_listing(toq_mysql, 10)
    outputs = [
        {
            "rawKey": f"10/raw/photo/horizontal/h-{i:04d}.jpg",
            "processedKey": "",
            "errorCode": "THUMBNAIL_PROCESSING_FAILED",
            "errorMessage": "failed to decode image: image: unknown format",
        }
        for i in range(400)
    ]
    body = json.dumps({"status": "PARTIAL_SUCCESS", "jobId": 1, "outputs": outputs})
    body = body[:65535]  # TEXT column limit: a truncated body
    add_job(toq_mysql, job_row(1, 10, status="PARTIAL_SUCCESS", callback_body=body))
    full = json.dumps({"status": "PARTIAL_SUCCESS", "jobId": 2, "outputs": outputs[:300]})
    assert len(full) < 65535
    add_job(toq_mysql, job_row(2, 10, status="PARTIAL_SUCCESS", callback_body=full))
    assert toq_sync().ok
    truncated = Job.objects.get(toq_id=1)
    assert len(truncated.callback_body) == len(body) and "not valid JSON" in truncated.callback_parse_error
    complete = Job.objects.get(toq_id=2)
    assert len(complete.callback_results) == 300
    assert complete.callback_results[0]["status"] == "FAILED"


def test_nul_bytes_and_odd_text_survive(toq_mysql):
    add_user(toq_mysql, 1)
    add_listing(toq_mysql, 10, title="<script>alert(1)</script>\u0000")
    add_job(toq_mysql, job_row(1, 10, last_error="boom\u0000 | ação ✓"))
    add_asset(toq_mysql, 1, 10, metadata=json.dumps({"filename": "<img src=x onerror=alert(1)>.jpg"}), title="x\u0000y")
    assert toq_sync().ok
    assert Job.objects.get(toq_id=1).last_error_fragments == ["boom\\x00", "ação ✓"]
    asset = MediaAsset.objects.get(toq_id=1)
    assert asset.metadata == {"filename": "<img src=x onerror=alert(1)>.jpg"} and asset.title == "x\\x00y"


@contextmanager
def toq_settings(**over: Any) -> Iterator[None]:
    """Point the next sync pass (it opens its own TOQ connection) at other connection settings."""
    original = connections.settings["toq"]
    connections.settings["toq"] = {**original, **over}
    try:
        yield
    finally:
        connections.settings["toq"] = original


def test_mysql_unreachable_gives_a_clear_error(toq_mysql):
    with toq_settings(PORT=1), pytest.raises(CommandError) as err:  # nothing listens on port 1
        call_command("sync_toq", "--no-progress")
    assert "cannot read TOQ's database at 127.0.0.1:1 as toq_reader" in str(err.value)
    assert "toq_reader_pw" not in str(err.value)
    run = SyncRun.objects.order_by("-started_at").first()
    assert run.outcome == SyncRun.Outcome.FAILED and "127.0.0.1:1" in run.error


def test_wrong_credentials_give_a_clear_error(toq_mysql):
    with toq_settings(PASSWORD="wrong-password"):
        result = toq_sync()
    assert not result.ok
    assert "Access denied" in result.run.error
    assert "wrong-password" not in result.run.error
    assert result.summary().startswith("sync failed")


def test_command_prints_one_summary_line(toq_mysql, capsys):
    _seed(toq_mysql)
    call_command("sync_toq", "--no-progress")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert re.fullmatch(
        r"sync ok: 21 inserted, 0 updated, 0 disappeared, 0 new generations; \d+ chunks checked, 0 changed; [\d.]+s",
        out[0],
    )


def test_a_pass_does_not_run_while_another_holds_the_lock(toq_mysql):
    import psycopg

    from jobs.sync import _LOCK_KEY

    _seed(toq_mysql)
    dsn = connection.get_connection_params()
    other = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=dsn["dbname"], autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        result = toq_sync()
        assert result.run.outcome == SyncRun.Outcome.SKIPPED
        assert result.summary() == "sync skipped: another pass is running"
        assert Job.objects.count() == 0
    finally:
        other.close()  # the lock dies with the session
    assert toq_sync().stats.inserted == 21
