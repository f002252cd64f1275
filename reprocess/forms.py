from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ActionKind


class ReprocessForm(forms.Form):
    action = forms.ChoiceField(label=_("Action"), choices=ActionKind.choices, widget=forms.RadioSelect)
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    confirm = forms.BooleanField(label=_("I have read what this action will do and want to run it."))
    # Generated when the plan is rendered: a double click or a retried POST carries the same key.
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)
