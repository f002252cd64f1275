"""Failure groups (list and page, notes) and the overview page. Roles are checked here, not in templates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from reprocess.access import reprocess_links_visible

from . import charts, selectors
from .forms import GroupNoteForm
from .roles import ENGINEER, SUPPORT, user_has_role
from .views import HtmxHttpRequest, role_required

if TYPE_CHECKING:
    from diagnosis.models import FailureGroup


def _lang() -> str:
    return "pt-br" if (translation.get_language() or "en").lower() == "pt-br" else "en"


@require_GET
@role_required(SUPPORT)
def group_list(request: HttpRequest) -> HttpResponse:
    groups = selectors.failure_group_list()
    trends = selectors.failure_group_trends(signatures=[g.signature for g in groups], now=timezone.now())
    rows = [
        {
            "group": g,
            "title": g.title_pt_br if _lang() == "pt-br" and g.title_pt_br else g.title_en,
            "figure": charts.sparkline_figure(trends[g.signature]),
            "recent": sum(n for _day, n in trends[g.signature]),
            "json_id": f"chart-group-{g.pk}",
        }
        for g in groups
    ]
    return render(request, "jobs/group_list.html", {"rows": rows, "trend_days": selectors.TREND_DAYS})


def _group_or_404(group_id: int) -> FailureGroup:
    group = selectors.failure_group_get(group_id=group_id)
    if group is None:
        raise Http404
    return group


def _group_ctx(request: HttpRequest, group: FailureGroup, form: GroupNoteForm | None = None) -> dict[str, Any]:
    return {
        "group": group,
        "title": group.title_pt_br if _lang() == "pt-br" and group.title_pt_br else group.title_en,
        "can_note": user_has_role(request.user, ENGINEER),
        "note_form": form or GroupNoteForm(),
    }


@require_GET
@role_required(SUPPORT)
def group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    group = _group_or_404(group_id)
    ctx = _group_ctx(request, group)
    ctx["detail"] = selectors.failure_group_detail(group=group)
    ctx["notes"] = ctx["detail"].notes
    # Bulk reprocess of the group's jobs (its views check the Admin role themselves).
    ctx["can_reprocess"] = reprocess_links_visible(request.user)
    return render(request, "jobs/group_detail.html", ctx)


@require_POST
@vary_on_headers("HX-Request")
@role_required(ENGINEER)
def group_note_add(request: HtmxHttpRequest, group_id: int) -> HttpResponse:
    """Append a note to the group (GroupNote is append-only); htmx gets the notes partial back."""
    from diagnosis.models import GroupNote

    group = _group_or_404(group_id)
    form = GroupNoteForm(request.POST)
    if form.is_valid():
        # XXX(ui): a one-row insert; it moves to a diagnosis service when that module is free to edit.
        GroupNote.objects.create(group=group, author=request.user, text=form.cleaned_data["text"])  # type: ignore[misc]
        form = GroupNoteForm()
    elif not request.htmx:
        # Without JavaScript the page shows the form again with its errors.
        ctx = _group_ctx(request, group, form)
        ctx["detail"] = selectors.failure_group_detail(group=group)
        ctx["notes"] = ctx["detail"].notes
        return render(request, "jobs/group_detail.html", ctx, status=400)
    if not request.htmx:
        return redirect(reverse("jobs:group_detail", args=[group.pk]) + "#group-notes")
    # 200 with the form's errors for htmx too: htmx does not swap 4xx responses by default.
    ctx = _group_ctx(request, group, form)
    ctx["notes"] = selectors.failure_group_notes(group=group)
    return render(request, "jobs/group_detail.html#group-notes", ctx)


@require_GET
@role_required(SUPPORT)
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    per_day = selectors.failures_per_day(now=now)
    ctx = {
        "per_day": per_day,
        "per_day_figure": charts.failures_per_day_figure(per_day.days, per_day.series) if per_day.series else None,
        "durations": selectors.state_duration_percentiles(now=now),
        "sync_health": selectors.sync_health(now=now),
        "collection": selectors.collection_health(),
        "days": selectors.TREND_DAYS,
    }
    return render(request, "jobs/overview.html", ctx)
