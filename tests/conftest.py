"""Shared fixtures. Tests run against the real services; a missing one fails with its name."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from tests.sqlscript import split_sql as _split_sql

FIXTURES = Path(__file__).parent / "fixtures"
# TOQ's test database in MariaDB: the `toq` alias's (TOQ_DATABASE_URL, default toq_test).
TOQ_TEST_DB = connections.settings["toq"]["NAME"] if "toq" in connections.settings else "toq_test"

_SERVICES = {
    "PostgreSQL": ("127.0.0.1", 5432),
    "MariaDB": ("127.0.0.1", 3306),
    "Redis": ("127.0.0.1", 6379),
}


@pytest.fixture(scope="session", autouse=True)
def _services_are_up() -> None:
    down = []
    for name, (host, port) in _SERVICES.items():
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError:
            down.append(f"{name} ({host}:{port})")
    if down:
        pytest.fail(
            "required services are not running: " + ", ".join(down) + " — start them (see .ci/run)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Every test starts in the default language: a request in Portuguese (LocaleMiddleware)
    leaves its language active in the thread, and the next test would read translated labels."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


class ToqMySQL:
    """Root access to TOQ's test database in MariaDB: loads DDL and rows like TOQ would have them.

    toqdash itself reads it only through the `toq` alias (the read-only user `toq_reader`).
    """

    def __init__(self, name: str = TOQ_TEST_DB) -> None:
        import MySQLdb

        self.name = name
        self.conn = MySQLdb.connect(
            host="127.0.0.1", port=3306, user="root", passwd="", charset="utf8mb4", autocommit=True
        )
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{name}`")
            cur.execute("SET time_zone = '+00:00'")

    def execute(self, sql: str, params: Any = None) -> int:
        with self.conn.cursor() as cur:
            return cur.execute(sql, params)

    def executemany(self, sql: str, rows: list[Any]) -> int:
        with self.conn.cursor() as cur:
            return cur.executemany(sql, rows)

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def run_script(self, text: str) -> None:
        """Run a multi-statement SQL script (DDL file, toq_rows.sql)."""
        statements = _split_sql(text)
        with self.conn.cursor() as cur:
            for stmt in statements:
                cur.execute(stmt)

    def reset(self, *, with_created_at: bool = True) -> None:
        """Drop TOQ's tables and load the reference DDL (MariaDB flavour), optionally the pre-2026-01-16 variant."""
        self.execute("SET FOREIGN_KEY_CHECKS=0")
        for table in ("media_processing_jobs", "media_assets", "listing_versions", "listing_identities", "users"):
            self.execute(f"DROP TABLE IF EXISTS `{table}`")
        self.run_script((FIXTURES / "toq_schema_mariadb.sql").read_text())
        self.execute("SET FOREIGN_KEY_CHECKS=0")
        if not with_created_at:
            self.execute(
                "ALTER TABLE media_processing_jobs DROP INDEX idx_media_jobs_created,"
                " DROP INDEX idx_media_jobs_completed, DROP COLUMN created_at"
            )

    def load_job37(self) -> None:
        """The job-37 incident rows (shared/samples/job37/toq_rows.sql); drops `created_at` itself."""
        self.run_script((FIXTURES / "job37_toq_rows.sql").read_text())

    def close(self) -> None:
        self.conn.close()


# Tests that read TOQ through toqdash declare `@pytest.mark.django_db(databases=TOQ_DATABASES)`:
# the `toq` alias is a test mirror of itself (settings.test), so Django creates no test database
# for it and the fixtures below reset TOQ's tables instead.
TOQ_DATABASES = ["default", "toq"]


def _toq_fixture(with_created_at: bool) -> Iterator[ToqMySQL]:
    db = ToqMySQL()
    db.reset(with_created_at=with_created_at)
    yield db
    db.close()


@pytest.fixture
def toq_mysql() -> Iterator[ToqMySQL]:
    """TOQ's MariaDB test database, emptied and loaded with the current DDL (with `created_at`)."""
    yield from _toq_fixture(True)


@pytest.fixture
def toq_mysql_old_schema() -> Iterator[ToqMySQL]:
    """TOQ's MariaDB test database with the pre-2026-01-16 schema (no `media_processing_jobs.created_at`)."""
    yield from _toq_fixture(False)
