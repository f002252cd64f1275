"""The processing state machine: FM-09, FM-10, FM-13..FM-19."""

from __future__ import annotations

import re

from diagnosis import classify
from diagnosis.evidence import (
    IMAGE_BRANCH_STATE,
    VIDEO_BRANCH_STATE,
    Evidence,
    excerpt,
)
from diagnosis.rules.base import (
    CONTRIBUTING,
    DERIVATIVE_ERRORS,
    ORIGIN,
    Candidate,
    EvidenceItem,
    asset_item,
    failed_events,
    field_text,
    history_item,
    job_item,
    log_item,
    logs_with,
    short_keys,
    state_failed,
)

# --- processing state machine (FM-09, FM-13..FM-17, FM-19) ---------------------------------------


def rule_consolidate(ev: Evidence) -> list[Candidate]:
    """FM-14: consolidate failed (DERIVATIVE_ERRORS_DETECTED escalation, missing ids, timeout, 256 KB)."""
    out = []
    fails = failed_events(ev, {"ConsolidateResults"})
    escalated = [(e, f) for e, f in fails if DERIVATIVE_ERRORS in f.cause or DERIVATIVE_ERRORS in f.error]
    callback_escalated = (
        DERIVATIVE_ERRORS in ev.job.callback_error_message
        and (ev.job.callback_error_type == "errorString" or ev.job.callback_error_code.upper() == "ERRORSTRING")
    ) or (DERIVATIVE_ERRORS in ev.job.last_error and "ERRORSTRING" in ev.job.last_error.upper())
    if escalated or callback_escalated:
        items = [history_item(e, f, f"{f.error} {f.cause}") for e, f in escalated]
        if ev.job.callback_body and callback_escalated:
            items.append(job_item(ev, "last_error", ev.job.last_error))
        items.extend(log_item(line) for line in logs_with(ev, "Branch reported errors"))
        out.append(
            Candidate(
                "FM-14",
                "derivative-errors-escalated",
                CONTRIBUTING,
                0.95 if escalated else 0.75,
                items,
                missing=[] if escalated else ["history"],
                params={"attempts": str(len(escalated) or "?"), "error": f"errorString {DERIVATIVE_ERRORS}"},
                failing_state="ConsolidateResults",
                message=f"errorString {DERIVATIVE_ERRORS}",
                can_be_origin=True,
            )
        )
    others = [(e, f) for e, f in fails if (e, f) not in escalated]
    if others and state_failed(ev, "ConsolidateResults"):
        e, f = others[-1]
        text = f"{f.error} {f.cause}"
        if re.search(r"(jobId|listingIdentityId) is required", text):
            cause = "missing-job-id"
        else:
            cause = classify.lambda_failure_cause(f.error, f.cause)
        out.append(
            Candidate(
                "FM-14",
                cause,
                ORIGIN,
                0.85,
                [history_item(e, g, f"{g.error} {g.cause}") for e, g in others],
                params={"error": excerpt(text, 200)},
                failing_state="ConsolidateResults",
                message=text,
            )
        )
    for execution in ev.executions:
        if "DataLimitExceeded" in execution.error:
            fact = next((f for f in execution.events if f.type == "ExecutionFailed"), None)
            ref = str(fact.event_id) if fact else "describe-execution"
            out.append(
                Candidate(
                    "FM-14",
                    "data-limit-exceeded",
                    ORIGIN,
                    0.9,
                    [EvidenceItem("history_event", execution.arn, ref, excerpt(f"ExecutionFailed {execution.error}"))],
                    params={"error": execution.error},
                    message=execution.error,
                )
            )
    return out


