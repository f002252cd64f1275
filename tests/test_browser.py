"""The job list and job page in a real browser (Debian's chromium driven by Playwright).

Support logs in, filters FAILED jobs, opens the job-37-like job, reads its error, adds a note
(htmx POST with the CSRF header from <body hx-headers>) and switches to Portuguese. XSS payloads
in a file name, a last_error and a callback body must stay inert: no dialog, no injected element,
and no Content-Security-Policy violation (which would mean inline code in a template).
Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobs.models import JobNote
from jobs.roles import SUPPORT
from tests.jobs.factories import XSS, make_job, make_job37, make_user

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium_path() -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)", pytrace=False)
    return str(CHROMIUM)


def test_support_filters_opens_job_37_adds_a_note_and_switches_language(live_server, chromium_path):
    from playwright.sync_api import Dialog, expect, sync_playwright

    # Rows first: the ORM must not run while Playwright's event loop owns this thread.
    make_job37(xss=True)
    make_job(38, status="SUCCEEDED", listing_identity_id=18)
    make_job(50, status="FAILED", listing_identity_id=18, last_error=XSS)
    make_user("support", SUPPORT)
    ARTIFACTS.mkdir(exist_ok=True)

    dialogs: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def on_dialog(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            page.goto(live_server.url + "/")
            expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
            page.fill("#id_username", "support")
            page.fill("#id_password", "pw-support")
            page.click("main button[type=submit]")
            expect(page.locator("h1")).to_have_text("Jobs")
            expect(page.locator("#job-row-38")).to_be_visible()

            page.select_option("#id_status", "FAILED")
            page.click("text=Apply filters")
            expect(page).to_have_url(re.compile(r"status=FAILED"))  # hx-push-url: shareable
            expect(page.locator("#job-row-38")).to_have_count(0)
            expect(page.locator("#job-row-37")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "job_list_failed.png"), full_page=True)

            page.click("#job-row-37 a")
            expect(page.locator("h1")).to_contain_text("Job 37")
            expect(page.locator("#job-callback")).to_contain_text("DERIVATIVE_ERRORS_DETECTED")
            expect(page.locator("#job-assets")).to_contain_text("<script>alert")  # shown as text
            assert page.locator("#xss-img").count() == 0, "an XSS payload became an element"

            page.fill("#id_text", "Checked with the photographer: 90 s vertical video.")
            page.click("text=Add note")
            expect(page.locator("#job-notes")).to_contain_text("90 s vertical video")
            expect(page.locator("#job-notes")).to_contain_text("support")
            page.screenshot(path=str(ARTIFACTS / "job_detail.png"), full_page=True)

            page.select_option("#language-select", "pt-br")  # app.js submits the form
            expect(page.locator("h1")).to_contain_text("Tarefa 37")
            expect(page.locator("#job-notes h2")).to_have_text("Notas")
            page.screenshot(path=str(ARTIFACTS / "job_detail_pt_br.png"), full_page=True)
            page.goto(live_server.url + "/?status=FAILED")
            expect(page.locator("h1")).to_have_text("Tarefas")
            page.screenshot(path=str(ARTIFACTS / "job_list_pt_br.png"), full_page=True)

            # After an htmx filter (URL pushed), switching language comes back to that URL.
            page.select_option("#id_kind", "processing")
            page.click("text=Aplicar filtros")
            expect(page).to_have_url(re.compile(r"kind=processing"))
            page.select_option("#language-select", "en")
            expect(page.locator("h1")).to_have_text("Jobs")
            expect(page).to_have_url(re.compile(r"status=FAILED.*kind=processing|kind=processing.*status=FAILED"))

            assert page.locator("#xss-img").count() == 0
        finally:
            browser.close()

    assert dialogs == [], f"a JavaScript dialog fired (XSS): {dialogs}"
    assert errors == [], f"console errors (CSP violations or script errors): {errors}"
    assert JobNote.objects.get().text == "Checked with the photographer: 90 s vertical video."
