from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Count, QuerySet
from django.http import QueryDict
from django.utils.translation import gettext as _

from awslogs.models import Execution
from jobs.filters import JobFilter
from jobs.models import Job, JobStatus
from jobs.selectors import job_list_for_dashboard

from .models import ActionKind, AuditEntry, Batch, BatchItem, ItemState, Outcome, ReprocessAction
from .planner import plan_reprocess

if TYPE_CHECKING:
    from diagnosis.models import FailureGroup

# The most jobs one bulk reprocess may cover. The preview plans every job (about ten small queries
# each), and a batch is run at a few dozen jobs a minute: past this, narrow the filter.
BULK_MAX_JOBS = 500


def reprocess_action_list(*, job: Job) -> QuerySet[ReprocessAction]:
    return ReprocessAction.objects.filter(job=job).select_related("requested_by").order_by("-attempt")


def audit_entry_list(*, job: Job) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(job=job).order_by("-created_at", "-id")


# --- bulk: which jobs, and what the planner says of each ------------------------------------------


def bulk_filter_query(params: Mapping[str, Any]) -> str:
    """The job list's filter parameters only (no sort, page cursor, lookup or action), sorted: the
    canonical query string a batch is made of."""
    query = QueryDict(mutable=True)
    getlist = getattr(params, "getlist", None)
    for name in sorted(JobFilter.base_filters):
        values = getlist(name) if getlist is not None else [params[name]] if name in params else []
        for value in values:
            if str(value).strip():
                query.appendlist(name, str(value).strip())
    return query.urlencode()


@dataclass
class BulkJob:
    job: Job
    eligible: bool
    reasons: list[str]
    warnings: list[str]


@dataclass
class BulkPreview:
    query: str
    action: str
    errors: list[str] = field(default_factory=list)  # why no batch can be made of this
    group: FailureGroup | None = None
    jobs: list[BulkJob] = field(default_factory=list)
    too_many: bool = False
    # (reason, number of jobs), most frequent first
    reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def action_label(self) -> str:
        return str(ActionKind(self.action).label)

    @property
    def eligible(self) -> list[BulkJob]:
        return [j for j in self.jobs if j.eligible]

    @property
    def ineligible(self) -> list[BulkJob]:
        return [j for j in self.jobs if not j.eligible]

    @property
    def with_warnings(self) -> int:
        return sum(1 for j in self.jobs if j.warnings)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.eligible)

    @property
    def fingerprint(self) -> str:
        """Which jobs would be acted on: the confirmation carries it, so a set that changed in the
        meantime is shown again instead of acted on."""
        text = self.action + ":" + ",".join(str(j.job.pk) for j in self.eligible)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _failure_group(query: QueryDict) -> FailureGroup | None:
    from diagnosis.models import FailureGroup

    group_id = query.get("group", "")
    return FailureGroup.objects.filter(pk=int(group_id)).first() if group_id.isdigit() else None


def bulk_preview(*, query: str, action: str) -> BulkPreview:
    """Every job of the job-list filter `query` with the planner's verdict on `action` for each.

    Read-only. At most BULK_MAX_JOBS jobs are planned; past that `too_many` is set and no batch may
    be made (the errors say why)."""
    preview = BulkPreview(query=bulk_filter_query(QueryDict(query)), action=action)
    if action not in ActionKind.values:
        preview.action = ActionKind.RESUBMIT
        preview.errors.append(_("Choose an action."))
        return preview
    params = QueryDict(preview.query)
    if not preview.query:
        preview.errors.append(_("Choose at least one filter: toqdash does not reprocess every job at once."))
        return preview
    filters = JobFilter(params, queryset=job_list_for_dashboard())
    if not filters.is_valid():
        preview.errors += [f"{name}: {' '.join(errors)}" for name, errors in filters.errors.items()]
        return preview
    preview.group = _failure_group(params)
    ids = list(filters.qs.order_by("toq_id").values_list("pk", flat=True)[: BULK_MAX_JOBS + 1])
    if len(ids) > BULK_MAX_JOBS:
        preview.too_many = True
        preview.errors.append(
            _("More than %(n)s jobs match: narrow the filter (one batch covers at most %(n)s jobs).")
            % {"n": BULK_MAX_JOBS}
        )
        return preview
    if not ids:
        preview.errors.append(_("No job matches this filter."))
        return preview
    counts: Counter[str] = Counter()
    listings_seen: set[int] = set()
    for job in Job.objects.filter(pk__in=ids).order_by("toq_id", "generation"):
        plan = plan_reprocess(job)
        step = plan.actions[action]
        reasons = list(step.reasons)
        if action == ActionKind.PROCESS:
            # TOQ processes a listing, not a job: one call per listing (the first job of it here).
            if job.listing_identity_id in listings_seen:
                reasons.append(_("An earlier job of this batch already asks TOQ to process the same listing."))
            listings_seen.add(job.listing_identity_id)
        preview.jobs.append(
            BulkJob(job=job, eligible=not reasons, reasons=reasons, warnings=[*plan.warnings, *step.warnings])
        )
        counts.update(list(dict.fromkeys(reasons)))  # each reason once per job, in order
    preview.reasons = counts.most_common()
    if not preview.eligible:
        preview.errors.append(_("None of these jobs is eligible for this action."))
    return preview


