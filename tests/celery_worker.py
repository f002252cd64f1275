"""Real child processes for the slow tests: their environment, and a Celery worker with beat."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment (AWS endpoints and credentials included), pointed at the test database
    pytest-django created, with `extra` on top."""
    name = connection.settings_dict["NAME"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="toqdash.settings.test",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{name}",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_worker(
    schedule: Path, stdout: int | IO[bytes], *, new_session: bool = False, **env: str
) -> subprocess.Popen[bytes]:
    """`celery -A toqdash worker --beat`: one solo process, its beat schedule in `schedule`, the output
    (stderr too) to `stdout`, `env` on top of `child_env()`. `new_session`: its own process group, so
    that `os.killpg` reaches the embedded beat too."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "toqdash",
            "worker",
            "--beat",
            "--concurrency=1",
            "--pool=solo",
            "--loglevel=INFO",
            f"--schedule={schedule}",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=child_env(**env),
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=new_session,
    )
