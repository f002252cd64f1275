"""Bulk reprocessing in-process against moto's server: preview, batch creation, rate limit, pause,
resume, abort, idempotency of the batch and of its items, recovery of a dead worker's claims."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from diagnosis.models import Diagnosis, FailureGroup, Finding
from jobs.models import Job
from reprocess import bulk, selectors
from reprocess.models import AuditEntry, Batch, BatchItem, BatchState, ItemState, Outcome, ReprocessAction
from reprocess.services import reprocess_job
from tests.jobs.factories import make_listing, make_user

from .conftest import MotoAws, make_failed_job, make_finalization_job

pytestmark = pytest.mark.django_db


def _key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def world(aws: MotoAws) -> list[Job]:
    """Five failed processing jobs (eligible), one finalization job (not eligible for resubmit)."""
    make_listing(16)
    jobs = [make_failed_job(aws, toq_id) for toq_id in (101, 102, 103, 104, 105)]
    jobs.append(make_finalization_job(106))
    return jobs


def _create(user: AbstractUser, *, query: str = "status=FAILED", rate: int = 600, **kwargs: Any) -> Batch:
    values: dict[str, Any] = {
        "user": user,
        "action": "resubmit",
        "query": query,
        "name": "ffmpeg layer back",
        "reason": "the ffmpeg layer was restored",
        "rate_per_minute": rate,
        "idempotency_key": _key(),
    }
    values.update(kwargs)
    return bulk.batch_create(**values)


def _messages_by_job(aws: MotoAws) -> Counter[int]:
    return Counter(json.loads(m["Body"])["jobId"] for m in aws.receive_all())


def _no_sleep(seconds: float) -> None:
    return None


def _run_to_end(batch: Batch, *, max_runs: int = 50) -> None:
    """Run until the batch is over, without waiting for the rate limit between runs."""
    for _ in range(max_runs):
        Batch.objects.filter(pk=batch.pk).update(not_before=None)
        bulk.batch_run(batch_id=batch.pk, budget_seconds=0)
        batch.refresh_from_db()
        if batch.is_over:
            return
    raise AssertionError("the batch never finished")


# --- preview ----------------------------------------------------------------------------------------


def test_preview_counts_eligible_and_ineligible_with_reasons(world: list[Job]) -> None:
    preview = selectors.bulk_preview(query="status=FAILED&sort=-created_at&after=xyz", action="resubmit")

    assert preview.query == "status=FAILED"  # the job list's filters only
    assert [j.job.toq_id for j in preview.jobs] == [101, 102, 103, 104, 105, 106]
    assert [j.job.toq_id for j in preview.eligible] == [101, 102, 103, 104, 105]
    assert [j.job.toq_id for j in preview.ineligible] == [106]
    assert preview.reasons == [
        ("Only processing jobs go through TOQ's queue; this is a Finalization (ZIP) job.", 1),
        ("Neither the original execution input nor the callback names this job's assets.", 1),
    ]
    assert preview.ok and preview.errors == []

    rerun = selectors.bulk_preview(query="status=FAILED", action="rerun")
    assert len(rerun.eligible) == 5
    assert dict(rerun.reasons)["toqdash has not collected this job's execution, so its original input is unknown."] == 1
    assert rerun.fingerprint != preview.fingerprint


def test_preview_of_a_failure_group(world: list[Job]) -> None:
    group = FailureGroup.objects.create(signature="sig-ffmpeg", failure_mode="FM-12", cause="ffmpeg-missing")
    for job in world[:3]:
        diagnosis = Diagnosis.objects.create(
            job=job, engine_version="t", evidence_fingerprint="f", computed_at=timezone.now()
        )
        Finding.objects.create(
            diagnosis=diagnosis,
            position=0,
            failure_mode="FM-12",
            cause="ffmpeg-missing",
            role="origin",
            confidence=0.9,
            signature="sig-ffmpeg",
        )

    preview = selectors.bulk_preview(query=f"group={group.pk}", action="rerun")

    assert preview.group == group
    assert [j.job.toq_id for j in preview.eligible] == [101, 102, 103]


@pytest.mark.parametrize(
    ("query", "action", "error"),
    [
        ("", "resubmit", "Choose at least one filter"),
        ("sort=-created_at", "resubmit", "Choose at least one filter"),
        ("status=NOPE", "resubmit", "status:"),
        ("status=SUCCEEDED", "resubmit", "No job matches"),
        ("status=FAILED", "delete", "Choose an action"),
        ("kind=finalization", "resubmit", "None of these jobs is eligible"),
    ],
)
def test_preview_refuses_what_cannot_be_a_batch(world: list[Job], query: str, action: str, error: str) -> None:
    preview = selectors.bulk_preview(query=query, action=action)
    assert not preview.ok
    assert any(error in e for e in preview.errors), preview.errors


def test_preview_caps_the_number_of_jobs(world: list[Job], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selectors, "BULK_MAX_JOBS", 4)
    preview = selectors.bulk_preview(query="status=FAILED", action="resubmit")
    assert preview.too_many and not preview.ok and preview.jobs == []


# --- creation -----------------------------------------------------------------------------------------


def test_batch_has_pending_and_skipped_items_and_starts_on_commit(
    world: list[Job], admin_user: AbstractUser, started_runs: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        batch = _create(admin_user, query="status=FAILED&listing=16")

    assert started_runs == [batch.pk]
    assert batch.state == BatchState.RUNNING and batch.query == "listing=16&status=FAILED"
    items = {i.job.toq_id: i for i in BatchItem.objects.filter(batch=batch).select_related("job")}
    assert {k: i.state for k, i in items.items()} == {
        101: "pending",
        102: "pending",
        103: "pending",
        104: "pending",
        105: "pending",
        106: "skipped",
    }
    assert "Only processing jobs" in items[106].error


def test_same_key_is_one_batch(world: list[Job], admin_user: AbstractUser, started_runs: list[int]) -> None:
    key = _key()
    first = _create(admin_user, idempotency_key=key)
    second = _create(admin_user, idempotency_key=key, name="double click")
    assert first.pk == second.pk
    assert Batch.objects.count() == 1 and BatchItem.objects.count() == 6
    with pytest.raises(ValidationError):
        _create(admin_user, idempotency_key=key, action="rerun")


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_is_one_batch(aws: MotoAws, started_runs: list[int]) -> None:
    make_listing(16)
    for toq_id in (101, 102):
        make_failed_job(aws, toq_id)
    admin = make_user("ada", "Admin")
    key = _key()
    barrier = threading.Barrier(3)
    results: list[Any] = [None] * 3

    def submit(i: int) -> None:
        try:
            barrier.wait()
            results[i] = _create(admin, idempotency_key=key)
        except Exception as exc:  # asserted below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert all(isinstance(r, Batch) for r in results), results
    assert {r.pk for r in results} == {Batch.objects.get().pk}
    assert BatchItem.objects.count() == 2


def test_changed_set_since_confirmation_is_refused(world: list[Job], admin_user: AbstractUser, aws: MotoAws) -> None:
    fingerprint = selectors.bulk_preview(query="status=FAILED", action="resubmit").fingerprint
    make_failed_job(aws, 107)  # a new failure lands between the confirmation page and the click

    with pytest.raises(bulk.BatchSetChanged) as raised:
        _create(admin_user, fingerprint=fingerprint)
    assert len(raised.value.preview.eligible) == 6
    assert not Batch.objects.exists()


@pytest.mark.parametrize("role", ["Support", "Engineer"])
def test_only_admins_make_batches(world: list[Job], role: str) -> None:
    with pytest.raises(PermissionDenied):
        _create(make_user("someone", role))
    assert not Batch.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("name", " "), ("reason", ""), ("rate_per_minute", 0)])
def test_name_reason_and_rate_are_required(world: list[Job], admin_user: AbstractUser, field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        _create(admin_user, **{"rate" if field == "rate_per_minute" else field: value})


# --- running ------------------------------------------------------------------------------------------


def test_run_respects_the_rate_limit_then_finishes(
    world: list[Job], admin_user: AbstractUser, aws: MotoAws, started_runs: list[int]
) -> None:
    batch = _create(admin_user, rate=120)  # one job every 0.5 s

    result = bulk.batch_run(batch_id=batch.pk, budget_seconds=1.2)

    done = list(BatchItem.objects.filter(batch=batch, state=ItemState.DONE).order_by("finished_at"))
    assert 1 <= result.processed == len(done) <= 3  # at 0, 0.5 and 1.0 s at most
    # Items are claimed right after their rate slot is taken: claims are 0.5 s apart (less a margin
    # for the queries between the slot and the claim on a loaded machine; without the limit, ~0).
    claims = [i.claimed_at for i in done if i.claimed_at is not None]
    assert len(claims) == len(done)
    assert all(b - a >= dt.timedelta(seconds=0.4) for a, b in zip(claims, claims[1:], strict=False)), claims

    _run_to_end(batch)

    assert batch.state == BatchState.FINISHED and batch.finished_at is not None
    assert _messages_by_job(aws) == {101: 1, 102: 1, 103: 1, 104: 1, 105: 1}
    items = BatchItem.objects.filter(batch=batch).select_related("reprocess_action")
    assert Counter(i.state for i in items) == {"done": 5, "skipped": 1}
    done_item = items.get(job__toq_id=101)
    assert done_item.result.startswith("attempt 1: ") and done_item.reprocess_action.outcome == Outcome.SUCCEEDED
    # Each job has its normal audit trail, by the batch's author, with the batch named in the reason.
    entry = AuditEntry.objects.filter(job__toq_id=101, event="succeeded").get()
    assert entry.actor_username == "ada"
    assert entry.reason == f"the ffmpeg layer was restored [batch {batch.pk}: ffmpeg layer back]"

    # Running again changes nothing.
    assert bulk.batch_run(batch_id=batch.pk, budget_seconds=1).processed == 0
    assert aws.receive_all() == [] and ReprocessAction.objects.count() == 5


def test_concurrent_runs_share_one_rate_limit(
    world: list[Job], admin_user: AbstractUser, aws: MotoAws, started_runs: list[int]
) -> None:
    batch = _create(admin_user, rate=60)
    Batch.objects.filter(pk=batch.pk).update(lease_until=None)

    first = bulk.batch_run(batch_id=batch.pk, budget_seconds=0.5)
    # Another runner (a second tick; the lease expired): the slot is taken for one second.
    Batch.objects.filter(pk=batch.pk).update(lease_until=None)
    second = bulk.batch_run(batch_id=batch.pk, budget_seconds=0.5)

    assert (first.processed, second.processed) == (1, 0)


def test_a_run_holding_the_lease_makes_others_step_aside(
    world: list[Job], admin_user: AbstractUser, started_runs: list[int]
) -> None:
    batch = _create(admin_user)
    Batch.objects.filter(pk=batch.pk).update(lease_until=timezone.now() + dt.timedelta(seconds=30))
    assert bulk.batch_run(batch_id=batch.pk, budget_seconds=1).busy
    assert not BatchItem.objects.filter(state=ItemState.DONE).exists()


def test_abort_half_way(world: list[Job], admin_user: AbstractUser, aws: MotoAws, started_runs: list[int]) -> None:
    batch = _create(admin_user)
    for _ in range(2):
        Batch.objects.filter(pk=batch.pk).update(not_before=None)
        bulk.batch_run(batch_id=batch.pk, budget_seconds=0)
    ops = make_user("otto", "Admin")

    assert bulk.batch_abort(batch_id=batch.pk, user=ops)
    assert not bulk.batch_abort(batch_id=batch.pk, user=ops)  # already over
    _run_to_end(batch)  # a run of an aborted batch acts on nothing

    batch.refresh_from_db()
    assert batch.state == BatchState.ABORTED and batch.changed_by == ops and batch.finished_at
    states = Counter(BatchItem.objects.filter(batch=batch).values_list("state", flat=True))
    assert states == {"done": 2, "skipped": 4}
    assert BatchItem.objects.filter(batch=batch, error="The batch was aborted.").count() == 3
    assert sum(_messages_by_job(aws).values()) == 2
    assert not bulk.batch_resume(batch_id=batch.pk, user=ops)


def test_pause_and_resume(
    world: list[Job],
    admin_user: AbstractUser,
    aws: MotoAws,
    started_runs: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    batch = _create(admin_user)
    bulk.batch_run(batch_id=batch.pk, budget_seconds=0)
    assert bulk.batch_pause(batch_id=batch.pk, user=admin_user)
    assert not bulk.batch_pause(batch_id=batch.pk, user=admin_user)

    Batch.objects.filter(pk=batch.pk).update(not_before=None)
    assert bulk.batch_run(batch_id=batch.pk, budget_seconds=1).processed == 0
    assert BatchItem.objects.filter(batch=batch, state=ItemState.DONE).count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert bulk.batch_resume(batch_id=batch.pk, user=admin_user)
    assert started_runs == [batch.pk]
    _run_to_end(batch)
    assert batch.state == BatchState.FINISHED
    assert _messages_by_job(aws) == {101: 1, 102: 1, 103: 1, 104: 1, 105: 1}


def test_items_refused_at_run_time_are_skipped_or_failed(
    world: list[Job], admin_user: AbstractUser, aws: MotoAws, started_runs: list[int]
) -> None:
    batch = _create(admin_user, action="rerun")
    # Between the preview and the run: another admin reruns job 101 and it is still pending AWS's
    # answer (a conflict); job 102's execution disappears from the evidence (no longer eligible).
    other = reprocess_job(job=world[0], action="rerun", user=admin_user, reason="by hand", idempotency_key=_key())
    ReprocessAction.objects.filter(pk=other.pk).update(outcome=Outcome.PENDING)
    world[1].executions.all().delete()

    _run_to_end(batch)

    items = {i.job.toq_id: i for i in BatchItem.objects.filter(batch=batch).select_related("job")}
    assert items[101].state == ItemState.FAILED and "in flight" in items[101].error
    assert items[102].state == ItemState.SKIPPED and "has not collected" in items[102].error
    assert {items[n].state for n in (103, 104, 105)} == {ItemState.DONE}
    assert batch.state == BatchState.FINISHED


# --- a worker that died mid-item ------------------------------------------------------------------------


def _acted_on(item: BatchItem, user: AbstractUser) -> ReprocessAction:
    """The single-job service's rerun of `item` as the batch's worker calls it (the item's own key)."""
    return reprocess_job(
        job=item.job, action="rerun", user=user, reason="x", idempotency_key=bulk.item_key(item.batch_id, item.job_id)
    )


def _claimed_long_ago(item: BatchItem) -> None:
    BatchItem.objects.filter(pk=item.pk).update(claimed_at=timezone.now() - dt.timedelta(hours=1), claims=1)


def test_dead_workers_claim_is_taken_over_without_acting_twice(
    world: list[Job], admin_user: AbstractUser, aws: MotoAws, started_runs: list[int], settings: Any
) -> None:
    """Three ways a worker can die mid-item, each resumed by a later run: before the single-job
    service claimed (nothing done), after AWS accepted but before the action row was updated, and
    after the action was settled but before the item was."""
    settings.REPROCESS_CLAIM_TIMEOUT_SECONDS = 60
    batch = _create(admin_user, action="rerun")
    items = {i.job.toq_id: i for i in BatchItem.objects.filter(batch=batch).select_related("job")}

    # 101: claimed, then the worker died before reprocess_job.
    _claimed_long_ago(items[101])
    # 102: the action was claimed and AWS started the execution; the answer never got recorded.
    lost = _acted_on(items[102], admin_user)
    ReprocessAction.objects.filter(pk=lost.pk).update(
        outcome=Outcome.PENDING, response=None, new_execution_arn="", finished_at=None
    )
    _claimed_long_ago(items[102])
    # 103: the action was settled, the item not.
    _acted_on(items[103], admin_user)
    _claimed_long_ago(items[103])

    _run_to_end(batch)

    names = Counter(e["name"] for e in aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"])
    assert names == {f"toqdash-{n}-r1": 1 for n in (101, 102, 103, 104, 105)}
    assert ReprocessAction.objects.count() == 5
    done = BatchItem.objects.filter(batch=batch, state=ItemState.DONE)
    assert sorted(done.values_list("job__toq_id", flat=True)) == [101, 102, 103, 104, 105]
    lost.refresh_from_db()
    assert lost.outcome == Outcome.SUCCEEDED and lost.response and lost.response["reconciled"] is True
    assert lost.new_execution_arn.endswith(":toqdash-102-r1")
    assert BatchItem.objects.get(pk=items[101].pk).claims == 2


def test_a_poison_item_is_given_up(world: list[Job], admin_user: AbstractUser, started_runs: list[int]) -> None:
    batch = _create(admin_user)
    item = BatchItem.objects.filter(batch=batch, state=ItemState.PENDING).first()
    BatchItem.objects.filter(pk=item.pk).update(claimed_at=timezone.now() - dt.timedelta(days=1), claims=3)

    _run_to_end(batch)

    item.refresh_from_db()
    assert item.state == ItemState.FAILED and "Given up after 3 tries" in item.error
    assert not ReprocessAction.objects.filter(job=item.job).exists()


def test_aborted_batch_settles_an_abandoned_item_from_its_action(
    world: list[Job], admin_user: AbstractUser, aws: MotoAws, started_runs: list[int]
) -> None:
    batch = _create(admin_user, action="rerun")
    items = list(BatchItem.objects.filter(batch=batch, state=ItemState.PENDING).select_related("job"))
    # The worker died after StartExecution (action left pending) and someone aborted the batch.
    action = _acted_on(items[0], admin_user)
    ReprocessAction.objects.filter(pk=action.pk).update(
        outcome=Outcome.PENDING, created_at=timezone.now() - dt.timedelta(hours=2)
    )
    _claimed_long_ago(items[0])
    # and another one died before acting.
    _claimed_long_ago(items[1])
    bulk.batch_abort(batch_id=batch.pk, user=admin_user)
    assert bulk.batches_due() == [batch.pk]

    bulk.batch_run(batch_id=batch.pk, budget_seconds=0)

    states = {i.pk: i.state for i in BatchItem.objects.filter(batch=batch)}
    assert states[items[0].pk] == ItemState.DONE and states[items[1].pk] == ItemState.SKIPPED
    assert bulk.batches_due() == []
    assert len(aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]) == 1


def test_tick_starts_running_batches_only(
    world: list[Job], admin_user: AbstractUser, started_runs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from reprocess import tasks

    running = _create(admin_user)
    paused = _create(admin_user)
    bulk.batch_pause(batch_id=paused.pk, user=admin_user)
    sent: list[int] = []
    monkeypatch.setattr(tasks.batch_run_task, "delay_on_commit", sent.append)

    assert tasks.bulk_tick_task() == 1
    assert sent == [running.pk]


def test_the_beat_schedule_runs_the_tick(settings: Any) -> None:
    from reprocess import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["every-10s-reprocess-bulk-tick"]
    assert entry["task"] == tasks.bulk_tick_task.name == "reprocess.bulk_tick"
    assert entry["schedule"] == float(settings.REPROCESS_BULK_TICK_SECONDS)
    assert entry["options"]["expires"] == settings.REPROCESS_BULK_TICK_SECONDS * 1.5
    assert tasks.batch_run_task.time_limit < settings.REPROCESS_CLAIM_TIMEOUT_SECONDS


def test_batch_run_task_wraps_the_service(
    world: list[Job], admin_user: AbstractUser, aws: MotoAws, started_runs: list[int], settings: Any
) -> None:
    from reprocess.tasks import batch_run_task

    settings.REPROCESS_BULK_TICK_SECONDS = 0
    batch = _create(admin_user)
    assert batch_run_task(batch.pk) == 1
    Batch.objects.filter(pk=batch.pk).update(not_before=None)
    assert batch_run_task(batch.pk) == 1
    assert sum(_messages_by_job(aws).values()) == 2


def test_sleeps_until_the_next_slot_within_its_budget(
    world: list[Job], admin_user: AbstractUser, started_runs: list[int]
) -> None:
    batch = _create(admin_user, rate=60)
    slept: list[float] = []
    start = time.monotonic()

    def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        Batch.objects.filter(pk=batch.pk).update(not_before=timezone.now())

    result = bulk.batch_run(batch_id=batch.pk, budget_seconds=5, sleep=fake_sleep)

    assert result.processed == 5 and len(slept) == 4
    assert all(0 < s <= 1.0 for s in slept)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(("stop", "state"), [("pause", ItemState.PENDING), ("abort", ItemState.SKIPPED)])
def test_an_item_claimed_just_before_a_pause_or_abort_is_not_acted_on(
    world: list[Job], admin_user: AbstractUser, aws: MotoAws, started_runs: list[int], stop: str, state: str
) -> None:
    batch = _create(admin_user)
    item = bulk._claim_next(batch.pk)  # a runner claimed it...
    getattr(bulk, f"batch_{stop}")(batch_id=batch.pk, user=admin_user)  # ...as an admin stopped the batch

    bulk._process(batch, item)

    item.refresh_from_db()
    assert item.state == state and item.reprocess_action is None
    assert (item.claimed_at, item.claims) == ((None, 0) if stop == "pause" else (item.claimed_at, 1))
    assert aws.receive_all() == [] and not ReprocessAction.objects.exists()
