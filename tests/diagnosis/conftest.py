"""Diagnosis fixtures: an own MariaDB database for TOQ's rows (the shared toq_test is used by other
suites running concurrently) and the job-37 AWS exports, copied so a test can edit them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from jobs.sync import toq_sync
from tests.conftest import ToqMySQL

JOB37_AWS = Path(__file__).resolve().parent.parent / "fixtures" / "aws" / "job37"
JOB37_EXECUTION = "258c102b-4bc5-4a36-9b51-f432df114aa4"


@pytest.fixture
def toq_db() -> Iterator[ToqMySQL]:
    """TOQ's schema in our own MariaDB database, with the `toq` alias pointing at it."""
    original = connections.settings["toq"]
    # Derived from the toq alias so concurrent runs with their own TOQ_DATABASE_URL never share it.
    name = f"{original['NAME']}_diag"
    db = ToqMySQL(name)
    db.reset(with_created_at=True)
    connections.settings["toq"] = {**original, "NAME": name}
    try:
        yield db
    finally:
        connections.settings["toq"] = original
        db.close()


def sync() -> None:
    result = toq_sync()
    assert result.ok, result.summary()


@pytest.fixture
def aws_copy(tmp_path: Path) -> Path:
    """A writable copy of the job-37 AWS CLI exports."""
    target = tmp_path / "job37"
    shutil.copytree(JOB37_AWS, target)
    return target


def aws_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.suffix in (".json", ".jsonl"))


def import_aws(root: Path) -> None:
    call_command("import_aws", *aws_files(root), stdout=StringIO())


def diagnose_json(job_id: int, *extra: str) -> dict[str, Any]:
    out = StringIO()
    call_command("diagnose", str(job_id), "--json", *extra, stdout=out)
    text = out.getvalue()
    data = json.loads(text)  # exactly one JSON object: json.loads rejects trailing content
    assert isinstance(data, dict)
    return data


def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text())
    result = change(data)
    path.write_text(json.dumps(data if result is None else result, indent=2))


def replace_text(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new))


def roles(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["failure_mode"], f["cause"], f["role"]) for f in data["findings"]]


# --- scenarios through the real path (tests/diagnosis/scenario_world.py) ---------------------------


@pytest.fixture(scope="session")
def scenario_servers() -> Iterator[Any]:
    """moto and the fake AWS endpoint, started once for all scenarios."""
    from tests.diagnosis.scenario_world import start_servers

    servers = start_servers()
    yield servers
    servers.stop()


@pytest.fixture
def scenario(scenario_servers: Any, toq_db: ToqMySQL, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Any:
    """An empty world (TOQ rows in our MariaDB database, AWS state reset) to build a scenario in."""
    from tests.diagnosis.scenario_world import Scenario, configure

    configure(scenario_servers, monkeypatch, settings)
    return Scenario(scenario_servers, toq_db)
