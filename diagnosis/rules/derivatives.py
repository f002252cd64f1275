"""Derivative branch errors: FM-11 (image thumbnails) and FM-12 (video thumbnail)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnosis import classify
from diagnosis.evidence import (
    IMAGE_BRANCH_STATE,
    VIDEO_BRANCH_STATE,
    Evidence,
    excerpt,
    loads,
)
from diagnosis.rules.base import (
    ORIGIN,
    Candidate,
    EvidenceItem,
    asset_item,
    field_text,
    history_item,
    job_item,
    log_item,
    logs_with,
    short_keys,
)

# --- derivative branch errors (FM-11, FM-12) -----------------------------------------------------


@dataclass
class BranchError:
    branch: str  # image / video
    source_key: str
    code: str
    message: str
    item: EvidenceItem
    strength: float  # how directly this source shows the branch's own error


def branch_errors(ev: Evidence) -> list[BranchError]:
    """Per-asset derivative errors, from every place they survive (reference §3.5, §3.11, §3.9)."""
    out: list[BranchError] = []
    for execution in ev.executions:
        for fact in execution.events:
            if fact.type != "TaskStateExited" or fact.state not in (IMAGE_BRANCH_STATE, VIDEO_BRANCH_STATE):
                continue
            output = loads(fact.output)
            body = output.get("body") if isinstance(output, dict) else None
            errors = body.get("errors") if isinstance(body, dict) else None
            for err in errors if isinstance(errors, list) else []:
                if not isinstance(err, dict):
                    continue
                branch = "video" if fact.state == VIDEO_BRANCH_STATE else "image"
                message = str(err.get("errorMessage") or "")
                item = history_item(execution, fact, f"errors[] {excerpt(err, 400)}")
                out.append(
                    BranchError(
                        branch, str(err.get("sourceKey") or ""), str(err.get("errorCode") or ""), message, item, 0.95
                    )
                )
    for line in logs_with(ev, "Video thumbnail generation failed", "Failed to process asset"):
        branch = "video" if line.msg.startswith("Video") else "image"
        code = "VIDEO_THUMBNAIL_FAILED" if branch == "video" else "THUMBNAIL_PROCESSING_FAILED"
        out.append(BranchError(branch, field_text(line, "key"), code, field_text(line, "error"), log_item(line), 0.85))
    for line in logs_with(ev, "Consolidation complete"):
        preview = line.fields.get("payload_preview") if isinstance(line.fields, dict) else None
        items = loads(preview) if isinstance(preview, str) else preview
        for entry in items if isinstance(items, list) else []:
            if isinstance(entry, dict) and entry.get("errorCode") in (
                "VIDEO_THUMBNAIL_FAILED",
                "THUMBNAIL_PROCESSING_FAILED",
            ):
                branch = "video" if entry["errorCode"] == "VIDEO_THUMBNAIL_FAILED" else "image"
                message = str(entry.get("errorMessage") or "")
                out.append(
                    BranchError(
                        branch, str(entry.get("rawKey") or ""), entry["errorCode"], message, log_item(line), 0.85
                    )
                )
    for result in ev.job.callback_results:
        code = str(result.get("error_code") or "")
        if code in ("VIDEO_THUMBNAIL_FAILED", "THUMBNAIL_PROCESSING_FAILED"):
            branch = "video" if code == "VIDEO_THUMBNAIL_FAILED" else "image"
            message = str(result.get("error_message") or "")
            item = job_item(ev, "callback_body", f"outputs[] rawKey={result.get('raw_key')} errorCode={code} {message}")
            out.append(BranchError(branch, str(result.get("raw_key") or ""), code, message, item, 0.9))
    for asset in ev.assets:
        if asset.error_code in ("VIDEO_THUMBNAIL_FAILED", "THUMBNAIL_PROCESSING_FAILED"):
            branch = "video" if asset.error_code == "VIDEO_THUMBNAIL_FAILED" else "image"
            item = asset_item(asset, "metadata", {"errorCode": asset.error_code, "error": asset.error_message})
            out.append(BranchError(branch, asset.s3_key_raw, asset.error_code, asset.error_message, item, 0.8))
    return out


def _derivative_items(ev: Evidence, raw_keys: set[str], branch: str) -> list[EvidenceItem]:
    """Corroboration from S3 and MediaConvert: the branch's derivative is absent, while an MP4 next
    to a failed asset shows the video itself was fine (the failure came after the transcode started)."""
    if not ev.s3_listed:
        return []
    items = []
    for d in ev.derivatives:
        if d.raw_key not in raw_keys:
            continue
        if (
            branch == "video"
            and d.kind in ("video_thumbnail", "mp4")
            or branch == "image"
            and d.kind in ("thumbnail", "small", "medium", "large")
            and d.outcome != "present"
        ):
            items.append(EvidenceItem("s3_object", "toq-listing-medias", d.key, d.outcome))
    if branch == "video":
        items += [
            EvidenceItem("mediaconvert_field", m.job_id, "Status", m.status)
            for m in ev.mediaconvert
            if m.status == "COMPLETE"
        ]
    return items


def _display(message: str) -> str:
    """The message as support reads it: without ffmpeg's empty `| output:` tail, ending in a period."""
    text = re.sub(r"\s*\|\s*output:\s*$", "", message.strip())
    text = excerpt(text, 300)
    return text if text.endswith((".", "…")) else text + "."


