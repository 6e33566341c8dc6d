"""Geometry of the report's inline SVG chart (no script, no CDN): numbers in, coordinates out."""

from __future__ import annotations

from dataclasses import dataclass

from tracking.analytics import SeriesPoint


@dataclass(frozen=True)
class Line:
    name: str
    css: str
    points: str  # "x,y x,y ..." for <polyline points=...>
    total: int
    dots: list[tuple[float, float, int]]  # x, y, value of each point (for markers and titles)


@dataclass(frozen=True)
class Tick:
    position: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    lines: list[Line]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    empty: bool

    @property
    def dots(self) -> bool:
        """Markers on the points when there are few enough to see them."""
        return 0 < len(self.lines[0].dots) <= 60 if self.lines else False


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if value <= step * 4:
            return step * 4
    magnitude = 10 ** (len(str(value)) - 1)
    return ((value // magnitude) + 1) * magnitude


def line_chart(
    series: list[SeriesPoint], granularity: str, width: int = 900, height: int = 240
) -> Chart:
    """Opens and clicks (human, and machine dashed) over time, scaled into a plot area."""
    left, top, right, bottom = 44, 12, 12, 28
    plot_width, plot_height = width - left - right, height - top - bottom
    fields = (
        ("Opens", "line-opens", "opens"),
        ("Clicks", "line-clicks", "clicks"),
        ("Machine opens", "line-machine-opens", "machine_opens"),
        ("Machine clicks", "line-machine-clicks", "machine_clicks"),
    )
    peak = max((getattr(p, f) for p in series for _, _, f in fields), default=0)
    y_max = _nice_max(max(peak, 1))
    count = len(series)

    def x(index: int) -> float:
        return left + (plot_width * index / (count - 1) if count > 1 else plot_width / 2)

    def y(value: int) -> float:
        return top + plot_height - plot_height * value / y_max

    lines = [
        Line(
            name,
            css,
            " ".join(f"{x(i):.1f},{y(getattr(p, f)):.1f}" for i, p in enumerate(series)),
            sum(getattr(p, f) for p in series),
            [(x(i), y(getattr(p, f)), getattr(p, f)) for i, p in enumerate(series)],
        )
        for name, css, f in fields
    ]
    y_ticks = [Tick(y(y_max * i // 4), str(y_max * i // 4)) for i in range(5)]
    label = "%d %b %H:00" if granularity == "hour" else "%d %b"
    every = max(1, count // 6)
    x_ticks = []
    for i, p in enumerate(series):
        if i % every and i != count - 1:
            continue
        anchor = "middle"
        if count > 1 and i == 0:
            anchor = "start"
        elif count > 1 and i == count - 1:
            anchor = "end"
        x_ticks.append(Tick(x(i), p.start.strftime(label), anchor))
    return Chart(
        width, height, left, top, plot_width, plot_height, lines, y_ticks, x_ticks, not series
    )
