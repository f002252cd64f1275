"""Planner: eligibility and why not, the exact requests, side effects and warnings."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from awslogs.models import Execution, HistoryEvent
from jobs.models import Job, Listing
from reprocess.models import ReprocessAction
from reprocess.planner import plan_reprocess, redrive_eligibility
from tests.jobs.factories import make_job, make_job37, make_user

from .conftest import INPUT_37, add_execution

NOW = dt.datetime(2026, 1, 20, 12, 0, tzinfo=dt.UTC)
SM = "arn:aws:states:us-east-1:123456789012:stateMachine:listing-media-processing-sm-staging"


def _eligible(**kwargs: object) -> list[str]:
    values: dict[str, object] = {
        "status": "FAILED",
        "stop_date": NOW - dt.timedelta(days=3),
        "history_event_count": 40,
        "ended_in_fail_state": False,
        "now": NOW,
    }
    values.update(kwargs)
    return redrive_eligibility(**values)  # type: ignore[arg-type]


def test_redrive_failed_recent_execution_is_eligible() -> None:
    assert _eligible() == []
    assert _eligible(status="TIMED_OUT") == []
    assert _eligible(status="ABORTED", stop_date=NOW - dt.timedelta(days=14)) == []


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"status": "SUCCEEDED"}, "this one is SUCCEEDED"),
        ({"status": "RUNNING", "stop_date": None}, "this one is RUNNING"),
        ({"stop_date": NOW - dt.timedelta(days=14, seconds=1)}, "more than 14 days"),
        ({"stop_date": None}, "does not know when"),
        ({"history_event_count": 24_999}, "event limit"),
        ({"ended_in_fail_state": True}, "ProcessingFailed"),
        ({"redrive_status": "NOT_REDRIVABLE", "redrive_status_reason": "Execution has exhausted"}, "exhausted"),
    ],
)
def test_redrive_refusals(kwargs: dict[str, object], needle: str) -> None:
    reasons = _eligible(**kwargs)
    assert len(reasons) == 1 and needle in reasons[0]


@pytest.mark.django_db
def test_plan_for_job37() -> None:
    job = make_job37()
    add_execution(job, state_machine_arn=SM)
    HistoryEvent.objects.create(execution=Execution.objects.get(), event_id=30, type="FailStateEntered", details={})

    plan = plan_reprocess(job, make_user("ada", "Admin"))

    assert plan.attempt == 1
    resubmit, rerun, redrive = (plan.actions[a] for a in ("resubmit", "rerun", "redrive"))
    assert resubmit.eligible and rerun.eligible and not redrive.eligible
    assert json.loads(resubmit.request["MessageBody"])["assets"] == json.loads(INPUT_37)["assets"]
    assert rerun.request == {
        "operation": "StepFunctions.StartExecution",
        "stateMachineArn": SM,
        "name": "toqdash-37-r1",
        "input": INPUT_37,
    }
    assert any("MediaConvert" in s for s in resubmit.side_effects)
    assert any("Fail state" in r for r in redrive.reasons)
    assert plan.warnings == []  # listing 16 is in status 6, nothing running


@pytest.mark.django_db
def test_plan_without_execution_and_for_finalization() -> None:
    job = make_job(60, status="FAILED", kind="finalization", provider="STEP_FUNCTIONS_FINALIZATION")

    plan = plan_reprocess(job)

    assert not plan.actions["resubmit"].eligible
    assert any("finalization" in r.lower() for r in plan.actions["resubmit"].reasons)
    assert any("not collected" in r for r in plan.actions["rerun"].reasons)
    assert not plan.actions["redrive"].eligible


@pytest.mark.django_db
def test_plan_warnings() -> None:
    job: Job = make_job37()
    Listing.objects.filter(toq_id=16).update(listing_status=7)
    add_execution(job, state_machine_arn=SM, arn=SM.replace("stateMachine", "execution") + ":other", status="RUNNING")
    admin = make_user("ada", "Admin")
    ReprocessAction.objects.create(
        job=job,
        action="resubmit",
        idempotency_key="k",
        attempt=1,
        requested_by=admin,  # type: ignore[misc]
        reason="r",
    )

    plan = plan_reprocess(job)

    text = " ".join(plan.warnings)
    assert "still running: other" in text
    assert "waiting for AWS" in text
    assert "status 7 PENDING_OWNER_APPROVAL" in text
    assert plan.attempt == 2
