"""Pure classifiers: an error name or message → a cause slug (reference §5). Order matters: the
first matching pattern wins, most specific first."""

from __future__ import annotations

import re

_FFMPEG_CAUSES: list[tuple[str, re.Pattern[str]]] = [
    # `fork/exec /opt/ffmpeg/ffmpeg: no such file or directory` (no layer, wrong FFMPEG_PATH, bad zip layout)
    (
        "ffmpeg-missing",
        re.compile(r"(fork/exec|exec:)\s?\S*.*(no such file or directory|executable file not found)", re.I),
    ),
    ("ffmpeg-permission-denied", re.compile(r"(fork/exec|exec:|ffmpeg failed).*permission denied", re.I)),
    ("ffmpeg-exec-format", re.compile(r"exec format error", re.I)),
    ("no-space-left", re.compile(r"no space left on device", re.I)),
    ("s3-download-failed", re.compile(r"failed to download", re.I)),
    ("s3-upload-failed", re.compile(r"failed to upload", re.I)),
    ("invalid-key", re.compile(r"invalid key format", re.I)),
    ("ffmpeg-decode-failed", re.compile(r"ffmpeg failed:.*exit status \d+", re.I)),
    ("temp-file-failed", re.compile(r"failed to (create|write|close) temp", re.I)),
    ("thumbnail-not-created", re.compile(r"failed to open generated thumbnail|thumbnail not created", re.I)),
]

_IMAGE_CAUSES: list[tuple[str, re.Pattern[str]]] = [
    ("s3-download-failed", re.compile(r"failed to download", re.I)),
    ("image-undecodable", re.compile(r"failed to decode image|unknown format", re.I)),
    ("invalid-key", re.compile(r"invalid key format", re.I)),
    ("s3-upload-failed", re.compile(r"failed to upload", re.I)),
    ("image-read-failed", re.compile(r"failed to read image", re.I)),
    ("image-encode-failed", re.compile(r"failed to encode", re.I)),
]

_LAMBDA_ERRORS: list[tuple[str, re.Pattern[str]]] = [
    ("function-missing", re.compile(r"ResourceNotFound", re.I)),
    ("lambda-throttled", re.compile(r"TooManyRequests|Throttl", re.I)),
    ("lambda-timeout", re.compile(r"Sandbox\.Timedout|States\.Timeout|timed out|Lambda\.Unknown", re.I)),
    ("out-of-memory", re.compile(r"Runtime\.ExitError|out of memory|signal: killed", re.I)),
    ("lambda-service-error", re.compile(r"Lambda\.(ServiceException|AWSLambdaException)", re.I)),
    ("bad-input", re.compile(r"UnmarshalTypeError|SyntaxError", re.I)),
]


def _first(patterns: list[tuple[str, re.Pattern[str]]], text: str, default: str) -> str:
    for slug, pattern in patterns:
        if pattern.search(text or ""):
            return slug
    return default


def video_thumbnail_cause(message: str) -> str:
    """FM-12: a `VIDEO_THUMBNAIL_FAILED` errorMessage → cause."""
    return _first(_FFMPEG_CAUSES, message, "other")


def image_thumbnail_cause(message: str, *, is_video: bool = False) -> str:
    """FM-11: a `THUMBNAIL_PROCESSING_FAILED` errorMessage → cause (a video decoded as an image is
    the pre-2026-01-05 15:54 image branch, job 34)."""
    cause = _first(_IMAGE_CAUSES, message, "other")
    if cause == "image-undecodable" and is_video:
        return "video-sent-to-image-branch"
    return cause


def lambda_failure_cause(error: str, cause: str = "") -> str:
    """A Step Functions error name (+ cause text) of a failed Lambda task → cause."""
    text = f"{error} {cause}"
    # `Lambda.Unknown` with an out-of-memory cause is memory, not time.
    if re.search(r"Runtime exited|out of memory|signal: killed", cause or "", re.I):
        return "out-of-memory"
    return _first(_LAMBDA_ERRORS, text, "other")


def validation_error_cause(message: str) -> str:
    """FM-10: the HEAD error recorded by validate → cause."""
    if re.search(r"StatusCode: 404|NotFound|NoSuchKey", message or "", re.I):
        return "raw-object-missing"
    if re.search(r"StatusCode: 403|AccessDenied|Forbidden|KMS", message or "", re.I):
        return "raw-access-denied"
    return "other"


def mediaconvert_cause(error: str) -> str:
    """FM-15: `MediaConvert.<Exception>` → cause."""
    if re.search(r"BadRequest", error, re.I):
        return "bad-request"
    if re.search(r"Forbidden|AccessDenied|PassRole", error, re.I):
        return "forbidden"
    if re.search(r"TooManyRequests|Throttl", error, re.I):
        return "too-many-requests"
    return "other"


def zip_failure_cause(text: str) -> str:
    """FM-32: the zip Lambda's error → cause."""
    checks = [
        ("missing-job-id", r"(jobId|listingIdentityId) is required"),
        ("raw-download-failed", r"failed to download"),
        ("zip-upload-failed", r"failed to upload zip"),
        ("zip-write-failed", r"failed to (create zip header|write .* to zip|close zip writer)"),
        ("lambda-timeout", r"Sandbox\.Timedout|States\.Timeout|timed out"),
        ("out-of-memory", r"Runtime\.ExitError|out of memory|Lambda\.Unknown"),
    ]
    for slug, pattern in checks:
        if re.search(pattern, text or "", re.I):
            return slug
    return "other"


def start_execution_cause(message: str) -> str:
    """FM-06: validate's `Failed to start Step Function` error → cause."""
    if re.search(r"AccessDenied|not authorized", message or "", re.I):
        return "access-denied"
    if re.search(r"StateMachineDoesNotExist|does not exist|InvalidArn", message or "", re.I):
        return "state-machine-missing"
    if re.search(r"Throttl|TooManyRequests|Rate exceeded", message or "", re.I):
        return "throttled"
    return "other"
