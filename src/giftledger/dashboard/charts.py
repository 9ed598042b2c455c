"""A server-drawn bar chart (inline SVG, no JavaScript): value sold and value redeemed per site."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.dashboard.web import money
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
