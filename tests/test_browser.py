"""The job list and job page in a real browser (Debian's chromium driven by Playwright).

Support logs in, filters FAILED jobs, opens the job-37-like job, reads its error, adds a note
(htmx POST with the CSRF header from <body hx-headers>) and switches to Portuguese. XSS payloads
in a file name, a last_error and a callback body must stay inert: no dialog, no injected element,
and no Content-Security-Policy violation (which would mean inline code in a template).
Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.utils import timezone

from diagnosis.groups import failure_groups_refresh
from diagnosis.models import FailureGroup, Finding, GroupNote
from jobs import selectors
from jobs.models import JobNote
from jobs.roles import ENGINEER, SUPPORT
from tests.awslogs.conftest import moto_server, reset_moto  # noqa: F401 (the moto server fixture, for the S3 previews)
from tests.conftest import TOQ_DATABASES
from tests.jobs.factories import XSS, make_job, make_job37, make_user
from tests.jobs.test_views_groups import SERVER_LINE_37, diagnosed
from tests.test_demo import build_demo_world

if TYPE_CHECKING:
    from playwright.sync_api import Page

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


@contextmanager
def browser_page(chromium_path: str) -> Iterator[Page]:
    """A page of Debian's chromium. The console errors it logs (CSP violations, script errors) must
    be none when the block ends."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page
        finally:
            browser.close()
    assert errors == [], f"console errors (CSP violations or script errors): {errors}"


def log_in(page: Page, url: str, username: str, password: str) -> None:
    """Open `url` (the login page comes first) and log in."""
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")


def test_support_filters_opens_job_37_adds_a_note_and_switches_language(live_server, chromium_path):
    from playwright.sync_api import Dialog, expect

    # Rows first: the ORM must not run while Playwright's event loop owns this thread.
    make_job37(xss=True)
    make_job(38, status="SUCCEEDED", listing_identity_id=18)
    make_job(50, status="FAILED", listing_identity_id=18, last_error=XSS)
    make_user("support", SUPPORT)
    ARTIFACTS.mkdir(exist_ok=True)

    dialogs: list[str] = []
    with browser_page(chromium_path) as page:

        def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)

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

    assert dialogs == [], f"a JavaScript dialog fired (XSS): {dialogs}"
    assert JobNote.objects.get().text == "Checked with the photographer: 90 s vertical video."


