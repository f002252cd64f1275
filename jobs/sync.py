"""The TOQ → toqdash sync: an incremental, idempotent, crash-safe mirror of TOQ's media tables.

TOQ's tables have no `updated_at` (assets no timestamp at all), so a pass finds changes itself:

1. **tail** — rows with an id above the highest mirrored id are read in id order, chunk by chunk
   (the whole first sync is this phase);
2. **hot** — rows the mirror holds as non-terminal (jobs in flight) are re-read every pass by id;
3. **cold** — for everything else, the source computes, inside MySQL, per chunk of ids the row
   count and the sum of a 48-bit row hash; the mirror stores each row's hash and computes the same
   aggregate. Equal chunks cost nothing more; a differing chunk is compared row by row (id, hash)
   and only its new/changed rows are read in full. Ids present in the mirror but gone from the
   source are marked disappeared (FM-37), never deleted.

Every chunk is applied in one transaction on the dashboard DB, observations included, and the
whole algorithm compares source with mirror instead of remembering progress: a pass killed at any
point leaves whole chunks, and the next pass converges to the source. A second pass with no
change in TOQ writes nothing. Two passes never run at once (`sync_lock`).

An id whose content changes identity (another listing, another execution, another creation time:
a recreated database, FM-38) becomes a new generation; the old row is kept, marked superseded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F, Max, Model, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from toqdash.bulk import copy_rows, insert_fields

from . import callback as cb
from .models import (
    AssetObservation,
    Job,
    JobObservation,
    Listing,
    MediaAsset,
    ObservationKind,
    SyncRun,
)
from .toq_source import ToqUnavailable, own_toq_connection, table_columns, toq_connection

logger = logging.getLogger(__name__)

NULL_MARK = "\\N"
# Observations keep old/new values of these columns (bounded: callback_body ≤ 64 KB in TOQ).
JOB_TRACKED = (
    "status",
    "provider",
    "external_id",
    "payload",
    "retry_count",
    "started_at",
    "completed_at",
    "last_error",
    "callback_body",
    "created_at",
)
ASSET_TRACKED = ("status", "asset_type", "sequence", "s3_key_raw", "s3_key_processed", "title", "metadata")
LISTING_TRACKED = (
    "listing_uuid",
    "owner_user_id",
    "owner_name",
    "code",
    "active_version_id",
    "listing_status",
    "title",
    "deleted",
)

ProgressFn = Callable[[str, str, int, int], None]


class SyncAlreadyRunning(RuntimeError):
    pass


# --- source side ---------------------------------------------------------------------------------


def _hash_sql(exprs: Sequence[str]) -> str:
    """A 48-bit hash of the row, computed by the source database.

    Two CRC32s of the row's text (plain and prefixed), 32 + 16 bits. MD5 cost MariaDB 2.2-2.6 s
    more per million rows than CRC32 (1M jobs: 5.4 s against 3.2 s; 2M assets: 5.9 s against
    3.3 s), and every pass hashes every row at least once. The hash only has to notice
    accidental change, not resist forgery: an undetected change needs a 48-bit coincidence.
    CONCAT_WS converts every value to text itself (an explicit CAST per column doubled the cost).
    """
    parts = ", ".join(f"IFNULL({e}, '{NULL_MARK}')" for e in exprs)
    text = f"CONCAT_WS('|', {parts})"
    # Integer arithmetic keeps MySQL's SUM exact (a string would be summed as a double).
    return f"(CRC32({text}) * 65536 + CRC32(CONCAT_WS('', '~', {text})) %% 65536)"  # %% = modulo (params are always passed)


@dataclass
class Source:
    """How to read one mirrored entity from TOQ's database."""

    name: str
    id_expr: str
    from_sql: str
    columns: list[tuple[str, str]]  # (alias, SQL expression)

    @property
    def hash_sql(self) -> str:
        return _hash_sql([expr for _, expr in self.columns])

    @property
    def select_sql(self) -> str:
        cols = ", ".join(f"{expr} AS {alias}" for alias, expr in self.columns)
        return f"SELECT {cols}, {self.hash_sql} AS row_hash FROM {self.from_sql}"


