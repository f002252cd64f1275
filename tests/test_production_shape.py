"""Production shape: the Dockerfile (hadolint, and its probe and static files run for real against
gunicorn), docker-compose.yml, and `.env.example` covering every variable the settings read.

Docker itself is not available where the suite runs, so the image is checked in parts: hadolint
on the Dockerfile, then the image's own steps (collectstatic with whitenoise's manifest storage,
gunicorn serving toqdash.wsgi, the HEALTHCHECK command) run from the virtualenv with the image's
environment.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML: a dependency of moto[server] (requirements-dev.txt)
from django.conf import settings
from django.db import connections

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DOCKERFILE = REPO / "Dockerfile"
HADOLINT_CONFIG = REPO / ".hadolint.yaml"


def _hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--config", str(HADOLINT_CONFIG), str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _instructions(path: Path) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in _instructions(DOCKERFILE):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    result = _hadolint(DOCKERFILE)

    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_still_fails_a_bad_dockerfile(tmp_path):
    # The config must not silence hadolint wholesale (failure threshold, blanket ignores).
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nUSER root\n")

    result = _hadolint(bad)

    assert result.returncode != 0
    for rule in ("DL3007", "DL3009", "DL3015", "DL3002"):
        assert rule in result.stdout, result.stdout


def test_every_ignored_hadolint_rule_has_a_written_reason():
    lines = HADOLINT_CONFIG.read_text().splitlines()
    ignored = yaml.safe_load(HADOLINT_CONFIG.read_text()).get("ignored", [])
    assert ignored, "expected the DL3008 ignore and its reason"
    for rule in ignored:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {rule}")
        reason = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            reason.append(line)
        assert len(" ".join(reason)) > 60, f"{rule} is ignored without a reason"


def test_dockerfile_is_multi_stage_non_root_gunicorn():
    builder, runtime = _stages()
    builder_text = " ".join(args for _, args in builder)
    runtime_text = " ".join(args for _, args in runtime)

    assert builder[0][1].endswith(" AS builder")
    # Build deps only in the builder; the runtime has only the client library.
    for build_dep in ("default-libmysqlclient-dev", "gcc", "pkg-config"):
        assert build_dep in builder_text
        assert build_dep not in runtime_text
    assert "-r requirements.txt -r requirements-mysql.txt" in builder_text
    assert "libmariadb3" in runtime_text
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    assert "collectstatic --noinput" in runtime_text
    assert "STATICFILES_BACKEND=whitenoise.storage.CompressedManifestStaticFilesStorage" in runtime_text

    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    # The user switch comes after every RUN (those need root) and before the CMD.
    keywords = [keyword for keyword, _ in runtime]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")

    cmd = json.loads(dict(runtime)["CMD"])
    assert cmd[:2] == ["gunicorn", "toqdash.wsgi"]
    assert "/healthz" in dict(runtime)["HEALTHCHECK"]


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}

    assert {".env", ".git", ".venv", "var"} <= ignored


def _healthcheck_code() -> str:
    """The Python program of the image's HEALTHCHECK (exec form: ["python", "-c", code])."""
    _, runtime = _stages()
    args = dict(runtime)["HEALTHCHECK"]
    exec_form = json.loads(args[args.index("CMD ") + len("CMD ") :])
    assert exec_form[:2] == ["python", "-c"]
    return str(exec_form[2])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_url(settings_dict: dict[str, Any]) -> str:
    assert settings_dict["ENGINE"] == "django.db.backends.postgresql"
    assert settings_dict["NAME"].startswith("test_"), "gunicorn must use pytest-django's test database"
    password = f":{settings_dict['PASSWORD']}" if settings_dict["PASSWORD"] else ""
    return (
        f"postgres://{settings_dict['USER']}{password}@{settings_dict['HOST'] or '127.0.0.1'}"
        f":{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
    )


