"""Bulk reprocess pages: preview → confirmation → batch progress, pause, resume, abort.

Admin only, checked here (403), not only in templates. The job page's reprocess outcome panel is
read by every role (it shows what was done, not a way to do it).
"""

from __future__ import annotations

import math
import uuid
from typing import Any, cast

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from jobs.models import Job
from jobs.roles import ADMIN, SUPPORT
from jobs.views import HtmxHttpRequest, role_required

from . import bulk, selectors
from .forms import BulkConfirmForm, BulkForm
from .models import ActionKind, Batch


def _user(request: HtmxHttpRequest) -> User:
    return cast(User, request.user)  # role_required: signed in


def _preview_page(
    request: HtmxHttpRequest, preview: selectors.BulkPreview, form: BulkForm, status: int
) -> HttpResponse:
    ctx = {"preview": preview, "form": form, "actions": ActionKind.choices}
    return render(request, "reprocess/bulk_preview.html", ctx, status=status)


def _confirm_page(
    request: HtmxHttpRequest, preview: selectors.BulkPreview, form: BulkConfirmForm, status: int = 200
) -> HttpResponse:
    rate = form["rate_per_minute"].value()
    minutes = math.ceil(len(preview.eligible) / int(rate)) if str(rate).isdigit() and int(rate) else None
    ctx = {"preview": preview, "form": form, "minutes": minutes}
    return render(request, "reprocess/bulk_confirm.html", ctx, status=status)


@require_GET
@role_required(ADMIN)
def bulk_preview(request: HtmxHttpRequest) -> HttpResponse:
    """The jobs of the job list's filters (same query string), and what `action` would do to them."""
    preview = selectors.bulk_preview(query=request.GET.urlencode(), action=request.GET.get("action", "resubmit"))
    form = BulkForm(initial={"action": preview.action, "query": preview.query})
    return _preview_page(request, preview, form, 200)


@require_POST
@role_required(ADMIN)
def bulk_confirm(request: HtmxHttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    valid = form.is_valid()
    preview = selectors.bulk_preview(query=request.POST.get("query", ""), action=request.POST.get("action", ""))
    if not valid or not preview.ok:
        return _preview_page(request, preview, form, 400)
    confirm = BulkConfirmForm(
        initial={**form.cleaned_data, "idempotency_key": uuid.uuid4().hex, "fingerprint": preview.fingerprint}
    )
    return _confirm_page(request, preview, confirm)


@require_POST
@role_required(ADMIN)
def bulk_start(request: HtmxHttpRequest) -> HttpResponse:
    form = BulkConfirmForm(request.POST)
    if form.is_valid():
        try:
            batch = bulk.batch_create(user=_user(request), **form.cleaned_data)
        except bulk.BatchSetChanged as exc:
            # Show the confirmation again with the new numbers (the same key: still one batch).
            data = request.POST.copy()
            data["fingerprint"] = exc.preview.fingerprint
            changed = BulkConfirmForm(data)
            changed.add_error(None, exc)
            return _confirm_page(request, exc.preview, changed, 409)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("reprocess:batch_detail", batch_id=batch.pk)
    preview = selectors.bulk_preview(query=request.POST.get("query", ""), action=request.POST.get("action", ""))
    return _confirm_page(request, preview, form, 400)


@require_GET
@role_required(ADMIN)
def batch_list(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "reprocess/batch_list.html", {"batches": selectors.batch_list()})


def _progress(batch_id: int) -> selectors.BatchProgress:
    progress = selectors.batch_progress(batch_id=batch_id)
    if progress is None:
        raise Http404
    return progress


@require_GET
@vary_on_headers("HX-Request")
@role_required(ADMIN)
def batch_detail(request: HtmxHttpRequest, batch_id: int) -> HttpResponse:
    """The batch's progress; htmx polls its progress partial until the batch is over."""
    progress = _progress(batch_id)
    if not request.htmx or request.htmx.history_restore_request:
        return render(request, "reprocess/batch_detail.html", {"progress": progress})
    response = render(request, "reprocess/batch_detail.html#batch-progress", {"progress": progress})
    if progress.batch.is_over and request.htmx.trigger == "batch-progress":
        return HttpResponseStopPolling(response.content)
    return response


def _batch_id_or_404(batch_id: int) -> int:
    return int(get_object_or_404(Batch.objects.only("pk"), pk=batch_id).pk)


def _after_control(request: HtmxHttpRequest, batch_id: int) -> HttpResponse:
    if not request.htmx:
        return redirect(reverse("reprocess:batch_detail", args=[batch_id]))
    return render(request, "reprocess/batch_detail.html#batch-progress", {"progress": _progress(batch_id)})


@require_POST
@role_required(ADMIN)
def batch_pause(request: HtmxHttpRequest, batch_id: int) -> HttpResponse:
    bulk.batch_pause(batch_id=_batch_id_or_404(batch_id), user=_user(request))
    return _after_control(request, batch_id)


@require_POST
@role_required(ADMIN)
def batch_resume(request: HtmxHttpRequest, batch_id: int) -> HttpResponse:
    bulk.batch_resume(batch_id=_batch_id_or_404(batch_id), user=_user(request))
    return _after_control(request, batch_id)


@require_POST
@role_required(ADMIN)
def batch_abort(request: HtmxHttpRequest, batch_id: int) -> HttpResponse:
    bulk.batch_abort(batch_id=_batch_id_or_404(batch_id), user=_user(request))
    return _after_control(request, batch_id)


@require_GET
@vary_on_headers("HX-Request")
@role_required(SUPPORT)
def job_outcome(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    """The job page's reprocess panel (loaded by htmx); a page of its own without JavaScript."""
    job = get_object_or_404(Job, toq_id=toq_id, generation=generation)
    ctx: dict[str, Any] = {"job": job, "outcome": selectors.job_reprocess_outcome(job=job)}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "reprocess/_outcome.html#job-reprocess", ctx)
    return render(request, "reprocess/job_outcome.html", ctx)
