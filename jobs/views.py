"""Job list and job page (mirror data). Every view checks its role here, not in templates."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from reprocess.access import reprocess_links_visible

from . import charts, selectors, services
from .filters import JobFilter
from .forms import AnnotationForm, JobListParamsForm, JobNoteForm, LookupForm, cursor_encode
from .models import Job
from .roles import ADMIN, ENGINEER, SUPPORT, user_has_role


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


V = TypeVar("V", bound=Callable[..., HttpResponseBase])


def role_required(role: str) -> Callable[[V], V]:
    """Anonymous → the login page; signed in without `role` → 403."""

    def decorator(view: V) -> V:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_role(request.user, role):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def _job_filters(request: HttpRequest) -> tuple[JobFilter, JobFilter]:
    """The filters as asked, and the same without `status` (the status counts ignore it)."""
    base = selectors.job_list_for_dashboard()
    filters = JobFilter(request.GET, queryset=base)
    without_status = request.GET.copy()
    without_status.pop("status", None)
    return filters, JobFilter(without_status, queryset=base)


@require_GET
@vary_on_headers("HX-Request")
@role_required(SUPPORT)
def job_list(request: HtmxHttpRequest) -> HttpResponse:
    partial = bool(request.htmx) and not request.htmx.history_restore_request
    # The lookup shows on the whole page only; the table's partial (filters, polling) skips it.
    lookup_form, matches = (None, None) if partial else _lookup(request)
    if matches is not None and len(matches) == 1:
        # One job matches what was pasted: straight to its page.
        job = matches[0].job
        return redirect("jobs:job_detail_generation", toq_id=job.toq_id, generation=job.generation)
    filters, for_counts = _job_filters(request)
    params = JobListParamsForm(request.GET)
    sort, cursor = params.params()
    if not filters.is_valid():
        # Never widen the result silently: an invalid filter shows its error and no rows.
        ctx: dict[str, Any] = {"filter": filters, "params_form": params, "page": None, "lookup_form": lookup_form}
        return render(request, "jobs/job_list.html", ctx, status=400)
    page = selectors.job_page(filters.qs, sort=sort, cursor=cursor)
    ctx = {
        "filter": filters,
        "params_form": params,
        "page": page,
        "query": _query_without(request, "after"),
        "count_query": _query_without(request, "after", "status"),
        "has_cursor": cursor is not None,
        "next_after": cursor_encode(page.next_cursor),
        "status_counts": selectors.job_status_counts(for_counts.qs),
        # "Reprocess these" (bulk reprocess of this filter); its views check the Admin role themselves.
        "can_reprocess": reprocess_links_visible(request.user),
    }
    # A history restore (Back after hx-push-url, cache miss) needs the whole page.
    if partial:
        response = render(request, "jobs/job_list.html#job-table", ctx)
        if request.htmx.trigger == "job-table" and not page.any_in_flight:
            # The poll that sees the last in-flight row settle: swap it in, then stop polling.
            return HttpResponseStopPolling(response.content)
        return response
    ctx["sync_health"] = selectors.sync_health()
    ctx["collection_lag"] = selectors.collection_lag()
    ctx["lookup_form"], ctx["lookup_matches"] = lookup_form, matches
    return render(request, "jobs/job_list.html", ctx)


def _lookup(request: HttpRequest) -> tuple[LookupForm | None, list[Any] | None]:
    """The lookup box (`q`): the jobs matching what a person pasted, or None when nothing was asked."""
    from diagnosis.lookup import job_lookup

    form = LookupForm(request.GET)
    if not form.is_valid() or not form.cleaned_data["q"]:
        return form, None
    return form, job_lookup(query=form.cleaned_data["q"])


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = [
    "toq_id",
    "generation",
    "status",
    "kind",
    "listing_identity_id",
    "listing_code",
    "provider",
    "external_id",
    "created_at",
    "started_at",
    "completed_at",
    "callback_status",
    "callback_error_code",
    "last_error",
    "disappeared_at",
    "superseded_at",
]


def csv_safe(value: object) -> str:
    """A cell a spreadsheet will not evaluate (CSV/formula injection: = + - @ tab CR)."""
    text = "" if value is None else (value.isoformat() if hasattr(value, "isoformat") else str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(jobs: Iterator[Job]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for job in jobs:
        yield writer.writerow([csv_safe(getattr(job, c)) for c in CSV_COLUMNS])


@require_GET
@role_required(SUPPORT)
def job_list_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    filters, _ = _job_filters(request)
    if not filters.is_valid():
        return HttpResponse(status=400)
    sort, _cursor = JobListParamsForm(request.GET).params()
    jobs = selectors.job_sort(filters.qs, sort=sort).iterator(chunk_size=2000)
    response = StreamingHttpResponse(_csv_rows(jobs), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="toqdash-jobs.csv"'
    return response


def _job_or_404(toq_id: int, generation: int | None) -> Job:
    job = selectors.job_get(toq_id=toq_id, generation=generation)
    if job is None:
        raise Http404
    return job


def _panels(job: Job) -> list[tuple[str, str, str]]:
    """(DOM id, URL, title) of the job page's lazily loaded evidence panels, in page order."""
    args = [job.toq_id, job.generation]
    return [
        ("job-diagnosis", reverse("jobs:job_diagnosis", args=args), _("Diagnosis")),
        ("job-timeline", reverse("jobs:job_timeline", args=args), _("Timeline")),
        ("job-derivatives", reverse("jobs:job_derivatives", args=args), _("Derivatives")),
        ("job-logs", reverse("jobs:job_logs", args=args), _("Logs")),
        ("job-history-raw", reverse("jobs:job_history_raw", args=args), _("Raw history")),
    ]


