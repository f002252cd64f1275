"""Reprocess planner page and its POST. Admin only: checked here (403), not only in templates."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from jobs.models import Job
from jobs.roles import ADMIN
from jobs.views import HtmxHttpRequest, role_required

from . import selectors
from .forms import ReprocessForm
from .planner import plan_reprocess
from .services import ReprocessConflict, reprocess_job


def _context(request: HtmxHttpRequest, job: Job, form: ReprocessForm | None = None) -> dict[str, Any]:
    return {
        "job": job,
        "plan": plan_reprocess(job, request.user),
        "form": form or ReprocessForm(initial={"idempotency_key": uuid.uuid4().hex}),
        "actions": list(selectors.reprocess_action_list(job=job)),
        "audit": list(selectors.audit_entry_list(job=job)),
    }


@require_GET
@role_required(ADMIN)
def reprocess_plan(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    job = get_object_or_404(Job, toq_id=toq_id, generation=generation)
    template = "reprocess/reprocess_plan.html#reprocess-plan" if request.htmx else "reprocess/reprocess_plan.html"
    return render(request, template, _context(request, job))


@require_POST
@role_required(ADMIN)
def reprocess_run(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    job = get_object_or_404(Job, toq_id=toq_id, generation=generation)
    form = ReprocessForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            reprocess_job(
                job=job,
                user=request.user,  # type: ignore[arg-type]  # role_required: signed in
                action=form.cleaned_data["action"],
                reason=form.cleaned_data["reason"],
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except ValidationError as exc:
            status = 409 if isinstance(exc, ReprocessConflict) else 400
            form.add_error(None, exc)
        else:
            url = reverse("reprocess:reprocess_plan", args=[job.toq_id, job.generation])
            if not request.htmx:
                return redirect(url + "#reprocess-history")
            return render(request, "reprocess/reprocess_plan.html#reprocess-plan", _context(request, job))
    template = "reprocess/reprocess_plan.html#reprocess-plan" if request.htmx else "reprocess/reprocess_plan.html"
    return render(request, template, _context(request, job, form), status=status)