@pytest.mark.django_db(databases=TOQ_DATABASES, transaction=True)
def test_job_37_evidence_panels_diagnosis_timeline_evidence_link_and_portuguese(
    live_server, chromium_path, tmp_path, monkeypatch
):
    """The demo world's job 37 (real sync, import_aws and diagnosis): the panels load lazily, the
    timeline is drawn by charts.js, an evidence link lands on its log line / history row (:target),
    and the finding reads in Portuguese after the language switch."""
    from playwright.sync_api import expect

    build_demo_world(tmp_path)
    make_user("support", SUPPORT)
    origin = Finding.objects.get(diagnosis__job__toq_id=37, failure_mode="FM-12")
    log_anchor = next(
        selectors.log_anchor(e["id"])
        for e in origin.evidence
        if e["kind"] == "log_event" and "video_thumbnails" in e["source"]
    )
    history_anchor = next(
        selectors.history_anchor(e["source"], e["id"]) for e in origin.evidence if e["kind"] == "history_event"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    # Small history pages: the history evidence row (event 27 of 47) is on page 3, so its link must
    # load that page of the panel first (app.js) — the 25,000-event case in miniature.
    monkeypatch.setattr(selectors, "HISTORY_PAGE_SIZE", 10)

    with browser_page(chromium_path) as page:
        log_in(page, live_server.url + "/jobs/37/", "support", "pw-support")
        expect(page.locator("h1")).to_contain_text("Job 37")

        diagnosis = page.locator("#job-diagnosis")
        expect(diagnosis.locator(".finding").first).to_contain_text("FM-12")
        expect(diagnosis.locator(".finding").first).to_contain_text("ffmpeg-missing")
        expect(diagnosis.locator(".finding").first.locator(".badge.role-origin")).to_have_text("Origin")
        # plotly drew the figure from json_script (charts.js, no inline script)
        expect(page.locator("#job-timeline .chart svg.main-svg").first).to_be_visible()
        expect(page.locator("#job-timeline .chart")).to_contain_text("ConsolidateResults")
        expect(page.locator(f"#{log_anchor}")).to_have_class(re.compile(r"\bevidence\b"))
        page.screenshot(path=str(ARTIFACTS / "job37_panels.png"), full_page=True)
        page.locator("#job-timeline").screenshot(path=str(ARTIFACTS / "job37_timeline.png"))
        diagnosis.screenshot(path=str(ARTIFACTS / "job37_diagnosis.png"))

        diagnosis.locator(f'a.evidence-link[href="#{log_anchor}"]').first.click()
        expect(page).to_have_url(re.compile(f"#{log_anchor}$"))
        target = page.locator(":target")
        expect(target).to_have_attribute("id", log_anchor)
        expect(target).to_be_in_viewport()
        expect(target).to_contain_text("Video thumbnail generation failed")
        page.screenshot(path=str(ARTIFACTS / "job37_evidence_log_line.png"))

        expect(page.locator("#job-history-raw")).to_contain_text("page 1 of 5")
        assert page.locator(f"#{history_anchor}").count() == 0
        diagnosis.locator(f'a.evidence-link[href="#{history_anchor}"]').first.click()
        expect(page.locator("#job-history-raw")).to_contain_text("page 3 of 5")
        expect(page.locator(":target")).to_have_attribute("id", history_anchor)
        expect(page.locator(":target")).to_be_in_viewport()
        page.screenshot(path=str(ARTIFACTS / "job37_evidence_history_row.png"))

        page.select_option("#language-select", "pt-br")  # app.js submits the form
        expect(page.locator("h1")).to_contain_text("Tarefa 37")
        first = page.locator("#job-diagnosis .finding").first
        expect(first.locator(".finding-title")).to_have_text(origin.title_pt_br)
        expect(first.locator(".badge.role-origin")).to_have_text("Origem")
        expect(page.locator("#job-timeline .chart svg.main-svg").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "job37_panels_pt_br.png"), full_page=True)


@pytest.mark.django_db(databases=TOQ_DATABASES, transaction=True)
def test_failure_groups_overview_and_lookup(live_server, chromium_path, tmp_path):
    """An engineer follows the nav to the failure groups (sparklines drawn by charts.js), opens job
    37's group, adds a note (htmx POST + CSRF), opens the overview (stacked bars drawn) and pastes
    the job-37 server log line into the lookup box, which lands on job 37's page."""
    from playwright.sync_api import expect

    build_demo_world(tmp_path)
    diagnosed(900, fm="FM-05", cause="queue-lost", when=timezone.now())  # a recent failure to draw
    failure_groups_refresh()
    group = FailureGroup.objects.get(failure_mode="FM-12", cause="ffmpeg-missing")
    make_user("eng", ENGINEER)
    ARTIFACTS.mkdir(exist_ok=True)

    with browser_page(chromium_path) as page:
        log_in(page, live_server.url + "/", "eng", "pw-eng")
        page.click("header nav >> text=Failure groups")
        expect(page.locator("h1")).to_have_text("Failure groups")
        expect(page.locator(f"#group-row-{group.pk} .chart svg.main-svg").first).to_be_attached()
        page.screenshot(path=str(ARTIFACTS / "failure_groups.png"), full_page=True)

        page.click(f"#group-row-{group.pk} td:nth-child(3) a")
        expect(page.locator("#group-jobs")).to_contain_text("37")
        page.fill("#group-notes textarea", "ffmpeg layer missing since the 2026-01 deploy")
        page.click("#group-notes button[type=submit]")
        expect(page.locator("#group-notes .note-text")).to_have_text("ffmpeg layer missing since the 2026-01 deploy")
        page.screenshot(path=str(ARTIFACTS / "failure_group_detail.png"), full_page=True)
        page.click("#group-jobs a >> text=37")
        expect(page.locator("h1")).to_contain_text("Job 37")

        page.click("header nav >> text=Overview")
        expect(page.locator("#overview-failures .chart svg.main-svg").first).to_be_visible()
        expect(page.locator("#overview-failures .chart")).to_contain_text("FM-05")
        expect(page.locator("#overview-durations")).to_contain_text(
            "Duration per state (state visits of the last 30 days)"
        )
        page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

        page.click("header nav >> text=Jobs")
        page.fill("#id_q", SERVER_LINE_37)
        page.click("#job-lookup button[type=submit]")
        expect(page).to_have_url(re.compile(r"/jobs/37/g1/$"))
        expect(page.locator("h1")).to_contain_text("Job 37")

    assert GroupNote.objects.get(group=group).text == "ffmpeg layer missing since the 2026-01 deploy"


