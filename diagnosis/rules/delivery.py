"""Callback delivery, server handling and finalization: FM-20..FM-28, FM-32, FM-33."""

from __future__ import annotations

import re

from diagnosis import classify
from diagnosis.evidence import (
    Evidence,
    LogFact,
    excerpt,
)
from diagnosis.rules.base import (
    CONSEQUENCE,
    CONTRIBUTING,
    MAPPED_CALLBACK_STATUSES,
    ORIGIN,
    RECONCILER_PREFIX,
    Candidate,
    asset_item,
    callback_failed,
    failed_events,
    field_text,
    history_item,
    job_item,
    log_item,
    logs_with,
    short_keys,
    state_failed,
)

# --- callback delivery and server handling (FM-20..FM-28) ----------------------------------------

_SIGNATURE_MISMATCH = "adapter.stepfunctions.callback.signature_mismatch"
_SERVER_MSGS: dict[str, tuple[str, str, str]] = {
    _SIGNATURE_MISMATCH: ("FM-21", "signature-mismatch", ORIGIN),
    "adapter.stepfunctions.callback.secret_missing": ("FM-21", "server-secret-missing", CONTRIBUTING),
    "service.media.callback.job_not_found": ("FM-23", "job-not-found", ORIGIN),
    "service.media.callback.get_job_error": ("FM-24", "db-error", ORIGIN),
    "service.media.callback.tx_start_error": ("FM-24", "db-error", ORIGIN),
    "service.media.callback.update_job_error": ("FM-24", "db-error", ORIGIN),
    "service.media.callback.update_asset_failed": ("FM-24", "db-error", ORIGIN),
    "service.media.callback.tx_commit_error": ("FM-24", "db-error", ORIGIN),
    "service.media.callback.bulk_fail_assets_error": ("FM-24", "db-error", ORIGIN),
    "service.media.callback.listing_mismatch": ("FM-26", "listing-mismatch", CONTRIBUTING),
    "service.media.callback.asset_lookup_error": ("FM-27", "asset-not-found", CONTRIBUTING),
}


def rule_callback_delivery(ev: Evidence) -> list[Candidate]:
    """FM-20 (callback not delivered) and the server-side rejections seen in TOQ's log."""
    out = []
    grouped: dict[tuple[str, str, str], list[LogFact]] = {}
    for line in ev.logs:
        if line.msg in _SERVER_MSGS:
            grouped.setdefault(_SERVER_MSGS[line.msg], []).append(line)
    statuses = {403: ("FM-21", "signature-rejected"), 404: ("FM-23", "job-not-found")}
    problems: list[tuple[str, LogFact | None, str]] = []
    for line in logs_with(ev, "CALLBACK_URL not set"):
        problems.append(("callback-url-unset", line, line.msg))
    for line in logs_with(ev, "Callback request failed"):
        problems.append(("callback-transport-error", line, field_text(line, "error")))
    for line in logs_with(ev, "Callback response received"):
        code = field_text(line, "status_code")
        if code.isdigit() and int(code) >= 400:
            problems.append((f"http-{code}", line, f"callback failed with status: {code}"))
    callback_states = {"FinalizeAndCallback", "ReportFailure", "ValidationFailed"}
    delivery_failed = [
        (e, f) for e, f in failed_events(ev, callback_states) if f.state == "" or state_failed(ev, f.state)
    ]
    for _execution, fact in delivery_failed:
        m = re.search(r"callback failed with status: (\d+)", fact.cause)
        if m:
            problems.append((f"http-{m.group(1)}", None, fact.cause))
        elif "CALLBACK_URL not set" in fact.cause:
            problems.append(("callback-url-unset", None, fact.cause))
        elif "failed to send callback" in fact.cause:
            problems.append(("callback-transport-error", None, fact.cause))
        else:
            problems.append((classify.lambda_failure_cause(fact.error, fact.cause), None, fact.cause))
    if problems:
        slug, _line, message = problems[-1]
        fm, cause = "FM-20", slug
        if slug.startswith("http-"):
            status = int(slug[5:])
            fm, cause = statuses.get(status, ("FM-20", "callback-http-error"))
            if status >= 500 and any(key[0] == "FM-24" for key in grouped):
                # TOQ logged why it answered 5xx: the undelivered callback is that database error.
                fm, cause = "FM-24", "db-error"
        items = [log_item(x) for _, x, _ in problems if x is not None]
        items += [history_item(e, f, f"{f.error} {f.cause}") for e, f in delivery_failed]
        if fm == "FM-21":
            # TOQ's own side of the 403 (its line names no job: linked by time at collection,
            # awslogs.services.callbacks): the same rejection, cited here rather than twice.
            items += [log_item(x) for x in grouped.pop(_SERVER_MSGS[_SIGNATURE_MISMATCH], [])]
        # A retry that got through later (TOQ applied a callback) leaves the failed try as a
        # contributing detail, not the origin of anything.
        delivered = bool(ev.job.callback_body) and ev.job.status in ("SUCCEEDED", "PARTIAL_SUCCESS", "FAILED")
        out.append(
            Candidate(
                fm,
                cause,
                CONTRIBUTING if delivered else ORIGIN,
                0.85,
                items,
                params={"error": excerpt(message, 200)},
                failing_state="FinalizeAndCallback",
                message=message,
            )
        )
    # Server lines first: the engine keeps the first candidate of a (mode, cause) (FM-24 above).
    server = [
        Candidate(
            fm,
            cause,
            role,
            0.85,
            [log_item(x) for x in lines],
            params={"error": excerpt(lines[0].msg)},
            message=lines[0].msg,
        )
        for (fm, cause, role), lines in grouped.items()
    ]
    return server + out


def rule_bulk_fail(ev: Evidence) -> list[Candidate]:
    """FM-28: a failure without per-asset results bulk-failed every PROCESSING asset of the listing."""
    reconciled = ev.job.last_error.startswith(RECONCILER_PREFIX)
    no_outputs = callback_failed(ev) and ev.job.callback_outputs_empty is True
    if not (ev.job.status == "FAILED" and (no_outputs or reconciled)):
        return []
    silent = [a for a in ev.assets if a.status == "FAILED" and not a.error_code]
    if ev.assets and not silent:
        return []  # nothing was bulk-failed (e.g. a finalization job: its assets are PROCESSED)
    items = [
        job_item(
            ev,
            "callback_body" if no_outputs else "last_error",
            ev.job.callback_body if no_outputs else ev.job.last_error,
        )
    ]
    items += [asset_item(a, "status", f"FAILED, metadata without errorCode ({a.s3_key_raw})") for a in silent]
    items += [
        log_item(x)
        for x in logs_with(ev, "service.media.callback.no_results_failure", "service.media.reconcile.completed")
    ]
    others = [a for a in silent if not a.in_job]
    return [
        Candidate(
            "FM-28",
            "reconciler-bulk-failed" if reconciled and not no_outputs else "bulk-failed-without-detail",
            CONSEQUENCE,
            0.9 if silent else 0.6,
            items,
            missing=[] if silent else ["assets"],
            params={
                "count": str(len(silent)),
                "others": str(len(others)),
                "keys": short_keys([a.s3_key_raw for a in silent]),
            },
            message="bulk fail-safe",
        )
    ]


def rule_unmapped_status(ev: Evidence) -> list[Candidate]:
    """FM-25 (status TOQ ignores), FM-32 (ZIP build failed), FM-33 (empty ZIP)."""
    out = []
    status = ev.job.callback_status
    if ev.job.callback_body and not ev.job.callback_parse_error and status not in MAPPED_CALLBACK_STATUSES:
        cause = "finalization-failed-unmapped" if status == "FINALIZATION_FAILED" else "unknown-status"
        out.append(
            Candidate(
                "FM-25",
                cause,
                CONTRIBUTING,
                0.9,
                [job_item(ev, "callback_body", ev.job.callback_body)],
                params={"status": status or "UNKNOWN"},
                message=status,
                can_be_origin=True,
            )
        )
    zip_fails = failed_events(ev, {"CreateZipBundle"})
    zip_logs = logs_with(ev, "lambda.zip.create_zip_error", "lambda.zip.invalid_payload")
    if status == "FINALIZATION_FAILED" or zip_fails or zip_logs:
        text = " ".join(
            [ev.job.callback_error_code, ev.job.callback_error_message]
            + [f"{f.error} {f.cause}" for _, f in zip_fails]
            + [field_text(x, "error") for x in zip_logs]
        )
        if text.strip():
            items = [history_item(e, f, f"{f.error} {f.cause}") for e, f in zip_fails] + [log_item(x) for x in zip_logs]
            if status == "FINALIZATION_FAILED":
                items.append(job_item(ev, "callback_body", ev.job.callback_body))
            out.append(
                Candidate(
                    "FM-32",
                    classify.zip_failure_cause(text),
                    ORIGIN,
                    0.85,
                    items,
                    params={"error": excerpt(ev.job.callback_error_message or text, 300)},
                    failing_state="CreateZipBundle",
                    message=ev.job.callback_error_message or text,
                )
            )
    payload = ev.job.payload if isinstance(ev.job.payload, dict) else {}
    empty_zip = ev.job.kind == "finalization" and ev.job.status == "SUCCEEDED" and payload.get("zipBundles") == []
    no_assets = logs_with(ev, "lambda.zip.no_assets")
    if empty_zip or no_assets:
        items = [log_item(x) for x in no_assets] + ([job_item(ev, "payload", payload)] if empty_zip else [])
        out.append(
            Candidate(
                "FM-33", "no-assets-zipped", ORIGIN, 0.85, items, failing_state="CreateZipBundle", message="no assets"
            )
        )
    return out
