"""S3 derivative expectations, MediaConvert GetJob, Lambda configuration (secrets redacted), SQS bodies."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from awslogs.parsers.executions import parse_execution_input
from awslogs.parsers.text import int_or_none, parse_timestamp, safe_text

# --- S3 / MediaConvert / Lambda configuration --------------------------------------------------

PHOTO_SIZES = ("thumbnail", "small", "medium", "large")
_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class ExpectedDerivative:
    raw_key: str
    key: str
    kind: str  # thumbnail / small / medium / large / video_thumbnail / mp4 / original / zip


def expected_derivatives(raw_key: str, asset_type: str, *, first_video: bool) -> list[ExpectedDerivative]:
    """Reference §4: the derivative keys TOQ should have produced for one raw key."""
    parts = raw_key.split("/")
    if len(parts) < 4 or parts[1] != "raw":
        return []
    listing = parts[0]
    segment = [p for p in parts[2:-1] if not _DATE_FOLDER.match(p)]
    filename = parts[-1]
    upper = asset_type.upper()
    if upper.startswith("PHOTO") and len(segment) >= 2:
        base = f"{listing}/processed/{segment[0]}/{segment[1]}"
        return [ExpectedDerivative(raw_key, f"{base}/{size}/{filename}", size) for size in PHOTO_SIZES]
    if "VIDEO" in upper and len(segment) >= 2:
        base = f"{listing}/processed/{segment[0]}/{segment[1]}"
        out = [ExpectedDerivative(raw_key, f"{base}/thumbnail/{filename}", "video_thumbnail")]
        if first_video:
            stem = filename.rsplit(".", 1)[0]
            out.append(ExpectedDerivative(raw_key, f"{base}/original/{stem}.mp4", "mp4"))
        return out
    if upper.startswith("PROJECT") and len(segment) >= 2:
        return [
            ExpectedDerivative(
                raw_key, f"{listing}/processed/{segment[0]}/{segment[1]}/original/{filename}", "original"
            )
        ]
    return []


def zip_key(listing_identity_id: int) -> str:
    return f"{listing_identity_id}/processed/zip/listing-media.zip"


@dataclass
class MediaConvertRecord:
    job_id: str
    arn: str
    status: str
    error_code: int | None
    error_message: str
    warnings: list[Any]
    output_paths: list[str]
    input_paths: list[str]
    created_at: dt.datetime | None
    timing: dict[str, Any]
    raw: dict[str, Any]


def parse_mediaconvert_job(data: dict[str, Any]) -> MediaConvertRecord:
    job = data.get("Job", data) if isinstance(data, dict) else {}
    settings = job.get("Settings") or {}
    outputs: list[str] = []
    for group in settings.get("OutputGroups") or []:
        group_settings = (group or {}).get("OutputGroupSettings") or {}
        for value in group_settings.values():
            if isinstance(value, dict) and value.get("Destination"):
                outputs.append(str(value["Destination"]))
    inputs = [
        str(i.get("FileInput")) for i in settings.get("Inputs") or [] if isinstance(i, dict) and i.get("FileInput")
    ]
    messages = job.get("Messages") or {}
    return MediaConvertRecord(
        job_id=str(job.get("Id", "")),
        arn=str(job.get("Arn", "")),
        status=str(job.get("Status", "")),
        error_code=int_or_none(job.get("ErrorCode")),
        error_message=safe_text(job.get("ErrorMessage"), 4096)[0],
        warnings=list(job.get("Warnings") or []) + list(messages.get("Warning") or []),
        output_paths=outputs,
        input_paths=inputs,
        created_at=parse_timestamp(job.get("CreatedAt")),
        timing=dict(job.get("Timing") or {}),
        raw=job,
    )


_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|CREDENTIAL|PRIVATE|AUTH|SIGN", re.IGNORECASE)
# Names that contain a "secret-looking" word but are known to be harmless paths/flags.
_SAFE_NAMES = frozenset({"FFMPEG_PATH", "TRACE_HEADER_KEY"})
_SECRET_VALUE = re.compile(r"^(?:[A-Za-z0-9+/=_-]{32,}|AKIA[0-9A-Z]{16}|.*://[^/\s:]+:[^@/\s]+@.*)$")


def redact_environment(variables: dict[str, Any]) -> dict[str, str]:
    """Env var names with non-secret values; secret-looking names or values become `<redacted>`.
    Never returns CALLBACK_SECRET's value."""
    out: dict[str, str] = {}
    for name, value in sorted(variables.items()):
        text = str(value)
        if (_SECRET_NAME.search(name) and name not in _SAFE_NAMES) or _SECRET_VALUE.match(text):
            out[name] = "<redacted>"
        else:
            out[name] = text[:512]
    return out


@dataclass
class LambdaConfigRecord:
    function_name: str
    runtime: str
    last_modified: dt.datetime | None
    last_modified_raw: str
    code_sha256: str
    layers: list[str]
    memory_size: int | None
    timeout: int | None
    ephemeral_storage: int | None
    environment: dict[str, str]
    role: str
    architectures: list[str]
    fingerprint: str
    config: dict[str, Any]


def parse_lambda_configuration(data: dict[str, Any]) -> LambdaConfigRecord:
    env_vars = ((data.get("Environment") or {}).get("Variables")) or {}
    environment = redact_environment(env_vars if isinstance(env_vars, dict) else {})
    layers = [str(layer.get("Arn", "")) for layer in data.get("Layers") or [] if isinstance(layer, dict)]
    # The stored copy never contains the Environment block (values may be secrets).
    config = {k: v for k, v in data.items() if k not in ("Environment", "ResponseMetadata")}
    config["EnvironmentVariableNames"] = sorted(environment)
    relevant = {
        "Runtime": data.get("Runtime"),
        "CodeSha256": data.get("CodeSha256"),
        "LastModified": data.get("LastModified"),
        "Layers": layers,
        "MemorySize": data.get("MemorySize"),
        "Timeout": data.get("Timeout"),
        "EphemeralStorage": data.get("EphemeralStorage"),
        "Environment": environment,
        "Role": data.get("Role"),
        "Handler": data.get("Handler"),
        "Architectures": data.get("Architectures"),
    }
    fingerprint = hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()
    return LambdaConfigRecord(
        function_name=str(data.get("FunctionName", "")),
        runtime=str(data.get("Runtime", "")),
        last_modified=parse_timestamp(data.get("LastModified")),
        last_modified_raw=str(data.get("LastModified", "")),
        code_sha256=str(data.get("CodeSha256", "")),
        layers=layers,
        memory_size=int_or_none(data.get("MemorySize")),
        timeout=int_or_none(data.get("Timeout")),
        ephemeral_storage=int_or_none((data.get("EphemeralStorage") or {}).get("Size")),
        environment=environment,
        role=str(data.get("Role", "")),
        architectures=[str(a) for a in data.get("Architectures") or []],
        fingerprint=fingerprint,
        config=config,
    )


def parse_sqs_body(body: Any) -> tuple[int | None, int | None]:
    """(jobId, listingIdentityId) of a MediaProcessingJobMessage body (reference §3.2)."""
    return parse_execution_input(body)
