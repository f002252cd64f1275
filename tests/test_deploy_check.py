"""`manage.py check --deploy` is clean with production's environment (and only with it)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "toqdash.settings.base",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "DEBUG": "0",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
}


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing inherited from this test process (toqdash.settings.test puts
    # DATABASE_URL and TOQ_DATABASE_URL into os.environ). A local `.env` (never committed, absent
    # in CI) would still fill in the variables not given here.
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_env():
    result = _check_deploy(PRODUCTION_ENV)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output


def test_check_deploy_flags_the_default_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}

    result = _check_deploy(env)

    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_check_deploy_flags_missing_https_settings():
    result = _check_deploy({**PRODUCTION_ENV, "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0"})

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "security.W004" in output  # no HSTS
    assert "security.W008" in output  # no SSL redirect


def test_check_deploy_flags_debug():
    result = _check_deploy({**PRODUCTION_ENV, "DEBUG": "1"})

    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr
