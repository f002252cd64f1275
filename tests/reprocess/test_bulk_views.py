"""Bulk reprocess pages: preview, confirmation, start (one batch per key), progress with htmx polling,
pause / resume / abort, Admin only; the links from the job list and the group page; the outcome panel."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from django.utils import timezone

from diagnosis.models import FailureGroup
from jobs.models import Job
from reprocess import bulk
from reprocess.models import Batch, BatchItem, BatchState, ItemState
from reprocess.services import reprocess_job
from tests.jobs.factories import XSS, make_listing

from .conftest import MotoAws, add_execution, make_failed_job, make_finalization_job

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}
PREVIEW = "/reprocess/bulk/"
CONFIRM = "/reprocess/bulk/confirm/"
START = "/reprocess/bulk/start/"


def _running_batch(user: AbstractUser, *, name: str = "n", reason: str = "r", rate: int = 30) -> Batch:
    """A resubmit batch over the FAILED jobs, started by `user` (its run is left to the test)."""
    return bulk.batch_create(
        user=user,  # type: ignore[arg-type]
        action="resubmit",
        query="status=FAILED",
        name=name,
        reason=reason,
        rate_per_minute=rate,
        idempotency_key=uuid.uuid4().hex,
    )


@pytest.fixture
def world(aws: MotoAws) -> list[Job]:
    make_listing(16)
    jobs = [make_failed_job(aws, toq_id) for toq_id in (101, 102, 103)]
    jobs.append(make_finalization_job(104))
    return jobs


@pytest.fixture
def admin(client: Client, admin_user: AbstractUser) -> Client:
    client.force_login(admin_user)
    return client


def _form(**extra: str) -> dict[str, str]:
    data = {
        "action": "resubmit",
        "query": "status=FAILED",
        "name": "ffmpeg back",
        "reason": "layer restored",
        "rate_per_minute": "30",
    }
    data.update(extra)
    return data


def _hidden(html: str) -> dict[str, str]:
    """The hidden inputs of the confirmation form, as the browser would post them."""
    form = html[html.index('action="/reprocess/bulk/start/"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def _confirmed(admin: Client, **extra: str) -> dict[str, str]:
    response = admin.post(CONFIRM, _form(**extra))
    assert response.status_code == 200, response.content.decode()[:2000]
    data = _hidden(response.content.decode())
    data.pop("csrfmiddlewaretoken", None)
    return {k: v.replace("&amp;", "&") for k, v in data.items()}


def test_preview_shows_counts_reasons_and_the_form(admin: Client, world: list[Job]) -> None:
    response = admin.get(PREVIEW, {"status": "FAILED", "sort": "-created_at", "action": "resubmit"})

    assert response.status_code == 200
    html = response.content.decode()
    preview = response.context["preview"]
    assert (len(preview.jobs), len(preview.eligible), len(preview.ineligible)) == (4, 3, 1)
    assert "Only processing jobs go through TOQ&#x27;s queue" in html
    assert 'action="/reprocess/bulk/confirm/"' in html and 'name="reason"' in html and 'name="name"' in html
    assert 'name="rate_per_minute" value="30"' in html  # REPROCESS_BULK_RATE_PER_MINUTE
    assert 'href="/reprocess/bulk/?status=FAILED&amp;action=rerun"' in html  # switch the action


def test_preview_without_filters_offers_no_form(admin: Client, world: list[Job]) -> None:
    html = admin.get(PREVIEW).content.decode()
    assert "Choose at least one filter" in html
    assert 'action="/reprocess/bulk/confirm/"' not in html


def test_confirm_requires_name_reason_and_a_sane_rate(admin: Client, world: list[Job]) -> None:
    for override in ({"name": ""}, {"reason": ""}, {"rate_per_minute": "0"}, {"rate_per_minute": "601"}):
        response = admin.post(CONFIRM, _form(**override))
        assert response.status_code == 400, override
        assert response.context["form"].errors, override
    assert not Batch.objects.exists()


def test_confirm_then_start_creates_one_batch_for_a_double_submit(
    admin: Client, world: list[Job], started_runs: list[int], aws: MotoAws
) -> None:
    confirm = admin.post(CONFIRM, _form())
    html = confirm.content.decode()
    assert "Resubmit to TOQ&#x27;s queue: 3 job(s) will be acted on, one by one." in html
    assert "about 1 min" in html
    assert not Batch.objects.exists() and aws.receive_all() == []  # nothing before the confirmation
    data = _confirmed(admin)

    first = admin.post(START, data)
    second = admin.post(START, data)  # double click / retried POST

    batch = Batch.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/reprocess/batches/{batch.pk}/"
    assert (batch.name, batch.reason, batch.rate_per_minute, batch.query) == (
        "ffmpeg back",
        "layer restored",
        30,
        "status=FAILED",
    )
    assert BatchItem.objects.filter(batch=batch).count() == 4
    assert aws.receive_all() == []  # the worker acts, not the request


def test_start_with_a_changed_set_shows_the_confirmation_again(
    admin: Client, world: list[Job], started_runs: list[int], aws: MotoAws
) -> None:
    data = _confirmed(admin)
    make_failed_job(aws, 105)

    response = admin.post(START, data)

    assert response.status_code == 409
    html = response.content.decode()
    assert "changed since the confirmation" in html and "4 job(s) will be acted on" in html
    assert not Batch.objects.exists()
    again = _hidden(html)
    assert again["idempotency_key"] == data["idempotency_key"] and again["fingerprint"] != data["fingerprint"]
    assert admin.post(START, {**data, "fingerprint": again["fingerprint"]}).status_code == 302


def test_progress_page_and_polling_partial(
    admin: Client, world: list[Job], admin_user: AbstractUser, started_runs: list[int]
) -> None:
    batch = _running_batch(admin_user, name=XSS, reason=XSS, rate=600)
    url = f"/reprocess/batches/{batch.pk}/"
    bulk.batch_run(batch_id=batch.pk, budget_seconds=0)

    page = admin.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;" in html
    assert f'hx-get="{url}" hx-trigger="every 3s"' in html
    assert '<progress value="2" max="4">' in html  # one done, one skipped
    assert f'hx-post="/reprocess/batches/{batch.pk}/pause/"' in html and 'name="csrfmiddlewaretoken"' in html

    partial = admin.get(url, headers={**HX, "HX-Trigger": "batch-progress"})
    body = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<section id="batch-progress"')
    assert "HX-Request" in partial["Vary"]

    # Finished: the partial stops the polling (htmx's 286) and carries no trigger any more.
    for _ in range(5):
        Batch.objects.filter(pk=batch.pk).update(not_before=None)
        bulk.batch_run(batch_id=batch.pk, budget_seconds=0)
    assert Batch.objects.get(pk=batch.pk).state == BatchState.FINISHED
    done = admin.get(url, headers={**HX, "HX-Trigger": "batch-progress"})
    assert done.status_code == 286
    assert "hx-trigger" not in done.content.decode()


def test_pause_resume_abort_with_and_without_htmx(
    admin: Client, world: list[Job], admin_user: AbstractUser, started_runs: list[int]
) -> None:
    batch = _running_batch(admin_user)
    base = f"/reprocess/batches/{batch.pk}"

    paused = admin.post(f"{base}/pause/", headers=HX)
    assert paused.status_code == 200 and paused.content.decode().lstrip().startswith('<section id="batch-progress"')
    assert Batch.objects.get(pk=batch.pk).state == BatchState.PAUSED
    assert f'hx-post="{base}/resume/"' in paused.content.decode()

    resumed = admin.post(f"{base}/resume/")
    assert resumed.status_code == 302 and resumed["Location"] == f"{base}/"
    assert Batch.objects.get(pk=batch.pk).state == BatchState.RUNNING

    aborted = admin.post(f"{base}/abort/", headers=HX)
    body = aborted.content.decode()
    assert Batch.objects.get(pk=batch.pk).state == BatchState.ABORTED
    assert "hx-trigger" not in body and "/pause/" not in body and "/abort/" not in body
    assert set(BatchItem.objects.filter(batch=batch).values_list("state", flat=True)) == {ItemState.SKIPPED}
    assert admin.post(f"{base}/abort/").status_code == 302  # already over: nothing changes
    assert admin.post("/reprocess/batches/999999/abort/").status_code == 404


def test_controls_need_csrf(world: list[Job], admin_user: AbstractUser, started_runs: list[int]) -> None:
    batch = _running_batch(admin_user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(f"/reprocess/batches/{batch.pk}/abort/", headers=HX).status_code == 403
    assert client.post(START, {}).status_code == 403
    assert Batch.objects.get(pk=batch.pk).state == BatchState.RUNNING


@pytest.mark.parametrize("who", ["support_user", "engineer_user"])
def test_every_bulk_url_is_403_for_support_and_engineer(
    client: Client,
    world: list[Job],
    admin_user: AbstractUser,
    started_runs: list[int],
    who: str,
    request: pytest.FixtureRequest,
) -> None:
    batch = _running_batch(admin_user)
    client.force_login(request.getfixturevalue(who))
    gets = [PREVIEW + "?status=FAILED", "/reprocess/batches/", f"/reprocess/batches/{batch.pk}/"]
    posts = [CONFIRM, START] + [f"/reprocess/batches/{batch.pk}/{verb}/" for verb in ("pause", "resume", "abort")]
    for url in gets:
        assert client.get(url).status_code == 403, url
        assert client.get(url, headers=HX).status_code == 403, url
    for url in posts:
        assert client.post(url, _form(idempotency_key="k", fingerprint="f")).status_code == 403, url
    assert Batch.objects.count() == 1 and Batch.objects.get().state == BatchState.RUNNING


def test_job_list_and_group_page_link_to_the_preview_for_admins_only(
    client: Client, world: list[Job], admin_user: AbstractUser, support_user: AbstractUser
) -> None:
    group = FailureGroup.objects.create(signature="sig", failure_mode="FM-12", cause="ffmpeg-missing", job_count=3)
    client.force_login(admin_user)
    listing = client.get("/", {"status": "FAILED", "kind": "processing"}).content.decode()
    assert 'href="/reprocess/bulk/?status=FAILED&amp;kind=processing" id="reprocess-these"' in listing
    partial = client.get("/", {"status": "FAILED"}, headers=HX).content.decode()
    assert 'href="/reprocess/bulk/?status=FAILED" id="reprocess-these"' in partial
    assert f'href="/reprocess/bulk/?group={group.pk}"' in client.get(f"/groups/{group.pk}/").content.decode()

    client.force_login(support_user)
    assert "reprocess-these" not in client.get("/", {"status": "FAILED"}).content.decode()
    assert "/reprocess/bulk/" not in client.get(f"/groups/{group.pk}/").content.decode()


# --- the job page's reprocess panel ------------------------------------------------------------------


def test_job_page_loads_the_outcome_panel_lazily(client: Client, job37: Job, support_user: AbstractUser) -> None:
    client.force_login(support_user)
    html = client.get("/jobs/37/").content.decode()
    assert (
        '<section id="job-reprocess" class="card lazy" hx-get="/reprocess/jobs/37/g1/outcome/" hx-trigger="load"'
        in html
    )


def test_outcome_failed_then_resolved_by_attempt_n(
    client: Client, aws: MotoAws, job37: Job, admin_user: AbstractUser, support_user: AbstractUser
) -> None:
    first = reprocess_job(job=job37, action="resubmit", user=admin_user, reason=XSS, idempotency_key="k1")
    second = reprocess_job(
        job=job37, action="rerun", user=admin_user, reason="ffmpeg layer restored", idempotency_key="k2"
    )
    base = aws.state_machine_arn.replace(":stateMachine:", ":execution:")
    add_execution(
        job37,
        state_machine_arn=aws.state_machine_arn,
        arn=f"{base}:n1",
        start_date=timezone.now() + dt.timedelta(seconds=3),
    )
    add_execution(
        job37,
        state_machine_arn=aws.state_machine_arn,
        arn=second.new_execution_arn,
        status="SUCCEEDED",
        error="",
        start_date=timezone.now() + dt.timedelta(seconds=6),
    )
    from reprocess.services import reprocess_link_executions

    reprocess_link_executions(job=job37)
    first.refresh_from_db()
    assert first.new_execution_arn == f"{base}:n1"  # its execution failed (add_execution's default)

    client.force_login(support_user)
    partial = client.get("/reprocess/jobs/37/g1/outcome/", headers=HX)
    body = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<section id="job-reprocess" class="card">')
    assert "resolved by attempt 2 (ada)" in body and "ffmpeg layer restored" in body
    assert "<script>alert" not in body and "&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;" in body
    page = client.get("/reprocess/jobs/37/g1/outcome/")
    assert "<html" in page.content.decode() and "resolved by attempt 2" in page.content.decode()


def test_outcome_resolved_by_toqs_callback_when_no_execution_was_collected(
    client: Client, aws: MotoAws, job37: Job, admin_user: AbstractUser, support_user: AbstractUser
) -> None:
    reprocess_job(job=job37, action="resubmit", user=admin_user, reason="retry", idempotency_key="k1")
    Job.objects.filter(pk=job37.pk).update(status="SUCCEEDED", completed_at=timezone.now() + dt.timedelta(minutes=1))
    client.force_login(support_user)
    body = client.get("/reprocess/jobs/37/g1/outcome/", headers=HX).content.decode()
    assert "resolved by attempt 1 (ada)" in body


def test_outcome_not_resolved_yet(
    client: Client,
    aws: MotoAws,
    job37: Job,
    admin_user: AbstractUser,
    engineer_user: AbstractUser,
    django_assert_num_queries: Any,
) -> None:
    reprocess_job(job=job37, action="resubmit", user=admin_user, reason="retry", idempotency_key="k1")
    client.force_login(engineer_user)
    with django_assert_num_queries(5):  # session, user, role, job, actions + requesters (no execution yet)
        body = client.get("/reprocess/jobs/37/g1/outcome/", headers=HX).content.decode()
    assert "Reprocessed 1 time(s); not resolved (yet)." in body and "resolved by" not in body
