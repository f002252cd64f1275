"""Security headers Django does not set itself."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# No inline scripts or styles anywhere: behaviour lives in static/js, htmx is configured through
# its <meta name="htmx-config"> tag (with eval off), so a file name or a log line that slips past
# escaping still cannot run. Images: our own, data: URIs (plotly), and the media bucket's presigned
# URLs (derivative previews) — that one origin, not any https: host.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:{s3}; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


def content_security_policy() -> str:
    """The policy, img-src naming the origin presigned media URLs point at (AWS S3, or
    AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 with moto or LocalStack)."""
    from awslogs.client import s3_presigned_origin

    origin = s3_presigned_origin(settings.TOQ_MEDIA_BUCKET)
    return CONTENT_SECURITY_POLICY.format(s3=f" {origin}" if origin else "")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = content_security_policy()
        return response
