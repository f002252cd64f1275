"""Bulk writes through PostgreSQL's COPY, shared by the apps' hot write paths (the TOQ sync, the
diagnosis). COPY skips what makes Django's bulk_create slow on large rows: building one huge
statement, or (Django 5.2 on PostgreSQL) UNNEST arrays whose text elements psycopg escapes one by
one with a regular expression. Other databases (the SQLite demo) use bulk_create.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, Model
from psycopg.types.json import Jsonb  # psycopg is a runtime dependency (PostgreSQL driver)


def copy_rows(table: str, fields: Sequence[Field[Any, Any]], rows: Iterable[Sequence[Any]], *, extra: str = "") -> None:
    """COPY `rows` (values in `fields` order, after an optional leading column `extra`) into
    `table`. JSON fields are adapted as jsonb. PostgreSQL only."""
    json_at = {i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"}
    shift = 1 if extra else 0
    cols = ([connection.ops.quote_name(extra)] if extra else []) + [connection.ops.quote_name(f.column) for f in fields]
    with connection.cursor() as cur, cur.cursor.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([Jsonb(v) if i - shift in json_at and v is not None else v for i, v in enumerate(row)])


def insert_fields(model: type[Model]) -> list[Field[Any, Any]]:
    """The columns an insert writes: every concrete field but the auto primary key."""
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def bulk_insert(objs: Sequence[Model]) -> None:
    """Insert unsaved model instances (their primary keys are not set back)."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, batch_size=500)
        return
    fields = insert_fields(model)
    table = connection.ops.quote_name(model._meta.db_table)
    copy_rows(table, fields, ([getattr(o, f.attname) for f in fields] for o in objs))
