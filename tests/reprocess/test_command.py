"""manage.py reprocess: the same service and checks; confirmation on a terminal, --yes otherwise."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.management import CommandError, call_command

from jobs.models import Job
from reprocess.models import AuditEntry, ReprocessAction

from .conftest import MotoAws

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("reprocess", *args, stdout=out)
    return out.getvalue()


def test_happy_path_with_yes(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    out = _run("37", "--action", "resubmit", "--reason", "ffmpeg back", "--user", "ada", "--yes")

    assert "attempt 1: succeeded" in out
    assert '"retry":1' in out  # the plan printed the exact message
    (message,) = aws.receive_all()
    assert json.loads(message["Body"])["jobId"] == 37
    entry = AuditEntry.objects.filter(event="succeeded").get()
    assert (entry.actor_username, entry.reason) == ("ada", "ffmpeg back")


def test_confirmation_on_a_terminal(
    aws: MotoAws, job37: Job, admin_user: AbstractUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    with pytest.raises(CommandError, match="cancelled"):
        _run("37", "--action", "rerun", "--reason", "r", "--user", "ada")
    assert not ReprocessAction.objects.exists()

    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert "attempt 1: succeeded" in _run("37", "--action", "rerun", "--reason", "r", "--user", "ada")
    assert [e["name"] for e in aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]] == [
        "toqdash-37-r1"
    ]


def test_non_tty_without_yes_refuses(
    aws: MotoAws, job37: Job, admin_user: AbstractUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="pass --yes"):
        _run("37", "--action", "resubmit", "--reason", "r", "--user", "ada")
    assert aws.receive_all() == []
    assert not ReprocessAction.objects.exists()


def test_engineer_refused(aws: MotoAws, job37: Job, engineer_user: AbstractUser) -> None:
    with pytest.raises(CommandError, match="refused"):
        _run("37", "--action", "resubmit", "--reason", "r", "--user", "eng", "--yes")
    assert aws.receive_all() == []


def test_ineligible_redrive_refused(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    with pytest.raises(CommandError, match="not eligible.*Fail state"):
        _run("37", "--action", "redrive", "--reason", "r", "--user", "ada", "--yes")


def test_same_idempotency_key_acts_once(aws: MotoAws, job37: Job, admin_user: AbstractUser) -> None:
    args = ("37", "--action", "resubmit", "--reason", "r", "--user", "ada", "--yes", "--idempotency-key", "cli-1")
    _run(*args)
    _run(*args)
    assert ReprocessAction.objects.count() == 1
    assert len(aws.receive_all()) == 1
