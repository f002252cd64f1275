"""The README's first command, as a new user runs it: `make run` from a clean clone, then a browser.

Clones the repository's committed HEAD into a temporary directory (in CI that is the submitted
main), runs `make run PORT=<free port>` there — its own virtualenv, requirements.txt only, the
embedded SQLite default, the demo world — and drives Debian's chromium: log in as support, open
job 37, see its diagnosis.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: int = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"make run exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"make run did not serve {url} within {seconds}s:\n{log.read_text()[-4000:]}")


def test_make_run_from_a_clean_clone_shows_job_37_diagnosis(tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import Dialog, sync_playwright

    clone = tmp_path / "toqdash"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port = _free_port()
    log = tmp_path / "make-run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "TOQ_", "DJANGO_", "CELERY_"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: runserver and its reloader stop together
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/accounts/login/", proc, log)
        text = log.read_text()
        assert "support / support-demo" in text  # the logins are printed
        assert not (clone / ".venv" / "lib" / "python3.11" / "site-packages" / "MySQLdb").exists()  # no MySQL driver
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            dialogs: list[str] = []

            def on_dialog(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.goto(f"{base}/")
            page.fill("input[name=username]", "support")
            page.fill("input[name=password]", "support-demo")
            page.click("main button[type=submit]")
            page.wait_for_load_state()
            page.goto(f"{base}/jobs/37/")
            page.wait_for_selector("#job-diagnosis .finding", timeout=30000)
            origin = page.locator("#job-diagnosis article.finding").first
            assert "FM-12" in origin.inner_text()
            assert "ffmpeg-missing" in origin.inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "make_run_job37.png"), full_page=True)
            browser.close()
        assert dialogs == []
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(clone, ignore_errors=True)