def _png_1x1() -> bytes:
    """A valid 1×1 PNG (no image library needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


@pytest.mark.django_db(transaction=True)
def test_disagreement_banner_console_links_and_a_presigned_preview_under_the_csp(
    live_server,
    chromium_path,
    moto_server,  # noqa: F811
    monkeypatch,
):
    """The job page says loudly that TOQ and AWS disagree; the derivatives panel shows the thumbnail
    through a presigned URL of the configured S3 endpoint (moto), which the CSP lets load, and a
    console link opens in a new tab without a referrer."""
    import boto3
    from playwright.sync_api import expect

    from awslogs.models import DerivativeCheck, EvidenceStatus, Execution, MediaConvertJob

    for name, value in (("AWS_ENDPOINT_URL", moto_server), ("AWS_ACCESS_KEY_ID", "t"), ("AWS_SECRET_ACCESS_KEY", "t")):
        monkeypatch.setenv(name, value)
    s3 = boto3.client(
        "s3", region_name="us-east-1", endpoint_url=moto_server, aws_access_key_id="t", aws_secret_access_key="t"
    )
    key = "16/processed/photo/horizontal/thumbnail/IMG 2907 <b>é.png"
    reset_moto(moto_server)  # the session's server: whatever earlier tests left is gone
    s3.create_bucket(Bucket="toq-listing-medias")
    s3.put_object(Bucket="toq-listing-medias", Key=key, Body=_png_1x1(), ContentType="image/png")

    now = timezone.now()
    arn = "arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:e-77"
    job = make_job(77, status="SUCCEEDED", external_id=arn, completed_at=now - timedelta(hours=1))
    execution = Execution.objects.create(arn=arn, name="e-77", job=job, found_via="external_id", status="SUCCEEDED")
    MediaConvertJob.objects.create(job_id="1767-mc", execution=execution, status="ERROR", error_message=XSS)
    DerivativeCheck.objects.create(job=job, raw_key="16/raw/a", key=key, kind="thumbnail", outcome="present", size=70)
    EvidenceStatus.objects.create(job=job, complete=True, job_row_hash=str(job.row_hash), collected_at=now)
    make_user("support", SUPPORT)

    try:
        with browser_page(chromium_path) as page:
            log_in(page, live_server.url + "/jobs/77/", "support", "pw-support")
            banner = page.locator("#job-disagreements .disagreement-mediaconvert-failed")
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("MediaConvert job 1767-mc ended ERROR")
            expect(banner).to_contain_text("<script>alert")  # AWS text shown as text
            assert page.locator("#xss-img").count() == 0

            preview = page.locator("#job-derivatives img.preview")
            expect(preview).to_have_attribute("loading", "lazy")
            preview.scroll_into_view_if_needed()
            page.wait_for_function("document.querySelector('#job-derivatives img.preview').complete")
            assert preview.evaluate("img => img.naturalWidth") == 1, "the preview did not load (CSP img-src?)"
            assert preview.get_attribute("src").startswith(moto_server + "/toq-listing-medias/16/processed/")
            page.screenshot(path=str(ARTIFACTS / "job_disagreement_preview.png"), full_page=True)

            link = page.locator("#job-aws a", has_text="e-77")
            expect(link).to_have_attribute("rel", "noopener noreferrer")
            expect(link).to_have_attribute("target", "_blank")
    finally:
        reset_moto(moto_server)
