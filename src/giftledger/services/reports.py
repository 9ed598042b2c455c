"""Reports: sales and redemptions per site for a date range, the outstanding balance, and the line-item
export a merchant reconciles against its tills. Dates are the account's days (its time zone: Europe/London unless
the Store Owner sets another); a range includes both ends."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from giftledger.domain import time_zones
from giftledger.domain.errors import REQUIRED
from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import Permission
from giftledger.domain.validation import Problems
from giftledger.services.account_time_zone import zone_of
from giftledger.services.context import Principal, Services
from giftledger.storage.reports import ExportRow, LiabilityRow, Reports

MAX_RANGE_DAYS = 366
END_BEFORE_START = "The end date must not be before the start date."
RANGE_TOO_LONG = f"Choose a range of at most {MAX_RANGE_DAYS} days."


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    time_zone: str = "UTC"  # whose days these are (the account's)

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=time_zones.zone(self.time_zone))

    @property
    def ends_before(self) -> datetime:
        if self.end == date.max:  # the calendar's last day has no next one
            return datetime.max.replace(tzinfo=UTC)
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=time_zones.zone(self.time_zone))


async def account_period(services: Services, principal: Principal, start: date | None, end: date | None) -> Period:
    """The period checked and taken as days of the account's time zone."""
    period = check_period(start, end)
    return replace(period, time_zone=await zone_of(services, principal))


def check_range(start: date | None, end: date | None, *, longest: int = MAX_RANGE_DAYS) -> tuple[date, date]:
    """A range of days, both ends included and both required, at most `longest` days (every report's rule)."""
    problems = Problems()
    if start is None:
        problems.add("start", REQUIRED)
    if end is None:
        problems.add("end", REQUIRED)
    if start is not None and end is not None:
        if end < start:
            problems.add("end", END_BEFORE_START)
        elif (end - start).days + 1 > longest:
            problems.add("end", RANGE_TOO_LONG if longest == MAX_RANGE_DAYS else f"Choose at most {longest} days.")
    problems.raise_if_any()
    assert start is not None and end is not None
    return start, end


def check_period(start: date | None, end: date | None) -> Period:
    return Period(*check_range(start, end))


@dataclass(frozen=True)
class SiteFigures:
    site_id: int | None
    site_name: str  # "No site" for line items booked without one
    cards_sold: int
    value_sold: int  # pence
    redemptions: int
    value_redeemed: int  # pence, positive


@dataclass(frozen=True)
class SiteReport:
    period: Period
    sites: list[SiteFigures]

    @property
    def total(self) -> SiteFigures:
        return SiteFigures(
            None,
            "Total",
            sum(s.cards_sold for s in self.sites),
            sum(s.value_sold for s in self.sites),
            sum(s.redemptions for s in self.sites),
            sum(s.value_redeemed for s in self.sites),
        )


NO_SITE = "No site"


async def site_report(services: Services, principal: Principal, start: date | None, end: date | None) -> SiteReport:
    """Cards sold and value sold, redemptions and value redeemed, per site. Reversed sales and reversed
    redemptions are left out. Every live site is listed (with zeros when quiet); a deleted site appears
    under its name when it has activity in the period."""
    principal.require(Permission.REPORT_READ)
    period = await account_period(services, principal, start, end)
    async with services.unit_of_work(principal) as uow:
        live = await uow.sites.active()
    async with services.reporting_db.read() as conn:  # the read replica when configured
        rows = await Reports(conn, principal.account_id).activity(
            [LineItemType.SALE, LineItemType.REDEMPTION], period.starts_at, period.ends_before
        )
    figures: dict[int | None, dict[str, int]] = {s.id: {} for s in live}
    names: dict[int | None, str] = {s.id: s.name for s in live}
    for row in rows:
        slot = figures.setdefault(row.site_id, {})
        names.setdefault(row.site_id, row.site_name or NO_SITE)
        slot[f"{row.type_id}.count"] = row.count
        slot[f"{row.type_id}.total"] = row.total
    sale, redemption = int(LineItemType.SALE), int(LineItemType.REDEMPTION)
    sites = [
        SiteFigures(
            site_id,
            names[site_id],
            slot.get(f"{sale}.count", 0),
            slot.get(f"{sale}.total", 0),
            slot.get(f"{redemption}.count", 0),
            -slot.get(f"{redemption}.total", 0),
        )
        for site_id, slot in figures.items()
    ]
    sites.sort(key=lambda s: (s.site_id is None, s.site_name.lower(), s.site_id or 0))
    return SiteReport(period, sites)