# --- bulk: progress ------------------------------------------------------------------------------


@dataclass
class BatchProgress:
    batch: Batch
    counts: dict[str, int]
    items: list[BatchItem]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def settled(self) -> int:
        return self.total - self.counts.get(ItemState.PENDING, 0)


def batch_list(*, limit: int = 50) -> list[Batch]:
    return list(Batch.objects.select_related("created_by").order_by("-created_at", "-id")[:limit])


def batch_progress(*, batch_id: int) -> BatchProgress | None:
    """A batch with its item counts by state and its items (job, action): four queries."""
    batch = Batch.objects.select_related("created_by", "changed_by").filter(pk=batch_id).first()
    if batch is None:
        return None
    rows = BatchItem.objects.filter(batch=batch).values("state").annotate(n=Count("id")).order_by()
    counts = dict.fromkeys(ItemState.values, 0)
    counts.update({row["state"]: row["n"] for row in rows})
    items = list(
        BatchItem.objects.filter(batch=batch)
        .select_related("job", "reprocess_action")
        .defer(
            "job__payload",
            "job__payload_raw",
            "job__callback_body",
            "job__callback_results",
            "job__last_error_fragments",
            "reprocess_action__sent",
            "reprocess_action__response",
        )
        .order_by("id")
    )
    return BatchProgress(batch=batch, counts=counts, items=items)


# --- outcome on the job page ----------------------------------------------------------------------


@dataclass
class AttemptRow:
    action: ReprocessAction
    execution_status: str  # of the execution the attempt started or redrove, as awslogs collected it


@dataclass
class ReprocessOutcome:
    job: Job
    attempts: list[AttemptRow]  # oldest first
    resolved_by: AttemptRow | None

    @property
    def latest(self) -> AttemptRow | None:
        return self.attempts[-1] if self.attempts else None


def job_reprocess_outcome(*, job: Job) -> ReprocessOutcome:
    """The job's reprocess attempts and the one that resolved its failure, if any (two queries).

    An attempt resolved the job when the execution it started (or redrove) succeeded, as awslogs
    collected it; failing that, when TOQ shows the job SUCCEEDED with a completion after the
    attempt was accepted (the callback updated the same row): then the latest such attempt."""
    actions = list(ReprocessAction.objects.filter(job=job).select_related("requested_by").order_by("attempt"))
    arns = [a.new_execution_arn for a in actions if a.new_execution_arn]
    statuses = dict(Execution.objects.filter(arn__in=arns).values_list("arn", "status")) if arns else {}
    rows = [AttemptRow(action=a, execution_status=statuses.get(a.new_execution_arn, "")) for a in actions]
    resolved = next((r for r in rows if r.execution_status == "SUCCEEDED"), None)
    if resolved is None and job.status == JobStatus.SUCCEEDED and job.completed_at is not None:
        # A `process` makes a new job in TOQ and leaves this row alone: it cannot have completed it.
        accepted = [
            r
            for r in rows
            if r.action.outcome == Outcome.SUCCEEDED
            and r.action.action != ActionKind.PROCESS
            and r.action.created_at < job.completed_at
        ]
        resolved = accepted[-1] if accepted else None
    return ReprocessOutcome(job=job, attempts=rows, resolved_by=resolved)
