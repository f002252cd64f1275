"""`python manage.py sync_toq`: one sync pass in the foreground.

Progress on a TTY (stderr); always one summary line on stdout. Exit 0 on success (or when another
pass is already running: nothing to do), 1 when TOQ's database cannot be read.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.sync import toq_sync


class Command(BaseCommand):
    help = "Mirror TOQ's media tables (incremental, idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=None, help="ids per chunk (default TOQ_SYNC_CHUNK_SIZE)")
        parser.add_argument("--no-progress", action="store_true", help="never show progress, even on a TTY")

    def handle(self, *args: Any, **options: Any) -> None:
        show = sys.stderr.isatty() and not options["no_progress"]

        def progress(entity: str, phase: str, done: int, total: int) -> None:
            pct = f" {100 * done // total}%" if total else ""
            sys.stderr.write(f"\r\x1b[K{entity}: {phase} {done}/{total}{pct}")
            sys.stderr.flush()

        result = toq_sync(chunk_size=options["chunk_size"], progress=progress if show else None)
        if show:
            sys.stderr.write("\r\x1b[K")
        if not result.ok:
            raise CommandError(result.summary())
        self.stdout.write(result.summary())
