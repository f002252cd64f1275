"""Forms: query parameters of the job list that are not filters (sort, page), and notes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from . import selectors
from .models import JobNote

SORT_LABELS = {
    "-toq_id": _("Newest id first"),
    "toq_id": _("Oldest id first"),
    "-created_at": _("Created, newest first"),
    "created_at": _("Created, oldest first"),
}
assert set(SORT_LABELS) == set(selectors.JOB_SORTS)


def cursor_encode(cursor: selectors.JobCursor | None) -> str:
    if cursor is None:
        return ""
    value = cursor.value
    text = value.isoformat() if isinstance(value, datetime) else ("" if value is None else str(value))
    return f"{text}~{cursor.toq_id}"


class JobListParamsForm(forms.Form):
    """`sort` (whitelisted) and `after` (the keyset cursor). Invalid values fall back to defaults."""

    sort = forms.ChoiceField(label=_("Sort"), choices=list(SORT_LABELS.items()), required=False)
    after = forms.CharField(required=False, max_length=80, widget=forms.HiddenInput)

    def clean_sort(self) -> str:
        return self.cleaned_data.get("sort") or selectors.DEFAULT_JOB_SORT

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["cursor"] = self._cursor(data.get("after") or "", data.get("sort") or selectors.DEFAULT_JOB_SORT)
        return data

    @staticmethod
    def _cursor(text: str, sort: str) -> selectors.JobCursor | None:
        value_text, sep, id_text = text.rpartition("~")
        if not sep or not id_text.isdigit():
            return None
        column = selectors.JOB_SORTS[sort][0]
        value: datetime | int | None
        if column == "toq_id":
            value = int(id_text)
        elif value_text == "":
            value = None
        else:
            try:
                value = parse_datetime(value_text)
            except ValueError:
                return None
            if value is None:
                return None
        return selectors.JobCursor(value=value, toq_id=int(id_text))

    def params(self) -> tuple[str, selectors.JobCursor | None]:
        if self.is_valid():
            return self.cleaned_data["sort"], self.cleaned_data["cursor"]
        return selectors.DEFAULT_JOB_SORT, None


class JobNoteForm(forms.ModelForm):
    class Meta:
        model = JobNote
        fields = ["text"]
        labels = {"text": _("Add a note")}
        widgets = {"text": forms.Textarea(attrs={"rows": 3, "maxlength": 4000})}


class AnnotationForm(forms.Form):
    """An engineer's verdict on a finding (or a note on the diagnosis). A missing verdict is a note."""

    verdict = forms.ChoiceField(
        choices=[
            ("confirmed", _("Confirm")),
            ("rejected", _("Reject")),
            ("added", _("Add a cause")),
            ("note", _("Note")),
        ],
        required=False,
    )
    failure_mode = forms.RegexField(regex=r"^(FM-\d{2})?$", required=False, max_length=8)
    cause = forms.SlugField(required=False, max_length=64)
    text = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_verdict(self) -> str:
        return self.cleaned_data.get("verdict") or "note"


class GroupNoteForm(forms.Form):
    """A note on a failure group (GroupNote rows are append-only: no edit form exists)."""

    text = forms.CharField(
        label=_("Add a note to this group"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 4000}),
    )


class LookupForm(forms.Form):
    q = forms.CharField(
        label=_("Look up"),
        required=False,
        max_length=4000,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "placeholder": _("Paste a log line, ARN, request id, S3 key, listing or job id"),
                "size": 60,
                "type": "search",
            }
        ),
    )
