"""One scenario per failure mode the TOQ rows alone reveal: rows in MariaDB → toq_sync → diagnose."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from tests.conftest import TOQ_DATABASES
from tests.diagnosis.conftest import diagnose_json, roles, sync
from tests.jobs.toq_rows import add_asset, add_job, add_listing, add_user, failed_callback, job_row

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)

L = 40
RAW = f"{L}/raw/photo/horizontal/horizontal-01-IMG_1.jpg"
EXEC = "arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:abcd"
FINAL_EXEC = f"arn:aws:states:us-east-1:123456789012:execution:listing-media-finalization-sm-staging:finalization-{L}-9"


def _now_naive() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _listing(db, **asset):
    add_user(db, 1)
    add_listing(db, L)
    add_asset(db, 500, L, s3_key_raw=RAW, **asset)


def _body(**over) -> str:
    body: dict[str, Any] = {
        "error": None,
        "executionArn": EXEC,
        "failureReason": "",
        "jobId": 9,
        "listingIdentityId": L,
        "outputs": [],
        "provider": "STEP_FUNCTIONS",
        "startedAt": "2026-01-20T12:00:00Z",
        "status": "SUCCEEDED",
        "traceparent": "",
    }
    body.update(over)
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def test_fm29_pending_job_past_the_threshold(toq_db, settings):
    _listing(toq_db)
    add_job(toq_db, job_row(9, L, created_at=_now_naive() - dt.timedelta(minutes=90)))
    sync()

    settings.DIAGNOSIS_STUCK_AFTER_MINUTES = 120
    assert diagnose_json(9)["findings"] == []

    settings.DIAGNOSIS_STUCK_AFTER_MINUTES = 60
    data = diagnose_json(9)
    assert data["status"] == "PENDING"
    assert roles(data) == [("FM-29", "no-execution-found", "origin")]
    finding = data["findings"][0]
    assert finding["confidence"] <= 0.6  # no execution evidence: the first failure is not known
    assert "the job's Step Functions execution" in finding["missing_evidence"]
    assert re.search(r"has been PENDING for (89|90|91) minutes", finding["summary"])


def test_fm10_validation_error_per_asset(toq_db):
    head = "failed to head object: operation error S3: HeadObject, https response error StatusCode: 404, api error NotFound: Not Found"
    _listing(toq_db, status="FAILED", metadata=json.dumps({"errorCode": "VALIDATION_ERROR", "error": head}))
    body = _body(
        outputs=[
            {
                "rawKey": RAW,
                "processedKey": "",
                "thumbnailKey": "",
                "outputs": {},
                "errorCode": "VALIDATION_ERROR",
                "errorMessage": head,
            }
        ]
    )
    add_job(toq_db, job_row(9, L, status="SUCCEEDED", external_id=EXEC, callback_body=body, completed_at=_now_naive()))
    sync()
    data = diagnose_json(9)
    assert data["status"] == "SUCCEEDED"
    assert roles(data) == [("FM-10", "raw-object-missing", "origin")]
    sources = {e["source"] for e in data["findings"][0]["evidence"]}
    assert sources == {"media_processing_jobs.callback_body", "media_assets.metadata"}


def test_fm09_validation_failed_bulk_fails_assets(toq_db):
    _listing(toq_db, status="FAILED")
    body = _body(
        status="VALIDATION_FAILED",
        failureReason="Sandbox.Timedout",
        error={"code": "Sandbox.Timedout", "message": "Task timed out after 60.00 seconds"},
    )
    add_job(
        toq_db,
        job_row(
            9,
            L,
            status="FAILED",
            external_id=EXEC,
            callback_body=body,
            last_error="code=SANDBOX.TIMEDOUT | Task timed out after 60.00 seconds | Sandbox.Timedout",
        ),
    )
    sync()
    data = diagnose_json(9)
    assert roles(data) == [
        ("FM-09", "lambda-timeout", "origin"),
        ("FM-28", "bulk-failed-without-detail", "consequence"),
    ]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("Sandbox.Timedout", ("FM-13", "lambda-timeout")),
        ("Lambda.ResourceNotFoundException", ("FM-13", "function-missing")),
        ("MediaConvert.BadRequestException", ("FM-15", "bad-request")),
    ],
)
def test_fm13_fm15_processing_failed_codes(toq_db, code, expected):
    _listing(toq_db, status="FAILED")
    body = _body(status="PROCESSING_FAILED", failureReason=code, error={"code": code, "message": "{}"})
    add_job(
        toq_db,
        job_row(
            9, L, status="FAILED", external_id=EXEC, callback_body=body, last_error=f"code={code.upper()} | {code}"
        ),
    )
    sync()
    data = diagnose_json(9)
    assert roles(data)[0] == (*expected, "origin")
    assert roles(data)[-1] == ("FM-28", "bulk-failed-without-detail", "consequence")


def test_fm19_missing_processed_key(toq_db):
    _listing(
        toq_db,
        status="FAILED",
        metadata=json.dumps(
            {"errorCode": "MISSING_PROCESSED_KEY", "error": "processed asset returned without processedKey"}
        ),
    )
    body = _body(
        outputs=[
            {"rawKey": RAW, "processedKey": "", "thumbnailKey": "", "outputs": {}, "errorCode": "", "errorMessage": ""}
        ]
    )
    add_job(toq_db, job_row(9, L, status="SUCCEEDED", external_id=EXEC, callback_body=body))
    sync()
    assert roles(diagnose_json(9)) == [("FM-19", "no-derivative-reported", "origin")]


def _reconciled_finalization(db, **over) -> None:
    """Finalization job 9, marked FAILED by TOQ's reconciler."""
    add_job(
        db,
        job_row(
            9,
            L,
            status="FAILED",
            provider="STEP_FUNCTIONS_FINALIZATION",
            external_id=FINAL_EXEC,
            started_at=_now_naive(),
            completed_at=_now_naive(),
            last_error="reconciler marked failed after 30m0s without callback",
            **over,
        ),
    )