async def outstanding_balance(services: Services, principal: Principal) -> LiabilityRow:
    """The liability now: what every card of the account holds, split into tender and discount."""
    principal.require(Permission.REPORT_READ)
    await services.confirm(principal)
    async with services.reporting_db.read() as conn:  # the read replica when configured
        return await Reports(conn, principal.account_id).liability()


EXPORT_COLUMNS = (
    "Card ID",
    "Card Unique Code",
    "Line Item ID",
    "Line Item Type",
    "Value",
    "Tender",
    "Discount",
    "Currency",
    "Site",
    "Merchant",
    "Merchant Transaction Reference",
    "Order ID",
    "Adjustment Date",  # in the account's time zone, named in the CSV's header (`export_columns`)
    "Notes",
    "User",
    "Reverse Line Item ID",
    "Reversed by Line Item ID",
)


def _money(pence: int) -> str:
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}{whole}.{part:02d}"


_FORMULA_STARTS = "=+-@\t\r"


def spreadsheet_text(value: str | None) -> str:
    """Text a spreadsheet must not run as a formula (CSV injection) gets a leading `'`: one whose first
    visible character, once its compatibility forms are folded (NFKC: a full-width equals sign is `=`) and leading
    spaces and invisible characters (zero-width spaces and joiners, byte-order marks: format characters) are
    passed over, is `=`, `+`, `-` or `@`, or which starts with a tab or a carriage return. Shared by every CSV
    the dashboard serves."""
    if not value:
        return ""
    if value.isascii() and not value[0].isspace() and value[0] not in _FORMULA_STARTS:
        return value  # the common case, decided at once (ASCII has no compatibility forms or format characters)
    first = next((ch for ch in unicodedata.normalize("NFKC", value) if ch in _FORMULA_STARTS or not _invisible(ch)), "")
    return "'" + value if first and first in _FORMULA_STARTS else value


def _invisible(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def export_columns(period: Period) -> list[str]:
    """EXPORT_COLUMNS with the date's time zone named, as the Data exports name theirs."""
    return [f"{c} ({period.time_zone})" if c == "Adjustment Date" else c for c in EXPORT_COLUMNS]


def export_row(row: ExportRow, time_zone: str) -> list[str]:
    return [
        str(row.card_id),
        row.card_reference,
        str(row.line_item_id),
        LineItemType(row.type_id).label,
        _money(row.value),
        _money(row.tender),
        _money(row.discount),
        row.currency,
        spreadsheet_text(row.site_name),
        spreadsheet_text(row.merchant_name),
        spreadsheet_text(row.merchant_transaction_reference),
        str(row.order_id) if row.order_id is not None else "",
        time_zones.local(row.created_at, time_zone).strftime("%Y-%m-%d %H:%M:%S"),
        spreadsheet_text(row.note),
        spreadsheet_text(row.actor),
        str(row.reverses_line_item_id) if row.reverses_line_item_id is not None else "",
        str(row.reversed_by_line_item_id) if row.reversed_by_line_item_id is not None else "",
    ]


async def balance_adjustments(
    services: Services, principal: Principal, start: date | None, end: date | None
) -> tuple[Period, list[list[str]]]:
    """Every line item created in the period (sales, redemptions, top-ups, manual adjustments, reversals),
    as rows under EXPORT_COLUMNS. Values are in major units with two decimals; debits are negative."""
    principal.require(Permission.REPORT_READ)
    period = await account_period(services, principal, start, end)  # (its unit of work confirms the caller)
    async with services.reporting_db.read() as conn:  # the read replica when configured
        rows = await Reports(conn, principal.account_id).line_items_between(period.starts_at, period.ends_before)
    return period, [export_row(r, period.time_zone) for r in rows]