def rule_validation_failed(ev: Evidence) -> list[Candidate]:
    """FM-09: the validate task itself failed → VALIDATION_FAILED callback."""
    fails = failed_events(ev, {"ValidateRawAssets"})
    catches = [(e, c) for e in ev.executions for c in e.catches if c.get("to_state") == "ValidationFailed"]
    if not (fails or catches or ev.job.callback_status == "VALIDATION_FAILED"):
        return []
    error = (
        (fails[-1][1].error if fails else "")
        or (str(catches[-1][1].get("error", "")) if catches else "")
        or ev.job.callback_error_code
    )
    cause_text = (fails[-1][1].cause if fails else "") or ev.job.callback_error_message
    items = [history_item(e, f, f"{f.error} {f.cause}") for e, f in fails]
    if ev.job.callback_status == "VALIDATION_FAILED":
        items.append(job_item(ev, "last_error", ev.job.last_error or ev.job.callback_body))
    return [
        Candidate(
            "FM-09",
            classify.lambda_failure_cause(error, cause_text),
            ORIGIN,
            0.9 if fails else 0.75,
            items,
            missing=[] if fails else ["history"],
            params={"error": excerpt(error, 120)},
            failing_state="ValidateRawAssets",
            message=f"{error} {cause_text}",
        )
    ]


def rule_validation_error(ev: Evidence) -> list[Candidate]:
    """FM-10: per-asset HEAD failure recorded by validate (VALIDATION_ERROR)."""
    found: dict[str, list[tuple[str, str, EvidenceItem]]] = {}
    for result in ev.job.callback_results:
        if result.get("error_code") == "VALIDATION_ERROR":
            msg = str(result.get("error_message") or "")
            item = job_item(ev, "callback_body", f"outputs[] rawKey={result.get('raw_key')} VALIDATION_ERROR {msg}")
            found.setdefault(classify.validation_error_cause(msg), []).append(
                (str(result.get("raw_key") or ""), msg, item)
            )
    for asset in ev.assets:
        if asset.error_code == "VALIDATION_ERROR":
            item = asset_item(asset, "metadata", {"errorCode": asset.error_code, "error": asset.error_message})
            found.setdefault(classify.validation_error_cause(asset.error_message), []).append(
                (asset.s3_key_raw, asset.error_message, item)
            )
    for line in logs_with(ev, "Asset validation failed"):
        msg = field_text(line, "error")
        found.setdefault(classify.validation_error_cause(msg), []).append(
            (field_text(line, "key"), msg, log_item(line))
        )
    return [
        Candidate(
            "FM-10",
            cause,
            ORIGIN,
            0.9,
            [i for _, _, i in rows],
            params={"keys": short_keys([k for k, _, _ in rows]), "message": excerpt(rows[0][1], 300)},
            failing_state="ValidateRawAssets",
            message=rows[0][1],
        )
        for cause, rows in found.items()
    ]


def rule_branch_task_failed(ev: Evidence) -> list[Candidate]:
    """FM-13 (a branch Lambda failed as a task) and FM-15 (MediaConvert createJob rejected)."""
    out = []
    fails = failed_events(ev, {IMAGE_BRANCH_STATE, VIDEO_BRANCH_STATE, "ProcessVideos", "ParallelProcessing"})
    code = ev.job.callback_error_code.upper()
    mc = [(e, f) for e, f in fails if f.error.startswith("MediaConvert")]
    lam = [(e, f) for e, f in fails if not f.error.startswith("MediaConvert") and f.state != "ParallelProcessing"]
    if not state_failed(ev, "ParallelProcessing"):
        # Failed tries that a Retry recovered from are noise, not a failure mode.
        mc, lam = [], []
    if mc or (code.startswith("MEDIACONVERT") and ev.job.callback_status == "PROCESSING_FAILED"):
        error = mc[-1][1].error if mc else ev.job.callback_error_code
        items = [history_item(e, f, f"{f.error} {f.cause}") for e, f in mc] or [
            job_item(ev, "last_error", ev.job.last_error)
        ]
        out.append(
            Candidate(
                "FM-15",
                classify.mediaconvert_cause(error),
                ORIGIN,
                0.9 if mc else 0.75,
                items,
                missing=[] if mc else ["history"],
                params={"error": excerpt(error, 120)},
                failing_state="ProcessVideos",
                message=error,
            )
        )
    lambda_code = re.match(r"(LAMBDA\.|SANDBOX\.|STATES\.TIMEOUT|RUNTIME\.)", code)
    # The callback's code alone names no state: it points at a branch only when no history says
    # where the failure was (a consolidate timeout sends the same SANDBOX.TIMEDOUT, FM-14).
    history_known = any(e.events for e in ev.executions)
    if lam or (lambda_code and ev.job.callback_status == "PROCESSING_FAILED" and not fails and not history_known):
        e_f = lam[-1] if lam else None
        error = e_f[1].error if e_f else ev.job.callback_error_code
        cause_text = e_f[1].cause if e_f else ev.job.callback_error_message
        items = [history_item(e, f, f"{f.error} {f.cause}") for e, f in lam] or [
            job_item(ev, "last_error", ev.job.last_error)
        ]
        out.append(
            Candidate(
                "FM-13",
                classify.lambda_failure_cause(error, cause_text),
                ORIGIN,
                0.9 if lam else 0.7,
                items,
                missing=[] if lam else ["history"],
                params={"error": excerpt(error, 120)},
                failing_state=e_f[1].state if e_f else "ParallelProcessing",
                message=f"{error} {cause_text}",
            )
        )
    return out


