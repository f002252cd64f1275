"""What each reprocess action of a job would do, and whether it may: read-only, no AWS calls.

The planner reads what toqdash already holds (the job mirror, awslogs' executions and history,
earlier reprocess actions); `services.reprocess_job` acts on exactly the request planned here.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from awslogs.models import Execution, HistoryEvent
from jobs.models import Job, JobKind, JobStatus, Listing, MediaAsset

from . import toq_api
from .models import ActionKind, Outcome, ReprocessAction

# AWS: a closed execution can be redriven for 14 days after it closed...
REDRIVE_WINDOW = dt.timedelta(days=14)
# ...while its history has room (a standard execution's history is capped at 25,000 events).
HISTORY_EVENT_LIMIT = 25_000
REDRIVABLE_STATUSES = frozenset({"FAILED", "ABORTED", "TIMED_OUT"})
# TOQ's listing statuses in which TOQ itself accepts /process (reference §6).
PROCESSABLE_LISTING_STATUSES = frozenset({6, 8})
NAME_PREFIX = "toqdash"


@dataclass
class ActionPlan:
    action: str
    label: str
    eligible: bool
    reasons: list[str] = field(default_factory=list)  # why not, in plain language
    does: str = ""
    request: dict[str, Any] = field(default_factory=dict)  # the exact AWS (or TOQ API) request
    side_effects: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # this action's own, besides the plan's

    @property
    def request_json(self) -> str:
        return json.dumps(self.request, indent=2, ensure_ascii=False)

    @property
    def payload(self) -> str:
        """The message body, execution input or HTTP body, unescaped, as it will travel."""
        return str(self.request.get("MessageBody") or self.request.get("input") or self.request.get("body") or "")


@dataclass
class ReprocessPlan:
    job: Job
    attempt: int
    original_execution: Execution | None
    assets: list[dict[str, str]]
    warnings: list[str]
    actions: dict[str, ActionPlan]


def compact_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it (TOQ's server and Lambdas): no spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def next_attempt(job: Job) -> int:
    last = ReprocessAction.objects.filter(job=job).aggregate(m=Max("attempt"))["m"] or 0
    return max(last, job.retry_count or 0) + 1


def original_execution(job: Job) -> Execution | None:
    """The execution TOQ started for the job: the one named by external_id, else its first."""
    executions = Execution.objects.filter(job=job).exclude(name__startswith=f"{NAME_PREFIX}-")
    if job.external_id:
        by_arn = executions.filter(arn=job.external_id).first()
        if by_arn is not None:
            return by_arn
    return executions.order_by("start_date", "id").first()


def execution_started_input(execution: Execution) -> str:
    """The input of the ExecutionStarted event (what TOQ's validate Lambda started it with)."""
    started = HistoryEvent.objects.filter(execution=execution, type="ExecutionStarted").first()
    if started is not None and isinstance(started.details.get("input"), str):
        return str(started.details["input"])
    return execution.input


def _asset_types_by_key(job: Job, keys: list[str]) -> dict[str, str]:
    rows = MediaAsset.objects.filter(
        listing_identity_id=job.listing_identity_id, s3_key_raw__in=keys, superseded_at__isnull=True
    ).values_list("s3_key_raw", "asset_type")
    return {key: asset_type for key, asset_type in rows if key}


def job_assets(job: Job, started_input: dict[str, Any] | None) -> tuple[list[dict[str, str]], str]:
    """[{key, type}] for the job and where they were read, or ([], why not)."""
    if started_input and isinstance(started_input.get("assets"), list) and started_input["assets"]:
        raw = started_input["assets"]
        keys = [a["key"] if isinstance(a, dict) else a for a in raw if isinstance(a, dict | str)]
        types = _asset_types_by_key(job, [k for k in keys if isinstance(k, str)])
        out = []
        for item in raw:
            # The validate Lambda also accepts a legacy body whose assets are bare keys (§3.2).
            key = str(item.get("key", "")) if isinstance(item, dict) else str(item)
            kind = str(item.get("type", "")) if isinstance(item, dict) else ""
            out.append({"key": key, "type": kind or types.get(key, "")})
        return out, "execution_input"
    keys = [r["raw_key"] for r in job.callback_results if r.get("raw_key")]
    if keys:
        types = _asset_types_by_key(job, keys)
        return [{"key": k, "type": types.get(k, "")} for k in keys], "callback"
    return [], _("Neither the original execution input nor the callback names this job's assets.")


def resubmit_request(
    *, job_toq_id: int, listing_identity_id: int, assets: list[dict[str, str]], retry: int
) -> dict[str, Any]:
    """The SendMessage TOQ's ProcessMedia makes (reference §3.2), with `retry` = the attempt."""
    body = {
        "jobId": job_toq_id,
        "listingIdentityId": listing_identity_id,
        "assets": [{"key": a["key"], "type": a["type"]} for a in assets],
        "retry": retry,
    }
    return {
        "operation": "SQS.SendMessage",
        "QueueName": settings.TOQ_MAIN_QUEUE,
        "MessageBody": compact_json(body),
        "MessageAttributes": {
            "ListingIdentityId": {"DataType": "String", "StringValue": str(listing_identity_id)},
            "JobId": {"DataType": "String", "StringValue": str(job_toq_id)},
            "RetryCount": {"DataType": "String", "StringValue": str(retry)},
        },
    }


def rerun_name(job_toq_id: int, attempt: int) -> str:
    return f"{NAME_PREFIX}-{job_toq_id}-r{attempt}"


def redrive_eligibility(
    *,
    status: str,
    stop_date: dt.datetime | None,
    history_event_count: int,
    ended_in_fail_state: bool,
    now: dt.datetime,
    redrive_status: str = "",
    redrive_status_reason: str = "",
) -> list[str]:
    """Why AWS would refuse RedriveExecution ([] = it would accept). Pure."""
    reasons: list[str] = []
    if status not in REDRIVABLE_STATUSES:
        reasons.append(_("Only failed, aborted or timed-out executions can be redriven; this one is %s.") % status)
    if stop_date is None and status in REDRIVABLE_STATUSES:
        reasons.append(_("toqdash does not know when the execution closed."))
    elif stop_date is not None and now - stop_date > REDRIVE_WINDOW:
        reasons.append(_("The execution closed more than 14 days ago; AWS only redrives within 14 days."))
    if history_event_count >= HISTORY_EVENT_LIMIT - 1:
        reasons.append(_("The execution history has reached the event limit (25,000)."))
    if ended_in_fail_state:
        reasons.append(
            _(
                "The execution ended through a Catch into a Fail state. A redrive restarts the state "
                "that failed, and here that is the Fail state itself, so it would fail again at once. "
                "This is how TOQ's processing failures end: the error is caught, ReportFailure or "
                "ValidationFailed sends the failure callback, then ProcessingFailed fails the execution."
            )
        )
    if redrive_status == "NOT_REDRIVABLE" and not reasons:
        reasons.append(_("AWS says it is not redrivable: %s") % (redrive_status_reason or redrive_status))
    return reasons


def ended_in_fail_state(execution: Execution) -> bool:
    if HistoryEvent.objects.filter(execution=execution, type="FailStateEntered").exists():
        return True
    # No history at hand: TOQ's Fail states carry these errors (reference §1.4, §1.5).
    return execution.error in ("MediaProcessingFailed", "MediaFinalizationFailed")


def _video_effect(assets: list[dict[str, str]]) -> list[str]:
    if any("VIDEO" in a["type"].upper() for a in assets):
        return [_("Starts a new MediaConvert job for the videos (billed by AWS).")]
    return []


def _callback_effect() -> str:
    return _(
        "The execution's callback updates this same job row in TOQ (status, completed_at, "
        "callback_body) but keeps the first external_id and started_at."
    )


def plan_reprocess(job: Job, user: AbstractBaseUser | AnonymousUser | None = None) -> ReprocessPlan:
    """Every action for `job`: eligible or why not, what it sends, side effects; plus warnings.

    `user` is accepted so the plan can say who would act; permission is checked by the callers
    (views and `services.reprocess_job`), never here."""
    attempt = next_attempt(job)
    execution = original_execution(job)
    started_text = execution_started_input(execution) if execution else ""
    started_input: dict[str, Any] | None = None
    try:
        parsed = json.loads(started_text) if started_text else None
        started_input = parsed if isinstance(parsed, dict) else None
    except ValueError:
        started_input = None
    assets, assets_source = job_assets(job, started_input)
    videos = _video_effect(assets)
    common_block: list[str] = []
    if job.disappeared_at is not None:
        common_block.append(_("This job no longer exists in TOQ: the callback would have no row to update."))
    if not job.is_current:
        common_block.append(_("This is an older generation of the id: TOQ now uses it for another job."))

    # --- resubmit ---
    reasons = list(common_block)
    if job.kind != JobKind.PROCESSING:
        reasons.append(_("Only processing jobs go through TOQ's queue; this is a %s job.") % job.get_kind_display())
    if not assets:
        reasons.append(assets_source)
    elif any(not a["type"] for a in assets):
        reasons.append(_("The type of some assets is unknown (not in the execution input nor in the mirror)."))
    request = (
        resubmit_request(
            job_toq_id=job.toq_id, listing_identity_id=job.listing_identity_id, assets=assets, retry=attempt
        )
        if assets
        else {}
    )
    resubmit = ActionPlan(
        action=ActionKind.RESUBMIT,
        label=str(ActionKind.RESUBMIT.label),
        eligible=not reasons,
        reasons=reasons,
        does=_(
            "Sends TOQ's own processing message for %(n)d asset(s) to %(queue)s with retry %(retry)d; "
            "the validate Lambda then starts a new execution."
        )
        % {"n": len(assets), "queue": settings.TOQ_MAIN_QUEUE, "retry": attempt},
        request=request,
        side_effects=[*videos, _callback_effect()],
    )

    # --- rerun ---
    reasons = list(common_block)
    if execution is None:
        reasons.append(_("toqdash has not collected this job's execution, so its original input is unknown."))
    elif started_input is None:
        reasons.append(_("The original execution input is missing or not valid JSON."))
    elif not execution.state_machine_arn:
        reasons.append(_("The state machine of the original execution is unknown."))
    name = rerun_name(job.toq_id, attempt)
    rerun = ActionPlan(
        action=ActionKind.RERUN,
        label=str(ActionKind.RERUN.label),
        eligible=not reasons,
        reasons=reasons,
        does=_("Starts a new execution named %(name)s on the same state machine with the original input.")
        % {"name": name},
        request=(
            {
                "operation": "StepFunctions.StartExecution",
                "stateMachineArn": execution.state_machine_arn,
                "name": name,
                "input": started_text,
            }
            if execution is not None and started_input is not None
            else {}
        ),
        side_effects=[*videos, _callback_effect()],
    )

    # --- redrive ---
    reasons = list(common_block)
    if execution is None:
        reasons.append(_("toqdash has not collected this job's execution."))
    else:
        reasons += redrive_eligibility(
            status=execution.status,
            stop_date=execution.stop_date,
            history_event_count=execution.history_event_count,
            ended_in_fail_state=ended_in_fail_state(execution),
            now=timezone.now(),
            redrive_status=str(execution.describe.get("redriveStatus", "")),
            redrive_status_reason=str(execution.describe.get("redriveStatusReason", "")),
        )
    redrive = ActionPlan(
        action=ActionKind.REDRIVE,
        label=str(ActionKind.REDRIVE.label),
        eligible=not reasons,
        reasons=reasons,
        does=_("Restarts the same execution from the state that failed; the states that succeeded are not run again."),
        request=(
            {"operation": "StepFunctions.RedriveExecution", "executionArn": execution.arn}
            if execution is not None
            else {}
        ),
        side_effects=[_("May start a new MediaConvert job if the video branch failed.")] if videos else [],
    )

    return ReprocessPlan(
        job=job,
        attempt=attempt,
        original_execution=execution,
        assets=assets,
        warnings=plan_warnings(job),
        actions={a.action: a for a in (resubmit, rerun, redrive, plan_process(job))},
    )


# TOQ's asset statuses that its /process picks up (reference §1.3 step 3, §6).
PROCESS_ASSET_STATUSES = ("PENDING_UPLOAD", "FAILED")


def process_request(*, listing_identity_id: int) -> dict[str, Any]:
    """What toqdash sends to TOQ's /process, the token masked (reprocess.toq_api). Stored as is."""
    return {
        "operation": toq_api.OPERATION,
        "method": "POST",
        "url": toq_api.process_url(),
        "headers": {
            "Authorization": toq_api.MASKED_AUTHORIZATION,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "toqdash",
        },
        "body": compact_json({"listingIdentityId": listing_identity_id}),
    }


def plan_process(job: Job) -> ActionPlan:
    """Ask TOQ to process the job's listing again: TOQ's own route, so TOQ makes a new job id."""
    listing_id = job.listing_identity_id
    reasons = toq_api.configuration_problems()
    if job.kind != JobKind.PROCESSING:
        reasons.append(
            _("TOQ's /process starts media processing, not a %s job; it cannot redo this one.") % job.get_kind_display()
        )
    warnings: list[str] = []
    listing = Listing.objects.filter(toq_id=listing_id, superseded_at__isnull=True).first()
    if listing is not None and listing.listing_status not in PROCESSABLE_LISTING_STATUSES:
        warnings.append(
            _(
                'TOQ will refuse (409 "listing is not awaiting media processing"): the listing is in '
                "status %(status)s, and TOQ only processes media in status 6 or 8."
            )
            % {"status": f"{listing.listing_status} {listing.listing_status_name}"}
        )
    pending_types = list(
        MediaAsset.objects.filter(
            listing_identity_id=listing_id, superseded_at__isnull=True, status__in=PROCESS_ASSET_STATUSES
        ).values_list("asset_type", flat=True)
    )
    pending_assets = len(pending_types)
    if not pending_assets:
        warnings.append(
            _(
                "The mirror shows no asset of the listing waiting for processing (PENDING_UPLOAD or "
                'FAILED): TOQ would answer 400 "no assets available for processing".'
            )
        )
    in_flight = (
        Job.objects.current()
        .filter(
            listing_identity_id=listing_id, kind=JobKind.PROCESSING, status__in=(JobStatus.PENDING, JobStatus.RUNNING)
        )
        .exclude(pk=job.pk)
        .values_list("toq_id", flat=True)
    )
    for other in in_flight:
        warnings.append(
            _(
                "Job %(id)s of this listing is still in flight in TOQ: its assets are PROCESSING, and "
                "TOQ does not pick those up again."
            )
            % {"id": other}
        )
    if toq_api.sends_token_in_clear():
        warnings.append(_("TOQ_API_BASE_URL is not HTTPS: the token would travel unencrypted."))
    videos = _video_effect([{"key": "", "type": t or ""} for t in pending_types])
    return ActionPlan(
        action=ActionKind.PROCESS,
        label=str(ActionKind.PROCESS.label),
        eligible=not reasons,
        reasons=reasons,
        does=_(
            "Calls TOQ's own API, as TOQ's app does after an upload: TOQ checks the listing, makes a new "
            "job and sends its processing message; the validate Lambda then starts a new execution."
        ),
        request=process_request(listing_identity_id=listing_id) if not reasons else {},
        side_effects=[
            _(
                "TOQ creates a new job id for listing %(listing)s; this job's row stays as it is "
                "(the new job appears here after the next sync)."
            )
            % {"listing": listing_id},
            _(
                "All the listing's assets in PENDING_UPLOAD or FAILED are processed again (%(n)d in the "
                "mirror), not only this job's; TOQ sets them to PROCESSING."
            )
            % {"n": pending_assets},
            *videos,
        ],
        warnings=warnings,
    )


def plan_warnings(job: Job) -> list[str]:
    warnings: list[str] = []
    running = Execution.objects.filter(job=job, status="RUNNING").values_list("name", flat=True)
    for name in running:
        warnings.append(_("An execution of this job is still running: %s.") % name)
    if job.status in (JobStatus.PENDING, JobStatus.RUNNING) and not running:
        warnings.append(_("TOQ still shows this job as %s.") % job.status)
    if ReprocessAction.objects.filter(job=job, outcome=Outcome.PENDING).exists():
        warnings.append(_("An earlier reprocess of this job is still waiting for AWS's answer."))
    listing = Listing.objects.filter(toq_id=job.listing_identity_id, superseded_at__isnull=True).first()
    if listing is None:
        warnings.append(_("The listing is not in the mirror; its status is unknown."))
    elif listing.listing_status not in PROCESSABLE_LISTING_STATUSES:
        warnings.append(
            _("The listing is in status %(status)s; TOQ itself only processes media in status 6 or 8.")
            % {"status": f"{listing.listing_status} {listing.listing_status_name}"}
        )
    return warnings
