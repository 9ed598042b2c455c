"""Finance reports over the ledger, read from the reporting database (the read replica when one is configured,
else the primary): the liability at any past moment, the per-site daily reconciliation (the till's Z report),
and sold, redeemed and outstanding over time. Days are local dates in the account's time zone.

- Liability at a moment: every line item created at or before it, summed per card, then per product and per site
  of sale (the site of the card's first sale or inbound transfer). At "now" it is the sum of the cards' balances.
  Breakage (expiry's line items) up to the moment is shown beside it, and the value still held by cards whose
  expiry time had passed (their breakage not yet written) as "expired".
- Reconciliation: per day, site and POS merchant, the count and value of every sale, redemption, top-up and
  reversal, reversed ones included, as a till's end-of-day Z report lists them (a reversal is its own line).
- Trends: per day or per week (weeks start on Monday) and per site, POS or product: value sold and redeemed, net
  of their reversals, and the outstanding balance at each period's end."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from giftledger.domain.errors import REQUIRED
from giftledger.domain.ledger import LineItemType
from giftledger.domain.time_zones import zone
from giftledger.domain.validation import Problems
from giftledger.services.context import Principal, Services
from giftledger.services.exports import account_zone, major_units
from giftledger.services.reports import check_range, spreadsheet_text
from giftledger.storage.exports import LiabilityGroup, activity_by_day, liability_at, trend_sums

NO_SITE = "No site"
NO_POS = "Dashboard (no POS)"
NO_PRODUCT = "No product"


@dataclass(frozen=True)
class Liability:
    moment: datetime  # aware, in the account's zone
    time_zone: str
    groups: list[LiabilityGroup]

    def total(self, name: str) -> int:
        return sum(int(getattr(g, name)) for g in self.groups)


async def liability(services: Services, principal: Principal, moment: datetime | None) -> Liability:
    """The liability as of `moment` (required; aware)."""
    time_zone = await account_zone(services, principal)
    if moment is None:
        problems = Problems()
        problems.add("at", REQUIRED)
        problems.raise_if_any()
    assert moment is not None
    groups = await liability_at(services.reporting_db, principal.account_id, moment)
    return Liability(moment.astimezone(zone(time_zone)), time_zone, groups)


def _instants(start: date, end: date, time_zone: str) -> tuple[datetime, datetime]:
    here = zone(time_zone)
    after = end + timedelta(days=1) if end < date.max else end
    return datetime.combine(start, time.min, tzinfo=here), datetime.combine(after, time.min, tzinfo=here)


# --- reconciliation ---------------------------------------------------------------------------------------------

Z_TYPES = (LineItemType.SALE, LineItemType.REDEMPTION, LineItemType.TOP_UP, LineItemType.REVERSAL)


@dataclass
class ZLine:
    """One site's (and POS merchant's) day: count and value (pence, as booked: redemptions negative) per type."""

    day: str
    site_name: str
    merchant_name: str
    counts: dict[int, int] = field(default_factory=dict)
    values: dict[int, int] = field(default_factory=dict)

    def count(self, kind: LineItemType) -> int:
        return self.counts.get(int(kind), 0)

    def value(self, kind: LineItemType) -> int:
        return self.values.get(int(kind), 0)


@dataclass(frozen=True)
class Reconciliation:
    start: date
    end: date
    time_zone: str
    lines: list[ZLine]

    def total(self, kind: LineItemType) -> tuple[int, int]:
        return sum(line.count(kind) for line in self.lines), sum(line.value(kind) for line in self.lines)


async def reconciliation(
    services: Services, principal: Principal, start: date | None, end: date | None
) -> Reconciliation:
    time_zone = await account_zone(services, principal)
    first, last = check_range(start, end)
    since, before = _instants(first, last, time_zone)
    rows = await activity_by_day(services.reporting_db, principal.account_id, since, before, time_zone)
    lines: dict[tuple[str, int | None, int | None], ZLine] = {}
    for row in rows:
        if row.type_id not in {int(k) for k in Z_TYPES}:
            continue
        key = (row.day, row.site_id, row.merchant_id)
        line = lines.setdefault(key, ZLine(row.day, row.site_name or NO_SITE, row.merchant_name or NO_POS))
        line.counts[row.type_id] = line.counts.get(row.type_id, 0) + row.count
        line.values[row.type_id] = line.values.get(row.type_id, 0) + row.total
    ordered = sorted(lines.values(), key=lambda z: (z.day, z.site_name.lower(), z.merchant_name.lower()))
    return Reconciliation(first, last, time_zone, ordered)


RECONCILIATION_COLUMNS = (
    "Date",
    "Site",
    "POS",
    "Cards sold",
    "Value sold",
    "Redemptions",
    "Value redeemed",
    "Top-ups",
    "Value topped up",
    "Reversals",
    "Value reversed",
)


def reconciliation_rows(report: Reconciliation) -> list[list[str]]:
    """The CSV's rows (values in major units; redeemed positive; reversals as booked: a reversed sale negative)."""
    sale, redemption, top_up, reversal = Z_TYPES
    return [
        [
            z.day,
            spreadsheet_text(z.site_name),
            spreadsheet_text(z.merchant_name),
            str(z.count(sale)),
            major_units(z.value(sale)),
            str(z.count(redemption)),
            major_units(-z.value(redemption)),
            str(z.count(top_up)),
            major_units(z.value(top_up)),
            str(z.count(reversal)),
            major_units(z.value(reversal)),
        ]
        for z in report.lines
    ]