def _job_page(request: HtmxHttpRequest, job: Job, note_form: JobNoteForm, *, status: int = 200) -> HttpResponse:
    """The job page: the mirror, TOQ-vs-AWS disagreements and console links (small indexed reads of the
    AWS side, never its history), the panels' placeholders. A fixed number of queries."""
    now = timezone.now()
    evidence = selectors.job_aws_evidence(job=job)
    ctx = {
        "detail": selectors.job_detail(job=job),
        "note_form": note_form,
        "disagreements": selectors.job_disagreements(job=job, evidence=evidence, now=now),
        "console": selectors.job_console_links(job=job, evidence=evidence, now=now),
        "collection_lag": selectors.collection_lag(now=now),
        "panels": _panels(job),
        # The planner view checks the role itself; this only decides whether to show the link.
        "can_reprocess": user_has_role(request.user, ADMIN),
    }
    return render(request, "jobs/job_detail.html", ctx, status=status)


@require_GET
@role_required(SUPPORT)
def job_detail(request: HtmxHttpRequest, toq_id: int, generation: int | None = None) -> HttpResponse:
    return _job_page(request, _job_or_404(toq_id, generation), JobNoteForm())


@require_POST
@role_required(SUPPORT)
def job_note_add(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    job = _job_or_404(toq_id, generation)
    form = JobNoteForm(request.POST)
    if form.is_valid():
        services.job_note_create(job=job, author=request.user, text=form.cleaned_data["text"])  # type: ignore[arg-type]
        form = JobNoteForm()
    elif not request.htmx:
        # Without JavaScript the page shows the form again with its errors.
        return _job_page(request, job, form, status=400)
    if not request.htmx:
        return redirect(reverse("jobs:job_detail_generation", args=[job.toq_id, job.generation]) + "#job-notes")
    # 200 with the form's errors for htmx too: htmx does not swap 4xx responses by default.
    ctx = {"detail": {"job": job, "notes": selectors.job_notes(job=job)}, "note_form": form}
    return render(request, "jobs/job_detail.html#job-notes", ctx)


@require_GET
@role_required(ENGINEER)
def sync_runs(request: HttpRequest) -> HttpResponse:
    """Sync pass history. Engineer+: errors name TOQ's database host and user."""
    ctx = {"runs": selectors.sync_runs_recent(), "sync_health": selectors.sync_health()}
    return render(request, "jobs/sync_runs.html", ctx)


# --- job page panels: each loaded by htmx after the page (hx-trigger="load"), and a page of its own
# without JavaScript. The page's first response runs none of these queries.


LOG_LEVELS = ["DEBUG", "INFO", "WARN", "ERROR"]


def _panel(request: HtmxHttpRequest, job: Job, name: str, ctx: dict[str, Any]) -> HttpResponse:
    ctx = {**ctx, "job": job, "panel": f"jobs/job_panels.html#{name}"}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, ctx["panel"], ctx)
    # Alone on its page (no JavaScript): evidence links go to the panel that holds their row.
    return render(request, "jobs/job_panel.html", {**ctx, "standalone": True})


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


