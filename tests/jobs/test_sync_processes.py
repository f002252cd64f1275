"""The sync as real processes: killed with SIGKILL mid-pass, and run by a Celery worker with beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from jobs.models import Job, MediaAsset, SyncRun
from jobs.sync import toq_sync
from tests.celery_worker import ROOT, child_env, start_worker
from tests.conftest import TOQ_DATABASES
from tests.jobs.toq_rows import T0, add_listing, add_user, assert_mirror_equals_source

pytestmark = [pytest.mark.django_db(transaction=True, databases=TOQ_DATABASES), pytest.mark.slow]


def _bulk_source(db, jobs: int, assets: int) -> None:
    add_user(db, 1)
    for listing in range(1, 51):
        add_listing(db, listing, user_id=1)
    db.executemany(
        "INSERT INTO media_processing_jobs (id, listing_identity_id, status, provider, retry_count, started_at,"
        " completed_at, last_error, callback_body, created_at) VALUES (%s, %s, %s, 'STEP_FUNCTIONS', 0, %s, %s, %s, %s, %s)",
        [
            (
                i,
                i % 50 + 1,
                "FAILED" if i % 7 == 0 else ("PENDING" if i % 11 == 0 else "SUCCEEDED"),
                None if i % 11 == 0 else T0,
                None if i % 11 == 0 else T0,
                "code=ERRORSTRING | boom | errorString" if i % 7 == 0 else None,
                None if i % 11 == 0 else '{"status":"SUCCEEDED","outputs":[{"rawKey":"k","processedKey":"p"}]}',
                T0,
            )
            for i in range(1, jobs + 1)
        ],
    )
    db.executemany(
        "INSERT INTO media_assets (id, listing_identity_id, asset_type, sequence, status, s3_key_raw, metadata)"
        " VALUES (%s, %s, 'PHOTO_HORIZONTAL', %s, 'PROCESSED', %s, '{\"filename\":\"a.jpg\"}')",
        [(i, i % 50 + 1, i, f"{i % 50 + 1}/raw/photo/horizontal/horizontal-{i}-a.jpg") for i in range(1, assets + 1)],
    )


def test_a_pass_killed_mid_way_then_rerun_converges(toq_mysql):
    _bulk_source(toq_mysql, jobs=20000, assets=20000)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "sync_toq", "--chunk-size", "100", "--no-progress"],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline and proc.poll() is None:
        n = Job.objects.count()
        if n >= 300:  # mid-way through the jobs (assets are done by now)
            proc.send_signal(signal.SIGKILL)
            killed_at = n
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert killed_at is not None, f"the pass ended before it could be killed: {proc.stdout.read()!r}"
    assert proc.returncode == -signal.SIGKILL
    partial = Job.objects.count()
    assert 300 <= partial < 20000, partial
    # The killed pass left a SyncRun "running": the health shows it never finished.
    assert SyncRun.objects.filter(outcome=SyncRun.Outcome.RUNNING).count() == 1

    # A change lands in TOQ meanwhile, in a part the killed pass had already mirrored.
    toq_mysql.execute("UPDATE media_processing_jobs SET status='FAILED', completed_at=NOW() WHERE id = 11")
    result = toq_sync(chunk_size=1000)  # another chunk size: convergence does not depend on it
    assert result.ok, result.summary()
    assert result.stats.inserted == 20000 - partial + 0
    assert Job.objects.count() == 20000
    assert MediaAsset.objects.count() == 20000
    assert_mirror_equals_source(toq_mysql)
    assert Job.objects.get(toq_id=11).status == "FAILED"
    assert toq_sync().stats.rows_changed == 0


def test_celery_worker_with_beat_runs_the_sync(toq_mysql, tmp_path):
    _bulk_source(toq_mysql, jobs=30, assets=10)
    worker = start_worker(
        tmp_path / "beat-schedule",
        subprocess.PIPE,
        CELERY_BROKER_URL="redis://127.0.0.1:6379/15",
        TOQ_SYNC_INTERVAL_SECONDS="2",
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and Job.objects.count() < 30:
            assert worker.poll() is None, worker.stdout.read().decode()[-3000:]
            time.sleep(0.2)
        assert Job.objects.count() == 30, "beat never ran the sync"
        # ...and it keeps running: a later change in TOQ is picked up by a later scheduled pass.
        toq_mysql.execute("UPDATE media_processing_jobs SET status='FAILED' WHERE id = 22")
        while time.monotonic() < deadline and Job.objects.get(toq_id=22).status != "FAILED":
            time.sleep(0.2)
        assert Job.objects.get(toq_id=22).status == "FAILED"
        assert SyncRun.objects.filter(outcome=SyncRun.Outcome.SUCCEEDED).count() >= 2
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def test_progress_on_a_tty_and_one_summary_line(toq_mysql):
    """On a terminal the command draws progress on stderr; stdout always ends with one summary line."""
    import pty

    _bulk_source(toq_mysql, jobs=3000, assets=100)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "sync_toq", "--chunk-size", "500"],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    out, _ = proc.communicate(timeout=120)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    progress = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "jobs: new rows 3000/3000 100%" in progress
    lines = out.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sync ok: 3150 inserted")  # 3000 jobs, 100 assets, 50 listings
