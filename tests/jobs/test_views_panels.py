"""The job page's evidence panels (diagnosis, timeline, derivatives, logs, raw history) on the demo
world's job 37 (real import + diagnosis): partials for htmx, pages without it, pinned queries,
escaping, role checks, the active language."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from awslogs.models import Execution, HistoryEvent, LogEvent
from jobs import charts, selectors
from jobs.models import Job
from jobs.roles import SUPPORT
from tests.conftest import TOQ_DATABASES
from tests.jobs.factories import XSS, make_job, make_user
from tests.test_demo import build_demo_world

HX = {"HX-Request": "true"}
ARN = "arn:aws:states:us-east-1:123456789012:execution:listing-media-processing-sm-staging:258c102b-4bc5-4a36-9b51-f432df114aa4"
FFMPEG_LOG = "Video thumbnail generation failed"


@pytest.fixture
def world(tmp_path):
    build_demo_world(tmp_path)
    return Job.objects.get(toq_id=37)


@pytest.fixture
def support(client):
    client.force_login(make_user("sam", SUPPORT))


def _url(name: str, job: Job) -> str:
    return f"/jobs/{job.toq_id}/g{job.generation}/{name}"


PANELS = [
    ("diagnosis/", "job-diagnosis"),
    ("timeline/", "job-timeline"),
    ("derivatives/", "job-derivatives"),
    ("logs/", "job-logs"),
    ("history/", "job-history-raw"),
]


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_job_page_loads_panels_lazily_and_links_them_without_js(client, support, world, django_assert_num_queries):
    # auth 3, job, listing, assets, history, gens, notes, admin-link role check; the AWS side (executions,
    # MediaConvert jobs, failed derivative checks, evidence status) and the last collection pass
    with django_assert_num_queries(14):
        response = client.get("/jobs/37/")
    html = response.content.decode()
    for path, dom_id in PANELS:
        url = _url(path, world)
        assert f'<section id="{dom_id}" class="card lazy" hx-get="{url}" hx-trigger="load"' in html
        assert f'<a href="{url}">' in html  # without JavaScript
    # no evidence in the first response: the panels' contents come later
    assert "FM-12" not in html and FFMPEG_LOG not in html
    assert "vendor/plotly/plotly.min.js" in html and "js/charts.js" in html


@pytest.mark.django_db(databases=TOQ_DATABASES)
@pytest.mark.parametrize(
    ("path", "dom_id", "queries"),
    [
        # + the annotations in force, their history, the job's failure groups (+ their notes when it has
        # one: not here, no group refresh ran), + the engineer-form role check
        ("diagnosis/", "job-diagnosis", 9),
        ("timeline/", "job-timeline", 6),
        ("derivatives/", "job-derivatives", 7),
        ("logs/", "job-logs", 8),
        ("history/", "job-history-raw", 7),
    ],
)
def test_each_panel_as_partial_and_as_page(client, support, world, django_assert_num_queries, path, dom_id, queries):
    url = _url(path, world)
    with django_assert_num_queries(queries):
        partial = client.get(url, headers=HX)
    assert partial.status_code == 200
    body = partial.content.decode()
    assert body.lstrip().startswith(f'<section id="{dom_id}"') and "<html" not in body
    assert "pending" not in body.split(">", 1)[0]  # evidence found: not the placeholder
    assert partial["Vary"] and "HX-Request" in partial["Vary"]

    with django_assert_num_queries(queries):
        page = client.get(url)
    html = page.content.decode()
    assert "<html" in html and f'<section id="{dom_id}"' in html
    assert 'href="/jobs/37/g1/"' in html  # back to the job


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_diagnosis_card_origin_first_with_evidence_links_to_rows(client, support, world):
    body = client.get(_url("diagnosis/", world), headers=HX).content.decode()
    fms = re.findall(r'<code class="fm">(FM-\d+)</code>', body)
    assert fms[0] == "FM-12" and set(fms) >= {"FM-12", "FM-14", "FM-28"}
    assert body.index("FM-12") < body.index("FM-14") < body.index("FM-28")
    assert '<code class="cause">ffmpeg-missing</code>' in body
    assert 'class="badge role role-origin">Origin</span>' in body
    assert "Confidence" in body and "/opt/ffmpeg/ffmpeg" in body
    # every evidence anchor of the card exists in the logs / history / derivatives panels
    anchors = set(re.findall(r'class="evidence-link" href="#([^"]+)"', body))
    assert "ev-258c102b-4bc5-4a36-9b51-f432df114aa4-27" in anchors
    targets = "".join(client.get(_url(p, world), headers=HX).content.decode() for p, _ in PANELS[1:])
    ids = set(re.findall(r'id="([^"]+)"', targets))
    assert anchors and anchors <= ids, anchors - ids
    # without JavaScript the diagnosis is a page of its own: links go to the panel page holding the row
    page = client.get(_url("diagnosis/", world)).content.decode()
    assert (
        'href="/jobs/37/g1/history/?execution=arn%3Aaws%3Astates%3Aus-east-1%3A123456789012%3Aexecution'
        "%3Alisting-media-processing-sm-staging%3A258c102b-4bc5-4a36-9b51-f432df114aa4&amp;event=27"
        '#ev-258c102b-4bc5-4a36-9b51-f432df114aa4-27"'
    ) in page
    assert re.search(r'href="/jobs/37/g1/logs/\?event=\d+#log-\d+"', page)


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_diagnosis_card_in_portuguese(client, support, world):
    client.cookies.load({"django_language": "pt-br"})
    finding = world.diagnosis.findings.get(failure_mode="FM-12")
    body = client.get(_url("diagnosis/", world), headers=HX).content.decode()
    assert finding.title_pt_br != finding.title_en
    assert finding.title_pt_br.replace("'", "&#x27;") in body and finding.title_en not in body
    assert "Origem" in body and "Diagnóstico" in body


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_timeline_figure_has_states_attempts_backoff_and_markers(client, support, world):
    body = client.get(_url("timeline/", world), headers=HX).content.decode()
    assert '<div class="chart" data-figure="chart-job-timeline"' in body
    found = re.search(r'<script id="chart-job-timeline" type="application/json">(.*?)</script>', body, re.S)
    assert found is not None
    figure = json.loads(found[1])
    state, attempt, backoff, markers = figure["data"]
    # parallel branches on their own rows
    assert "CheckVideoThumbnails › GenerateVideoThumbnails" in state["y"]
    assert "GenerateThumbnails" in state["y"] and "ConsolidateResults" in state["y"]
    assert attempt["y"].count("ConsolidateResults") == 3  # three tries
    gaps = [round(x / 1000) for y, x in zip(backoff["y"], backoff["x"], strict=True) if y == "ConsolidateResults"]
    assert gaps == [5, 10]  # the retry backoffs
    assert markers["y"] == ["TOQ: job created", "TOQ: job started", "TOQ: job completed (callback)"]
    # the Fail state (never exited) ends with the execution, not at "now"
    fail = state["y"].index("ProcessingFailed")
    assert state["x"][fail] < 1000


def test_timeline_figure_pure_two_executions_and_running_state():
    now = timezone.now()
    data = selectors.TimelineData(
        executions=[
            selectors.TimelineExecution(
                arn="a:b:first-exec",
                name="first-exec",
                status="RUNNING",
                start=now,
                stop=None,
                visits=[
                    {
                        "name": "S",
                        "type": "Task",
                        "branch": "",
                        "entered_at": now,
                        "exited_at": None,
                        "status": "running",
                        "error": "",
                        "attempts": [],
                    }
                ],
            ),
            selectors.TimelineExecution(
                arn="a:b:second-ex",
                name="second-ex",
                status="SUCCEEDED",
                start=now,
                stop=now,
                visits=[
                    {
                        "name": "S",
                        "type": "Task",
                        "branch": "",
                        "entered_at": now,
                        "exited_at": now,
                        "status": "succeeded",
                        "error": "",
                        "attempts": [],
                    }
                ],
            ),
        ],
        markers=[],
    )
    figure = charts.timeline_figure(data, now=now + timedelta(seconds=3))
    assert figure["data"][0]["y"] == ["first-ex · S", "second-e · S"]  # one row per execution
    assert figure["data"][0]["x"][0] == 3000  # still running: drawn up to now


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_logs_filter_page_highlight_and_pretty_json(client, support, world):
    url = _url("logs/", world)
    body = client.get(url, headers=HX).content.decode()
    assert 'class="log-line level-error evidence"' in body  # the ffmpeg ERROR line is evidence
    assert "<details><summary>" in body and "&quot;error&quot;: &quot;ffmpeg failed" in body  # indented JSON
    only = client.get(url, {"function": "listing-media-video_thumbnails-staging"}, headers=HX).content.decode()
    functions = set(re.findall(r'<span class="badge">(listing-media-[^<]+|toq-server)</span>', only))
    assert functions == {"listing-media-video_thumbnails-staging"}
    errors = client.get(url, {"level": "ERROR", "text": "ffmpeg"}, headers=HX).content.decode()
    assert FFMPEG_LOG in errors and "adapter.sqs.media.send_success" not in errors
    none = client.get(url, {"text": "no-such-text-anywhere"}, headers=HX).content.decode()
    assert "No line matches these filters." in none and "0 lines" in none


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_logs_and_history_are_paged(client, support, world, monkeypatch):
    monkeypatch.setattr(selectors, "LOG_PAGE_SIZE", 20)
    monkeypatch.setattr(selectors, "HISTORY_PAGE_SIZE", 20)
    assert LogEvent.objects.filter(job=world).count() > 60
    logs2 = client.get(_url("logs/", world), {"page": 2, "level": ""}, headers=HX).content.decode()
    assert "page 2 of" in logs2 and logs2.count('<li id="log-') == 20
    assert 'page=3"' in logs2 and 'page=1"' in logs2 and "level=&amp;" in logs2  # filters kept in links
    history3 = client.get(_url("history/", world), {"page": 3}, headers=HX).content.decode()
    assert "page 3 of 3" in history3 and history3.count('<tr id="ev-') == 47 - 40
    assert 'id="ev-258c102b-4bc5-4a36-9b51-f432df114aa4-47"' in history3
    last = client.get(_url("history/", world), {"page": 99}, headers=HX).content.decode()
    assert "page 3 of 3" in last  # out of range → last page


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_evidence_links_open_the_page_holding_their_row(client, support, world, monkeypatch):
    monkeypatch.setattr(selectors, "LOG_PAGE_SIZE", 10)
    monkeypatch.setattr(selectors, "HISTORY_PAGE_SIZE", 10)
    origin = world.diagnosis.findings.get(failure_mode="FM-12")
    card = client.get(_url("diagnosis/", world), headers=HX).content.decode()
    links = re.findall(r'href="#([^"]+)" data-panel="#([^"]+)" data-panel-url="([^"]+)"', card)
    history_links = [(a, p, u) for a, p, u in links if p == "job-history-raw"]
    log_links = [(a, p, u) for a, p, u in links if p == "job-logs"]
    assert history_links and log_links
    for anchor, _panel, url in history_links + log_links:
        body = client.get(url.replace("&amp;", "&"), headers=HX).content.decode()
        assert f'id="{anchor}"' in body, (anchor, url)
    # event 27 of 47 at 10 a page is on page 3, not on the first page
    first = client.get(_url("history/", world), headers=HX).content.decode()
    assert "ev-258c102b-4bc5-4a36-9b51-f432df114aa4-27" not in first
    at = client.get(_url("history/", world), {"execution": ARN, "event": 27}, headers=HX).content.decode()
    assert "page 3 of 5" in at
    video_log = next(e["id"] for e in origin.evidence if "video_thumbnails" in e["source"])
    logs = client.get(_url("logs/", world), {"event": video_log}, headers=HX).content.decode()
    assert f'id="{selectors.log_anchor(video_log)}"' in logs
    unknown = client.get(_url("logs/", world), {"event": "nope", "page": 2}, headers=HX).content.decode()
    assert "page 2 of" in unknown  # an unknown event keeps the asked page


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_history_rows_and_json_download(client, support, world, django_assert_num_queries):
    body = client.get(_url("history/", world), headers=HX).content.decode()
    assert '<tr id="ev-258c102b-4bc5-4a36-9b51-f432df114aa4-27" class="evidence">' in body
    assert "TaskStateExited" in body
    with django_assert_num_queries(5):
        response = client.get(_url("history.json", world))
    assert response["Content-Disposition"] == 'attachment; filename="toqdash-job-37-g1-history.json"'
    data = json.loads(response.content)
    assert list(data) == [ARN] and len(data[ARN]) == 47 and data[ARN][0]["type"] == "ExecutionStarted"


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_derivatives_matrix_shows_the_missing_video_thumbnail(client, support, world):
    body = client.get(_url("derivatives/", world), headers=HX).content.decode()
    assert re.search(r'id="drv-16-processed-video-vertical-thumbnail-[^"]+" class="outcome outcome-missing"', body)
    assert re.search(r'class="outcome outcome-present"[^>]*>\s*present\s*<span class="muted">12', body)


@pytest.mark.django_db
def test_panels_keep_placeholders_without_evidence(client, support):
    job = make_job(90, listing_identity_id=90)
    for path, dom_id in PANELS:
        body = client.get(_url(path, job), headers=HX).content.decode()
        assert f'<section id="{dom_id}" class="card pending">' in body
        assert "AWS evidence is not collected yet for this job." in body
    assert json.loads(client.get(_url("history.json", job)).content) == {}


@pytest.mark.django_db
def test_aws_text_is_escaped_in_every_panel(client, support):
    job = make_job(91, listing_identity_id=91, status="FAILED")
    execution = Execution.objects.create(
        arn="arn:x:execution:sm:xss",
        name="xss",
        job=job,
        found_via="import",
        status="FAILED",
        start_date=timezone.now(),
    )
    HistoryEvent.objects.create(execution=execution, event_id=1, type="ExecutionFailed", details={"cause": XSS})
    LogEvent.objects.create(event_id="1", log_group="/aws/lambda/f", message=XSS, kind="text", level="ERROR", job=job)
    LogEvent.objects.create(
        event_id="2", log_group="/aws/lambda/f", message="{}", kind="json", job=job, msg=XSS, fields={"msg": XSS}
    )
    execution.state_visits.create(
        entered_event_id=2, name=XSS, state_type="Task", status="failed", entered_at=timezone.now()
    )
    for path, _dom_id in PANELS:
        body = client.get(_url(path, job), headers=HX).content.decode()
        assert "<script>alert" not in body and 'id="xss-img"' not in body


@pytest.mark.django_db
def test_panels_need_login_and_404_unknown_jobs(client):
    job = make_job(92)
    for path, _dom_id in [*PANELS, ("history.json", "")]:
        response = client.get(_url(path, job))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(make_user("sam", SUPPORT))
    assert client.get("/jobs/92/g9/diagnosis/", headers=HX).status_code == 404


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_engineer_confirms_a_finding_and_it_survives_rediagnosis(client, world):
    from diagnosis.models import Annotation
    from diagnosis.services import diagnose_job
    from jobs.roles import ENGINEER

    client.force_login(make_user("eve", ENGINEER))
    body = client.get(_url("diagnosis/", world), headers=HX).content.decode()
    assert 'name="verdict" value="confirmed"' in body  # engineers see the forms
    response = client.post(
        _url("annotate/", world),
        {"verdict": "confirmed", "failure_mode": "FM-12", "cause": "ffmpeg-missing", "text": "seen in <b>logs</b>"},
        headers=HX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="job-diagnosis"')
    assert "Confirmed by eve" in body and "seen in &lt;b&gt;logs&lt;/b&gt;" in body
    diagnose_job(job_id=world.pk, force=True)
    assert "Confirmed by eve" in client.get(_url("diagnosis/", world), headers=HX).content.decode()
    assert Annotation.objects.get().author.username == "eve"
    # an invalid verdict (no failure mode) is refused with the reason, nothing written
    response = client.post(_url("annotate/", world), {"verdict": "confirmed"})
    assert response.status_code == 400
    assert Annotation.objects.count() == 1


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_support_sees_no_annotation_forms_and_cannot_post(client, support, world):
    body = client.get(_url("diagnosis/", world), headers=HX).content.decode()
    assert 'name="verdict"' not in body
    assert client.post(_url("annotate/", world), {"verdict": "confirmed", "failure_mode": "FM-12"}).status_code == 403


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_incident_report_download(client, support, world):
    response = client.get(_url("report.md", world) + "?lang=pt-br")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    assert "toqdash-job-37-pt-br.md" in response["Content-Disposition"]
    text = response.content.decode()
    assert "## Causa raiz" in text and "FM-12 `ffmpeg-missing`" in text
    assert "Reprocess" not in client.get("/jobs/37/").content.decode()  # the planner link is the admins'


@pytest.mark.django_db(databases=TOQ_DATABASES)
def test_admin_sees_the_reprocess_link(client, world):
    from jobs.roles import ADMIN

    client.force_login(make_user("ada", ADMIN))
    html = client.get("/jobs/37/").content.decode()
    assert 'href="/reprocess/jobs/37/g1/"' in html
