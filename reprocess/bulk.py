"""Bulk reprocessing: a Batch of jobs, run item by item through `services.reprocess_job` at a rate limit.

Everything a run needs is in the database, so a worker restart loses nothing:

1. `batch_create` plans every job (the preview's verdicts), stores eligible jobs as pending items
   and the others as skipped with the planner's reasons. The confirmation form's idempotency key is
   UNIQUE: a double submit returns the first batch.
2. `batch_run` (task `reprocess.batch_run`, started on creation and on resume, and by the beat tick
   `reprocess.bulk_tick` for every running batch) works for about one tick: it takes a *rate slot*
   (a conditional update moving `Batch.not_before` on by 60 / rate seconds), *claims* the next item
   (a conditional update setting `claimed_at`), and acts on it through the single-job service with
   the idempotency key `batch<batch id>-job<job id>`.
3. A worker that dies leaves at most one item claimed. After REPROCESS_CLAIM_TIMEOUT_SECONDS the
   claim is taken over; the same key makes the single-job service return the action already made
   instead of acting again, and an action the dead worker left pending is reconciled with AWS
   (`services.reprocess_reconcile_action`) before the item is settled.
4. Pause and abort are state changes the runner reads before every item; abort also skips the items
   nobody claimed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from jobs.roles import ADMIN, user_has_role

from .models import ActionKind, Batch, BatchItem, BatchState, ItemState, Outcome, ReprocessAction
from .selectors import BulkPreview, bulk_preview
from .services import ReprocessNotAllowed, reprocess_job, reprocess_reconcile_action

logger = logging.getLogger(__name__)

RATE_MIN, RATE_MAX = 1, 600
# An item claimed this many times without being settled is given up (a poison item must not loop).
MAX_CLAIMS = 3
# Batches one tick starts a run for.
TICK_LIMIT = 50


class BatchSetChanged(ValidationError):
    """The jobs the filter selects (or their eligibility) changed since the confirmation page."""

    def __init__(self, preview: BulkPreview) -> None:
        super().__init__(
            _("The jobs this filter selects changed since the confirmation; check the new numbers."),
            code="changed",
        )
        self.preview = preview


def item_key(batch_id: int, job_id: int) -> str:
    """The single-job idempotency key of a batch item: any retry of the item is the same action."""
    return f"batch{batch_id}-job{job_id}"


def _require_admin(user: User) -> None:
    if not user_has_role(user, ADMIN):
        raise PermissionDenied(_("Only admins can reprocess jobs."))


def batch_create(
    *,
    user: User,
    action: str,
    query: str,
    name: str,
    reason: str,
    rate_per_minute: int,
    idempotency_key: str,
    fingerprint: str = "",
) -> Batch:
    """Create the batch of every job `query` selects (Admin only) and start running it.

    Idempotent on `idempotency_key`: the same key returns the batch it created. Raises
    ValidationError (bad input, no eligible job, too many jobs) and BatchSetChanged when
    `fingerprint` no longer matches the jobs the filter selects."""
    _require_admin(user)
    name, reason = name.strip(), reason.strip()
    if not name:
        raise ValidationError(_("A batch name is required."), code="name")
    if not reason:
        raise ValidationError(_("A reason is required."), code="reason")
    if not RATE_MIN <= rate_per_minute <= RATE_MAX:
        raise ValidationError(
            _("The rate must be between %(min)s and %(max)s jobs per minute.") % {"min": RATE_MIN, "max": RATE_MAX},
            code="rate",
        )
    if not idempotency_key or len(idempotency_key) > 64:
        raise ValidationError(_("A valid idempotency key is required."), code="idempotency_key")
    existing = Batch.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return _same_batch(existing, user=user, action=action)

    preview = bulk_preview(query=query, action=action)
    if preview.errors:
        raise ValidationError(preview.errors, code="not_eligible")
    if fingerprint and fingerprint != preview.fingerprint:
        raise BatchSetChanged(preview)
    now = timezone.now()
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                name=name,
                reason=reason,
                action=action,
                query=preview.query,
                group_id=preview.group.pk if preview.group else None,
                group_label=f"{preview.group.failure_mode} {preview.group.cause}"[:255] if preview.group else "",
                rate_per_minute=rate_per_minute,
                idempotency_key=idempotency_key,
                created_by=user,
                created_at=now,
            )
            BatchItem.objects.bulk_create(
                BatchItem(
                    batch=batch,
                    job=j.job,
                    state=ItemState.PENDING if j.eligible else ItemState.SKIPPED,
                    error="" if j.eligible else " ".join(j.reasons),
                    finished_at=None if j.eligible else now,
                )
                for j in preview.jobs
            )
            _start_run(batch.pk)
    except IntegrityError:
        existing = Batch.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return _same_batch(existing, user=user, action=action)
    logger.info("batch %s created by %s: %d jobs", batch.pk, user.get_username(), len(preview.jobs))
    return batch


def _same_batch(existing: Batch, *, user: User, action: str) -> Batch:
    if existing.created_by_id != user.pk or existing.action != action:
        raise ValidationError(_("This idempotency key was already used for another request."), code="key_reused")
    return existing


def _start_run(batch_id: int) -> None:
    from .tasks import batch_run_task

    batch_run_task.delay_on_commit(batch_id)


def _change_state(*, batch_id: int, user: User, from_states: list[str], to_state: str) -> bool:
    now = timezone.now()
    values: dict[str, object] = {"state": to_state, "changed_by": user, "changed_at": now}
    if to_state == BatchState.ABORTED:
        values["finished_at"] = now
    return bool(Batch.objects.filter(pk=batch_id, state__in=from_states).update(**values))


def batch_pause(*, batch_id: int, user: User) -> bool:
    """Stop taking new items (the item in flight, if any, completes). False if it was not running."""
    _require_admin(user)
    return _change_state(batch_id=batch_id, user=user, from_states=[BatchState.RUNNING], to_state=BatchState.PAUSED)


def batch_resume(*, batch_id: int, user: User) -> bool:
    """Run a paused batch again. False if it was not paused."""
    _require_admin(user)
    with transaction.atomic():
        changed = _change_state(
            batch_id=batch_id, user=user, from_states=[BatchState.PAUSED], to_state=BatchState.RUNNING
        )
        if changed:
            _start_run(batch_id)
    return changed


def batch_abort(*, batch_id: int, user: User) -> bool:
    """Abort a running or paused batch: the items nobody claimed are skipped; one in flight completes
    (its runner, or the next run once its claim times out, settles it). False if it was over."""
    _require_admin(user)
    with transaction.atomic():
        changed = _change_state(
            batch_id=batch_id,
            user=user,
            from_states=[BatchState.RUNNING, BatchState.PAUSED],
            to_state=BatchState.ABORTED,
        )
        if changed:
            BatchItem.objects.filter(batch_id=batch_id, state=ItemState.PENDING, claimed_at__isnull=True).update(
                state=ItemState.SKIPPED, error=_("The batch was aborted."), finished_at=timezone.now()
            )
    return changed


# --- running -------------------------------------------------------------------------------------


@dataclass
class BatchRunResult:
    processed: int = 0
    state: str = ""
    busy: bool = False  # another run held the batch


def _claim_timeout() -> dt.timedelta:
    return dt.timedelta(seconds=settings.REPROCESS_CLAIM_TIMEOUT_SECONDS)


def _claimable(batch_id: int, now: dt.datetime) -> Q:
    stale = now - _claim_timeout()
    return Q(batch_id=batch_id, state=ItemState.PENDING) & (Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale))


def _claim_next(batch_id: int) -> BatchItem | None:
    """The next item no live runner holds, claimed (conditional update; a lost race tries the next)."""
    for _attempt in range(5):
        now = timezone.now()
        candidate = BatchItem.objects.filter(_claimable(batch_id, now)).order_by("id").values_list("pk", flat=True)
        pk = candidate.first()
        if pk is None:
            return None
        if BatchItem.objects.filter(_claimable(batch_id, now), pk=pk).update(claimed_at=now, claims=F("claims") + 1):
            return BatchItem.objects.select_related("job").get(pk=pk)
    return None


def _take_slot(batch: Batch, now: dt.datetime) -> bool:
    """The rate limit: at most one item per 60 / rate seconds, whatever number of runners."""
    interval = dt.timedelta(seconds=60 / batch.rate_per_minute)
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    return bool(
        Batch.objects.filter(due, pk=batch.pk, state=BatchState.RUNNING).update(
            not_before=now + interval, last_run_at=now
        )
    )


def _settle(item: BatchItem, state: str, *, action: ReprocessAction | None = None, error: str = "") -> None:
    result = ""
    if action is not None:
        response = action.response or {}
        target = action.new_execution_arn or str(response.get("MessageId", ""))
        if not target and action.action == ActionKind.PROCESS and "status" in response:
            target = f"TOQ HTTP {response['status']}"
        result = f"attempt {action.attempt}" + (f": {target}" if target else "")
    BatchItem.objects.filter(pk=item.pk, state=ItemState.PENDING).update(
        state=state, reprocess_action=action, result=result[:600], error=error, finished_at=timezone.now()
    )


def _settle_from_action(item: BatchItem, action: ReprocessAction) -> bool:
    """Settle the item after its action; False while the action is still pending (item stays claimed)."""
    abandoned = item.claims > 1 or action.created_at <= timezone.now() - _claim_timeout()
    if action.outcome == Outcome.PENDING and abandoned:
        # The single-job service always answers before returning, so an action still pending was
        # left by the runner whose claim on this item timed out (a dead worker): ask AWS what
        # happened before settling the item.
        action = reprocess_reconcile_action(action_id=action.pk)
    if action.outcome == Outcome.PENDING:
        return False
    state = ItemState.DONE if action.outcome == Outcome.SUCCEEDED else ItemState.FAILED
    _settle(item, state, action=action, error=action.error)
    return True


def _process(batch: Batch, item: BatchItem) -> None:
    # Paused or aborted since this run last looked: the claimed item must not be acted on.
    state = Batch.objects.values_list("state", flat=True).get(pk=batch.pk)
    if state == BatchState.ABORTED:
        _settle(item, ItemState.SKIPPED, error=_("The batch was aborted."))
        return
    if state != BatchState.RUNNING:
        BatchItem.objects.filter(pk=item.pk).update(claimed_at=None, claims=F("claims") - 1)
        return
    if item.claims > MAX_CLAIMS:
        error = _("Given up after %(n)s tries.") % {"n": MAX_CLAIMS}
        _settle(item, ItemState.FAILED, error=error)
        return
    try:
        action = reprocess_job(
            job=item.job,
            action=batch.action,
            user=batch.created_by,
            reason=f"{batch.reason} [batch {batch.pk}: {batch.name}]",
            idempotency_key=item_key(batch.pk, item.job_id),
        )
    except ReprocessNotAllowed as exc:
        _settle(item, ItemState.SKIPPED, error=" ".join(exc.messages))
    except ValidationError as exc:  # a conflict (another action in flight) or a reused key
        _settle(item, ItemState.FAILED, error=" ".join(exc.messages))
    except PermissionDenied as exc:  # the batch's author is no longer an admin
        _settle(item, ItemState.FAILED, error=str(exc))
    else:
        _settle_from_action(item, action)


def _settle_abandoned(batch: Batch) -> None:
    """An aborted batch's items whose runner died: settled from their action, or skipped if none."""
    stale = timezone.now() - _claim_timeout()
    for item in BatchItem.objects.filter(batch=batch, state=ItemState.PENDING, claimed_at__lt=stale):
        action = ReprocessAction.objects.filter(idempotency_key=item_key(batch.pk, item.job_id)).first()
        if action is None:
            _settle(item, ItemState.SKIPPED, error=_("The batch was aborted."))
        else:
            _settle_from_action(item, action)


