"""Project-level views: the health endpoint."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs import selectors


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """DB and broker reachable, sync lag. 200 when the dashboard can serve, 503 otherwise.

    Public on purpose (load balancers and orchestrators call it): it shows no TOQ data.
    """
    report = selectors.health_report()
    return JsonResponse(report, status=200 if report["ok"] else 503)