def rule_uncatchable(ev: Evidence) -> list[Candidate]:
    """FM-16 / FM-34: States.Runtime fails the execution without any callback."""
    out = []
    for execution in ev.executions:
        if "States.Runtime" not in execution.error:
            continue
        fm = "FM-34" if execution.kind == "finalization" else "FM-16"
        cause = "traceparent-missing" if fm == "FM-34" and "traceparent" in execution.cause else "jsonpath-unresolved"
        fact = next((f for f in execution.events if f.type == "ExecutionFailed"), None)
        ref = str(fact.event_id) if fact else "describe-execution"
        item = EvidenceItem(
            "history_event", execution.arn, ref, excerpt(f"ExecutionFailed {execution.error}: {execution.cause}")
        )
        out.append(
            Candidate(
                fm,
                cause,
                ORIGIN,
                0.9,
                [item],
                params={"error": excerpt(execution.cause, 200)},
                message=f"{execution.error} {execution.cause}",
            )
        )
    return out


def rule_mediaconvert_job(ev: Evidence) -> list[Candidate]:
    """FM-17: the transcode TOQ never hears about failed."""
    return [
        Candidate(
            "FM-17",
            "transcode-error",
            ORIGIN,
            0.9,
            [
                EvidenceItem(
                    "mediaconvert_field",
                    m.job_id,
                    "Status",
                    excerpt(f"{m.status} {m.error_code or ''} {m.error_message}"),
                )
            ],
            params={"error": excerpt(f"{m.error_code or ''} {m.error_message}".strip(), 200)},
            failing_state="ProcessVideos",
            message=m.error_message,
        )
        for m in ev.mediaconvert
        if m.status == "ERROR"
    ]


def rule_missing_processed_key(ev: Evidence) -> list[Candidate]:
    """FM-19 (result without processedKey) and FM-18 (derivative without matching source)."""
    out = []
    assets = [a for a in ev.assets if a.error_code == "MISSING_PROCESSED_KEY"]
    if assets:
        out.append(
            Candidate(
                "FM-19",
                "no-derivative-reported",
                ORIGIN,
                0.85,
                [asset_item(a, "metadata", {"errorCode": a.error_code, "error": a.error_message}) for a in assets],
                params={"keys": short_keys([a.s3_key_raw for a in assets])},
                failing_state="ConsolidateResults",
                message="MISSING_PROCESSED_KEY",
            )
        )
    orphans = logs_with(ev, "Generated asset without matching source", "Thumbnail without matching asset")
    if orphans:
        out.append(
            Candidate(
                "FM-18",
                "orphan-derivative",
                CONTRIBUTING,
                0.8,
                [log_item(x) for x in orphans],
                params={"keys": short_keys([field_text(x, "generated_key") for x in orphans])},
                failing_state="ConsolidateResults",
                message="Generated asset without matching source",
            )
        )
    return out
