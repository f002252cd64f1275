"""Trigram indexes for the job list's error filter (jobs.filters.JobFilter.filter_error), PostgreSQL only.

The filter is `callback_error_code__iexact OR last_error__icontains`, which Django writes as
`UPPER(callback_error_code::text) = UPPER(%s) OR UPPER(last_error::text) LIKE UPPER(%s)`. Neither side
can use an index on the plain column, and an OR is an index scan only if both sides are, so each
index is on the exact expression Django produces:

- a pg_trgm GIN index on UPPER(last_error::text) serves the LIKE '%…%' (3+ characters);
- a btree on UPPER(callback_error_code::text) serves the iexact.

tests/jobs/test_error_filter_index.py checks with EXPLAIN that PostgreSQL uses both.

Built CONCURRENTLY (non-atomic migration): on a million-row mirror a plain CREATE INDEX would block
the sync's writes for the whole build. CREATE EXTENSION needs the CREATE privilege on the database
(pg_trgm is a trusted extension since PostgreSQL 13) or a superuser.

SQLite (the demo) has neither pg_trgm nor expression-index support worth having here: a no-op.
"""

from django.db import migrations

INDEXES = {
    "job_last_error_upper_trgm_idx": 'USING gin ((UPPER("last_error"::text)) gin_trgm_ops)',
    "job_callback_error_code_upper_idx": '((UPPER("callback_error_code"::text)))',
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("jobs", "Job")._meta.db_table
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with schema_editor.connection.cursor() as cursor:
        for name, definition in INDEXES.items():
            # A concurrent build that failed leaves an INVALID index behind that IF NOT EXISTS would keep.
            cursor.execute(
                "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid"
                " WHERE pg_class.relname = %s AND NOT pg_index.indisvalid",
                [name],
            )
            if cursor.fetchone():
                cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
            cursor.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" {definition}')


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("jobs", "0004_chosen_indexes"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