def _job_source() -> Source:
    present = table_columns("media_processing_jobs")
    # Column order matters: it is the order the row hash concatenates.
    wanted = ["id", "listing_identity_id", *JOB_TRACKED]
    missing_required = {"id", "listing_identity_id", "status", "provider"} - present
    if missing_required:
        raise ToqUnavailable(f"media_processing_jobs lacks columns {sorted(missing_required)}")
    cols = [(c, f"j.{c}") for c in wanted if c in present]
    return Source("jobs", "j.id", "media_processing_jobs j", cols)


def _asset_source() -> Source:
    present = table_columns("media_assets")
    wanted = [
        "id",
        "listing_identity_id",
        "asset_type",
        "sequence",
        "status",
        "s3_key_raw",
        "s3_key_processed",
        "title",
        "metadata",
    ]
    cols = [(c, f"a.{c}") for c in wanted if c in present]
    return Source("assets", "a.id", "media_assets a", cols)


def _listing_source() -> Source:
    # Only what support needs from `users`: the owner's name (never password, national id, contact).
    cols = [
        ("id", "li.id"),
        ("listing_uuid", "li.listing_uuid"),
        ("owner_user_id", "li.user_id"),
        ("code", "li.code"),
        ("active_version_id", "li.active_version_id"),
        ("deleted", "li.deleted"),
        ("listing_status", "lv.status"),
        ("title", "lv.title"),
        ("owner_name", "u.full_name"),
    ]
    return Source(
        "listings",
        "li.id",
        "listing_identities li LEFT JOIN listing_versions lv ON lv.id = li.active_version_id"
        " LEFT JOIN users u ON u.id = li.user_id",
        cols,
    )