def _finish_if_done(batch_id: int) -> None:
    if not BatchItem.objects.filter(batch_id=batch_id, state=ItemState.PENDING).exists():
        Batch.objects.filter(pk=batch_id, state=BatchState.RUNNING).update(
            state=BatchState.FINISHED, finished_at=timezone.now()
        )


def batch_run(
    *, batch_id: int, budget_seconds: float | None = None, sleep: Callable[[float], None] = time.sleep
) -> BatchRunResult:
    """Work on the batch for about `budget_seconds` (default: 0.8 × REPROCESS_BULK_TICK_SECONDS, so a
    run ends before the next tick starts another), one item per rate slot, sleeping between them. A
    slot already due is always used, whatever the budget.

    Idempotent and safe to run concurrently (rate slots and item claims are conditional updates);
    a lease only keeps runs from piling up. Must be called outside a transaction."""
    budget = budget_seconds if budget_seconds is not None else settings.REPROCESS_BULK_TICK_SECONDS * 0.8
    deadline = time.monotonic() + budget
    token = uuid.uuid4().hex
    now = timezone.now()
    lease = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    until = now + dt.timedelta(seconds=2 * budget + 1)
    if not Batch.objects.filter(lease, pk=batch_id).update(lease_until=until, lease_token=token):
        return BatchRunResult(busy=True)
    result = BatchRunResult()
    try:
        while True:
            batch = Batch.objects.select_related("created_by").get(pk=batch_id)
            result.state = batch.state
            if batch.state == BatchState.ABORTED:
                _settle_abandoned(batch)
                break
            if batch.state != BatchState.RUNNING:
                break
            now = timezone.now()
            if not BatchItem.objects.filter(_claimable(batch_id, now)).exists():
                _finish_if_done(batch_id)
                break
            if batch.not_before is not None and batch.not_before > now:
                wait = (batch.not_before - now).total_seconds()
                if time.monotonic() + wait > deadline:
                    break
                sleep(wait)
                continue
            if not _take_slot(batch, now):
                continue  # another runner took this slot
            item = _claim_next(batch_id)
            if item is None:
                continue
            _process(batch, item)
            result.processed += 1
            if time.monotonic() >= deadline:
                break
    finally:
        Batch.objects.filter(pk=batch_id, lease_token=token).update(lease_until=None, lease_token="")
    result.state = Batch.objects.values_list("state", flat=True).get(pk=batch_id)
    logger.info("batch %s: %d items this run, %s", batch_id, result.processed, result.state)
    return result


def batches_due(*, limit: int = TICK_LIMIT) -> list[int]:
    """Ids of the batches a tick runs: running ones, and aborted ones with an item still unsettled."""
    due = Q(state=BatchState.RUNNING) | Q(state=BatchState.ABORTED, items__state=ItemState.PENDING)
    return list(Batch.objects.filter(due).order_by("id").values_list("pk", flat=True).distinct()[:limit])
