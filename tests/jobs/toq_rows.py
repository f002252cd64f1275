"""Builders for TOQ rows in MariaDB (as TOQ's Go code writes them) and a mirror-vs-source check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from jobs.models import Job, Listing, MediaAsset
from tests.conftest import ToqMySQL

T0 = datetime(2026, 1, 20, 12, 0, 0)


def add_user(db: ToqMySQL, user_id: int, name: str = "Maria Souza") -> None:
    db.execute(
        "INSERT INTO users (id, full_name, national_id, born_at, phone_number, email, zip_code, street, number,"
        " neighborhood, city, state, password, opt_status, last_activity_at, deleted)"
        " VALUES (%s, %s, '00000000000', '1980-01-01', '+5548900000000', 'x@example.com', '88000000', 'Rua A',"
        " '1', 'Centro', 'Florianópolis', 'SC', '$2a$10$secrethash', 1, '2026-01-01 00:00:00', 0)",
        [user_id, name],
    )


def add_listing(db: ToqMySQL, listing_id: int, *, user_id: int = 1, status: int = 6, title: str = "Casa") -> None:
    db.execute(
        "INSERT INTO listing_identities (id, listing_uuid, user_id, code, active_version_id) VALUES (%s, %s, %s, %s, %s)",
        [listing_id, f"00000000-0000-0000-0000-{listing_id:012d}", user_id, 300000 + listing_id, listing_id],
    )
    db.execute(
        "INSERT INTO listing_versions (id, user_id, listing_identity_id, code, version, status, title, zip_code,"
        " number, type, deleted) VALUES (%s, %s, %s, %s, 1, %s, %s, '88000000', '10', 1, 0)",
        [listing_id, user_id, listing_id, 300000 + listing_id, status, title],
    )


def job_row(job_id: int, listing_id: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": job_id,
        "listing_identity_id": listing_id,
        "status": "PENDING",
        "provider": "STEP_FUNCTIONS",
        "external_id": None,
        "payload": None,
        "retry_count": 0,
        "started_at": None,
        "completed_at": None,
        "last_error": None,
        "callback_body": None,
        "created_at": T0 + timedelta(minutes=job_id),
    }
    row.update(over)
    return row


def add_job(db: ToqMySQL, row: dict[str, Any], *, with_created_at: bool = True) -> None:
    cols = [c for c in row if with_created_at or c != "created_at"]
    db.execute(
        f"INSERT INTO media_processing_jobs ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
        [row[c] for c in cols],
    )


def add_asset(db: ToqMySQL, asset_id: int, listing_id: int, **over: Any) -> None:
    row: dict[str, Any] = {
        "id": asset_id,
        "listing_identity_id": listing_id,
        "asset_type": "PHOTO_HORIZONTAL",
        "sequence": asset_id,
        "status": "PROCESSING",
        "s3_key_raw": f"{listing_id}/raw/photo/horizontal/horizontal-{asset_id:02d}-IMG_{asset_id}.jpg",
        "s3_key_processed": None,
        "title": None,
        "metadata": json.dumps({"filename": f"IMG_{asset_id}.jpg", "requested_by": "18"}),
    }
    row.update(over)
    db.execute(
        f"INSERT INTO media_assets ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
        list(row.values()),
    )


def failed_callback(job_id: int, listing_id: int) -> str:
    return json.dumps(
        {
            "error": {
                "code": "errorString",
                "message": '{"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"}',
            },
            "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:{job_id:08d}-aaaa",
            "failureReason": "errorString",
            "jobId": job_id,
            "listingIdentityId": listing_id,
            "outputs": [],
            "provider": "STEP_FUNCTIONS",
            "startedAt": "2026-01-05T15:54:47.370Z",
            "status": "PROCESSING_FAILED",
            "traceparent": "",
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def assert_mirror_equals_source(db: ToqMySQL) -> None:
    """Every live source row is mirrored exactly once (current generation), column by column."""
    job_cols = [r[0] for r in db.query("SHOW COLUMNS FROM media_processing_jobs")]
    src_jobs = {r[0]: dict(zip(job_cols, r, strict=True)) for r in db.query("SELECT * FROM media_processing_jobs")}
    mirror_jobs = {j.toq_id: j for j in Job.objects.filter(superseded_at__isnull=True, disappeared_at__isnull=True)}
    assert set(mirror_jobs) == set(src_jobs), "live mirrored job ids differ from the source"
    for job_id, src in src_jobs.items():
        m = mirror_jobs[job_id]
        for col in job_cols:
            if col == "id":
                continue
            expected = src[col]
            actual = getattr(m, col)
            if col == "payload":
                expected = json.loads(expected) if expected is not None else None
            assert _aware(expected) == actual, f"job {job_id}.{col}: source {expected!r} != mirror {actual!r}"
    asset_cols = [r[0] for r in db.query("SHOW COLUMNS FROM media_assets")]
    src_assets = {r[0]: dict(zip(asset_cols, r, strict=True)) for r in db.query("SELECT * FROM media_assets")}
    mirror_assets = {
        a.toq_id: a for a in MediaAsset.objects.filter(superseded_at__isnull=True, disappeared_at__isnull=True)
    }
    assert set(mirror_assets) == set(src_assets), "live mirrored asset ids differ from the source"
    for asset_id, src in src_assets.items():
        m = mirror_assets[asset_id]
        for col in asset_cols:
            if col == "id":
                continue
            expected = src[col]
            if col == "metadata" and expected is not None:
                expected = json.loads(expected)
            assert expected == getattr(m, col), f"asset {asset_id}.{col}"
    src_listings = {r[0] for r in db.query("SELECT id FROM listing_identities")}
    mirror_listings = set(
        Listing.objects.filter(superseded_at__isnull=True, disappeared_at__isnull=True).values_list("toq_id", flat=True)
    )
    assert src_listings == mirror_listings
    # exactly one current generation per id
    for model in (Job, MediaAsset, Listing):
        ids = list(model.objects.filter(superseded_at__isnull=True).values_list("toq_id", flat=True))
        assert len(ids) == len(set(ids)), f"duplicate current rows in {model.__name__}"
