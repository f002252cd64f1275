"""Speed of the TOQ sync (issue 2). Run by hand:  .venv/bin/python bench/sync.py [--jobs N --assets N]

Generates N jobs and 2N assets in MariaDB (database toq_bench, as root), then measures in one run:
  floor        stream the same rows out of MySQL (server-side cursor) and COPY them into PostgreSQL
  full sync    toqdash's first `sync_toq` into an empty dashboard DB (a subprocess: peak RSS measured)
  incremental  a pass after changing 1 % of the rows, spread evenly over the ids (the worst case
               for chunk checksums: every chunk differs)
  idle         a pass with no change
  recent       a pass after changing 1 % of the rows, all among the most recent ids
Targets: full ≤ 2× floor; incremental ≤ 15 % of full; peak RSS ≤ 500 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import MySQLdb
import MySQLdb.cursors
import psycopg

ROOT = Path(__file__).resolve().parents[1]
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "passwd": "", "charset": "utf8mb4"}
PG = "host=127.0.0.1 port=5432 user=postgres"
SRC_DB = "toq_bench"
DASH_DB = "toqdash_bench"
FLOOR_DB = "toqdash_bench_floor"

CALLBACK_OK = (
    '{"error":null,"executionArn":"arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:'
    '00000000-0000-0000-0000-000000000000","failureReason":"","jobId":1,"listingIdentityId":1,'
    '"outputs":[{"errorCode":"","errorMessage":"","outputs":{"large_photo_horizontal":"1/processed/photo/horizontal/large/a.jpg",'
    '"medium_photo_horizontal":"1/processed/photo/horizontal/medium/a.jpg","small_photo_horizontal":'
    '"1/processed/photo/horizontal/small/a.jpg","thumbnail_photo_horizontal":"1/processed/photo/horizontal/thumbnail/a.jpg"},'
    '"processedKey":"1/processed/photo/horizontal/large/a.jpg","rawKey":"1/raw/photo/horizontal/a.jpg",'
    '"thumbnailKey":"1/processed/photo/horizontal/thumbnail/a.jpg"}],"provider":"STEP_FUNCTIONS",'
    '"startedAt":"2026-01-20T12:00:00Z","status":"SUCCEEDED","traceparent":""}'
)


def mysql(db: str | None = None) -> MySQLdb.Connection:
    kw = dict(MYSQL)
    if db:
        kw["db"] = db
    return MySQLdb.connect(**kw, autocommit=True)


def generate(jobs: int, assets: int) -> None:
    print(f"generating {jobs:,} jobs and {assets:,} assets in MariaDB {SRC_DB} …", flush=True)
    t = time.monotonic()
    c = mysql()
    cur = c.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {SRC_DB}")
    cur.execute(f"CREATE DATABASE {SRC_DB} CHARACTER SET utf8mb4")
    cur.execute(f"USE {SRC_DB}")
    ddl = (ROOT / "tests" / "fixtures" / "toq_schema_mariadb.sql").read_text()
    sys.path.insert(0, str(ROOT))
    from tests.sqlscript import split_sql as _split_sql

    for stmt in _split_sql(ddl):
        cur.execute(stmt)
    cur.execute("SET FOREIGN_KEY_CHECKS=0")
    listings = max(1, jobs // 10)
    cur.execute(
        "INSERT INTO users (id, full_name, national_id, born_at, phone_number, email, zip_code, street, number,"
        " neighborhood, city, state, password, opt_status, last_activity_at, deleted) SELECT seq, CONCAT('User ', seq),"
        " '0', '1980-01-01', '0', 'x@example.com', '0', 'Rua', '1', 'C', 'F', 'SC', 'x', 1, NOW(), 0"
        f" FROM seq_1_to_{listings}"
    )
    cur.execute(
        "INSERT INTO listing_identities (id, listing_uuid, user_id, code, active_version_id)"
        f" SELECT seq, UUID(), seq, 300000 + seq, seq FROM seq_1_to_{listings}"
    )
    cur.execute(
        "INSERT INTO listing_versions (id, user_id, listing_identity_id, code, version, status, title, zip_code, number,"
        f" type, deleted) SELECT seq, seq, seq, 300000 + seq, 1, 6, CONCAT('Casa ', seq), '0', '1', 1, 0 FROM seq_1_to_{listings}"
    )
    cur.execute(
        "INSERT INTO media_processing_jobs (id, listing_identity_id, status, provider, external_id, retry_count,"
        " started_at, completed_at, last_error, callback_body, created_at)"
        f" SELECT seq, seq % {listings} + 1,"
        " CASE WHEN seq % 50 = 0 THEN 'FAILED' WHEN seq % 97 = 0 THEN 'PENDING' ELSE 'SUCCEEDED' END,"
        " 'STEP_FUNCTIONS',"
        " IF(seq % 97 = 0, NULL, CONCAT('arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:', UUID())),"
        " 0, IF(seq % 97 = 0, NULL, '2026-01-20 12:00:00'), IF(seq % 97 = 0, NULL, '2026-01-20 12:01:00'),"
        ' IF(seq % 50 = 0, \'code=ERRORSTRING | {"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"} | errorString\', NULL),'
        f" IF(seq % 97 = 0, NULL, '{CALLBACK_OK}'), '2026-01-20 11:59:00'"
        f" FROM seq_1_to_{jobs}"
    )
    cur.execute(
        "INSERT INTO media_assets (id, listing_identity_id, asset_type, sequence, status, s3_key_raw, s3_key_processed,"
        " title, metadata)"
        f" SELECT seq, seq % {listings} + 1, IF(seq % 9 = 0, 'VIDEO_VERTICAL', 'PHOTO_HORIZONTAL'), seq, 'PROCESSED',"
        " CONCAT(seq % 1000 + 1, '/raw/photo/horizontal/horizontal-', seq, '-IMG_2907.jpg'),"
        " CONCAT(seq % 1000 + 1, '/processed/photo/horizontal/large/horizontal-', seq, '-IMG_2907.jpg'), NULL,"
        " JSON_OBJECT('filename', 'IMG_2907.jpg', 'requested_by', '18', 'size_bytes', '2483911',"
        " 'large_photo_horizontal', 'k', 'thumbnailKey', 't')"
        f" FROM seq_1_to_{assets}"
    )
    c.close()
    print(f"  generated in {time.monotonic() - t:.1f}s", flush=True)


def pg_recreate(name: str) -> None:
    with psycopg.connect(PG + " dbname=postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")


def floor() -> float:
    """Stream rows out of MySQL (server-side cursor) and COPY them into PostgreSQL, no logic."""
    pg_recreate(FLOOR_DB)
    t = time.monotonic()
    src = MySQLdb.connect(**MYSQL, db=SRC_DB, cursorclass=MySQLdb.cursors.SSCursor)
    with psycopg.connect(PG + f" dbname={FLOOR_DB}") as dst:
        dst.execute(
            "CREATE TABLE jobs (id bigint, listing_identity_id bigint, status text, provider text, external_id text,"
            " payload text, retry_count int, started_at timestamptz, completed_at timestamptz, last_error text,"
            " callback_body text, created_at timestamptz)"
        )
        dst.execute(
            "CREATE TABLE assets (id bigint, listing_identity_id bigint, asset_type text, sequence int, status text,"
            " s3_key_raw text, s3_key_processed text, title text, metadata text)"
        )
        for table, sql in (
            ("jobs", "SELECT * FROM media_processing_jobs"),
            ("assets", "SELECT * FROM media_assets"),
        ):
            cur = src.cursor()
            cur.execute(sql)
            with dst.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                for row in cur:
                    copy.write_row(row)
            cur.close()
        dst.commit()
    src.close()
    return time.monotonic() - t


def run_sync(label: str) -> tuple[float, float, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="toqdash.settings.base",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DASH_DB}",
        TOQ_DATABASE_URL=f"mysql://toq_reader:toq_reader_pw@127.0.0.1:3306/{SRC_DB}",
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.monotonic()
    out = subprocess.run(
        [sys.executable, "manage.py", "sync_toq", "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.monotonic() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = out.stdout.strip()
    print(f"  {label}: {elapsed:.1f}s  ({summary})", flush=True)
    return elapsed, max(rss, before) / 1024, summary


def migrate() -> None:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="toqdash.settings.base", DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DASH_DB}"
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--assets", type=int, default=None)
    ap.add_argument("--skip-generate", action="store_true")
    args = ap.parse_args()
    assets = args.assets or 2 * args.jobs
    if not args.skip_generate:
        generate(args.jobs, assets)
    t_floor = floor()
    print(f"  floor (SSCursor → COPY, no logic): {t_floor:.1f}s", flush=True)
    pg_recreate(DASH_DB)
    migrate()
    t_full, rss_full, _ = run_sync("full sync")
    c = mysql(SRC_DB)
    cur = c.cursor()
    t = time.monotonic()
    n_jobs = max(1, args.jobs // 100)
    n_assets = max(1, assets // 100)
    # 1 % of the rows change, spread over the id space (worst case for chunk checksums)
    cur.execute(
        f"UPDATE media_processing_jobs SET status='FAILED', last_error='code=X | changed' WHERE id % 100 = 7 LIMIT {n_jobs}"
    )
    cur.execute(f"UPDATE media_assets SET status='FAILED' WHERE id % 100 = 3 LIMIT {n_assets}")
    c.close()
    print(f"  changed {n_jobs:,} jobs and {n_assets:,} assets in {time.monotonic() - t:.1f}s", flush=True)
    t_incr, rss_incr, _ = run_sync("incremental (1 %, spread)")
    t_idle, _, _ = run_sync("idle (no change)")
    # 1 % of the rows change, all among the most recent ids: what TOQ does in practice (uploads and
    # reprocessing touch recent jobs; older rows change only when the retention cleaner runs).
    c = mysql(SRC_DB)
    cur = c.cursor()
    cur.execute(
        f"UPDATE media_processing_jobs SET status='FAILED', last_error='code=Y | recent' WHERE id > {args.jobs - n_jobs}"
    )
    cur.execute(f"UPDATE media_assets SET status='FAILED' WHERE id > {assets - n_assets}")
    c.close()
    t_recent, rss_recent, _ = run_sync("incremental (1 %, recent ids)")
    print()
    print(f"jobs={args.jobs:,} assets={assets:,}")
    print(f"floor                      {t_floor:8.1f} s")
    print(f"full sync                  {t_full:8.1f} s   = {t_full / t_floor:.2f}× floor   (target ≤ 2×)")
    print(f"incremental, 1 % spread    {t_incr:8.1f} s   = {100 * t_incr / t_full:.1f} % of full (target ≤ 15 %)")
    print(f"incremental, 1 % recent    {t_recent:8.1f} s   = {100 * t_recent / t_full:.1f} % of full (target ≤ 15 %)")
    print(f"idle pass                  {t_idle:8.1f} s")
    print(f"peak RSS                   {max(rss_full, rss_incr, rss_recent):8.0f} MB  (target ≤ 500 MB)")


if __name__ == "__main__":
    main()