# --- trends ----------------------------------------------------------------------------------------------------

DIMENSIONS = {"site": "site", "pos": "POS", "product": "product"}
LONGEST_TREND_DAYS = 366


@dataclass(frozen=True)
class Series:
    name: str
    sold: list[int]  # per period, pence
    redeemed: list[int]  # positive
    outstanding: list[int]  # at each period's end


@dataclass(frozen=True)
class Trend:
    start: date
    end: date
    weekly: bool
    dimension: str
    time_zone: str
    periods: list[date]  # each period's first day
    series: list[Series]


def _periods(start: date, end: date, weekly: bool) -> list[date]:
    first = start - timedelta(days=start.weekday()) if weekly else start
    step = timedelta(days=7 if weekly else 1)
    result = []
    while first <= end:
        result.append(first)
        first += step
    return result


async def trend(
    services: Services, principal: Principal, start: date | None, end: date | None, *, weekly: bool, dimension: str
) -> Trend:
    time_zone = await account_zone(services, principal)
    problems = Problems()
    if dimension not in DIMENSIONS:
        problems.add("by", f"Choose one of: {', '.join(DIMENSIONS)}.")
    problems.raise_if_any()
    first, last = check_range(start, end, longest=LONGEST_TREND_DAYS)
    periods = _periods(first, last, weekly)
    since, before = _instants(periods[0], last, time_zone)
    sums = await trend_sums(services.reporting_db, principal.account_id, dimension, weekly, since, before, time_zone)
    index = {p.isoformat(): i for i, p in enumerate(periods)}
    fallback = {"site": NO_SITE, "pos": NO_POS, "product": NO_PRODUCT}[dimension]
    names: dict[int | None, str] = {}
    sold: dict[int | None, list[int]] = defaultdict(lambda: [0] * len(periods))
    redeemed: dict[int | None, list[int]] = defaultdict(lambda: [0] * len(periods))
    moved: dict[int | None, list[int]] = defaultdict(lambda: [0] * len(periods))
    opening: dict[int | None, int] = defaultdict(int)
    for s in sums:
        names.setdefault(s.dim_id, s.dim_name or fallback)
        if s.bucket is None:
            opening[s.dim_id] += s.total
            continue
        slot = index[s.bucket]
        moved[s.dim_id][slot] += s.total
        if s.kind == LineItemType.SALE:
            sold[s.dim_id][slot] += s.total
        elif s.kind == LineItemType.REDEMPTION:
            redeemed[s.dim_id][slot] -= s.total
    series = []
    for dim_id, name in sorted(names.items(), key=lambda item: (item[1].lower(), item[0] or 0)):
        running, outstanding = opening[dim_id], []
        for change in moved[dim_id]:
            running += change
            outstanding.append(running)
        series.append(Series(name, sold[dim_id], redeemed[dim_id], outstanding))
    return Trend(first, last, weekly, dimension, time_zone, periods, series)
