"""Plotly figure builders: pure functions from selector output to a figure dict (no ORM, no request).

The dict goes to the page through `json_script`; static/js/charts.js draws it."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from .selectors import TimelineData

STATUS_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "running": "#1565c0"}
ATTEMPT_COLORS = {"succeeded": "#43a047", "failed": "#e53935", "timed_out": "#ef6c00"}
BACKOFF_COLOR = "#bdbdbd"


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def timeline_figure(data: TimelineData, *, now: datetime) -> dict[str, Any]:
    """Gantt-like timeline: one row per state (parallel branches on their own rows), each Task attempt
    and the backoff before a retry, TOQ's job times as markers. States still running end at `now`."""
    states: dict[str, list[Any]] = {"y": [], "base": [], "x": [], "color": [], "text": []}
    attempts: dict[str, list[Any]] = {"y": [], "base": [], "x": [], "color": [], "text": []}
    backoffs: dict[str, list[Any]] = {"y": [], "base": [], "x": [], "text": []}
    rows: list[str] = []
    several = len(data.executions) > 1
    for execution in data.executions:
        prefix = f"{execution.name[:8]} · " if several else ""
        for visit in execution.visits:
            entered = visit["entered_at"]
            if entered is None:
                continue
            # A state never exited: the execution's end (Fail/Succeed states and aborted runs), else now.
            exited = visit["exited_at"] or execution.stop or now
            branch = visit["branch"].rsplit("/", 1)[-1] if visit["branch"] else ""
            row = prefix + (f"{branch} › {visit['name']}" if branch and branch != visit["name"] else visit["name"])
            if row not in rows:
                rows.append(row)
            states["y"].append(row)
            states["base"].append(entered.isoformat())
            states["x"].append(max(_ms(entered, exited), 1))
            states["color"].append(STATUS_COLORS.get(visit["status"], "#90a4ae"))
            states["text"].append(f"{visit['name']} ({visit['type']}): {visit['status']} {visit['error']}".strip())
            previous_end: datetime | None = None
            for attempt in visit["attempts"]:
                start = _parse(attempt.get("started_at")) or _parse(attempt.get("scheduled_at"))
                end = _parse(attempt.get("ended_at")) or now
                scheduled = _parse(attempt.get("scheduled_at")) or start
                if start is None:
                    continue
                if previous_end is not None and scheduled is not None and scheduled > previous_end:
                    backoffs["y"].append(row)
                    backoffs["base"].append(previous_end.isoformat())
                    backoffs["x"].append(_ms(previous_end, scheduled))
                    backoffs["text"].append(
                        _("backoff %(seconds).1f s") % {"seconds": _ms(previous_end, scheduled) / 1000}
                    )
                outcome = str(attempt.get("outcome", ""))
                attempts["y"].append(row)
                attempts["base"].append(start.isoformat())
                attempts["x"].append(max(_ms(start, end), 1))
                attempts["color"].append(ATTEMPT_COLORS.get(outcome, "#78909c"))
                attempts["text"].append(
                    _("attempt %(n)s: %(outcome)s") % {"n": attempt.get("number", "?"), "outcome": outcome}
                    + (f" {attempt.get('error')}" if attempt.get("error") else "")
                )
                previous_end = end
    # TOQ's own times, one row each (three labels seconds apart would overlap on one row).
    labels = {"created": _("job created"), "started": _("job started"), "completed": _("job completed (callback)")}
    marker_rows = [f"{_('TOQ')}: {labels.get(label, label)}" for label, _at in data.markers]
    fig = go.Figure()
    bar_common: dict[str, Any] = {"orientation": "h", "hoverinfo": "text"}
    fig.add_trace(
        go.Bar(
            name=_("state"),
            y=states["y"],
            base=states["base"],
            x=states["x"],
            hovertext=states["text"],
            marker={"color": states["color"], "opacity": 0.35},
            width=0.8,
            **bar_common,
        )
    )
    fig.add_trace(
        go.Bar(
            name=_("attempt"),
            y=attempts["y"],
            base=attempts["base"],
            x=attempts["x"],
            hovertext=attempts["text"],
            marker={"color": attempts["color"]},
            width=0.45,
            **bar_common,
        )
    )
    fig.add_trace(
        go.Bar(
            name=_("backoff"),
            y=backoffs["y"],
            base=backoffs["base"],
            x=backoffs["x"],
            hovertext=backoffs["text"],
            marker={"color": BACKOFF_COLOR, "pattern": {"shape": "/"}},
            width=0.2,
            **bar_common,
        )
    )
    fig.add_trace(
        go.Scatter(
            name=_("TOQ job"),
            mode="markers",
            y=marker_rows,
            x=[at.isoformat() for _label, at in data.markers],
            hovertext=marker_rows,
            hoverinfo="text+x",
            marker={"symbol": "diamond", "size": 11, "color": "#6a1b9a"},
        )
    )
    fig.update_layout(
        barmode="overlay",
        showlegend=True,
        height=max(220, 30 * (len(rows) + len(marker_rows)) + 110),
        margin={"l": 10, "r": 10, "t": 10, "b": 40},
        xaxis={"type": "date", "title": _("time (UTC)")},
        yaxis={
            "autorange": "reversed",
            "automargin": True,
            "categoryorder": "array",
            "categoryarray": [*marker_rows, *rows],
        },
        legend={"orientation": "h", "y": -0.2},
    )
    return json.loads(fig.to_json())  # type: ignore[no-any-return]


FAILURE_MODE_PALETTE = [
    "#c62828",
    "#1565c0",
    "#2e7d32",
    "#ef6c00",
    "#6a1b9a",
    "#00838f",
    "#ad1457",
    "#4e342e",
    "#558b2f",
    "#37474f",
]


def sparkline_figure(points: list[tuple[date, int]]) -> dict[str, Any]:
    """A failure group's jobs per day: a small bar chart without axes (hover shows day and count)."""
    fig = go.Figure(
        go.Bar(
            x=[day.isoformat() for day, _n in points],
            y=[n for _day, n in points],
            marker={"color": "#c62828"},
            hovertemplate="%{x}: %{y}<extra></extra>",
        )
    )
    fig.update_layout(
        height=40,
        width=160,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        showlegend=False,
        bargap=0.1,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        xaxis={"visible": False, "type": "date"},
        yaxis={"visible": False, "rangemode": "tozero"},
    )
    return json.loads(fig.to_json())  # type: ignore[no-any-return]


def failures_per_day_figure(days: list[date], series: dict[str, list[int]]) -> dict[str, Any]:
    """Stacked bars: failed jobs per day, one colour per failure mode of the origin finding."""
    fig = go.Figure()
    for i, (failure_mode, counts) in enumerate(series.items()):
        fig.add_trace(
            go.Bar(
                name=failure_mode,
                x=[day.isoformat() for day in days],
                y=counts,
                marker={"color": FAILURE_MODE_PALETTE[i % len(FAILURE_MODE_PALETTE)]},
            )
        )
    fig.update_layout(
        barmode="stack",
        height=320,
        margin={"l": 40, "r": 10, "t": 10, "b": 40},
        xaxis={"type": "date", "title": _("day")},
        yaxis={"title": _("failed jobs"), "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25},
    )
    return json.loads(fig.to_json())  # type: ignore[no-any-return]
