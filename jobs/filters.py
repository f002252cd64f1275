"""Job list filters (django-filter): every filter is a query parameter, so a filtered view is a URL."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.conf import settings
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils.translation import gettext_lazy as _

from . import selectors
from .models import JobKind, JobQuerySet, JobStatus


def _day_start(day: date) -> datetime:
    """Dates typed by a person are days in the display time zone, not in UTC."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.DISPLAY_TIME_ZONE))


FAILURE_MODES = [(f"FM-{n:02d}", f"FM-{n:02d}") for n in range(1, 40)]


def _origin_findings_of_job() -> Any:
    from diagnosis.models import Finding, Role

    return Finding.objects.filter(diagnosis__job=OuterRef("pk"), role=Role.ORIGIN)


class JobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(label=_("Status"), choices=JobStatus.choices, empty_label=_("any"))
    kind = django_filters.ChoiceFilter(label=_("Kind"), choices=JobKind.choices, empty_label=_("any"))
    listing = django_filters.NumberFilter(label=_("Listing id"), field_name="listing_identity_id", min_value=0)
    error = django_filters.CharFilter(label=_("Error code or text"), method="filter_error", max_length=200)
    created_from = django_filters.DateFilter(
        label=_("Created from"), field_name="created_at", method="filter_from", widget=forms.DateInput({"type": "date"})
    )
    created_to = django_filters.DateFilter(
        label=_("Created until"), field_name="created_at", method="filter_to", widget=forms.DateInput({"type": "date"})
    )
    started_from = django_filters.DateFilter(
        label=_("Started from"), field_name="started_at", method="filter_from", widget=forms.DateInput({"type": "date"})
    )
    started_to = django_filters.DateFilter(
        label=_("Started until"), field_name="started_at", method="filter_to", widget=forms.DateInput({"type": "date"})
    )
    # Static choices (the reference's FM-01..FM-39): rendering the form runs no query.
    failure_mode = django_filters.ChoiceFilter(
        label=_("Failure mode"), choices=FAILURE_MODES, empty_label=_("any"), method="filter_failure_mode"
    )
    # A group id (from the group page's link), not a select of every group: no query to render.
    group = django_filters.NumberFilter(label=_("Failure group"), method="filter_group", min_value=1)
    stuck = django_filters.BooleanFilter(
        label=_("Stuck only"), method="filter_stuck", widget=forms.CheckboxInput(), field_name="stuck"
    )

    def filter_error(self, queryset: JobQuerySet, name: str, value: str) -> JobQuerySet:
        # On PostgreSQL both sides are indexed on the exact expressions Django writes for them,
        # UPPER(col::text) (jobs migration 0005: pg_trgm GIN for the LIKE, btree for the =); changing
        # either lookup means changing those indexes.
        return queryset.filter(Q(callback_error_code__iexact=value) | Q(last_error__icontains=value))

    def filter_from(self, queryset: JobQuerySet, name: str, value: date) -> JobQuerySet:
        return queryset.filter(**{f"{name}__gte": _day_start(value)})

    def filter_to(self, queryset: JobQuerySet, name: str, value: date) -> JobQuerySet:
        # Inclusive of the whole day typed.
        return queryset.filter(**{f"{name}__lt": _day_start(value + timedelta(days=1))})

    def filter_failure_mode(self, queryset: JobQuerySet, name: str, value: str) -> JobQuerySet:
        """By the failure mode of the job's stored origin finding."""
        return queryset.filter(Exists(_origin_findings_of_job().filter(failure_mode=value)))

    def filter_group(self, queryset: JobQuerySet, name: str, value: Decimal) -> JobQuerySet:
        """Jobs whose origin finding has the group's signature (one query, the group as a subquery)."""
        from diagnosis.models import FailureGroup

        signature = Subquery(FailureGroup.objects.filter(pk=int(value)).values("signature")[:1])
        return queryset.filter(Exists(_origin_findings_of_job().filter(signature=signature)))

    def filter_stuck(self, queryset: JobQuerySet, name: str, value: bool | None) -> JobQuerySet:
        return selectors.job_filter_stuck(queryset) if value else queryset
