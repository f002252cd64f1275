"""Derivative previews: presigned S3 GET URLs (SigV4, signed by awslogs.client against the configured
endpoint, short-lived), only for objects the S3 check found present; the CSP lets exactly that origin
serve images."""

from __future__ import annotations

import datetime as dt
import html
import re
import urllib.request
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.utils import timezone

from awslogs import client as aws
from awslogs.models import DerivativeCheck
from jobs.roles import SUPPORT
from tests.awslogs.conftest import moto_server, reset_moto  # noqa: F401 (the session's moto server fixture)
from tests.jobs.factories import make_job, make_user
from toqdash.middleware import content_security_policy

BUCKET = "toq-listing-medias"
HX = {"HX-Request": "true"}
# A raw file name carries spaces, '#', '?', '&', quotes, markup and non-ASCII: all must survive.
NAME = 'IMG 01#?&"<b>é.jpg'
THUMB = f"16/processed/photo/horizontal/thumbnail/{NAME}"
LARGE = f"16/processed/photo/horizontal/large/{NAME}"
SMALL = f"16/processed/photo/horizontal/small/{NAME}"
MP4 = "16/processed/video/vertical/original/vertical-01-clip.mp4"
VIDEO_THUMB = "16/processed/video/vertical/thumbnail/vertical-01-clip.mp4"


@pytest.fixture
def s3(moto_server, monkeypatch):  # noqa: F811
    # The moto server is the session's: start from an empty state whatever earlier tests left.
    reset_moto(moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    setup = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=moto_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    setup.create_bucket(Bucket=BUCKET)
    for key, body in ((THUMB, b"thumb-jpeg"), (LARGE, b"large-jpeg"), (MP4, b"mp4-bytes"), (VIDEO_THUMB, b"vt")):
        setup.put_object(Bucket=BUCKET, Key=key, Body=body)
    yield moto_server
    reset_moto(moto_server)


def _check(job, key: str, kind: str, outcome: str, size: int | None) -> None:
    DerivativeCheck.objects.create(job=job, raw_key="16/raw/" + kind, key=key, kind=kind, outcome=outcome, size=size)


@pytest.mark.django_db
def test_previews_are_presigned_against_the_endpoint_and_expire(client, s3, settings):
    settings.S3_PRESIGNED_URL_EXPIRES_SECONDS = 120
    client.force_login(make_user("sam", SUPPORT))
    job = make_job(70, status="SUCCEEDED")
    _check(job, THUMB, "thumbnail", "present", 10)
    _check(job, LARGE, "large", "present", 10)
    _check(job, SMALL, "small", "missing", None)
    _check(job, MP4, "mp4", "present", 9)
    _check(job, VIDEO_THUMB, "video_thumbnail", "zero_bytes", 0)

    before = timezone.now().replace(microsecond=0)
    response = client.get(f"/jobs/70/g{job.generation}/derivatives/", headers=HX)
    body = response.content.decode()

    images = re.findall(r'<img class="preview" src="([^"]+)" loading="lazy" alt="[^"]*">', body)
    assert len(images) == 1  # the present thumbnail; the large size is a link, not an inline download
    url = html.unescape(images[0])
    parts = urlsplit(url)
    # Against the configured endpoint (path style there), the key percent-encoded in the path.
    assert f"{parts.scheme}://{parts.netloc}" == s3
    assert parts.path == f"/{BUCKET}/16/processed/photo/horizontal/thumbnail/IMG%2001%23%3F%26%22%3Cb%3E%C3%A9.jpg"
    query = parse_qs(parts.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Signature"][0]
    assert query["X-Amz-Credential"][0].endswith("/us-east-1/s3/aws4_request")
    # Short-lived: signed now, valid for S3_PRESIGNED_URL_EXPIRES_SECONDS.
    assert query["X-Amz-Expires"] == ["120"]
    signed = dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert before <= signed <= timezone.now() + dt.timedelta(seconds=1)
    # It is a working URL for that object.
    with urllib.request.urlopen(url, timeout=10) as fetched:  # noqa: S310 (the local moto server)
        assert fetched.read() == b"thumb-jpeg"

    # Links: every present object ("open", the MP4 as "MP4"), none for missing or empty ones.
    links = re.findall(r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer"[^>]*>([^<]+)</a>', body)
    signed_links = {text: html.unescape(href) for href, text in links if "X-Amz-Signature" in href and text != "<img"}
    assert set(signed_links) >= {"open", "MP4"}
    mp4 = signed_links["MP4"]
    assert urlsplit(mp4).path == f"/{BUCKET}/{MP4}"
    with urllib.request.urlopen(mp4, timeout=10) as fetched:  # noqa: S310
        assert fetched.read() == b"mp4-bytes"
    signed_keys = {urlsplit(html.unescape(h)).path for h, _ in links if "X-Amz-Signature" in h}
    assert not any("/small/" in p or "/thumbnail/vertical-01" in p for p in signed_keys)
    assert body.count("S3 console") == 3
    # The key's markup stays text in the page.
    assert "<b>" not in body and "&lt;b&gt;" in body

    # The CSP lets that origin (and only it, besides our own and data:) serve images.
    csp = response["Content-Security-Policy"]
    assert f"img-src 'self' data: {s3};" in csp and "https:" not in csp


def test_presigned_url_expiry_comes_from_the_setting_and_no_credentials_means_no_url(monkeypatch, settings):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    url = aws.s3_presigned_get_url(BUCKET, "16/a b.jpg", expires_in=300)
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == f"{BUCKET}.s3.amazonaws.com"
    assert parse_qs(parts.query)["X-Amz-Expires"] == ["300"] and parts.path == "/16/a%20b.jpg"
    # The CSP names AWS's virtual host of the bucket, not every https: host.
    assert f"img-src 'self' data: https://{BUCKET}.s3.amazonaws.com;" in content_security_policy()

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(aws, "_local", type(aws._local)())  # fresh clients: credentials are read at creation
    assert aws.s3_presigned_get_url(BUCKET, "k", expires_in=300) == ""
    assert "img-src 'self' data:;" in content_security_policy()


@pytest.mark.django_db
def test_no_previews_without_present_objects(client):
    client.force_login(make_user("sam", SUPPORT))
    job = make_job(71, status="FAILED")
    _check(job, THUMB, "thumbnail", "missing", None)
    body = client.get(f"/jobs/71/g{job.generation}/derivatives/", headers=HX).content.decode()
    assert "<img" not in body and "X-Amz-Signature" not in body and "S3 console" not in body