@require_GET
@vary_on_headers("HX-Request", "Accept-Language", "Cookie")
@role_required(SUPPORT)
def job_diagnosis_panel(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    job = _job_or_404(toq_id, generation)
    return _diagnosis_panel(request, job)


def _diagnosis_panel(request: HtmxHttpRequest, job: Job, form: AnnotationForm | None = None) -> HttpResponse:
    lang = translation.get_language() or "en"
    ctx = {
        "card": selectors.job_diagnosis_card(job=job, lang=lang),
        # The audit trail of the annotations, and the notes of the job's failure groups.
        "annotations": selectors.job_annotation_history(job=job),
        "groups": selectors.job_failure_groups(job=job, lang=lang),
        "can_annotate": user_has_role(request.user, ENGINEER),
        "annotation_form": form,
    }
    return _panel(request, job, "job-diagnosis", ctx)


@require_POST
@role_required(ENGINEER)
def job_annotate(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    """Confirm or reject a finding, add a cause, or note the diagnosis (append-only, audited)."""
    from diagnosis.annotations import annotation_add

    job = _job_or_404(toq_id, generation)
    form = AnnotationForm(request.POST)
    if form.is_valid():
        try:
            annotation_add(
                job=job,
                author=request.user,  # type: ignore[arg-type]
                verdict=form.cleaned_data["verdict"],
                failure_mode=form.cleaned_data["failure_mode"],
                cause=form.cleaned_data["cause"],
                note=form.cleaned_data["text"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    if form.errors and not request.htmx:
        return HttpResponse(" ".join(str(e) for e in form.non_field_errors() or form.errors), status=400)
    if not request.htmx:
        return redirect(reverse("jobs:job_detail_generation", args=[job.toq_id, job.generation]) + "#job-diagnosis")
    return _diagnosis_panel(request, job, form if form.errors else None)


@require_GET
@role_required(SUPPORT)
def job_incident_report(request: HttpRequest, toq_id: int, generation: int) -> HttpResponse:
    """The incident report as a Markdown download (?lang=pt-br for Portuguese)."""
    from diagnosis.report import incident_report_markdown

    job = _job_or_404(toq_id, generation)
    lang = "pt-br" if request.GET.get("lang", translation.get_language() or "en").lower() == "pt-br" else "en"
    response = HttpResponse(incident_report_markdown(job=job, lang=lang), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="toqdash-job-{job.toq_id}-{lang}.md"'
    return response


@require_GET
@vary_on_headers("HX-Request")
@role_required(SUPPORT)
def job_timeline_panel(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    job = _job_or_404(toq_id, generation)
    data = selectors.job_timeline_data(job=job)
    figure = charts.timeline_figure(data, now=timezone.now()) if data.executions else None
    return _panel(request, job, "job-timeline", {"timeline": data, "figure": figure})


@require_GET
@vary_on_headers("HX-Request")
@role_required(SUPPORT)
def job_logs_panel(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    job = _job_or_404(toq_id, generation)
    filters = {k: request.GET.get(k, "").strip()[:200] for k in ("function", "level", "text")}
    logs = selectors.job_log_page(
        job=job,
        page=_page_number(request),
        at_event=request.GET.get("event", "")[:80],
        evidence=selectors.job_evidence_anchors(job=job),
        **filters,
    )
    query = _query_without(request, "page", "event")
    ctx = {"logs": logs, "filters": filters, "query": query, "levels": LOG_LEVELS}
    return _panel(request, job, "job-logs", ctx)


@require_GET
@vary_on_headers("HX-Request")
@role_required(SUPPORT)
def job_derivatives_panel(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    job = _job_or_404(toq_id, generation)
    ctx = {
        "matrix": selectors.job_derivative_matrix(job=job),
        "presign_seconds": settings.S3_PRESIGNED_URL_EXPIRES_SECONDS,
    }
    return _panel(request, job, "job-derivatives", ctx)


@require_GET
@vary_on_headers("HX-Request")
@role_required(SUPPORT)
def job_history_panel(request: HtmxHttpRequest, toq_id: int, generation: int) -> HttpResponse:
    job = _job_or_404(toq_id, generation)
    event = request.GET.get("event", "")
    history = selectors.job_history_page(
        job=job,
        page=_page_number(request),
        at_execution=request.GET.get("execution", "")[:512],
        at_event=int(event) if event.isdigit() else None,
        evidence=selectors.job_evidence_anchors(job=job),
    )
    return _panel(request, job, "job-history-raw", {"history": history})


@require_GET
@role_required(SUPPORT)
def job_history_json(request: HttpRequest, toq_id: int, generation: int) -> JsonResponse:
    """The stored Step Functions history of every execution of the job, as a download."""
    job = _job_or_404(toq_id, generation)
    response = JsonResponse(
        selectors.job_history_export(job=job), json_dumps_params={"indent": 2, "ensure_ascii": False}
    )
    response["Content-Disposition"] = f'attachment; filename="toqdash-job-{job.toq_id}-g{job.generation}-history.json"'
    return response
