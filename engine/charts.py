"""Geometry of the operator page's inline SVG charts (no script, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.analytics import DayTotals

WIDTH, HEIGHT, LEFT, RIGHT, BOTTOM, TOP = 860, 220, 44, 24, 24, 10
SERIES = (
    ("delivered", "#2b8a3e"),
    ("deferred", "#e67700"),
    ("bounced", "#c92a2a"),
    ("complained", "#862e9c"),
)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    rects: list[Rect]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    baseline: float
    left: int
    right: int


def _scale(maximum: int) -> tuple[int, list[int]]:
    top = max(1, maximum)
    step = 1
    while top / step > 5:
        for factor in (2, 5, 10):
            if top / (step * factor) <= 5:
                step *= factor
                break
        else:
            step *= 10
    top = -(-top // step) * step
    return top, list(range(0, top + 1, step))


def outcomes_by_day(days: list[DayTotals]) -> BarChart:
    """Stacked bars per day: delivered, deferred, bounced, complained."""
    plot_h = HEIGHT - BOTTOM - TOP
    top, ticks = _scale(max((day.attempts + day.complained for day in days), default=0))
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(days))
    rects: list[Rect] = []
    for index, day in enumerate(days):
        y = float(HEIGHT - BOTTOM)
        for name, color in SERIES:
            value = getattr(day, name)
            if not value:
                continue
            height = plot_h * value / top
            y -= height
            rects.append(
                Rect(
                    LEFT + index * slot + 1,
                    y,
                    max(1.0, slot - 2),
                    height,
                    color,
                    f"{day.day.isoformat()}: {value} {name}",
                )
            )
    x_ticks = [
        Tick(LEFT + index * slot + slot / 2, HEIGHT - 6, day.day.strftime("%d %b"))
        for index, day in enumerate(days)
        if index % 7 == (len(days) - 1) % 7
    ]
    y_ticks = [Tick(LEFT - 6, HEIGHT - BOTTOM - plot_h * v / top + 4, str(v)) for v in ticks]
    return BarChart(
        WIDTH, HEIGHT, rects, x_ticks, y_ticks, float(HEIGHT - BOTTOM), LEFT, WIDTH - RIGHT
    )


def engagement_by_hour(hours: list[int]) -> BarChart:
    """Bars of human opens and clicks per hour of day (UTC)."""
    plot_h = HEIGHT - BOTTOM - TOP
    top, ticks = _scale(max(hours, default=0))
    slot = (WIDTH - LEFT - RIGHT) / 24
    rects = [
        Rect(
            LEFT + hour * slot + 2,
            HEIGHT - BOTTOM - plot_h * value / top,
            slot - 4,
            plot_h * value / top,
            "#3b5bdb",
            f"{hour:02d}:00 UTC: {value} human opens/clicks",
        )
        for hour, value in enumerate(hours)
        if value
    ]
    x_ticks = [
        Tick(LEFT + hour * slot + slot / 2, HEIGHT - 6, f"{hour:02d}") for hour in range(0, 24, 3)
    ]
    y_ticks = [Tick(LEFT - 6, HEIGHT - BOTTOM - plot_h * v / top + 4, str(v)) for v in ticks]
    return BarChart(
        WIDTH, HEIGHT, rects, x_ticks, y_ticks, float(HEIGHT - BOTTOM), LEFT, WIDTH - RIGHT
    )
