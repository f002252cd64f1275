"""Planner page and POST: Admin only (403 otherwise), CSRF, confirmation, reason, one action per key."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client

from jobs.models import Job
from reprocess.models import AuditEntry, ReprocessAction

from .conftest import MotoAws

pytestmark = pytest.mark.django_db
PLAN = "/reprocess/jobs/37/g1/"
RUN = "/reprocess/jobs/37/g1/run/"


def _post(key: str, **extra: str) -> dict[str, str]:
    data = {"action": "resubmit", "reason": "ffmpeg fixed", "confirm": "on", "idempotency_key": key}
    data.update(extra)
    return data


def test_admin_sees_plan(client: Client, aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    client.force_login(admin_user)
    response = client.get(PLAN)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="reprocess-plan"' in html
    assert "toqdash-37-r1" in html
    assert "ProcessingFailed" in html  # redrive: why not
    assert 'value="redrive" disabled' in html

    partial = client.get(PLAN, headers={"HX-Request": "true"})
    assert partial.content.decode().lstrip().startswith('<section id="reprocess-plan">')


@pytest.mark.parametrize("who", ["support_user", "engineer_user"])
def test_non_admins_get_403(client: Client, aws: MotoAws, job37: Job, who: str, request: pytest.FixtureRequest) -> None:
    client.force_login(request.getfixturevalue(who))
    assert client.get(PLAN).status_code == 403
    assert client.post(RUN, _post(uuid.uuid4().hex)).status_code == 403
    assert aws.receive_all() == []
    assert not ReprocessAction.objects.exists()


def test_anonymous_redirected_to_login(client: Client, aws: MotoAws, job37: Job) -> None:
    response = client.get(PLAN)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_post_runs_once_per_key(client: Client, aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    client.force_login(admin_user)
    key = uuid.uuid4().hex

    first = client.post(RUN, _post(key))
    second = client.post(RUN, _post(key))  # double click / retried request

    assert first.status_code == 302 and first["Location"].endswith("/reprocess/jobs/37/g1/#reprocess-history")
    assert second.status_code == 302
    assert ReprocessAction.objects.count() == 1
    assert len(aws.receive_all()) == 1
    page = client.get(PLAN).content.decode()
    assert "ffmpeg fixed" in page and "ada" in page


@pytest.mark.parametrize(
    ("override", "field"), [({"confirm": ""}, "confirm"), ({"reason": ""}, "reason"), ({"action": "delete"}, "action")]
)
def test_post_requires_confirmation_reason_and_valid_action(
    client: Client, aws: MotoAws, job37: Job, admin_user: AbstractUser, override: dict[str, str], field: str
) -> None:
    client.force_login(admin_user)
    data = _post(uuid.uuid4().hex, **override)
    if not override.get("confirm", "on"):
        del data["confirm"]
    response = client.post(RUN, data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert aws.receive_all() == []
    assert not AuditEntry.objects.exists()


def test_ineligible_action_is_refused_with_reason(
    client: Client, aws: MotoAws, job37: Job, admin_user: AbstractUser
) -> None:
    client.force_login(admin_user)
    response = client.post(RUN, _post(uuid.uuid4().hex, action="redrive"), headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "Fail state" in response.content.decode()
    assert not ReprocessAction.objects.exists()


def test_csrf_enforced(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(RUN, _post(uuid.uuid4().hex)).status_code == 403
    assert not ReprocessAction.objects.exists()
