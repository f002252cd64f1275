from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .bulk import RATE_MAX, RATE_MIN
from .models import ActionKind


class ReprocessForm(forms.Form):
    action = forms.ChoiceField(label=_("Action"), choices=ActionKind.choices, widget=forms.RadioSelect)
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    confirm = forms.BooleanField(label=_("I have read what this action will do and want to run it."))
    # Generated when the plan is rendered: a double click or a retried POST carries the same key.
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)


def _default_rate() -> int:
    return int(settings.REPROCESS_BULK_RATE_PER_MINUTE)


class BulkForm(forms.Form):
    """The preview page's form (→ the confirmation page): what to do to the jobs, why, how fast."""

    action = forms.ChoiceField(label=_("Action"), choices=ActionKind.choices, widget=forms.HiddenInput)
    # The job list's query string the preview was made of (only its filter parameters).
    query = forms.CharField(max_length=2000, widget=forms.HiddenInput)
    name = forms.CharField(label=_("Batch name"), max_length=200)
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    rate_per_minute = forms.IntegerField(
        label=_("Rate limit (jobs per minute)"), min_value=RATE_MIN, max_value=RATE_MAX, initial=_default_rate
    )


class BulkConfirmForm(BulkForm):
    """The confirmation page's form (→ the batch): the same fields, hidden, plus what was confirmed."""

    # Generated when the confirmation page is rendered: a double submit creates one batch.
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)
    # Which jobs the confirmation page showed (selectors.BulkPreview.fingerprint).
    fingerprint = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("name", "reason", "rate_per_minute"):
            self.fields[name].widget = forms.HiddenInput()
