"""Text, JSON and timestamp helpers shared by the parsers: bounded, storable, never raising."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

# Longest message text kept per log line; longer lines are cut and flagged (CloudWatch allows 256 KB).
MAX_LINE_BYTES = 32 * 1024
# Longest line parsed (CloudWatch's own limit is 256 KB per event).
MAX_PARSE_BYTES = 1024 * 1024
# Longest string kept per parsed field of a log line.
MAX_FIELD_CHARS = 4096
# Longest input/output text kept per history event detail field.
MAX_DETAIL_CHARS = 32 * 1024


# --- text safety ---------------------------------------------------------------------------------


def safe_text(raw: str | bytes | None, limit: int = MAX_LINE_BYTES) -> tuple[str, bool]:
    """Text that PostgreSQL can store: invalid UTF-8 made visible as `\\xNN`, NUL escaped, at most
    `limit` UTF-8 bytes. Returns (text, truncated)."""
    if raw is None:
        return "", False
    if isinstance(raw, str):
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates: from a surrogateescape'd file (bytes 0x80-0xff) or from JSON `\udcxx`.
            try:
                data = raw.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                data = raw.encode("utf-8", "backslashreplace")
    else:
        data = raw
    truncated = len(data) > limit
    if truncated:
        data = data[:limit]
    text = data.decode("utf-8", "backslashreplace") if not truncated else _decode_cut(data)
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text, truncated


def _decode_cut(data: bytes) -> str:
    # A cut may split one multi-byte character at the end: drop that partial tail, escape the rest.
    for cut in range(0, 4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "backslashreplace")


def bound_fields(value: Any, depth: int = 0) -> Any:
    """Parsed JSON with every string cut to MAX_FIELD_CHARS and nesting cut at 20 levels."""
    if isinstance(value, str):
        return value if len(value) <= MAX_FIELD_CHARS else value[:MAX_FIELD_CHARS] + "…[truncated]"
    if depth > 20:
        return "…[too deep]"
    if isinstance(value, dict):
        return {str(k)[:256]: bound_fields(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [bound_fields(v, depth + 1) for v in value[:1000]]
    return value


def loads_or_none(text: Any) -> Any:
    if not isinstance(text, str | bytes) or not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def parse_timestamp(value: Any) -> dt.datetime | None:
    """ISO 8601 string, epoch milliseconds (int) or datetime → aware UTC datetime (None if unreadable)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        # Lambda's LastModified: 2026-01-05T15:53:51.482+0000
        text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        # Go prints nanoseconds; Python accepts at most microseconds.
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def to_epoch_ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
