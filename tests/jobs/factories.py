"""Mirror rows (as jobs.sync would write them) and role personas for the UI tests."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.utils import timezone

from jobs.callback import TERMINAL_JOB_STATUSES, decode_callback, job_kind, split_last_error
from jobs.models import Job, JobObservation, Listing, MediaAsset
from jobs.roles import ADMIN, ensure_roles

ARN_37 = (
    "arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:"
    "258c102b-4bc5-4a36-9b51-f432df114aa4"
)
CALLBACK_37 = json.dumps(
    {
        "error": {
            "code": "errorString",
            "message": json.dumps({"errorMessage": "DERIVATIVE_ERRORS_DETECTED", "errorType": "errorString"}),
        },
        "executionArn": ARN_37,
        "failureReason": "errorString",
        "jobId": 37,
        "listingIdentityId": 16,
        "outputs": [],
        "provider": "STEP_FUNCTIONS",
        "startedAt": "2026-01-05T15:54:47.370Z",
        "status": "PROCESSING_FAILED",
        "traceparent": "",
    }
)
LAST_ERROR_37 = (
    'code=ERRORSTRING | {"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"} | errorString'
)
XSS = '<script>alert("xss")</script><img id="xss-img" src=x onerror=alert(1)>'


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def make_job(toq_id: int, **kwargs: Any) -> Job:
    """A current-generation job; decoded callback columns follow `callback_body` like the sync's."""
    now = timezone.now()
    values: dict[str, Any] = {
        "toq_id": toq_id,
        "row_hash": toq_id,
        "first_seen_at": now,
        "last_changed_at": now,
        "listing_identity_id": 16,
        "status": "PENDING",
        "provider": "STEP_FUNCTIONS",
        "created_at": now,
    }
    values.update(kwargs)
    cb = decode_callback(values.get("callback_body"))
    values.setdefault(
        "kind", job_kind(provider=values["provider"], external_id=values.get("external_id"), payload=None, callback=cb)
    )
    values.setdefault("is_terminal", values["status"] in TERMINAL_JOB_STATUSES)
    values.setdefault("last_error_fragments", split_last_error(values.get("last_error")))
    for name in (
        "parse_error",
        "status",
        "error_code",
        "error_message",
        "error_type",
        "failure_reason",
        "execution_arn",
    ):
        values.setdefault(f"callback_{name}", getattr(cb, name))
    values.setdefault("callback_outputs_empty", cb.outputs_empty)
    values.setdefault("callback_results", cb.results)
    return Job.objects.create(**values)


def make_listing(toq_id: int = 16, **kwargs: Any) -> Listing:
    now = timezone.now()
    values: dict[str, Any] = {
        "toq_id": toq_id,
        "row_hash": toq_id,
        "first_seen_at": now,
        "last_changed_at": now,
        "listing_uuid": "077557fd-51c4-4d3e-ad9a-5f08c6c73593",
        "owner_user_id": 4,
        "owner_name": "Helena Prado Quintino",
        "code": 310050,
        "active_version_id": 19,
        "listing_status": 6,
        "title": "Casa geminada 3 quartos com quintal",
    }
    values.update(kwargs)
    return Listing.objects.create(**values)


def make_asset(toq_id: int, **kwargs: Any) -> MediaAsset:
    now = timezone.now()
    values: dict[str, Any] = {
        "toq_id": toq_id,
        "row_hash": toq_id,
        "first_seen_at": now,
        "last_changed_at": now,
        "listing_identity_id": 16,
        "asset_type": "VIDEO_VERTICAL",
        "sequence": 1,
        "status": "FAILED",
        "s3_key_raw": "16/raw/video/vertical/vertical-01-VID_20260105_124137.mp4",
        "metadata": {"filename": "VID_20260105_124137.mp4", "content_type": "video/mp4"},
    }
    values.update(kwargs)
    return MediaAsset.objects.create(**values)


def make_job37(*, xss: bool = False) -> Job:
    """The job-37 incident as mirrored: FAILED, DERIVATIVE_ERRORS_DETECTED, the video asset bulk-failed.

    With `xss`, attacker-controlled text (file name, raw key, last_error, callback body) carries a payload.
    """
    payload = XSS if xss else ""
    make_listing(16)
    filename = f"VID_20260105_124137{payload}.mp4"
    make_asset(
        103,
        s3_key_raw=f"16/raw/video/vertical/vertical-01-{filename}"[:255],
        metadata={"filename": filename, "content_type": "video/mp4"},
    )
    body = CALLBACK_37
    if xss:
        obj = json.loads(body)
        obj["failureReason"] = "errorString" + payload
        obj["outputs"] = [{"rawKey": "16/raw/" + payload, "errorCode": "X" + payload, "errorMessage": payload}]
        body = json.dumps(obj)
    job = make_job(
        37,
        status="FAILED",
        external_id=ARN_37,
        started_at=utc(2026, 1, 5, 15, 54, 47),
        completed_at=utc(2026, 1, 5, 15, 55, 4),
        created_at=None,
        last_error=LAST_ERROR_37 + (" | " + payload if xss else ""),
        callback_body=body,
    )
    JobObservation.objects.create(
        job=job,
        observed_at=utc(2026, 1, 5, 15, 55, 30),
        kind="changed",
        changes={"status": ["PENDING", "FAILED"], "completed_at": [None, "2026-01-05T15:55:04+00:00"]},
    )
    return job


def make_user(username: str, role: str | None) -> AbstractUser:
    """A persona: `role` is one of jobs.roles (None: signed in, no role)."""
    ensure_roles()
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    if role == ADMIN:
        user.is_staff = True  # Django admin needs is_staff; the Admin role grants it
        user.save(update_fields=["is_staff"])
    return user  # type: ignore[return-value]