def _fetch(sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    try:
        with toq_connection().cursor() as cur:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    except DatabaseError as exc:
        raise ToqUnavailable(describe_source_error(exc)) from exc


def _fetch_tuples(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    try:
        with toq_connection().cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    except DatabaseError as exc:
        raise ToqUnavailable(describe_source_error(exc)) from exc


def _chunk_expr(id_expr: str, size: int) -> str:
    # Integer chunk number, portable (MySQL's `/` is decimal, SQLite may lack FLOOR).
    return f"(({id_expr}) - ({id_expr}) %% {size}) / {size}"  # %% = modulo (params are always passed)


# --- normalisation (source row → model fields) ---------------------------------------------------


def _dt(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        parsed = parse_datetime(str(value))
        if parsed is None:
            return None
        dt = parsed
    if timezone.is_naive(dt):
        # TOQ's session runs in UTC (TIMESTAMP) and its host writes DATETIME in UTC.
        dt = dt.replace(tzinfo=UTC)
    return dt


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _safe_text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; keep it visible instead of failing the chunk.
    if value is not None and "\x00" in value:
        return value.replace("\x00", "\\x00")
    return value


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def normalize_job(row: dict[str, Any]) -> dict[str, Any]:
    status = _str(row["status"]) or ""
    provider = _str(row["provider"]) or ""
    external_id = _safe_text(_str(row.get("external_id")))
    payload, payload_raw = cb.parse_json_column(row.get("payload"))
    callback_body = _safe_text(_str(row.get("callback_body")))
    last_error = _safe_text(_str(row.get("last_error")))
    decoded = cb.decode_callback(callback_body)
    return {
        "toq_id": int(row["id"]),
        "row_hash": int(row["row_hash"]),
        "listing_identity_id": int(row["listing_identity_id"]),
        "status": status[:50],
        "provider": provider[:50],
        "external_id": external_id,
        "payload": payload,
        "payload_raw": _safe_text(payload_raw) or "",
        "retry_count": _int(row.get("retry_count")),
        "started_at": _dt(row.get("started_at")),
        "completed_at": _dt(row.get("completed_at")),
        "last_error": last_error,
        "callback_body": callback_body,
        "created_at": _dt(row.get("created_at")),
        "kind": cb.job_kind(provider=provider, external_id=external_id, payload=payload, callback=decoded),
        "is_terminal": status in cb.TERMINAL_JOB_STATUSES,
        "status_known": status in cb.KNOWN_JOB_STATUSES,
        "provider_known": provider in cb.KNOWN_PROVIDERS,
        "last_error_fragments": cb.split_last_error(last_error),
        "callback_parse_error": decoded.parse_error,
        "callback_status": decoded.status,
        "callback_error_code": decoded.error_code[:255],
        "callback_error_message": _safe_text(decoded.error_message) or "",
        "callback_error_type": decoded.error_type[:255],
        "callback_failure_reason": decoded.failure_reason[:255],
        "callback_outputs_empty": decoded.outputs_empty,
        "callback_execution_arn": decoded.execution_arn[:255],
        "callback_results": decoded.results,
    }


def normalize_asset(row: dict[str, Any]) -> dict[str, Any]:
    status = _str(row["status"]) or ""
    asset_type = _str(row["asset_type"]) or ""
    metadata, metadata_raw = cb.parse_json_column(row.get("metadata"))
    return {
        "toq_id": int(row["id"]),
        "row_hash": int(row["row_hash"]),
        "listing_identity_id": int(row["listing_identity_id"]),
        "asset_type": asset_type[:50],
        "sequence": int(row["sequence"]),
        "status": status[:50],
        "s3_key_raw": _safe_text(_str(row.get("s3_key_raw"))),
        "s3_key_processed": _safe_text(_str(row.get("s3_key_processed"))),
        "title": _safe_text(_str(row.get("title"))),
        "metadata": metadata,
        "metadata_raw": _safe_text(metadata_raw) or "",
        "status_known": status in cb.KNOWN_ASSET_STATUSES,
        "type_known": asset_type in cb.KNOWN_ASSET_TYPES,
    }


def normalize_listing(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "toq_id": int(row["id"]),
        "row_hash": int(row["row_hash"]),
        "listing_uuid": _str(row.get("listing_uuid")) or "",
        "owner_user_id": _int(row.get("owner_user_id")),
        "owner_name": (_str(row.get("owner_name")) or "")[:150],
        "code": _int(row.get("code")),
        "active_version_id": _int(row.get("active_version_id")),
        "listing_status": _int(row.get("listing_status")),
        "title": (_safe_text(_str(row.get("title"))) or "")[:255],
        "deleted": bool(_int(row.get("deleted")) or 0),
    }


# --- identity: an update, or a reused id (new generation)? ---------------------------------------


def _job_identity_changed(old: Any, new: dict[str, Any]) -> bool:
    if old.listing_identity_id != new["listing_identity_id"]:
        return True
    if old.created_at and new["created_at"] and old.created_at != new["created_at"]:
        return True
    # TOQ writes external_id and started_at once and never overwrites them (§2.1, §3.9).
    if old.external_id and new["external_id"] != old.external_id:
        return True
    if old.started_at and new["started_at"] != old.started_at:
        return True
    # No TOQ code path moves a terminal job back to PENDING/RUNNING or clears completed_at.
    if old.is_terminal and not new["is_terminal"] and new["status_known"]:
        return True
    return bool(old.completed_at and new["completed_at"] is None)


def _asset_identity_changed(old: Any, new: dict[str, Any]) -> bool:
    if (old.listing_identity_id, old.asset_type, old.sequence) != (
        new["listing_identity_id"],
        new["asset_type"],
        new["sequence"],
    ):
        return True
    # The upload upsert keeps an existing raw key (§1.3): a different one is another row.
    return bool(old.s3_key_raw and new["s3_key_raw"] and old.s3_key_raw != new["s3_key_raw"])


def _listing_identity_changed(old: Any, new: dict[str, Any]) -> bool:
    return bool(old.listing_uuid and new["listing_uuid"] and old.listing_uuid != new["listing_uuid"])


# --- entity plumbing -----------------------------------------------------------------------------


@dataclass
class Entity:
    source: Source
    model: type[Job] | type[MediaAsset] | type[Listing]
    normalize: Callable[[dict[str, Any]], dict[str, Any]]
    identity_changed: Callable[[Any, dict[str, Any]], bool]
    tracked: tuple[str, ...]
    observation_model: type[JobObservation] | type[AssetObservation] | None
    observation_fk: str
    # Columns the identity rule reads (besides the tracked ones).
    identity_fields: tuple[str, ...] = ()
    hot: bool = False  # re-read non-terminal rows every pass


@dataclass
class PassStats:
    inserted: int = 0
    updated: int = 0
    disappeared: int = 0
    new_generation: int = 0
    # Rows whose stored hash was recomputed with no change to what the mirror keeps (a new hash
    # function or derivation): rewritten silently, without an observation; not "rows changed".
    rehashed: int = 0
    chunks_checked: int = 0
    chunks_changed: int = 0
    per_entity: dict[str, dict[str, int]] = field(default_factory=dict)

    def bump(self, entity: str, key: str, n: int = 1) -> None:
        setattr(self, key, getattr(self, key) + n)
        self.per_entity.setdefault(entity, {}).setdefault(key, 0)
        self.per_entity[entity][key] += n

    @property
    def rows_changed(self) -> int:
        return self.inserted + self.updated + self.disappeared + self.new_generation


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class _Writer:
    """Bulk writes of mirror rows. PostgreSQL: COPY (inserts) and COPY into a temporary table +
    one UPDATE … FROM (updates) — the sync's hot path; elsewhere (the SQLite demo) the ORM's
    bulk_create / bulk_update."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.fields = insert_fields(model)
        self.table = connection.ops.quote_name(model._meta.db_table)

    def insert(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if connection.vendor != "postgresql":
            self.model._default_manager.bulk_create([self.model(**r) for r in rows], batch_size=500)
            return
        copy_rows(self.table, self.fields, ([r[f.attname] for f in self.fields] for r in rows))

    def update(self, rows: list[dict[str, Any]], attnames: list[str]) -> None:
        """Update `attnames` of existing rows, given as dicts with their primary key under "id"."""
        if not rows:
            return
        if connection.vendor != "postgresql":
            objs = [self.model(id=r["id"], **{a: r[a] for a in attnames}) for r in rows]
            self.model._default_manager.bulk_update(objs, attnames, batch_size=500)
            return
        fields = [f for f in self.fields if f.attname in attnames]
        cols = [connection.ops.quote_name(f.column) for f in fields]
        pk_column = self.model._meta.pk.column  # type: ignore[union-attr]
        pk = connection.ops.quote_name(pk_column)
        with connection.cursor() as cur:
            cur.execute(
                f"CREATE TEMPORARY TABLE toqdash_sync_upd ON COMMIT DROP AS"
                f" SELECT {pk}, {', '.join(cols)} FROM {self.table} WITH NO DATA"
            )
            copy_rows(
                "toqdash_sync_upd", fields, ([r["id"], *(r[f.attname] for f in fields)] for r in rows), extra=pk_column
            )
            assignments = ", ".join(f"{c} = s.{c}" for c in cols)
            cur.execute(f"UPDATE {self.table} t SET {assignments} FROM toqdash_sync_upd s WHERE t.{pk} = s.{pk}")
            cur.execute("DROP TABLE toqdash_sync_upd")


class _Applier:
    """Applies one batch of source rows (+ ids known gone) to the mirror, in the caller's transaction."""

    def __init__(self, entity: Entity, stats: PassStats, now: datetime) -> None:
        self.e = entity
        self.stats = stats
        self.now = now
        self.writer = _Writer(entity.model)
        self.fresh = {
            "generation": 1,
            "first_seen_at": now,
            "last_changed_at": now,
            "disappeared_at": None,
            "superseded_at": None,
        }

    def _current(self, ids: Sequence[int]) -> dict[int, SimpleNamespace]:
        """The current rows of these ids: only the columns the comparison needs (plain values,
        not model instances: no decoding of the large derived JSON columns)."""
        if not ids:
            return {}
        needed = {"id", "toq_id", "generation", "row_hash", "disappeared_at", *self.e.tracked, *self.e.identity_fields}
        rows = self.e.model.objects.filter(toq_id__in=list(ids), superseded_at__isnull=True).values(*needed)
        return {r["toq_id"]: SimpleNamespace(**r) for r in rows}

    def _observe(self, old: SimpleNamespace, kind: str, changes: dict[str, Any]) -> Any:
        assert self.e.observation_model is not None
        return self.e.observation_model(
            **{f"{self.e.observation_fk}_id": old.id}, observed_at=self.now, kind=kind, changes=changes
        )

    def apply(self, rows: list[dict[str, Any]], gone_ids: Sequence[int] = (), *, all_new: bool = False) -> None:
        """`all_new`: the caller knows no mirror row exists for these ids (ids above the highest
        mirrored one), so the lookup of current rows is skipped."""
        if not rows and not gone_ids:
            return
        name = self.e.source.name
        normalized = [self.e.normalize(r) for r in rows]
        current = {} if all_new else self._current([n["toq_id"] for n in normalized] + list(gone_ids))
        to_insert: list[dict[str, Any]] = []
        to_update: list[dict[str, Any]] = []
        superseded: list[dict[str, Any]] = []
        gone: list[dict[str, Any]] = []
        rehashed: list[dict[str, Any]] = []
        observations: list[Any] = []
        track = self.e.observation_model is not None

        for new in normalized:
            old = current.get(new["toq_id"])
            if old is None:
                to_insert.append({**new, **self.fresh})
                continue
            if old.row_hash == new["row_hash"] and old.disappeared_at is None:
                continue  # unchanged
            if self.e.identity_changed(old, new):
                superseded.append({"id": old.id, "superseded_at": self.now})
                if track:
                    observations.append(
                        self._observe(old, ObservationKind.SUPERSEDED, {"replaced_by_generation": old.generation + 1})
                    )
                to_insert.append({**new, **self.fresh, "generation": old.generation + 1})
                self.stats.bump(name, "new_generation")
                continue
            changes = {
                f: [_jsonable(getattr(old, f)), _jsonable(new[f])] for f in self.e.tracked if getattr(old, f) != new[f]
            }
            if not changes and old.disappeared_at is None:
                rehashed.append({**new, "id": old.id})
                self.stats.bump(name, "rehashed")
                continue
            kind = ObservationKind.REAPPEARED if old.disappeared_at is not None else ObservationKind.CHANGED
            to_update.append({**new, "id": old.id, "last_changed_at": self.now, "disappeared_at": None})
            if track:
                observations.append(self._observe(old, kind, changes))
            self.stats.bump(name, "updated")

        for gid in gone_ids:
            old = current.get(gid)
            if old is None or old.disappeared_at is not None:
                continue
            gone.append({"id": old.id, "disappeared_at": self.now})
            if track:
                observations.append(self._observe(old, ObservationKind.DISAPPEARED, {}))
            self.stats.bump(name, "disappeared")

        self.writer.update(superseded, ["superseded_at"])
        self.writer.update(gone, ["disappeared_at"])
        self.writer.update(to_update, [*to_update[0].keys() - {"id", "toq_id"}] if to_update else [])
        self.writer.update(rehashed, [*rehashed[0].keys() - {"id", "toq_id"}] if rehashed else [])
        self.writer.insert(to_insert)
        new_generations = sum(1 for r in to_insert if r["generation"] > 1)
        if len(to_insert) - new_generations:
            self.stats.bump(name, "inserted", len(to_insert) - new_generations)
        if observations:
            assert self.e.observation_model is not None
            self.e.observation_model.objects.bulk_create(observations, batch_size=500)


# --- the pass ------------------------------------------------------------------------------------


def _entities() -> list[Entity]:
    return [
        Entity(
            _listing_source(),
            Listing,
            normalize_listing,
            _listing_identity_changed,
            LISTING_TRACKED,
            None,
            "",
            identity_fields=("listing_uuid",),
        ),
        Entity(
            _asset_source(),
            MediaAsset,
            normalize_asset,
            _asset_identity_changed,
            ASSET_TRACKED,
            AssetObservation,
            "asset",
            identity_fields=("listing_identity_id", "asset_type", "sequence", "s3_key_raw"),
        ),
        Entity(
            _job_source(),
            Job,
            normalize_job,
            _job_identity_changed,
            JOB_TRACKED,
            JobObservation,
            "job",
            identity_fields=(
                "listing_identity_id",
                "created_at",
                "external_id",
                "started_at",
                "completed_at",
                "is_terminal",
            ),
            hot=True,
        ),
    ]


def _mirror_live(model: type[Model]) -> Any:
    return model.objects.filter(superseded_at__isnull=True, disappeared_at__isnull=True)  # type: ignore[attr-defined]


COMPARE_SPAN = 10


def _mirror_hashes_in_range(model: type[Model], lo: int, hi: int) -> dict[int, int]:
    """(toq_id → row_hash) of the live mirror rows in [lo, hi]. A plain cursor: this reads every
    row of every differing chunk, and the ORM's per-row overhead doubled its cost."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT toq_id, row_hash FROM {table} WHERE toq_id BETWEEN %s AND %s"
            " AND superseded_at IS NULL AND disappeared_at IS NULL",
            [lo, hi],
        )
        return dict(cur.fetchall())


def _runs(chunks: Sequence[int], span: int) -> Iterator[list[int]]:
    """Split sorted chunk numbers into runs of consecutive numbers, at most `span` long."""
    run: list[int] = []
    for c in chunks:
        if run and (c != run[-1] + 1 or len(run) >= span):
            yield run
            run = []
        run.append(c)
    if run:
        yield run


class SyncPass:
    def __init__(self, *, chunk_size: int | None = None, progress: ProgressFn | None = None) -> None:
        self.chunk = chunk_size or settings.TOQ_SYNC_CHUNK_SIZE
        self.progress = progress or (lambda *a: None)
        self.stats = PassStats()
        self.schema: dict[str, bool] = {}

    def run(self) -> PassStats:
        entities = _entities()
        self.schema["media_processing_jobs.created_at"] = any(
            alias == "created_at" for alias, _ in entities[2].source.columns
        )
        for entity in entities:
            self._tail(entity)
            if entity.hot:
                self._hot(entity)
            self._cold(entity)
        return self.stats

    def _apply(
        self, entity: Entity, rows: list[dict[str, Any]], gone: Sequence[int] = (), *, all_new: bool = False
    ) -> None:
        with transaction.atomic():
            _Applier(entity, self.stats, timezone.now()).apply(rows, gone, all_new=all_new)

    def _tail(self, entity: Entity) -> None:
        """New rows: ids above the highest mirrored id, in id order (the whole first sync)."""
        src = entity.source
        last = entity.model.objects.aggregate(m=Max("toq_id"))["m"] or 0
        total_row = _fetch_tuples(f"SELECT COUNT(*) FROM {src.from_sql} WHERE {src.id_expr} > %s", [last])
        total = int(total_row[0][0])
        done = 0
        sql = f"{src.select_sql} WHERE {src.id_expr} > %s ORDER BY {src.id_expr} LIMIT %s"
        # Pipelined: the next chunk is read from TOQ (in a thread; the driver releases the GIL
        # while MySQL works) while this one is written. One TOQ query at a time, so sharing the
        # pass's connection between the two threads is safe.
        conn = toq_connection()
        conn.inc_thread_sharing()
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="toq-read") as pool:
                pending = pool.submit(_fetch, sql, [last, self.chunk])
                while True:
                    rows = pending.result()
                    if not rows:
                        break
                    last = int(rows[-1]["id"])
                    pending = pool.submit(_fetch, sql, [last, self.chunk])
                    self._apply(entity, rows, all_new=True)
                    done += len(rows)
                    self.progress(src.name, "new rows", done, total)
        finally:
            conn.dec_thread_sharing()

    def _hot(self, entity: Entity) -> None:
        """Rows in flight (non-terminal jobs) are re-read every pass."""
        src = entity.source
        ids = list(
            _mirror_live(entity.model).filter(is_terminal=False).order_by("toq_id").values_list("toq_id", flat=True)
        )
        for i in range(0, len(ids), self.chunk):
            batch = ids[i : i + self.chunk]
            self._compare_ids(entity, batch)
            self.progress(src.name, "in-flight rows", min(i + self.chunk, len(ids)), len(ids))

    def _compare_ids(self, entity: Entity, ids: Sequence[int]) -> None:
        src = entity.source
        placeholders = ", ".join(["%s"] * len(ids))
        source_hashes = dict(
            _fetch_tuples(
                f"SELECT {src.id_expr}, {src.hash_sql} FROM {src.from_sql} WHERE {src.id_expr} IN ({placeholders})",
                list(ids),
            )
        )
        mirror_hashes = dict(_mirror_live(entity.model).filter(toq_id__in=list(ids)).values_list("toq_id", "row_hash"))
        self._reconcile(entity, {int(k): int(v) for k, v in source_hashes.items()}, mirror_hashes)

    def _reconcile(self, entity: Entity, source_hashes: dict[int, int], mirror_hashes: dict[int, int]) -> None:
        """Read in full the rows whose hash differs; mark disappeared the ids the source lacks."""
        src = entity.source
        changed = [i for i, h in source_hashes.items() if mirror_hashes.get(i) != h]
        gone = [i for i in mirror_hashes if i not in source_hashes]
        rows: list[dict[str, Any]] = []
        for i in range(0, len(changed), 1000):
            batch = sorted(changed[i : i + 1000])
            placeholders = ", ".join(["%s"] * len(batch))
            rows.extend(_fetch(f"{src.select_sql} WHERE {src.id_expr} IN ({placeholders})", batch))
        if rows or gone:
            self._apply(entity, rows, gone)

    def _cold(self, entity: Entity) -> None:
        """Chunked checksums: the source aggregates inside MySQL, the mirror inside its own DB."""
        src = entity.source
        size = self.chunk
        source_sql = (
            f"SELECT {_chunk_expr(src.id_expr, size)} AS c, COUNT(*), SUM({src.hash_sql})"
            f" FROM {src.from_sql} GROUP BY {_chunk_expr(src.id_expr, size)}"
        )
        # The two aggregates run at once: MySQL's in a thread (the driver releases the GIL while
        # the server works; the pass's connection runs only this query meanwhile), the mirror's here.
        conn = toq_connection()
        conn.inc_thread_sharing()
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="toq-read") as pool:
                pending = pool.submit(_fetch_tuples, source_sql, [])
                mirror_aggs = {
                    int(row["c"]): (int(row["n"]), int(row["s"] or 0))
                    for row in _mirror_live(entity.model)
                    .annotate(c=F("toq_id") / size)
                    .values("c")
                    .annotate(n=Count("id"), s=Sum("row_hash"))
                    .values("c", "n", "s")
                }
                source_aggs = {int(c): (int(n), int(s or 0)) for c, n, s in pending.result()}
        finally:
            conn.dec_thread_sharing()
        chunks = sorted(set(source_aggs) | set(mirror_aggs))
        differing = [c for c in chunks if source_aggs.get(c) != mirror_aggs.get(c)]
        self.stats.chunks_checked += len(chunks)
        self.stats.chunks_changed += len(differing)
        # Adjacent differing chunks are compared together (up to COMPARE_SPAN chunks a query):
        # when changes are spread over the whole table, fewer, larger reads cost less.
        done = 0
        for group in _runs(differing, COMPARE_SPAN):
            lo, hi = group[0] * size, (group[-1] + 1) * size - 1
            source_hashes = {
                int(i): int(h)
                for i, h in _fetch_tuples(
                    f"SELECT {src.id_expr}, {src.hash_sql} FROM {src.from_sql} WHERE {src.id_expr} BETWEEN %s AND %s",
                    [lo, hi],
                )
            }
            self._reconcile(entity, source_hashes, _mirror_hashes_in_range(entity.model, lo, hi))
            done += len(group)
            self.progress(src.name, "changed chunks", done, len(differing))


# --- lock ----------------------------------------------------------------------------------------

_LOCK_KEY = int(hashlib.md5(b"toqdash.sync_toq").hexdigest()[:15], 16)


@contextlib.contextmanager
def sync_lock() -> Iterator[None]:
    """One pass at a time. PostgreSQL: a session advisory lock; SQLite (demo): a file lock.

    Both are released by the operating system / server when the process dies (SIGKILL included),
    so a killed pass never blocks the next one.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
            got = cur.fetchone()[0]
        if not got:
            raise SyncAlreadyRunning("another sync pass is running")
        try:
            yield
        finally:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
        return
    # One lock file per dashboard database, under var/ (the NAME may be a URI or in memory).
    name = str(connection.settings_dict.get("NAME") or "toqdash")
    path = Path(settings.BASE_DIR) / "var" / f"sync-{hashlib.md5(name.encode()).hexdigest()[:12]}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SyncAlreadyRunning("another sync pass is running") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- entry point ---------------------------------------------------------------------------------


@dataclass
class SyncResult:
    run: SyncRun
    stats: PassStats
    duration: float

    @property
    def ok(self) -> bool:
        return self.run.outcome in (SyncRun.Outcome.SUCCEEDED, SyncRun.Outcome.SKIPPED)

    def summary(self) -> str:
        if self.run.outcome == SyncRun.Outcome.SKIPPED:
            return "sync skipped: another pass is running"
        if self.run.outcome == SyncRun.Outcome.FAILED:
            return f"sync failed after {self.duration:.2f}s: {self.run.error}"
        s = self.stats
        return (
            f"sync ok: {s.inserted} inserted, {s.updated} updated, {s.disappeared} disappeared, "
            f"{s.new_generation} new generations; {s.chunks_checked} chunks checked, "
            f"{s.chunks_changed} changed; {self.duration:.2f}s"
        )


def describe_source_error(exc: BaseException) -> str:
    """A clear, secret-free message for a TOQ connection failure."""
    if isinstance(exc, ToqUnavailable):
        return str(exc)
    conn_settings = {}
    with contextlib.suppress(Exception):
        conn_settings = toq_connection().settings_dict
    where = f"{conn_settings.get('HOST') or 'localhost'}:{conn_settings.get('PORT') or 3306}"
    user = conn_settings.get("USER") or "?"
    detail = " ".join(str(a) for a in getattr(exc, "args", ())) or type(exc).__name__
    return f"cannot read TOQ's database at {where} as {user}: {detail}"[:1000]


def toq_sync(*, chunk_size: int | None = None, progress: ProgressFn | None = None) -> SyncResult:
    """Run one sync pass; records a SyncRun (the UI's sync health). Never raises for source errors."""
    started = time.monotonic()
    run = SyncRun.objects.create(started_at=timezone.now())
    sync_pass = SyncPass(chunk_size=chunk_size, progress=progress)
    unexpected: BaseException | None = None
    try:
        with sync_lock(), own_toq_connection():
            sync_pass.run()
    except SyncAlreadyRunning:
        run.outcome = SyncRun.Outcome.SKIPPED
    except ToqUnavailable as exc:
        run.outcome = SyncRun.Outcome.FAILED
        run.error = str(exc)
        logger.error("toq sync failed: %s", run.error)
    except Exception as exc:  # recorded for the sync health, then re-raised
        run.outcome = SyncRun.Outcome.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:1000]
        unexpected = exc
        logger.exception("toq sync crashed")
    else:
        run.outcome = SyncRun.Outcome.SUCCEEDED
    stats = sync_pass.stats
    run.finished_at = timezone.now()
    run.rows_inserted = stats.inserted
    run.rows_updated = stats.updated
    run.rows_disappeared = stats.disappeared
    run.rows_new_generation = stats.new_generation
    run.chunks_checked = stats.chunks_checked
    run.chunks_changed = stats.chunks_changed
    run.schema = sync_pass.schema
    run.save()
    if unexpected is not None:
        raise unexpected
    return SyncResult(run=run, stats=stats, duration=time.monotonic() - started)
