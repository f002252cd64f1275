"""The embedded demo TOQ source: an SQLite file with TOQ's schema, read through the real sync.

Nothing here is used by the product's code paths: the demo only *writes a TOQ database* (as TOQ
would have it) and then runs the same `toq_sync` that reads MySQL in production.
The job-37 incident rows come from shared/samples/job37/toq_rows.sql (copied into job37_rows.json,
with users reduced to names); a few synthetic jobs around "now" show the other states, and
`world=True` (what `load_demo` builds) adds about 200 jobs of the last 30 days (world.py) and
writes their AWS CLI exports next to the source, imported by `demo_evidence_load` through `import_aws`.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
AWS_EXPORTS = HERE / "aws"
SCHEMA = HERE / "toq_schema_sqlite.sql"
JOB37_ROWS = HERE / "job37_rows.json"

_USER_DEFAULTS = {
    "national_id": "00000000000",
    "born_at": "1980-01-01",
    "phone_number": "+5548900000000",
    "email": "demo@example.com",
    "zip_code": "88000000",
    "street": "Rua Demo",
    "number": "1",
    "neighborhood": "Centro",
    "city": "Florianópolis",
    "state": "SC",
    "password": "!",  # not a usable hash: the demo has no TOQ logins
    "opt_status": 1,
    "last_activity_at": "2026-01-05 00:00:00",
    "deleted": 0,
}


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    cols = list(row)
    db.execute(
        f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) VALUES ({", ".join("?" * len(cols))})',
        [row[c] for c in cols],
    )


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _synthetic(db: sqlite3.Connection, now: datetime) -> None:
    """A few recent jobs on another listing: in flight, stuck, finalization, success."""
    _insert(db, "users", {"id": 30, "full_name": "Camila Rocha Vidal", **_USER_DEFAULTS})
    _insert(
        db,
        "listing_identities",
        {
            "id": 40,
            "listing_uuid": "5b3f7a52-8d1e-4c55-9a43-2f0b9d1e7c11",
            "user_id": 30,
            "code": 310101,
            "active_version_id": 40,
        },
    )
    _insert(
        db,
        "listing_versions",
        {
            "id": 40,
            "user_id": 30,
            "listing_identity_id": 40,
            "code": 310101,
            "version": 1,
            "status": 6,
            "title": "Cobertura duplex no Campeche",
            "zip_code": "88063000",
            "number": "77",
            "type": 1,
            "deleted": 0,
        },
    )
    for seq in (1, 2, 3):
        key = f"40/raw/photo/horizontal/horizontal-0{seq}-IMG_30{seq}1.jpg"
        _insert(
            db,
            "media_assets",
            {
                "id": 200 + seq,
                "listing_identity_id": 40,
                "asset_type": "PHOTO_HORIZONTAL",
                "sequence": seq,
                "status": "PROCESSING",
                "s3_key_raw": key,
                "metadata": json.dumps(
                    {"filename": f"IMG_30{seq}1.jpg", "content_type": "image/jpeg", "requested_by": "18"}
                ),
            },
        )
    created = now - timedelta(hours=3)
    # PENDING for three hours: no callback ever came (FM-29)
    _insert(
        db,
        "media_processing_jobs",
        {
            "id": 39,
            "listing_identity_id": 40,
            "status": "PENDING",
            "provider": "STEP_FUNCTIONS",
            "retry_count": 0,
            "created_at": _ts(created),
        },
    )


def build_demo_source(path: Path, *, now: datetime | None = None, world: bool = False) -> dict[str, int]:
    """(Re)create the demo TOQ database at `path`. Returns row counts per table.

    `world=True` (what `load_demo` builds) adds about 200 jobs over the last 30 days
    (jobs/demo/world.py); without it, only the incident and the few jobs around it."""
    now = now or datetime.now(UTC)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA.read_text())
        data = json.loads(JOB37_ROWS.read_text())
        for row in data["users"]:
            _insert(db, "users", {**_USER_DEFAULTS, **row})
        for table in ("listing_identities", "listing_versions", "media_assets"):
            for row in data[table]:
                _insert(db, table, row)
        for row in data["media_processing_jobs"]:
            # The incident's database predates `created_at` (2026-01-16); the demo schema is the
            # current one, so the job's creation time (from the server log) fills it.
            started = datetime.fromisoformat(row["started_at"])
            _insert(
                db,
                "media_processing_jobs",
                {**row, "created_at": _ts((started - timedelta(seconds=1)).replace(tzinfo=UTC))},
            )
        _synthetic(db, now)
        exports_dir = world_exports_dir(path)
        if exports_dir.exists():
            shutil.rmtree(exports_dir)
        if world:
            from jobs.demo.world import VIDEO_LAMBDA, video_lambda_fixed, write_world

            exports = write_world(db, now, _insert, _USER_DEFAULTS)
            bundled = json.loads(
                (AWS_EXPORTS / "lambda" / f"{VIDEO_LAMBDA}.get-function-configuration.json").read_text()
            )
            exports[f"lambda/{VIDEO_LAMBDA}.get-function-configuration.json"] = video_lambda_fixed(bundled)
            for rel, data in exports.items():
                target = exports_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                # `aws ... --output json` prints 4-space indented JSON
                target.write_text(json.dumps(data, indent=4, ensure_ascii=False) + "\n")
        db.commit()
        return {
            t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
            for t in ("users", "listing_identities", "listing_versions", "media_assets", "media_processing_jobs")
        }
    finally:
        db.close()


def world_exports_dir(source: Path) -> Path:
    """Where `build_demo_source(world=True)` writes the world's AWS CLI exports: next to the source
    (var/ under `make run`; generated, never committed), rebuilt with it."""
    return source.with_name(source.stem + "-aws")


def demo_aws_exports(source: Path | None = None) -> list[Path]:
    """The bundled job-37 AWS CLI exports (copies of tests/fixtures/aws/job37, shaped exactly as
    printed), plus the world's exports generated next to `source` when there are any."""
    found = [p for p in AWS_EXPORTS.rglob("*") if p.suffix in (".json", ".jsonl")]
    if source is not None and world_exports_dir(source).is_dir():
        found += list(world_exports_dir(source).rglob("*.json"))
    return sorted(found)


def demo_evidence_load(source: Path | None = None) -> dict[str, int]:
    """Import the AWS exports (bundled, and the world's next to `source`) through `import_aws` and
    diagnose every mirrored job.

    Goes through the product's paths only (the management command and diagnosis.services), so the
    demo shows what a real collection would. Idempotent: the import upserts by natural key and
    `diagnose_job` writes nothing when evidence and engine are unchanged."""
    # Imported here: the demo source builder above must stay importable without the apps loaded.
    from django.core.management import call_command

    from diagnosis.services import diagnose_job
    from jobs.models import Job

    files = demo_aws_exports(source)
    call_command("import_aws", *[str(p) for p in files], stdout=StringIO())
    changed = 0
    job_pks = list(Job.objects.order_by("pk").values_list("pk", flat=True))
    for pk in job_pks:
        changed += diagnose_job(job_id=pk).changed
    return {"jobs diagnosed": len(job_pks), "diagnoses changed": changed}
