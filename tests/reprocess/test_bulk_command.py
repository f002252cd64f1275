"""manage.py reprocess_bulk: the bulk preview and batch from a shell, through the same services."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.management import CommandError, call_command

from reprocess.models import Batch, BatchState
from tests.jobs.factories import make_listing

from .conftest import MotoAws, make_failed_job, make_finalization_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(aws: MotoAws) -> None:
    make_listing(16)
    for toq_id in (101, 102):
        make_failed_job(aws, toq_id)
    make_finalization_job(103)


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("reprocess_bulk", *args, stdout=out)
    return out.getvalue()


BASE = ("--action", "resubmit", "--name", "cli batch", "--reason", "layer back", "--user", "ada")


def test_foreground_batch_with_yes(
    world: None, aws: MotoAws, admin_user: AbstractUser, started_runs: list[int]
) -> None:
    out = _run("--filter", "status=FAILED", *BASE, "--rate", "600", "--yes", "--foreground")

    assert "jobs: 3, eligible: 2, not eligible: 1" in out
    assert "1 not eligible: Only processing jobs go through TOQ's queue" in out
    batch = Batch.objects.get()
    assert f"batch {batch.pk} finished: pending 0, done 2, skipped 1, failed 0" in out
    assert batch.state == BatchState.FINISHED and batch.created_by == admin_user
    assert sorted(json.loads(m["Body"])["jobId"] for m in aws.receive_all()) == [101, 102]


def test_same_key_twice_is_one_batch(world: None, admin_user: AbstractUser, started_runs: list[int]) -> None:
    args = ("--filter", "status=FAILED", *BASE, "--yes", "--idempotency-key", "cli-1")
    _run(*args)
    _run(*args)
    assert Batch.objects.count() == 1


def test_confirmation_and_refusals(
    world: None,
    admin_user: AbstractUser,
    engineer_user: AbstractUser,
    monkeypatch: pytest.MonkeyPatch,
    started_runs: list[int],
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="pass --yes"):
        _run("--filter", "status=FAILED", *BASE)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers: list[str] = []

    def no(prompt: str) -> str:
        answers.append(prompt)
        return "n"

    monkeypatch.setattr("builtins.input", no)
    with pytest.raises(CommandError, match="cancelled"):
        _run("--filter", "status=FAILED", *BASE)
    assert answers == ["Act on 2 jobs? [y/N] "]
    with pytest.raises(CommandError, match="refused"):
        _run("--filter", "status=FAILED", *BASE[:-1], "eng", "--yes")
    with pytest.raises(CommandError, match="no batch: No job matches"):
        _run("--group", "999", *BASE, "--yes")
    assert not Batch.objects.exists()