@pytest.fixture
def image_env(db, tmp_path) -> dict[str, str]:
    """The environment the image runs with (its ENV lines plus production's), against the test DB."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "toqdash.settings.base",
            "STATIC_ROOT": str(tmp_path / "staticfiles"),
            "STATICFILES_BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
            "DATABASE_URL": _database_url(connections["default"].settings_dict),
            "TOQ_DATABASE_URL": "",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "0",
            "ALLOWED_HOSTS": "toqdash.example.com,.internal.example.com",
            "SESSION_COOKIE_SECURE": "1",
            "CSRF_COOKIE_SECURE": "1",
            "SECURE_SSL_REDIRECT": "1",
            "SECURE_HSTS_SECONDS": "31536000",
            "BEHIND_TLS_PROXY": "1",
        }
    )
    return env


def _collectstatic(env: dict[str, str]) -> None:
    """The image build's `collectstatic` step: only the image's ENV, no secret, no database."""
    build_env: dict[str, str] = {
        key: env[key]
        for key in ("PATH", "HOME", "LANG", "DJANGO_SETTINGS_MODULE", "STATIC_ROOT", "STATICFILES_BACKEND")
        if key in env
    }
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=REPO,
        env=build_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collect.returncode == 0, collect.stdout + collect.stderr


@contextmanager
def _gunicorn(env: dict[str, str]) -> Iterator[int]:
    """The image's CMD (gunicorn toqdash.wsgi), on a free port; yields the port."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "toqdash.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"gunicorn did not start: {proc.communicate()[1]}")
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run_healthcheck(port: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK program, verbatim but for the port."""
    code = _healthcheck_code()
    assert "127.0.0.1:8000" in code
    return subprocess.run(
        [sys.executable, "-c", code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _get(port: int, path: str, host: str, extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host, **(extra or {})})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.slow
def test_image_healthcheck_and_static_files_under_gunicorn(image_env):
    _collectstatic(image_env)
    with _gunicorn(image_env) as port:
        # Passes with production's ALLOWED_HOSTS and SECURE_SSL_REDIRECT on.
        probe = _run_healthcheck(port, image_env)
        assert probe.returncode == 0, probe.stderr

        # Why the probe sets Host, and why /healthz is exempt from the HTTPS redirect:
        assert _get(port, "/healthz", "127.0.0.1")[0] == 400  # DisallowedHost
        status, headers, _ = _get(port, "/", "toqdash.example.com")
        assert status == 301
        assert headers["Location"].startswith("https://")
        status, _, body = _get(port, "/healthz", "toqdash.example.com")
        assert status == 200
        assert json.loads(body)["ok"] is True

        # whitenoise serves the hashed, compressed files collectstatic wrote.
        static_root = Path(image_env["STATIC_ROOT"])
        hashed = json.loads((static_root / "staticfiles.json").read_text())["paths"]["css/toqdash.css"]
        assert hashed != "css/toqdash.css"
        assert (static_root / f"{hashed}.gz").is_file()
        # Through the TLS proxy, as in production (plain HTTP is redirected like any page).
        status, headers, _ = _get(port, f"/static/{hashed}", "toqdash.example.com", {"X-Forwarded-Proto": "https"})
        assert status == 200
        assert "immutable" in headers["Cache-Control"]


@pytest.mark.slow
def test_image_healthcheck_fails_when_broker_is_down(image_env):
    image_env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    _collectstatic(image_env)
    with _gunicorn(image_env) as port:
        probe = _run_healthcheck(port, image_env)

    assert probe.returncode != 0
    assert "HTTP Error 503" in probe.stderr


# --- docker-compose.yml ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_the_production_services(compose):
    services = compose["services"]

    assert {"web", "worker", "beat", "postgres", "redis", "migrate"} <= set(services)
    # TOQ's MySQL is external: no MySQL service, its URL comes from the environment.
    assert not any(
        "mysql" in str(s.get("image", "")) or "mariadb" in str(s.get("image", "")) for s in services.values()
    )
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["TOQ_DATABASE_URL"].startswith("${TOQ_DATABASE_URL:?")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")


def test_compose_commands(compose):
    services = compose["services"]

    assert "command" not in services["web"]  # the image's CMD: gunicorn toqdash.wsgi
    assert services["worker"]["command"][:4] == ["celery", "-A", "toqdash", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "toqdash", "beat"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_compose_healthchecks(compose):
    services = compose["services"]

    for name in ("postgres", "redis", "worker"):
        assert services[name]["healthcheck"]["test"], name
    # web keeps the image's HEALTHCHECK (/healthz); the others must not inherit an HTTP probe.
    assert "healthcheck" not in services["web"]
    assert services["beat"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["healthcheck"] == {"disable": True}


# --- .env.example ---------------------------------------------------------------------------------

# env("X"), env.str("X", ...), env.bool(, env.int(, env.list(, env.db_url(, env.json( ... and os.environ.
_ENV_READ = re.compile(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
_OS_READ = re.compile(r"""os\.(?:environ\.get|getenv|environ\[)\(?\s*["']([A-Z][A-Z0-9_]*)["']""")
# Read by libraries, not by our settings, but part of the configuration.
_READ_ELSEWHERE = {"AWS_ENDPOINT_URL"}


def _settings_variables() -> set[str]:
    source = (REPO / "toqdash" / "settings" / "base.py").read_text()
    return set(_ENV_READ.findall(source)) | set(_OS_READ.findall(source))


def _env_example_variables() -> set[str]:
    # `X=value` or, for variables unset by default, a commented example `# X=value`.
    text = (REPO / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_settings_scan_finds_the_known_variables():
    # Guards the scan itself: a broken regex would make the next test pass vacuously.
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "TOQ_DATABASE_URL", "STATICFILES_BACKEND"} <= _settings_variables()


def test_env_example_lists_every_variable_the_settings_read():
    missing = (_settings_variables() | _READ_ELSEWHERE) - _env_example_variables()

    assert not missing, f".env.example lacks {sorted(missing)}"
