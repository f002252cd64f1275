"""Presentation filters: times in the display time zone with UTC on hover, durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django import template
from django.conf import settings
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def when(value: datetime | None) -> SafeString | str:
    """`<time>` in DISPLAY_TIME_ZONE, the UTC instant in `datetime` and `title` (hover)."""
    if value is None:
        return "—"
    utc = value.astimezone(UTC)
    local = value.astimezone(ZoneInfo(settings.DISPLAY_TIME_ZONE))
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        utc.isoformat(),
        utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
    )


@register.simple_tag
def duration(start: datetime | None, end: datetime | None) -> str:
    """`end - start` as H:MM:SS (language-neutral), "—" when either is missing."""
    if start is None or end is None:
        return "—"
    seconds = int((end - start) / timedelta(seconds=1))
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
