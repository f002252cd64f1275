"""Failure groups (list, page, notes), the overview page, the lookup box and the diagnosis filters of
the job list: on the demo world (job 37 diagnosed through the real import) and on small hand-made
diagnoses with recent dates."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from awslogs.models import EvidenceStatus, Execution, StateVisit
from diagnosis.groups import failure_groups_refresh
from diagnosis.models import Diagnosis, FailureGroup, Finding, GroupNote
from jobs import charts, selectors
from jobs.models import Job
from jobs.roles import ENGINEER, SUPPORT
from tests.conftest import TOQ_DATABASES
from tests.jobs.factories import XSS, make_job, make_user
from tests.test_demo import build_demo_world

HX = {"HX-Request": "true"}
AUTH_QUERIES = 3  # session, user, role groups
# The TOQ server's WARN line for job 37 (jobs/demo/aws/logs/toq-server.log.jsonl, line 15).
SERVER_LINE_37 = (
    '{"time":"2026-01-05T15:55:03.824300164Z","level":"WARN","msg":"service.media.callback.no_results_failure",'
    '"request_id":"8cf041a5b067399df439d5a1c7f494e1","job_id":37,"status":"PROCESSING_FAILED",'
    '"callback_error_code":"ERRORSTRING","callback_error":"{\\"errorMessage\\":\\"DERIVATIVE_ERRORS_DETECTED\\",'
    '\\"errorType\\":\\"errorString\\"}","callback_error_metadata":null}'
)


@pytest.fixture
def world(tmp_path):
    build_demo_world(tmp_path)
    failure_groups_refresh()
    return Job.objects.get(toq_id=37)


@pytest.fixture
def group37(world):
    return FailureGroup.objects.get(failure_mode="FM-12", cause="ffmpeg-missing")


@pytest.fixture
def support(client):
    client.force_login(make_user("sam", SUPPORT))
    return client


@pytest.fixture
def engineer(client):
    client.force_login(make_user("eve", ENGINEER))
    return client


def diagnosed(toq_id: int, *, fm: str, cause: str, when, signature: str = "", text: str = "") -> Job:
    """A failed job whose stored diagnosis has one origin finding (as the engine would store it)."""
    job = make_job(toq_id, status="FAILED", completed_at=when, listing_identity_id=100 + toq_id)
    diagnosis = Diagnosis.objects.create(job=job, engine_version="t", evidence_fingerprint="f", computed_at=when)
    Finding.objects.create(
        diagnosis=diagnosis,
        position=0,
        failure_mode=fm,
        cause=cause,
        role="origin",
        title_en=f"{cause} title",
        title_pt_br=f"título {cause}",
        summary_en="s",
        summary_pt_br="s",
        confidence=0.9,
        signature=signature or f"sig-{fm}-{cause}",
        signature_text=text or f"{fm} {cause} message",
    )
    return job


def _figure(html: str, dom_id: str) -> dict:
    """The plotly figure a page hands to charts.js through json_script."""
    found = re.search(rf'<script id="{dom_id}" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None, dom_id
    return json.loads(found[1])


# --- failure groups --------------------------------------------------------------------------------


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_group_list_shows_job37_group_with_sparkline(support, group37, django_assert_num_queries):
    with django_assert_num_queries(AUTH_QUERIES + 2):  # groups, one query for every trend
        response = support.get("/groups/")
    html = response.content.decode()
    assert response.status_code == 200
    row = html[html.index(f'id="group-row-{group37.pk}"') :]
    assert '<code class="fm">FM-12</code>' in row and '<code class="cause">ffmpeg-missing</code>' in row
    title = group37.title_en.replace("'", "&#x27;")
    assert f'href="/groups/{group37.pk}/">{title}</a>' in row
    assert f'href="/?group={group37.pk}">{group37.job_count}</a>' in row
    assert "regression" not in row.split("</tr>")[0]
    assert f'<div class="chart sparkline" data-figure="chart-group-{group37.pk}"' in row
    found = re.search(rf'<script id="chart-group-{group37.pk}" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None
    bars = json.loads(found[1])["data"][0]
    assert len(bars["x"]) == selectors.TREND_DAYS and sum(bars["y"]) == 0  # job 37 failed in January
    assert "vendor/plotly/plotly.min.js" in html and "js/charts.js" in html


@pytest.mark.django_db
def test_group_list_trend_regression_badge_and_title_in_portuguese(support, django_assert_num_queries):
    now = timezone.now()
    for i in range(3):
        diagnosed(900 + i, fm="FM-05", cause="queue-lost", when=now - timedelta(days=i))
    diagnosed(910, fm="FM-12", cause="no-space-left", when=now - timedelta(days=40))
    failure_groups_refresh()
    FailureGroup.objects.filter(cause="queue-lost").update(regressed_at=now)
    queue = FailureGroup.objects.get(cause="queue-lost")
    with django_assert_num_queries(AUTH_QUERIES + 2):  # as many groups as it likes: still two queries
        html = support.get("/groups/").content.decode()
    row = html[html.index(f'id="group-row-{queue.pk}"') :].split("</tr>")[0]
    assert '<span class="badge danger"' in row and "regression" in row
    figure = _figure(html, f"chart-group-{queue.pk}")
    assert figure["data"][0]["y"][-3:] == [1, 1, 1] and sum(figure["data"][0]["y"]) == 3
    old = FailureGroup.objects.get(cause="no-space-left")
    old_row = html[html.index(f'id="group-row-{old.pk}"') :].split("</tr>")[0]
    assert "regression" not in old_row
    # newest first
    assert html.index(f'id="group-row-{queue.pk}"') < html.index(f'id="group-row-{old.pk}"')

    support.cookies.load({"django_language": "pt-br"})
    html = support.get("/groups/").content.decode()
    assert "título queue-lost" in html and "Grupos de falhas" in html and "regressão" in html


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_group_page_jobs_evidence_and_notes(support, world, group37, django_assert_num_queries):
    GroupNote.objects.create(group=group37, author=make_user("eve", ENGINEER), text="ffmpeg layer removed")  # type: ignore[misc]
    with django_assert_num_queries(AUTH_QUERIES + 3):  # group, findings+jobs, notes+authors (roles read once)
        response = support.get(f"/groups/{group37.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/jobs/37/g1/">37</a>' in html
    assert '<pre class="signature">' in html and group37.signature_text[:20] in html
    assert "ffmpeg layer removed" in html and "eve" in html
    assert f'hx-post="/groups/{group37.pk}/notes/"' not in html  # Support reads notes; engineers write them


@pytest.mark.django_db
def test_group_signature_and_title_are_escaped(support):
    diagnosed(950, fm="FM-12", cause="ffmpeg-missing", when=timezone.now(), text=XSS)
    failure_groups_refresh()
    group = FailureGroup.objects.get()
    FailureGroup.objects.filter(pk=group.pk).update(title_en=XSS)
    for url in (f"/groups/{group.pk}/", "/groups/"):
        html = support.get(url).content.decode()
        assert "<script>alert" not in html and '<img id="xss-img"' not in html, url
        assert "&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;" in html, url


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_engineer_adds_a_group_note_with_and_without_htmx(engineer, group37, django_assert_num_queries):
    page = engineer.get(f"/groups/{group37.pk}/").content.decode()
    assert f'hx-post="/groups/{group37.pk}/notes/" hx-target="#group-notes"' in page
    assert 'name="csrfmiddlewaretoken"' in page and "x-csrftoken" in page

    with django_assert_num_queries(AUTH_QUERIES + 3):  # group, insert, notes (roles read once)
        partial = engineer.post(f"/groups/{group37.pk}/notes/", {"text": "<b>rollback</b> the layer"}, headers=HX)
    body = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<section id="group-notes"')
    assert "&lt;b&gt;rollback&lt;/b&gt; the layer" in body

    response = engineer.post(f"/groups/{group37.pk}/notes/", {"text": "second"})
    assert response.status_code == 302 and response["Location"] == f"/groups/{group37.pk}/#group-notes"
    assert list(GroupNote.objects.filter(group=group37).values_list("text", flat=True)) == [
        "<b>rollback</b> the layer",
        "second",
    ]

    empty = engineer.post(f"/groups/{group37.pk}/notes/", {"text": ""}, headers=HX)
    assert empty.status_code == 200 and "errorlist" in empty.content.decode()
    assert engineer.post(f"/groups/{group37.pk}/notes/", {"text": ""}).status_code == 400
    assert GroupNote.objects.filter(group=group37).count() == 2
    assert engineer.get("/groups/999999/").status_code == 404


@pytest.mark.django_db
def test_group_note_csrf_is_enforced(engineer):
    from django.test import Client

    diagnosed(960, fm="FM-12", cause="ffmpeg-missing", when=timezone.now())
    failure_groups_refresh()
    group = FailureGroup.objects.get()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user("eve2", ENGINEER))
    assert strict.post(f"/groups/{group.pk}/notes/", {"text": "x"}, headers=HX).status_code == 403
    page = strict.get(f"/groups/{group.pk}/").content.decode()
    found = re.search(r'"x-csrftoken": "([^"]+)"', page)
    assert found is not None
    token = found[1]
    ok = strict.post(f"/groups/{group.pk}/notes/", {"text": "x"}, headers={**HX, "X-CSRFToken": token})
    assert ok.status_code == 200 and GroupNote.objects.filter(group=group).count() == 1


# --- overview ---------------------------------------------------------------------------------------


def _visits(job: Job, name: str, seconds: list[float]) -> None:
    execution = Execution.objects.create(
        arn=f"arn:aws:states:us-east-1:1:execution:sm:{job.toq_id}-{name}", name="x", job=job, found_via="import"
    )
    start = timezone.now() - timedelta(hours=1)
    for i, s in enumerate(seconds):
        StateVisit.objects.create(
            execution=execution,
            entered_event_id=i + 1,
            name=name,
            state_type="Task",
            entered_at=start,
            exited_at=start + timedelta(seconds=s),
            status="succeeded",
        )


@pytest.mark.django_db
def test_overview_failures_per_day_durations_and_health(support, django_assert_num_queries):
    now = timezone.now()
    a = diagnosed(700, fm="FM-12", cause="ffmpeg-missing", when=now)
    diagnosed(701, fm="FM-12", cause="ffmpeg-missing", when=now - timedelta(days=1))
    diagnosed(702, fm="FM-05", cause="queue-lost", when=now)
    diagnosed(703, fm="FM-07", cause="too-old", when=now - timedelta(days=45))  # outside the window
    _visits(a, "ConsolidateResults", [float(s) for s in range(1, 11)])
    _visits(a, "Validate", [2.0])
    EvidenceStatus.objects.create(job=a, complete=True, collected_at=now)
    EvidenceStatus.objects.create(job=Job.objects.get(toq_id=701), complete=False, collected_at=now)

    # failures, durations, sync health ×3, collection
    with django_assert_num_queries(AUTH_QUERIES + 6):
        response = support.get("/overview/")
    html = response.content.decode()
    assert response.status_code == 200
    figure = _figure(html, "chart-failures-per-day")
    traces = {t["name"]: t for t in figure["data"]}
    assert set(traces) == {"FM-05", "FM-12"} and figure["layout"]["barmode"] == "stack"
    assert traces["FM-12"]["y"][-2:] == [1, 1] and sum(traces["FM-12"]["y"]) == 2
    assert traces["FM-05"]["y"][-1] == 1 and len(traces["FM-05"]["x"]) == selectors.TREND_DAYS
    # p50/p95 of 1..10 s, interpolated like percentile_cont
    assert "<tr><td>ConsolidateResults</td><td>10</td><td>5.50</td><td>9.55</td></tr>" in html
    assert "<tr><td>Validate</td><td>1</td><td>2.00</td><td>2.00</td></tr>" in html
    health = html[html.index('id="overview-health"') :]
    assert "Jobs with collected AWS evidence</dt><dd>2</dd>" in health
    assert "Evidence complete</dt><dd>1</dd>" in health and "Evidence incomplete</dt><dd>1</dd>" in health
    assert "stale" in health  # no sync has run in this test


def test_percentile_matches_percentile_cont():
    # PostgreSQL: percentile_cont(0.95) WITHIN GROUP (ORDER BY x) over 1..10 = 9.55; over {4} = 4
    assert selectors._percentile([float(x) for x in range(10, 0, -1)], 0.95) == pytest.approx(9.55)
    assert selectors._percentile([float(x) for x in range(1, 11)], 0.5) == pytest.approx(5.5)
    assert selectors._percentile([4.0], 0.95) == 4.0


@pytest.mark.django_db
def test_state_durations_python_and_sql_agree(monkeypatch):
    a = diagnosed(720, fm="FM-12", cause="ffmpeg-missing", when=timezone.now())
    _visits(a, "S", [1.0, 2.0, 3.5, 10.0, 30.0])
    sql = selectors.state_duration_percentiles()
    monkeypatch.setattr(selectors.connection, "vendor", "sqlite")
    python = selectors.state_duration_percentiles()
    assert sql == python
    assert python[0].p50_seconds == 3.5 and python[0].p95_seconds == pytest.approx(26.0)


@pytest.mark.django_db
def test_overview_empty(support):
    html = support.get("/overview/").content.decode()
    assert "No diagnosed failures in this period." in html and "No state visits in this period." in html
    assert "chart-failures-per-day" not in html


def test_chart_builders_are_pure():
    today = timezone.localdate()
    days = [today - timedelta(days=1), today]
    spark = charts.sparkline_figure([(days[0], 0), (days[1], 4)])
    assert spark["data"][0]["y"] == [0, 4] and spark["data"][0]["x"] == [d.isoformat() for d in days]
    assert spark["layout"]["xaxis"]["visible"] is False
    stacked = charts.failures_per_day_figure(days, {"FM-01": [1, 0], "FM-12": [0, 2]})
    assert [t["name"] for t in stacked["data"]] == ["FM-01", "FM-12"]
    assert stacked["layout"]["barmode"] == "stack"


# --- lookup box and diagnosis filters on the job list -------------------------------------------------


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_lookup_with_the_job37_server_log_line_redirects_to_job_37(support, world):
    response = support.get("/", {"q": SERVER_LINE_37})
    assert response.status_code == 302 and response["Location"] == "/jobs/37/g1/"


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_lookup_box_on_the_job_list(support, world):
    html = support.get("/").content.decode()
    assert 'placeholder="Paste a log line, ARN, request id, S3 key, listing or job id"' in html
    assert '<form id="job-lookup"' in html and 'name="q"' in html
    assert 'id="lookup-results"' not in html
    none = support.get("/", {"q": "nothing-like-this"}).content.decode()
    assert "No job matches what was pasted." in none
    # what was pasted goes back into the box, escaped
    echoed = support.get("/", {"q": XSS}).content.decode()
    assert "<script>alert" not in echoed and '<img id="xss-img"' not in echoed
    assert 'value="&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;' in echoed


@pytest.mark.django_db
def test_lookup_with_several_matches_lists_them_above_the_jobs(support, django_assert_num_queries):
    make_job(40, listing_identity_id=77)
    make_job(41, listing_identity_id=77, status="FAILED")
    make_job(42, listing_identity_id=78)
    response = support.get("/", {"q": "listing 77"})
    html = response.content.decode()
    assert response.status_code == 200
    results = html[html.index('id="lookup-results"') : html.index('id="job-filters"')]
    assert re.findall(r'href="/jobs/(\d+)/g1/"', results) == ["41", "40"]
    assert results.count("<code>listing_id</code>") == 2
    # the htmx table partial skips the lookup
    partial = support.get("/", {"q": "listing 77"}, headers=HX).content.decode()
    assert "<html" not in partial and "lookup-results" not in partial


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_filters_failure_mode_and_group(support, world, group37, django_assert_num_queries):
    make_job(500, status="FAILED")  # no diagnosis

    def ids(params, hx=False):
        body = support.get("/", params, headers=HX if hx else {}).content.decode()
        return set(re.findall(r'id="job-row-(\d+)"', body))

    assert "37" in ids({}) and "500" in ids({})
    assert ids({"failure_mode": "FM-12"}) == {"37"}
    assert ids({"failure_mode": "FM-05"}) == set()
    assert ids({"group": group37.pk}, hx=True) == {"37"}
    assert ids({"group": 999999}) == set()
    # a diagnosed FM-12 job of another group is not in job 37's group
    diagnosed(501, fm="FM-12", cause="no-space-left", when=timezone.now())
    assert ids({"failure_mode": "FM-12"}) == {"37", "501"}
    assert ids({"group": group37.pk}) == {"37"}
    with django_assert_num_queries(AUTH_QUERIES + 2):  # page, status counts (group as a subquery)
        support.get("/", {"group": group37.pk}, headers=HX)
    assert support.get("/", {"failure_mode": "FM-99"}).status_code == 400
