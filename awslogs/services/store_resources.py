"""S3 listings and derivative checks, MediaConvert jobs, Lambda configurations, queues and DLQ
messages into the database (no AWS calls here; idempotent)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from awslogs import parsers
from awslogs.models import (
    DerivativeCheck,
    DlqMessage,
    Execution,
    LambdaConfigSnapshot,
    MediaConvertJob,
    QueueSnapshot,
    S3Object,
)
from awslogs.services.rows import current_jobs_by_toq_id, json_safe, update_if_changed
from jobs.models import Job


def s3_objects_store(*, bucket: str, objects: list[dict[str, Any]]) -> int:
    """Upsert ListObjectsV2 `Contents`. Returns rows inserted or changed."""
    existing = {o.key: o for o in S3Object.objects.filter(bucket=bucket, key__in=[str(o.get("Key")) for o in objects])}
    changed = 0
    for raw in objects:
        key = str(raw.get("Key", ""))
        values = {
            "size": raw.get("Size"),
            "etag": str(raw.get("ETag", ""))[:128],
            "last_modified": parsers.parse_timestamp(raw.get("LastModified")),
            "storage_class": str(raw.get("StorageClass", "") or "")[:32],
        }
        if raw.get("ContentType"):
            values["content_type"] = str(raw["ContentType"])[:128]
        obj = existing.get(key)
        if obj is None:
            S3Object.objects.create(bucket=bucket, key=key, **values)
            changed += 1
        elif update_if_changed(obj, values):
            changed += 1
    return changed


def derivatives_check(
    *, job: Job, bucket: str, raw_assets: list[tuple[str, str]], with_zip: bool
) -> list[DerivativeCheck]:
    """Compare the expected derivative set (reference §4) with the stored S3 listing; upsert checks."""
    expected = derivatives_expected(job=job, raw_assets=raw_assets, with_zip=with_zip)
    return derivatives_compare(job=job, bucket=bucket, expected=expected)


def derivatives_expected(
    *, job: Job, raw_assets: list[tuple[str, str]], with_zip: bool
) -> list[parsers.ExpectedDerivative]:
    """Reference §4: 4 sizes per photo, a thumbnail per video (+ the MP4 of the job's first video),
    the ZIP after a finalization."""
    expected: list[parsers.ExpectedDerivative] = []
    first_video_seen = False
    for raw_key, asset_type in raw_assets:
        is_video = "VIDEO" in asset_type.upper()
        expected.extend(
            parsers.expected_derivatives(raw_key, asset_type, first_video=is_video and not first_video_seen)
        )
        first_video_seen |= is_video
    if with_zip:
        zip_key = parsers.zip_key(job.listing_identity_id)
        expected.append(parsers.ExpectedDerivative("", zip_key, "zip"))
    return expected


def derivatives_compare(
    *,
    job: Job,
    bucket: str,
    expected: list[parsers.ExpectedDerivative],
    existing: dict[str, DerivativeCheck] | None = None,
) -> list[DerivativeCheck]:
    """Upsert the job's checks against the stored listing. `existing`: the job's checks by key, when
    the caller has them (updated in place)."""
    objects = {o.key: o for o in S3Object.objects.filter(bucket=bucket, key__in=[e.key for e in expected])}
    if existing is None:
        existing = {c.key: c for c in DerivativeCheck.objects.filter(job=job)}
    out: list[DerivativeCheck] = []
    for item in expected:
        obj = objects.get(item.key)
        if obj is None:
            outcome = DerivativeCheck.Outcome.MISSING
        elif obj.size == 0:
            outcome = DerivativeCheck.Outcome.ZERO_BYTES
        else:
            outcome = DerivativeCheck.Outcome.PRESENT
        values = {
            "raw_key": item.raw_key,
            "kind": item.kind,
            "outcome": outcome,
            "size": obj.size if obj else None,
            "content_type": obj.content_type if obj else "",
            "last_modified": obj.last_modified if obj else None,
        }
        check = existing.get(item.key)
        if check is None:
            check = existing[item.key] = DerivativeCheck.objects.create(job=job, key=item.key, **values)
        else:
            update_if_changed(check, values)
        out.append(check)
    return out


def s3_object_head_store(*, bucket: str, key: str, head: dict[str, Any]) -> bool:
    """HeadObject answer → content type (ListObjectsV2 has none), size, last modified."""
    obj = S3Object.objects.filter(bucket=bucket, key=key).first()
    if obj is None:
        return False
    values = {
        "content_type": str(head.get("ContentType", ""))[:128],
        "size": head.get("ContentLength", obj.size),
        "last_modified": parsers.parse_timestamp(head.get("LastModified")) or obj.last_modified,
    }
    return update_if_changed(obj, values)


def mediaconvert_job_store(*, data: dict[str, Any], execution: Execution | None = None) -> tuple[MediaConvertJob, bool]:
    record = parsers.parse_mediaconvert_job(data)
    values: dict[str, Any] = {
        "arn": record.arn,
        "status": record.status,
        "error_code": record.error_code,
        "error_message": record.error_message,
        "warnings": record.warnings,
        "output_paths": record.output_paths,
        "input_paths": record.input_paths,
        "created_at": record.created_at,
        "timing": record.timing,
        "raw": record.raw,
    }
    if execution is not None:
        values["execution_id"] = execution.pk
    obj = MediaConvertJob.objects.filter(job_id=record.job_id).first()
    if obj is None:
        return MediaConvertJob.objects.create(job_id=record.job_id, **values), True
    return obj, update_if_changed(obj, values)


def lambda_config_store(
    *, data: dict[str, Any], seen_at: dt.datetime | None = None
) -> tuple[LambdaConfigSnapshot, bool]:
    """Record a function configuration; a new row only when it differs from every known one."""
    record = parsers.parse_lambda_configuration(data)
    obj, created = LambdaConfigSnapshot.objects.get_or_create(
        function_name=record.function_name,
        fingerprint=record.fingerprint,
        defaults={
            "runtime": record.runtime,
            "last_modified": record.last_modified,
            "last_modified_raw": record.last_modified_raw,
            "code_sha256": record.code_sha256,
            "layers": record.layers,
            "memory_size": record.memory_size,
            "timeout": record.timeout,
            "ephemeral_storage": record.ephemeral_storage,
            "environment": record.environment,
            "role": record.role,
            "architectures": record.architectures,
            "config": record.config,
            "first_seen_at": seen_at or timezone.now(),
        },
    )
    return obj, created


def queue_snapshot_record(*, queue_name: str, values: dict[str, Any]) -> bool:
    """A queue-depth snapshot, written only when it differs from the queue's latest one: the
    series is a step function (a value holds until the next row), and an idle pass writes nothing."""
    full = {"visible": None, "in_flight": None, "delayed": None, "error": "", **values}
    latest = QueueSnapshot.objects.filter(queue_name=queue_name).order_by("-taken_at", "-id").first()
    if latest is not None and all(getattr(latest, k) == v for k, v in full.items()):
        return False
    QueueSnapshot.objects.create(queue_name=queue_name, taken_at=timezone.now(), **full)
    return True


def dlq_messages_store(*, queue_name: str, messages: list[dict[str, Any]]) -> int:
    known = set(
        DlqMessage.objects.filter(message_id__in=[str(m.get("MessageId")) for m in messages]).values_list(
            "message_id", flat=True
        )
    )
    new = 0
    for message in messages:
        message_id = str(message.get("MessageId", ""))
        if not message_id or message_id in known:
            continue
        body = parsers.safe_text(message.get("Body"), parsers.MAX_LINE_BYTES)[0]
        job_toq_id, listing_id = parsers.parse_sqs_body(body)
        jobs = current_jobs_by_toq_id({job_toq_id} if job_toq_id is not None else set())
        DlqMessage.objects.create(
            message_id=message_id,
            queue_name=queue_name,
            body=body,
            attributes=json_safe(message.get("Attributes") or {}),
            message_attributes=json_safe(message.get("MessageAttributes") or {}),
            job_id=jobs.get(job_toq_id) if job_toq_id is not None else None,
            job_toq_id=job_toq_id,
            listing_identity_id=listing_id,
            first_seen_at=timezone.now(),
        )
        known.add(message_id)
        new += 1
    return new
