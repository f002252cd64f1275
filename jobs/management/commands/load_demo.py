"""`python manage.py load_demo [--reset]`: the embedded demo world for `make run`.

Builds an SQLite TOQ source (TOQ's schema, the job-37 incident and about 200 jobs of the last
30 days, jobs/demo/world.py) at the `toq` alias's path on first run — reused afterwards unless
--reset, which also flushes an SQLite dashboard database — mirrors it through the real sync, imports the bundled job-37 AWS exports through `import_aws`, diagnoses every job and
creates one demo user per role. Refuses to run against anything but an SQLite source:
it never writes a real TOQ database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.demo import build_demo_source, demo_evidence_load
from jobs.models import Job
from jobs.roles import ADMIN, ENGINEER, ROLE_ORDER, SUPPORT, ensure_roles
from jobs.sync import toq_sync

DEMO_USERS = {
    "support": (SUPPORT, "support-demo"),
    "engineer": (ENGINEER, "engineer-demo"),
    "admin": (ADMIN, "admin-demo"),
}


class Command(BaseCommand):
    help = "Build the embedded demo TOQ source, mirror it and create demo users."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true", help="rebuild the demo TOQ source")

    def handle(self, *args: Any, **options: Any) -> None:
        toq = settings.DATABASES.get("toq")
        if not toq or toq["ENGINE"] != "django.db.backends.sqlite3":
            raise CommandError("load_demo needs TOQ_DATABASE_URL=sqlite:///…: it never writes a real TOQ database")
        path = Path(settings.TOQ_SQLITE_PATH)
        if options["reset"] and path.exists() and Job.objects.exists():
            # The rebuilt world has other times and execution ARNs: mirrored over the old one, every
            # job would become a new generation (FM-38). Start the embedded dashboard DB afresh.
            if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
                raise CommandError("--reset would mirror a new demo world over this dashboard database: flush it first")
            call_command("flush", interactive=False, verbosity=0)
            self.stdout.write("dashboard database flushed (--reset)")
        if options["reset"] or not path.exists():
            counts = build_demo_source(path, world=True)
            self.stdout.write(f"demo TOQ source built at {path}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        else:
            self.stdout.write(f"demo TOQ source reused: {path} (make run RESET=1 rebuilds it)")
        result = toq_sync()
        if not result.ok:
            raise CommandError(result.summary())
        self.stdout.write(result.summary())
        # The AWS evidence (job 37's, the world's) through the real import path, then every diagnosis.
        counts = demo_evidence_load(path)
        self.stdout.write("demo AWS evidence imported: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        # Beat refreshes the failure groups every 15 min; the demo has no beat, so once now.
        from diagnosis.groups import failure_groups_refresh

        self.stdout.write(f"failure groups: {failure_groups_refresh()}")
        self._users()

    def _users(self) -> None:
        ensure_roles()
        User = get_user_model()
        self.stdout.write("demo logins (http://127.0.0.1:PORT/accounts/login/):")
        for username, (role, password) in DEMO_USERS.items():
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = role == ADMIN
            user.is_superuser = role == ADMIN
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            self.stdout.write(f"  {role:<8} {username} / {password}")
        assert set(ROLE_ORDER) == {r for r, _ in DEMO_USERS.values()}
