"""Page speed under load (issue 5). Run by hand:  .venv/bin/python bench/pages.py [--jobs N]

Builds PostgreSQL database toqdash_bench_pages with N mirrored jobs (default 1,000,000, inserted
with generate_series), one job (toq_id 37) with a 25,000-event history and 50,000 log lines,
serves it with gunicorn (2 workers, production settings), and drives it from 20 concurrent
clients (threads, logged-in sessions) over loopback for a bounded number of requests:
  - the filtered job list (status=FAILED, kind, sorted) — target p95 ≤ 100 ms;
  - the job page of job 37 (first response; panels load lazily) — target p95 ≤ 300 ms.
Prints p50/p95/max per page. Times are measured at the client on loopback (an upper bound of the
server time).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DB = "toqdash_bench_pages"
PG = "host=127.0.0.1 port=5432 user=postgres"
CLIENTS = 20
REQUESTS_PER_CLIENT = 25


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="toqdash.settings.base",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}",
        CELERY_TASK_ALWAYS_EAGER="1",
        DEBUG="0",
        SECRET_KEY="bench-only-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    env.pop("TOQ_DATABASE_URL", None)
    return env


def build(jobs: int) -> None:
    with psycopg.connect(PG + " dbname=postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB}")
        c.execute(f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=_env(), check=True)
    t = time.monotonic()
    with psycopg.connect(PG + f" dbname={DB}", autocommit=True) as c:
        c.execute(
            """
            INSERT INTO jobs_job (toq_id, generation, row_hash, first_seen_at, last_changed_at, listing_identity_id,
              status, provider, external_id, payload_raw, retry_count, started_at, completed_at, last_error,
              callback_body, created_at, kind, is_terminal, status_known, provider_known, last_error_fragments,
              callback_parse_error, callback_status, callback_error_code, callback_error_message, callback_error_type,
              callback_failure_reason, callback_outputs_empty, callback_execution_arn, callback_results)
            SELECT g, 1, g, now(), now(), g %% 100000 + 1,
              CASE WHEN g %% 50 = 0 THEN 'FAILED' WHEN g %% 97 = 0 THEN 'PENDING' ELSE 'SUCCEEDED' END,
              'STEP_FUNCTIONS',
              'arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:' || md5(g::text),
              '', 0, now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval + interval '20 s',
              CASE WHEN g %% 50 = 0 THEN 'code=ERRORSTRING | {"errorMessage":"DERIVATIVE_ERRORS_DETECTED"} | errorString' END,
              '{"status":"SUCCEEDED"}', now() - (g || ' seconds')::interval,
              CASE WHEN g %% 3 = 0 THEN 'finalization' ELSE 'processing' END,
              g %% 97 <> 0, true, true, '[]', '',
              CASE WHEN g %% 50 = 0 THEN 'PROCESSING_FAILED' ELSE 'SUCCEEDED' END,
              CASE WHEN g %% 50 = 0 THEN 'errorString' ELSE '' END, '', '', '', false, '', '[]'
            FROM generate_series(1, %s) AS g
            """,
            [jobs],
        )
        c.execute("ANALYZE")
    print(f"  {jobs:,} jobs inserted in {time.monotonic() - t:.1f}s", flush=True)
    # job 37's big evidence, through the ORM (the real models)
    code = """
import django, datetime as dt
django.setup()
from django.utils import timezone
from awslogs.models import Execution, HistoryEvent, LogEvent
from jobs.models import Job
from jobs.roles import ensure_roles, SUPPORT
from django.contrib.auth.models import User, Group
job = Job.objects.get(toq_id=37)
ex = Execution.objects.create(arn=job.external_id, name="big", job=job, job_toq_id=37, found_via="external_id",
    status="FAILED", start_date=timezone.now(), history_event_count=25000, history_complete=True)
t0 = timezone.now()
HistoryEvent.objects.bulk_create([HistoryEvent(execution=ex, event_id=i, type="TaskStateEntered",
    timestamp=t0 + dt.timedelta(milliseconds=i), previous_event_id=i - 1, details={"name": f"S{i % 40}"})
    for i in range(1, 25001)], batch_size=5000)
LogEvent.objects.bulk_create([LogEvent(event_id=f"{i:056d}", log_group="/aws/lambda/listing-media-consolidate-staging",
    timestamp=t0 + dt.timedelta(milliseconds=i), message='{"level":"INFO","msg":"Consolidation complete","job_id":37}',
    kind="app", level="INFO", msg="Consolidation complete", job=job, job_toq_id=37) for i in range(50000)], batch_size=5000)
ensure_roles()
u = User.objects.create_user("bench", password="bench-pw")
u.groups.add(Group.objects.get(name=SUPPORT))
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), check=True)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=_env(), check=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session(base: str) -> urllib.request.OpenerDirector:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    data = urllib.parse.urlencode(
        {"username": "bench", "password": "bench-pw", "csrfmiddlewaretoken": token.group(1)}
    ).encode()
    req = urllib.request.Request(f"{base}/accounts/login/", data=data, headers={"Referer": f"{base}/accounts/login/"})
    opener.open(req, timeout=10).read()
    return opener


def load(base: str, path: str) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()
    sessions = [_session(base) for _ in range(CLIENTS)]

    def client(opener: urllib.request.OpenerDirector) -> None:
        for _ in range(REQUESTS_PER_CLIENT):
            t = time.perf_counter()
            with opener.open(f"{base}{path}", timeout=30) as r:
                r.read()
                assert r.status == 200
            with lock:
                times.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=client, args=(s,)) for s in sessions]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return times


def _pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    if not args.skip_build:
        build(args.jobs)
    port = _free_port()
    env = _env()
    access_log = ROOT / "var" / "bench-pages-access.log"
    access_log.parent.mkdir(exist_ok=True)
    access_log.write_text("")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "toqdash.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--access-logfile",
            str(access_log),
            # request path and the worker's time on it (µs): the server time, without queueing
            "--access-logformat",
            "%(U)s?%(q)s %(D)s",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"{base}/accounts/login/", timeout=2).read()  # noqa: S310
                break
            except OSError:
                time.sleep(0.5)
        pages = {
            "filtered job list": "/?status=FAILED&kind=processing&sort=-toq_id",
            "job 37 page (25k events, 50k log lines)": "/jobs/37/",
        }
        targets = {"filtered job list": 100, "job 37 page (25k events, 50k log lines)": 300}
        print(f"\n{CLIENTS} concurrent clients × {REQUESTS_PER_CLIENT} requests each, gunicorn 2 workers")
        print("client latency includes queueing: 20 clients share 2 workers on 2 cores; server = worker time")
        for name, path in pages.items():
            load(base, path)  # warm-up
            mark = len(access_log.read_text().splitlines())
            times = load(base, path)
            time.sleep(0.5)
            wanted = path.split("?")[0]
            server_ms = [
                int(line.rsplit(" ", 1)[1]) / 1000
                for line in access_log.read_text().splitlines()[mark:]
                if line.split("?", 1)[0] == wanted
            ]
            print(
                f"{name:42} server p50 {_pct(server_ms, 50):6.1f} ms p95 {_pct(server_ms, 95):6.1f} ms"
                f" (target p95 ≤ {targets[name]} ms) | client p95 {_pct(times, 95):6.1f} ms"
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
