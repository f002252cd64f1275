"""Read-only access to TOQ's database (alias `toq`): connection guard and column discovery.

All SQL that touches TOQ lives in this module and in jobs.sync; it is plain SELECTs that run
unchanged on MySQL/MariaDB and on the embedded SQLite demo source (where the few SQL functions
SQLite lacks are registered on the connection, see `_register_sqlite_functions`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import zlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from .routers import TOQ_ALIAS, ToqWriteRefused

_READ_ONLY_SQL = re.compile(
    r"^\s*(SELECT|SHOW|DESCRIBE|DESC|EXPLAIN|WITH|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE"
    r"|SET\s+(SESSION\s+)?(time_zone|TRANSACTION|NAMES|sql_mode|autocommit)"
    r"|PRAGMA\s+(table_info|table_xinfo|index_list|index_info|foreign_key_list)\b)",
    re.I,
)


class ToqUnavailable(RuntimeError):
    """TOQ's database cannot be reached or refuses our credentials."""


def _guard(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    if (sql or "").strip() and not _READ_ONLY_SQL.match(sql):
        raise ToqWriteRefused(f"refused a non-read statement on TOQ's database: {sql[:60]!r}")
    return execute(sql, params, many, context)


def _on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.alias != TOQ_ALIAS:
        return
    if connection.vendor == "mysql":
        # Even a mis-granted user cannot write through this session (MySQL and MariaDB syntax).
        with connection.connection.cursor() as raw:
            raw.execute("SET SESSION TRANSACTION READ ONLY")
    if _guard not in connection.execute_wrappers:
        connection.execute_wrappers.append(_guard)
    if connection.vendor == "sqlite":
        _register_sqlite_functions(connection.connection)


def connect_read_only_guard() -> None:
    connection_created.connect(_on_connection_created, dispatch_uid="toq-read-only-guard")


def _md5(*values: Any) -> str | None:
    if values and values[0] is None:
        return None
    return hashlib.md5(str(values[0]).encode("utf-8", "surrogatepass")).hexdigest()


def _concat_ws(sep: str, *values: Any) -> str:
    return sep.join(str(v) for v in values if v is not None)


def _crc32(value: Any) -> int | None:
    if value is None:
        return None
    return zlib.crc32(str(value).encode("utf-8"))


def _conv(value: Any, from_base: int, to_base: int) -> str | None:
    # Only CONV(hex, 16, 10) is used.
    if value is None or from_base != 16 or to_base != 10:
        return None
    return str(int(str(value), 16))


def _register_sqlite_functions(raw: Any) -> None:
    """Give SQLite the MySQL functions the sync's SQL uses, so the same SQL runs on both."""
    raw.create_function("MD5", 1, _md5, deterministic=True)
    raw.create_function("CONCAT_WS", -1, _concat_ws, deterministic=True)
    raw.create_function("CRC32", 1, _crc32, deterministic=True)
    raw.create_function("CONV", 3, _conv, deterministic=True)


_pass_connection: ContextVar[BaseDatabaseWrapper | None] = ContextVar("toq_pass_connection", default=None)


def toq_connection() -> BaseDatabaseWrapper:
    """The connection to TOQ's database: the current pass's own one, else the shared alias."""
    if TOQ_ALIAS not in connections.settings:
        raise ToqUnavailable("TOQ_DATABASE_URL is not set: toqdash has no TOQ database to read")
    return _pass_connection.get() or connections[TOQ_ALIAS]


@contextlib.contextmanager
def own_toq_connection() -> Iterator[BaseDatabaseWrapper]:
    """A fresh connection for one sync pass, in autocommit (no long transaction holding metadata
    locks on TOQ's tables), closed at the end of the pass whatever happens."""
    if TOQ_ALIAS not in connections.settings:
        raise ToqUnavailable("TOQ_DATABASE_URL is not set: toqdash has no TOQ database to read")
    conn = connections.create_connection(TOQ_ALIAS)
    token = _pass_connection.set(conn)
    try:
        yield conn
    finally:
        _pass_connection.reset(token)
        conn.close()


def table_columns(table: str) -> set[str]:
    """Columns the source table has right now (schema variants: e.g. no `created_at` before 2026-01-16)."""
    from django.db import DatabaseError

    conn = toq_connection()
    try:
        with conn.cursor() as cur:
            desc = conn.introspection.get_table_description(cur, table)
    except DatabaseError as exc:
        from .sync import describe_source_error

        raise ToqUnavailable(describe_source_error(exc)) from exc
    return {col.name for col in desc}
