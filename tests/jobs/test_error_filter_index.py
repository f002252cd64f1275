"""The job list's error filter is served by indexes on PostgreSQL (jobs migration 0005): a pg_trgm GIN
index on UPPER(last_error) for the icontains, a btree on UPPER(callback_error_code) for the iexact."""

from __future__ import annotations

import pytest
from django.db import connection

from jobs import selectors
from jobs.filters import JobFilter
from jobs.models import Job
from tests.jobs.factories import make_job

pytestmark = pytest.mark.django_db

TRGM = "job_last_error_upper_trgm_idx"
CODE = "job_callback_error_code_upper_idx"


def _plan(queryset) -> str:
    with connection.cursor() as cursor:
        # Tiny test tables are cheaper to scan: forbid that, so the plan shows what the index can do.
        cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


def test_indexes_exist_on_the_expressions_django_writes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN (%s, %s)", [TRGM, CODE])
        defs = dict(cursor.fetchall())
    assert "USING gin (upper(last_error) gin_trgm_ops)" in defs[TRGM]
    assert "upper((callback_error_code)::text)" in defs[CODE]


def test_the_error_filter_uses_both_indexes():
    make_job(1, status="FAILED", last_error="reconciler marked failed after 30m0s without callback")
    make_job(2, status="FAILED", callback_error_code="errorString", last_error="x")
    filters = JobFilter({"error": "without callback"}, queryset=selectors.job_list_for_dashboard())
    assert filters.is_valid()
    assert [j.toq_id for j in filters.qs] == [1]

    # The filter's own predicate: `UPPER(callback_error_code::text) = UPPER(%s) OR UPPER(last_error::text)
    # LIKE UPPER(%s)` becomes a BitmapOr of the two index scans.
    sql = str(filters.qs.query)
    assert 'UPPER("jobs_job"."last_error"::text) LIKE UPPER(' in sql
    plan = _plan(JobFilter({"error": "without callback"}, queryset=Job.objects.all()).qs.order_by())
    assert "BitmapOr" in plan and TRGM in plan and CODE in plan and "Seq Scan" not in plan, plan


def test_migration_is_a_no_op_elsewhere():
    from importlib import import_module

    migration = import_module("jobs.migrations.0005_job_error_trigram")

    class SQLite:
        vendor = "sqlite"

    class Editor:
        connection = SQLite()

        def execute(self, sql: str) -> None:
            raise AssertionError(f"no SQL on SQLite: {sql}")

    migration.create_indexes(None, Editor())
    migration.drop_indexes(None, Editor())
    assert migration.Migration.atomic is False  # CREATE INDEX CONCURRENTLY
