"""Row-writing helpers shared by the awslogs store modules (no AWS calls, no domain rules)."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection, models, transaction

from awslogs import parsers
from jobs.models import Job

# Rows per INSERT: large enough for throughput, small enough for PostgreSQL's parameter limit.
BATCH_SIZE = 2000


def current_jobs_by_toq_id(toq_ids: set[int]) -> dict[int, int]:
    if not toq_ids:
        return {}
    return dict(Job.objects.current().filter(toq_id__in=toq_ids).values_list("toq_id", "id"))


def update_if_changed(obj: Any, values: dict[str, Any]) -> bool:
    changed = {k: v for k, v in values.items() if getattr(obj, k) != v}
    if not changed:
        return False
    for key, value in changed.items():
        setattr(obj, key, value)
    type(obj).objects.filter(pk=obj.pk).update(**changed)
    return True


def non_negative(value: int | None) -> int | None:
    return value if value is None or value >= 0 else None


def insert_new_rows(
    model: type[models.Model], columns: tuple[str, ...], rows: list[tuple[Any, ...]], *, conflict_field: str
) -> int:
    """Insert rows, skipping those whose natural key exists; returns how many were inserted.

    PostgreSQL: COPY into a temporary table, then INSERT … ON CONFLICT DO NOTHING — several times
    faster than parameterised INSERTs for tens of thousands of rows. Other databases: bulk_create."""
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        # The demo's SQLite: slower, same result.
        key_fields = [c.strip() for c in conflict_field.split(",")]
        key_indexes = [columns.index(c) for c in key_fields]
        new = [
            dict(zip(columns, r, strict=True))
            for r in rows
            if not model._default_manager.filter(
                **{c: r[i] for c, i in zip(key_fields, key_indexes, strict=True)}
            ).exists()
        ]
        model._default_manager.bulk_create([model(**v) for v in new], batch_size=BATCH_SIZE, ignore_conflicts=True)
        return len(new)
    table = model._meta.db_table
    json_columns = {f.column for f in model._meta.concrete_fields if isinstance(f, models.JSONField)}
    column_list = ", ".join(columns)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {table}_load ON COMMIT DROP AS "
            f"SELECT {column_list} FROM {table} WITH NO DATA"
        )
        json_indexes = [i for i, c in enumerate(columns) if c in json_columns]
        with cursor.cursor.copy(f"COPY {table}_load ({column_list}) FROM STDIN") as copy:
            for row in rows:
                if json_indexes:
                    row = tuple(json.dumps(v) if i in json_indexes else v for i, v in enumerate(row))
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {table}_load "
            f"ON CONFLICT ({conflict_field}) DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute(f"DROP TABLE {table}_load")
    return int(inserted)


def json_safe(value: Any) -> Any:
    """JSON for PostgreSQL jsonb: no NUL characters, no lone surrogates."""
    if isinstance(value, str):
        return parsers.safe_text(value, parsers.MAX_LINE_BYTES)[0]
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
