"""The diagnosis panel's audit trail (every annotation: who, when, what) and the notes of the job's
failure groups, which apply to every matching job — including one diagnosed after the last refresh."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from diagnosis.annotations import annotation_add
from diagnosis.groups import failure_groups_refresh
from diagnosis.models import FailureGroup, GroupNote
from jobs import selectors
from jobs.roles import ENGINEER, SUPPORT
from tests.jobs.factories import XSS, make_job, make_user
from tests.jobs.test_views_groups import diagnosed

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def _panel(client, job) -> str:
    return client.get(f"/jobs/{job.toq_id}/g{job.generation}/diagnosis/", headers=HX).content.decode()


def test_annotation_history_lists_every_act_newest_first(client):
    now = timezone.now()
    job = diagnosed(800, fm="FM-12", cause="ffmpeg-missing", when=now)
    eve, sam = make_user("eve", ENGINEER), make_user("sam", SUPPORT)
    annotation_add(job=job, author=eve, verdict="confirmed", failure_mode="FM-12", cause="ffmpeg-missing", note="seen")
    annotation_add(job=job, author=eve, verdict="rejected", failure_mode="FM-12", cause="ffmpeg-missing", note=XSS)
    annotation_add(job=job, author=sam, verdict="note", note="customer called\ntwice")
    client.force_login(sam)

    body = _panel(client, job)
    history = body[body.index('id="job-annotations"') :]
    rows = re.findall(
        r'<tr class="verdict-(\w+)"><td><time[^>]*>[^<]+</time></td><td>(\w+)</td><td>([^<]+)</td>', history
    )
    assert rows == [("note", "sam", "Note"), ("rejected", "eve", "Rejected"), ("confirmed", "eve", "Confirmed")]
    assert "customer called<br>twice" in history
    assert "<script>alert" not in body and "&lt;script&gt;alert" in history
    # The card keeps showing only the verdict in force; the history keeps the superseded one.
    assert "Rejected by eve" in body and "Confirmed by eve" not in body


def test_annotation_history_is_capped(monkeypatch):
    job = make_job(801)
    eve = make_user("eve", ENGINEER)
    for i in range(4):
        annotation_add(job=job, author=eve, verdict="note", note=f"n{i}")
    monkeypatch.setattr(selectors, "ANNOTATION_HISTORY_LIMIT", 3)
    history = selectors.job_annotation_history(job=job, limit=3)
    assert [a.note for a in history.annotations] == ["n3", "n2", "n1"] and history.truncated


def test_group_notes_show_on_every_matching_job_new_ones_included(client, django_assert_num_queries):
    now = timezone.now()
    first = diagnosed(810, fm="FM-12", cause="ffmpeg-missing", when=now - timedelta(days=1), text="ffmpeg: not found")
    failure_groups_refresh()
    group = FailureGroup.objects.get(failure_mode="FM-12")
    eve = make_user("eve", ENGINEER)
    GroupNote.objects.create(group=group, author=eve, text="ffmpeg layer missing since the deploy")  # type: ignore[misc]
    GroupNote.objects.create(group=group, author=eve, text=XSS)  # type: ignore[misc]
    # Same signature, diagnosed after the last refresh: the group's notes apply to it as well.
    later = diagnosed(811, fm="FM-12", cause="ffmpeg-missing", when=now, text="ffmpeg: not found")
    other = diagnosed(812, fm="FM-05", cause="queue-lost", when=now)
    client.force_login(make_user("sam", SUPPORT))

    for job in (first, later):
        body = _panel(client, job)
        groups = body[body.index('id="job-groups"') :]
        assert f'href="/groups/{group.pk}/"' in groups
        notes = re.findall(r'<p class="note-text">([^<]*)</p>', groups)
        assert notes[0] == "ffmpeg layer missing since the deploy"
        assert "<script>alert" not in groups and "&lt;script&gt;alert" in notes[1]
        assert re.search(r'<p class="note-meta">eve · <time', groups)
    assert 'id="job-groups"' not in _panel(client, other)  # FM-05 was never refreshed into a group

    # auth 3, job, diagnosis + findings, verdicts, annotation history, groups, their notes, role check
    with django_assert_num_queries(10):
        client.get(f"/jobs/{later.toq_id}/g{later.generation}/diagnosis/", headers=HX)


def test_group_title_follows_the_language(client):
    job = diagnosed(820, fm="FM-12", cause="ffmpeg-missing", when=timezone.now())
    failure_groups_refresh()
    FailureGroup.objects.update(title_en="ffmpeg missing", title_pt_br="ffmpeg ausente")
    groups = selectors.job_failure_groups(job=job, lang="pt-br")
    assert [(g.group.failure_mode, g.title, g.notes) for g in groups] == [("FM-12", "ffmpeg ausente", [])]
    assert selectors.job_failure_groups(job=job, lang="en")[0].title == "ffmpeg missing"
