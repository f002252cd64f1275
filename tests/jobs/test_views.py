"""Job list and job page on mirror data: filters, keyset pages, counts, CSV, htmx, notes, escaping."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone

from jobs import selectors
from jobs.models import Job, JobNote
from jobs.roles import SUPPORT
from tests.jobs.factories import XSS, make_asset, make_job, make_job37, make_listing, make_user, utc

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}
LIST = "/"


@pytest.fixture
def support(client):
    user = make_user("sam", SUPPORT)
    client.force_login(user)
    return user


def _ids(response) -> list[int]:
    return [j.toq_id for j in response.context["page"].jobs]


# --- list: filters, sort, pages, counts -----------------------------------------------------------


def test_list_filters_by_status_kind_listing_and_error(client, support):
    make_job37()
    make_job(36, status="SUCCEEDED", listing_identity_id=15)
    make_job(40, status="PENDING", provider="STEP_FUNCTIONS_FINALIZATION", listing_identity_id=18)
    make_job(
        41, status="FAILED", listing_identity_id=18, last_error="reconciler marked failed after 2h without callback"
    )

    assert _ids(client.get(LIST)) == [41, 40, 37, 36]
    assert _ids(client.get(LIST, {"status": "FAILED"})) == [41, 37]
    assert _ids(client.get(LIST, {"kind": "finalization"})) == [40]
    assert _ids(client.get(LIST, {"listing": "18"})) == [41, 40]
    assert _ids(client.get(LIST, {"error": "errorstring"})) == [37]  # callback_error_code, any case
    assert _ids(client.get(LIST, {"error": "without callback"})) == [41]  # inside last_error
    assert _ids(client.get(LIST, {"status": "FAILED", "listing": "16"})) == [37]


def test_invalid_filter_is_an_error_not_a_wider_result(client, support):
    make_job(1)
    response = client.get(LIST, {"status": "NOPE"})
    assert response.status_code == 400
    assert response.context["page"] is None
    assert b"Some filters are not valid" in response.content


def test_date_range_is_whole_days_in_the_display_time_zone(client, support, settings):
    settings.DISPLAY_TIME_ZONE = "America/Sao_Paulo"  # UTC-3
    make_job(1, created_at=utc(2026, 3, 10, 2, 59))  # 9 March 23:59 in São Paulo
    make_job(2, created_at=utc(2026, 3, 10, 3, 0))  # 10 March 00:00
    make_job(3, created_at=utc(2026, 3, 11, 2, 59))  # 10 March 23:59
    make_job(4, created_at=utc(2026, 3, 11, 3, 0), started_at=utc(2026, 3, 11, 3, 5))  # 11 March

    assert _ids(client.get(LIST, {"created_from": "2026-03-10", "created_to": "2026-03-10"})) == [3, 2]
    assert _ids(client.get(LIST, {"started_from": "2026-03-11"})) == [4]


def test_stuck_means_not_terminal_and_older_than_the_threshold(client, support, settings):
    settings.TOQ_STUCK_AFTER_MINUTES = 60
    now = timezone.now()
    make_job(1, status="PENDING", created_at=now - timedelta(minutes=61))
    make_job(2, status="PENDING", created_at=now - timedelta(minutes=10))
    make_job(3, status="FAILED", created_at=now - timedelta(days=2))
    # Old schema (no created_at): age counts from when the mirror first saw the row.
    make_job(4, status="RUNNING", created_at=None, first_seen_at=now - timedelta(hours=3))
    make_job(5, status="PENDING", created_at=now - timedelta(hours=5), disappeared_at=now)

    response = client.get(LIST, {"stuck": "on"})
    assert _ids(response) == [4, 1]
    assert all(j.is_stuck for j in response.context["page"].jobs)
    assert b"stuck" in response.content
    unfiltered = {j.toq_id: j.is_stuck for j in client.get(LIST).context["page"].jobs}
    assert unfiltered == {5: False, 4: True, 3: False, 2: False, 1: True}


@pytest.mark.parametrize("sort", sorted(selectors.JOB_SORTS))
def test_keyset_pages_walk_every_row_once_in_sort_order(client, support, monkeypatch, sort):
    monkeypatch.setattr(selectors, "JOB_PAGE_SIZE", 3)
    base = utc(2026, 2, 1)
    for i in range(1, 11):
        # Ties and NULLs on purpose: jobs 1-4 share a time, 9 and 10 have none.
        t = None if i >= 9 else base + timedelta(hours=max(i, 4))
        make_job(i, created_at=t, started_at=t, completed_at=t, status="SUCCEEDED")

    seen, params = [], {"sort": sort}
    for _ in range(10):
        response = client.get(LIST, params)
        seen += _ids(response)
        after = response.context["next_after"]
        if not after:
            break
        params = {"sort": sort, "after": after}
    column, desc = selectors.JOB_SORTS[sort]
    expected = sorted(Job.objects.all(), key=lambda j: j.toq_id, reverse=desc)
    if column != "toq_id":
        with_value = [j for j in expected if getattr(j, column) is not None]
        with_value.sort(key=lambda j: getattr(j, column), reverse=desc)  # stable: ties keep the id order
        expected = with_value + [j for j in expected if getattr(j, column) is None]
    assert seen == [j.toq_id for j in expected]


def test_unknown_sort_or_bad_cursor_falls_back_to_the_first_page(client, support):
    make_job(1)
    make_job(2)
    assert _ids(client.get(LIST, {"sort": "password"})) == [2, 1]
    assert _ids(client.get(LIST, {"after": "garbage~x"})) == [2, 1]
    assert _ids(client.get(LIST, {"sort": "-created_at", "after": "not-a-date~2"})) == [2, 1]


def test_status_counts_ignore_the_status_filter_and_are_capped(client, support):
    for i in range(1, 4):
        make_job(i, status="FAILED")
    make_job(4, status="SUCCEEDED")
    make_job(5, status="WEIRD", status_known=False)
    make_job(6, status="FAILED", listing_identity_id=99)

    counts = {
        c.status: (c.count, c.capped)
        for c in client.get(LIST, {"status": "SUCCEEDED", "listing": "16"}).context["status_counts"]
    }
    assert counts == {
        "PENDING": (0, False),
        "RUNNING": (0, False),
        "SUCCEEDED": (1, False),
        "PARTIAL_SUCCESS": (0, False),
        "FAILED": (3, False),
        "other": (1, False),
    }
    capped = {c.status: (c.count, c.capped) for c in selectors.job_status_counts(Job.objects.current(), cap=2)}
    assert capped["FAILED"] == (2, True)
    assert capped["SUCCEEDED"] == (1, False)


def test_superseded_generations_are_not_listed(client, support):
    make_job(7, generation=1, superseded_at=timezone.now(), status="FAILED")
    make_job(7, generation=2, status="SUCCEEDED")
    jobs = client.get(LIST).context["page"].jobs
    assert [(j.toq_id, j.generation) for j in jobs] == [(7, 2)]


# --- htmx: fragment and live refresh --------------------------------------------------------------


def test_htmx_request_gets_the_table_fragment_only(client, support):
    make_job37()
    full = client.get(LIST, {"status": "FAILED"})
    fragment = client.get(LIST, {"status": "FAILED"}, headers=HX)
    assert b"<html" in full.content and b'id="job-filters"' in full.content
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert fragment.content.lstrip().startswith(b'<section id="job-table"')
    assert b'href="/jobs/37/"' in fragment.content
    assert fragment["Vary"] and "HX-Request" in fragment["Vary"]


def test_history_restore_gets_the_whole_page(client, support):
    make_job37()
    response = client.get(LIST, {"status": "FAILED"}, headers={**HX, "HX-History-Restore-Request": "true"})
    assert b"<html" in response.content and b'id="job-filters"' in response.content


def test_polling_only_while_something_is_in_flight(client, support):
    running = make_job(1, status="RUNNING")
    make_job(2, status="SUCCEEDED")

    page = client.get(LIST)
    assert b'hx-trigger="every 5s"' in page.content
    poll = client.get(LIST, headers={**HX, "HX-Trigger": "job-table"})
    assert poll.status_code == 200 and b'hx-trigger="every 5s"' in poll.content

    Job.objects.filter(pk=running.pk).update(status="SUCCEEDED", is_terminal=True)
    last = client.get(LIST, headers={**HX, "HX-Trigger": "job-table"})
    assert last.status_code == 286  # htmx stops polling, and still swaps the settled rows in
    assert b"every 5s" not in last.content and b"SUCCEEDED" in last.content
    # A filter submission (not the poll) is never told to stop anything.
    assert client.get(LIST, headers={**HX, "HX-Trigger": "job-filters"}).status_code == 200
    assert b"every 5s" not in client.get(LIST).content


def test_staleness_banner(client, support):
    assert b"The TOQ sync is behind" in client.get(LIST).content  # no sync ever succeeded


# --- query counts ---------------------------------------------------------------------------------

# session + user + groups (role check)
AUTH_QUERIES = 3


@pytest.mark.parametrize("hx", [False, True])
def test_list_query_count_does_not_grow_with_rows(client, support, django_assert_num_queries, hx):
    for i in range(1, 31):
        make_listing(1000 + i, listing_uuid="")
        make_job(i, listing_identity_id=1000 + i, status="FAILED" if i % 2 else "RUNNING")
    # page + status counts (+ 3 sync-health reads and the last collection pass on the full page)
    expected = AUTH_QUERIES + 2 + (0 if hx else 4)
    with django_assert_num_queries(expected):
        response = client.get(LIST, {"kind": "processing"}, headers=HX if hx else {})
    assert response.content.count(b'id="job-row-') == 30
    assert (b"<html" in response.content) is not hx


def test_list_sorted_by_a_nullable_column_reads_two_index_segments(client, support, django_assert_num_queries):
    for i in range(1, 6):
        make_job(i, created_at=utc(2026, 2, i) if i % 2 else None)
    # rows with created_at, then the NULL ones (fewer than a page), then the status counts
    with django_assert_num_queries(AUTH_QUERIES + 3):
        response = client.get(LIST, {"sort": "-created_at"}, headers=HX)
    assert re.findall(rb'id="job-row-(\d+)"', response.content) == [b"5", b"3", b"1", b"4", b"2"]


def test_job_page_query_count(client, support, django_assert_num_queries):
    job = make_job37()
    for i in range(5):
        JobNote.objects.create(job=job, author=support, text=f"note {i}")
        make_asset(200 + i, sequence=2 + i, s3_key_raw=f"16/raw/{i}.jpg")
    make_job(37, generation=0, superseded_at=timezone.now())
    # job, listing, assets, observations, generations, notes (+ their authors, joined); the AWS side:
    # executions, MediaConvert jobs, failed derivative checks, evidence status; the last collection pass
    with django_assert_num_queries(AUTH_QUERIES + 11):  # the admin-link role check reuses the roles read by the view
        response = client.get("/jobs/37/")
    assert response.status_code == 200


def test_note_fragment_query_count(client, support, django_assert_num_queries):
    make_job37()
    # job, savepoint pair + insert, notes
    with django_assert_num_queries(AUTH_QUERIES + 5):
        response = client.post("/jobs/37/g1/notes/", {"text": "checked"}, headers=HX)
    assert b"<html" not in response.content


# --- CSV ------------------------------------------------------------------------------------------


def test_csv_streams_the_filtered_set_and_neutralises_formulas(client, support):
    make_job37()
    make_job(38, status="SUCCEEDED")
    make_job(39, status="FAILED", last_error='=HYPERLINK("http://evil.example","x")')
    make_job(40, status="FAILED", last_error="@SUM(1)", callback_error_code="+cmd")

    response = client.get("/jobs.csv", {"status": "FAILED", "sort": "toq_id"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["toq_id"] for r in rows] == ["37", "39", "40"]
    assert rows[1]["last_error"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[2]["last_error"] == "'@SUM(1)"
    assert rows[2]["callback_error_code"] == "'+cmd"
    assert rows[0]["external_id"].startswith("arn:aws:states:")
    assert rows[0]["listing_code"] == "310050"


# --- job page -------------------------------------------------------------------------------------


def test_job_page_shows_the_mirror(client, support):
    job = make_job37()
    response = client.get("/jobs/37/")
    text = response.content.decode()
    assert response.status_code == 200
    for expected in (
        "FAILED",
        "DERIVATIVE_ERRORS_DETECTED",
        "PROCESSING_FAILED",
        "errorString",
        "258c102b-4bc5-4a36-9b51-f432df114aa4",
        "310050",  # listing code
        "Casa geminada 3 quartos com quintal",
        "PENDING_PHOTO_PROCESSING",
        "Helena Prado Quintino",
        "VID_20260105_124137.mp4",
        "16/raw/video/vertical/vertical-01-VID_20260105_124137.mp4",
        "0:00:17",  # duration
        'id="job-diagnosis"',
        'id="job-timeline"',
        'id="job-derivatives"',
        'id="job-logs"',
        'id="job-disagreements"',
        'id="job-history-raw"',
    ):
        assert expected in text, expected
    # Times: display time zone on screen, UTC on hover.
    assert 'title="2026-01-05 15:54:47 UTC">2026-01-05 12:54:47 -03</time>' in text
    # Observed history old → new.
    assert "<code>PENDING</code> → <code>FAILED</code>" in text
    assert " ago)" in text  # ages next to the times
    assert response.context["detail"].job == job


def test_job_page_latest_generation_and_older_ones(client, support):
    make_job(5, generation=1, status="FAILED", superseded_at=timezone.now())
    make_job(5, generation=2, status="RUNNING")

    latest = client.get("/jobs/5/")
    assert latest.context["detail"].job.generation == 2
    assert b'href="/jobs/5/g1/"' in latest.content
    older = client.get("/jobs/5/g1/")
    assert older.context["detail"].job.generation == 1
    assert b"older generation" in older.content
    assert client.get("/jobs/5/g3/").status_code == 404
    assert client.get("/jobs/6/").status_code == 404


def test_disappeared_banner(client, support):
    make_job(8, status="FAILED", disappeared_at=timezone.now())
    assert b"no longer exists in TOQ" in client.get("/jobs/8/").content


# --- notes ----------------------------------------------------------------------------------------


def test_add_note_with_htmx_returns_the_notes_fragment(client, support):
    job = make_job37()
    response = client.post("/jobs/37/g1/notes/", {"text": "  Video too long for MediaConvert?  "}, headers=HX)
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert response.content.lstrip().startswith(b'<section id="job-notes"')
    note = JobNote.objects.get(job=job)
    assert (note.author, note.text) == (support, "Video too long for MediaConvert?")
    assert b"Video too long for MediaConvert?" in response.content and b"sam" in response.content


def test_add_note_without_js_redirects_back(client, support):
    make_job37()
    response = client.post("/jobs/37/g1/notes/", {"text": "hello"})
    assert response.status_code == 302
    assert response["Location"] == "/jobs/37/g1/#job-notes"
    assert b"hello" in client.get("/jobs/37/").content


def test_empty_note_is_refused(client, support):
    make_job37()
    assert client.post("/jobs/37/g1/notes/", {"text": ""}).status_code == 400
    response = client.post("/jobs/37/g1/notes/", {"text": ""}, headers=HX)
    assert b"This field is required" in response.content
    assert not JobNote.objects.exists()


def test_note_post_needs_the_csrf_token(support):
    from django.test import Client

    make_job37()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(support)
    assert strict.post("/jobs/37/g1/notes/", {"text": "x"}, headers=HX).status_code == 403
    page = strict.get("/jobs/37/")
    token = page.cookies["csrftoken"].value
    # The token htmx sends comes from <body hx-headers>.
    assert b'hx-headers=\'{"x-csrftoken": "' in page.content
    ok = strict.post("/jobs/37/g1/notes/", {"text": "x"}, headers={**HX, "X-CSRFToken": token})
    assert ok.status_code == 200
    assert JobNote.objects.count() == 1


# --- security -------------------------------------------------------------------------------------


def test_toq_text_is_escaped_everywhere(client, support):
    make_job37(xss=True)
    make_job(50, status="FAILED", last_error=XSS)
    for url in ("/jobs/37/", LIST, reverse("jobs:job_list") + "?error=alert"):
        text = client.get(url).content.decode()
        assert "<script>alert" not in text, url
        assert '<img id="xss-img"' not in text, url
    detail = client.get("/jobs/37/").content.decode()
    escaped = "&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;&lt;img id=&quot;xss-img&quot;"
    assert escaped in detail
    # The file name, the raw key, the last_error, the callback body and its results each carry it.
    assert detail.count("&lt;img id=&quot;xss-img&quot;") >= 5


def test_security_headers(client, support):
    response = client.get(LIST)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    # The CSP forbids inline code: templates have none.
    body = response.content.decode()
    assert "<script>" not in body and "<style" not in body and " style=" not in body and " onclick=" not in body
    assert "allowEval" in body  # htmx configured without eval


def test_static_assets_come_from_the_project_not_a_cdn(client, support):
    assert finders.find("vendor/plotly/plotly.min.js")
    assert finders.find("js/app.js")
    body = client.get(LIST).content.decode()
    assert "https://" not in body.split("<body", 1)[0]
