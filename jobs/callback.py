"""Pure decoding of what TOQ stores about a job: `callback_body`, `last_error`, kind and flags.

No ORM, no I/O: every function takes column values and returns plain data, so the rules are
testable on their own and shared by the sync, the demo and the diagnosis engine.
Reference: toq-media-pipeline.md §2.1, §2.3, §3.7, §3.9.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

KNOWN_JOB_STATUSES = frozenset({"PENDING", "RUNNING", "SUCCEEDED", "PARTIAL_SUCCESS", "FAILED"})
TERMINAL_JOB_STATUSES = frozenset({"SUCCEEDED", "PARTIAL_SUCCESS", "FAILED"})
KNOWN_PROVIDERS = frozenset({"STEP_FUNCTIONS", "STEP_FUNCTIONS_FINALIZATION", "MEDIACONVERT"})
KNOWN_ASSET_STATUSES = frozenset({"PENDING_UPLOAD", "PROCESSING", "PROCESSED", "FAILED"})
KNOWN_ASSET_TYPES = frozenset(
    {
        "PHOTO_VERTICAL",
        "PHOTO_HORIZONTAL",
        "VIDEO_VERTICAL",
        "VIDEO_HORIZONTAL",
        "THUMBNAIL",
        "ZIP",
        "PROJECT_DOC",
        "PROJECT_RENDER",
    }
)
FINALIZATION_SM = "listing-media-finalization-sm-"
ZIP_FIELDS = ("zipBundles", "assetsZipped", "zipSizeBytes", "unzippedSizeBytes")
LAST_ERROR_SEPARATOR = " | "
# Per-asset results kept from a callback; a body is at most 64 KB, so this bound is generous.
MAX_RESULTS = 1000
MAX_TEXT = 8192


@dataclass
class DecodedCallback:
    parse_error: str = ""
    status: str = ""
    error_code: str = ""
    error_message: str = ""
    error_type: str = ""
    failure_reason: str = ""
    outputs_empty: bool | None = None
    execution_arn: str = ""
    provider: str = ""
    has_zip_fields: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value[:limit]


def _lambda_error(message: str) -> tuple[str, str] | None:
    """`{"errorMessage": ..., "errorType": ...}` (a Go Lambda's error as Step Functions reports it)."""
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if isinstance(obj, dict) and ("errorMessage" in obj or "errorType" in obj):
        return _text(obj.get("errorMessage")), _text(obj.get("errorType"), 255)
    return None


def decode_callback(body: str | None) -> DecodedCallback:
    """Decode a raw `callback_body`. Never raises: a malformed body yields `parse_error`."""
    out = DecodedCallback()
    if body is None or body == "":
        return out
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        out.parse_error = f"not valid JSON ({exc.msg} at char {exc.pos}, {len(body)} chars)"[:255]
    except ValueError as exc:  # e.g. lone surrogates
        out.parse_error = f"not valid JSON ({exc}, {len(body)} chars)"[:255]
    if out.parse_error:
        return out
    if not isinstance(obj, dict):
        out.parse_error = f"JSON {type(obj).__name__}, expected an object"
        return out

    out.status = _text(obj.get("status"), 50).strip().upper()
    out.provider = _text(obj.get("provider"), 50).strip().upper()
    out.failure_reason = _text(obj.get("failureReason"), 255)
    out.execution_arn = _text(obj.get("executionArn"), 255)
    out.has_zip_fields = any(k in obj for k in ZIP_FIELDS)

    error = obj.get("error")
    if isinstance(error, dict):
        if "code" in error or "message" in error:
            out.error_code = _text(error.get("code"), 255)
            out.error_message = _text(error.get("message"))
        elif "Error" in error or "Cause" in error:
            # A raw Step Functions error object (finalization ReportFailure); TOQ ignores it (FM-25).
            out.error_code = _text(error.get("Error"), 255)
            out.error_message = _text(error.get("Cause"))
        parsed = _lambda_error(out.error_message) if out.error_message else None
        if parsed:
            out.error_message, out.error_type = parsed
    elif error not in (None, ""):
        out.error_message = _text(error)

    outputs = obj.get("outputs")
    if isinstance(outputs, list):
        out.outputs_empty = len(outputs) == 0
        for item in outputs[:MAX_RESULTS]:
            if not isinstance(item, dict):
                continue
            code = _text(item.get("errorCode"), 255)
            message = _text(item.get("errorMessage"))
            out.results.append(
                {
                    "raw_key": _text(item.get("rawKey"), 1024),
                    "processed_key": _text(item.get("processedKey"), 1024),
                    "thumbnail_key": _text(item.get("thumbnailKey"), 1024),
                    "error_code": code,
                    "error_message": message,
                    # TOQ's rule (§3.9): FAILED if errorCode or errorMessage is non-empty.
                    "status": "FAILED" if (code or message) else "PROCESSED",
                }
            )
    elif outputs is None and ("outputs" in obj or out.status):
        out.outputs_empty = True
    return out


def split_last_error(last_error: str | None) -> list[str]:
    if not last_error:
        return []
    return [frag for frag in last_error.split(LAST_ERROR_SEPARATOR) if frag != ""]


def job_kind(*, provider: str, external_id: str | None, payload: Any, callback: DecodedCallback) -> str:
    """processing / finalization / unknown.

    Finalization jobs were written with provider STEP_FUNCTIONS before 2026-01-13: recognise them
    by their execution ARN (finalization state machine), their payload or callback zip fields.
    """
    provider = (provider or "").strip().upper()
    if provider == "STEP_FUNCTIONS_FINALIZATION":
        return "finalization"
    if provider == "STEP_FUNCTIONS":
        if external_id and FINALIZATION_SM in external_id:
            return "finalization"
        if isinstance(payload, dict) and any(k in payload for k in ZIP_FIELDS):
            return "finalization"
        if callback.provider == "STEP_FUNCTIONS_FINALIZATION" or callback.has_zip_fields:
            return "finalization"
        if callback.status == "FINALIZATION_FAILED":
            return "finalization"
        return "processing"
    return "unknown"


def parse_json_column(value: Any) -> tuple[Any, str]:
    """A MySQL JSON column → (python value or None, raw text kept when it is not valid JSON)."""
    if value is None:
        return None, ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return value, ""
    try:
        return json.loads(value), ""
    except ValueError:
        return None, value[:65536]