def test_fm32_fm25_fm30_finalization_failed_then_reconciled(toq_db):
    """The zip Lambda could not download a raw key; TOQ ignored FINALIZATION_FAILED; the reconciler
    failed the job 30 minutes later."""
    _listing(toq_db, status="PROCESSED")
    cause = json.dumps(
        {"errorMessage": f"failed to download {RAW}: failed to download from s3: NoSuchKey", "errorType": "wrapError"}
    )
    body = json.dumps(
        {
            "jobId": 9,
            "listingIdentityId": str(L),
            "status": "FINALIZATION_FAILED",
            "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            "error": {"Error": "wrapError", "Cause": cause},
        }
    )
    _reconciled_finalization(toq_db, callback_body=body)
    sync()
    data = diagnose_json(9)
    assert roles(data) == [
        ("FM-32", "raw-download-failed", "origin"),
        ("FM-25", "finalization-failed-unmapped", "contributing"),
        ("FM-30", "reconciled-without-callback", "consequence"),
    ]
    assert "FINALIZATION_FAILED" in data["findings"][1]["summary"]
    pt = diagnose_json(9, "--lang", "pt-br")
    assert pt["findings"][0]["title"] == "Não foi possível gerar o pacote ZIP"


def test_fm30_reconciled_without_any_callback(toq_db):
    _listing(toq_db, status="PROCESSED")
    _reconciled_finalization(toq_db)
    sync()
    data = diagnose_json(9)
    assert roles(data) == [("FM-30", "reconciled-without-callback", "origin")]
    assert data["findings"][0]["confidence"] <= 0.6


def test_fm33_empty_zip(toq_db):
    _listing(toq_db, status="PROCESSED")
    payload = json.dumps({"zipBundles": [], "assetsZipped": 0, "zipSizeBytes": 0, "unzippedSizeBytes": 0})
    add_job(
        toq_db,
        job_row(
            9, L, status="SUCCEEDED", provider="STEP_FUNCTIONS_FINALIZATION", external_id=FINAL_EXEC, payload=payload
        ),
    )
    sync()
    assert roles(diagnose_json(9)) == [("FM-33", "no-assets-zipped", "origin")]


def test_fm14_incident_shape_from_rows_only(toq_db):
    _listing(toq_db, status="FAILED")
    add_job(
        toq_db,
        job_row(
            9,
            L,
            status="FAILED",
            callback_body=failed_callback(9, L),
            last_error='code=ERRORSTRING | {"errorMessage":"DERIVATIVE_ERRORS_DETECTED","errorType":"errorString"} | errorString',
        ),
    )
    sync()
    data = diagnose_json(9)
    assert roles(data) == [
        ("FM-14", "derivative-errors-escalated", "origin"),
        ("FM-28", "bulk-failed-without-detail", "consequence"),
    ]


def test_fm37_job_deleted_in_toq_is_not_a_failure(toq_db):
    _listing(toq_db, status="PROCESSED")
    add_job(
        toq_db, job_row(9, L, status="SUCCEEDED", external_id=EXEC, callback_body=_body(), completed_at=_now_naive())
    )
    sync()
    assert diagnose_json(9)["findings"] == []
    toq_db.execute("DELETE FROM media_processing_jobs WHERE id = 9")
    sync()
    # completed minutes ago: not the 90-day retention cleaner, someone deleted the row
    assert roles(diagnose_json(9)) == [("FM-37", "row-deleted", "consequence")]


def test_healthy_job_has_no_finding(toq_db):
    _listing(toq_db, status="PROCESSED", s3_key_processed=RAW.replace("/raw/", "/processed/"))
    add_job(
        toq_db,
        job_row(
            9,
            L,
            status="SUCCEEDED",
            external_id=EXEC,
            callback_body=_body(
                outputs=[
                    {
                        "rawKey": RAW,
                        "processedKey": "x",
                        "thumbnailKey": "y",
                        "outputs": {},
                        "errorCode": "",
                        "errorMessage": "",
                    }
                ]
            ),
        ),
    )
    sync()
    data = diagnose_json(9)
    assert data["findings"] == [] and data["status"] == "SUCCEEDED"


def test_unknown_job_fails_with_a_clear_message(toq_db):
    with pytest.raises(CommandError, match="job 4242 is not in the mirror"):
        call_command("diagnose", "4242", "--json", stdout=StringIO())


def test_unknown_job_exit_status_and_streams(toq_db):
    """As a person runs it: non-zero exit, message on stderr, nothing on stdout."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "toqdash.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    manage = Path(settings.BASE_DIR) / "manage.py"
    proc = subprocess.run(
        [sys.executable, str(manage), "diagnose", "4242", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "job 4242 is not in the mirror" in proc.stderr
