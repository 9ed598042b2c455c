"""Server-drawn charts (inline SVG, no JavaScript): value sold and value redeemed per site (a bar chart), and
values over time per site, POS or product (a line chart)."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.dashboard.web import money
from giftledger.services.finance import Trend
from giftledger.services.reports import SiteReport

LABEL_WIDTH = 150
BAR_AREA = 420
VALUE_WIDTH = 110
ROW_HEIGHT = 46
BAR_HEIGHT = 15
TOP = 8


@dataclass(frozen=True)
class Bar:
    kind: str  # "sold" or "redeemed" (a CSS class)
    x: int
    y: int
    width: int
    height: int
    text: str
    text_x: int
    text_y: int


@dataclass(frozen=True)
class Row:
    name: str
    label_y: int
    bars: list[Bar]


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    rows: list[Row]
    description: str


def _width(value: int, largest: int) -> int:
    if value <= 0 or largest <= 0:
        return 0
    return max(2, round(BAR_AREA * value / largest))


def bar_chart(report: SiteReport) -> Chart:
    largest = max([max(s.value_sold, s.value_redeemed) for s in report.sites] + [0])
    rows = []
    for index, site in enumerate(report.sites):
        top = TOP + index * ROW_HEIGHT
        bars = []
        for offset, kind, value in ((0, "sold", site.value_sold), (BAR_HEIGHT + 3, "redeemed", site.value_redeemed)):
            width = _width(value, largest)
            y = top + offset
            bars.append(
                Bar(kind, LABEL_WIDTH, y, width, BAR_HEIGHT, money(value), LABEL_WIDTH + width + 6, y + BAR_HEIGHT - 3)
            )
        rows.append(Row(site.site_name, top + BAR_HEIGHT + 4, bars))
    description = "; ".join(
        f"{s.site_name}: {money(s.value_sold)} sold, {money(s.value_redeemed)} redeemed" for s in report.sites
    )
    return Chart(LABEL_WIDTH + BAR_AREA + VALUE_WIDTH, TOP * 2 + ROW_HEIGHT * len(report.sites), rows, description)


# --- lines over time (Data > Trends): one polyline per site, POS or product ---------------------------------

LINE_LEFT = 90  # the value axis's labels
LINE_RIGHT = 16
LINE_TOP = 12
LINE_BOTTOM = 28  # the periods' labels
LINE_PLOT_WIDTH = 560
LINE_PLOT_HEIGHT = 180
SERIES_CLASSES = 6  # series-0 .. series-5 in the stylesheet, then round again


@dataclass(frozen=True)
class Line:
    name: str
    kind: str  # a CSS class: series-N
    points: str  # "x,y x,y ..." for <polyline>
    dots: list[tuple[int, int]]


@dataclass(frozen=True)
class Tick:
    x: int
    y: int
    text: str
    place: str = ""  # a CSS class: "first" or "last" for the period axis's ends (anchored inside the chart)


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    title: str
    lines: list[Line]
    value_ticks: list[Tick]
    period_ticks: list[Tick]
    grid: list[int]  # the y of each value tick's line
    description: str


def line_chart(trend: Trend, measure: str, title: str) -> LineChart:
    """`measure` ("sold", "redeemed" or "outstanding") of each series of `trend`, one line each."""
    values: list[list[int]] = [list(getattr(series, measure)) for series in trend.series]
    largest = max([max(v) for v in values if v] + [0])
    smallest = min([min(v) for v in values if v] + [0])
    span = max(largest - smallest, 1)
    count = len(trend.periods)

    def x(index: int) -> int:
        return LINE_LEFT + (round(LINE_PLOT_WIDTH * index / (count - 1)) if count > 1 else LINE_PLOT_WIDTH // 2)

    def y(value: int) -> int:
        return LINE_TOP + round(LINE_PLOT_HEIGHT * (largest - value) / span)

    lines = []
    for number, (series, points) in enumerate(zip(trend.series, values, strict=True)):
        dots = [(x(i), y(v)) for i, v in enumerate(points)]
        lines.append(
            Line(series.name, f"series-{number % SERIES_CLASSES}", " ".join(f"{a},{b}" for a, b in dots), dots)
        )
    levels = sorted({largest, smallest, smallest + span // 2} if largest != smallest else {largest})
    value_ticks = [Tick(LINE_LEFT - 6, y(level) + 4, money(level)) for level in levels]
    shown = sorted({0, count // 2, count - 1}) if count else []
    ends = {0: "first", count - 1: "last"} if count > 1 else {}
    period_ticks = [
        Tick(x(i), LINE_TOP + LINE_PLOT_HEIGHT + 18, trend.periods[i].isoformat(), ends.get(i, "")) for i in shown
    ]
    unit = "week starting" if trend.weekly else "day"
    description = "; ".join(
        f"{series.name}: "
        + ", ".join(f"{money(v)} ({unit} {when.isoformat()})" for when, v in zip(trend.periods, points, strict=True))
        for series, points in zip(trend.series, values, strict=True)
    )
    return LineChart(
        LINE_LEFT + LINE_PLOT_WIDTH + LINE_RIGHT,
        LINE_TOP + LINE_PLOT_HEIGHT + LINE_BOTTOM,
        title,
        lines,
        value_ticks,
        period_ticks,
        [t.y - 4 for t in value_ticks],
        description,
    )