def rule_derivative_errors(ev: Evidence) -> list[Candidate]:
    """FM-12 (video thumbnail) and FM-11 (image thumbnails), one finding per branch and cause."""
    videos = {a.s3_key_raw for a in ev.assets if a.is_video}
    groups: dict[tuple[str, str], list[BranchError]] = {}
    for err in branch_errors(ev):
        if err.branch == "video":
            cause = classify.video_thumbnail_cause(err.message)
        else:
            is_video = err.source_key in videos or "/video/" in err.source_key
            cause = classify.image_thumbnail_cause(err.message, is_video=is_video)
        groups.setdefault((err.branch, cause), []).append(err)
    out = []
    for (branch, cause), errs in groups.items():
        best = max(errs, key=lambda e: e.strength)
        missing = []
        if not any(e.item.kind == "history_event" for e in errs):
            missing.append("history")
        if (
            branch == "video"
            and cause.startswith("ffmpeg")
            and not any(c.function_name.startswith("listing-media-video_thumbnails") for c in ev.lambda_configs)
        ):
            missing.append("video_lambda_config")
        confidence = min(0.99, best.strength + 0.02 * (len({e.item.kind for e in errs}) - 1))
        message = next((e.message for e in errs if e.message), "")
        state = VIDEO_BRANCH_STATE if branch == "video" else IMAGE_BRANCH_STATE
        # One history event or log line can hold the errors of several assets: cite each record once.
        records: dict[tuple[str, str, str], EvidenceItem] = {}
        for item in [e.item for e in errs] + _derivative_items(ev, {e.source_key for e in errs}, branch):
            records.setdefault((item.kind, item.source, item.ref), item)
        items = list(records.values())
        out.append(
            Candidate(
                failure_mode="FM-12" if branch == "video" else "FM-11",
                cause=cause,
                role=ORIGIN,
                confidence=round(confidence, 2),
                evidence=items,
                missing=missing,
                params={"keys": short_keys([e.source_key for e in errs]), "message": _display(message)},
                failing_state=state,
                message=message,
            )
        )
    # Silent variant: ffmpeg exited 0 without writing a frame (a clip shorter than the seek second),
    # so an empty "thumbnail" was uploaded and no error was reported anywhere.
    empty = [d for d in ev.derivatives if d.kind == "video_thumbnail" and d.outcome == "zero_bytes"]
    if empty and not any(fm == "video" for fm, _ in groups):
        out.append(
            Candidate(
                "FM-12",
                "empty-thumbnail",
                ORIGIN,
                0.8,
                [EvidenceItem("s3_object", "toq-listing-medias", d.key, "zero_bytes") for d in empty],
                params={"keys": short_keys([d.raw_key for d in empty]), "message": "0 bytes."},
                failing_state=VIDEO_BRANCH_STATE,
                message="empty thumbnail",
            )
        )
    return out
