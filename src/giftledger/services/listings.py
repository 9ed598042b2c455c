"""The Cards and Orders lists: one account's cards and orders, filtered, sorted and paged (storage/listings.py).
Days are the account's own (its time zone): a day runs from its local midnight to the next."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from giftledger.domain import time_zones
from giftledger.domain.catalogue import SALES_CHANNELS
from giftledger.domain.permissions import Permission
from giftledger.domain.records import ProductRow, SiteRow
from giftledger.domain.validation import Problems
from giftledger.services.account_time_zone import zone_of
from giftledger.services.context import Principal, Services
from giftledger.services.views import OrderView, Page, order_views
from giftledger.storage.clock import utcnow
from giftledger.storage.listings import CARD_ORDERS, CARD_STATES, CardFilter, CardLine, Listings, OrderFilter

__all__ = [
    "CARD_ORDERS",
    "CARD_STATES",
    "CardFilter",
    "CardLine",
    "Choices",
    "Days",
    "OrderFilter",
    "filter_choices",
    "list_cards",
    "list_orders",
]

PER_PAGE = 25
MAX_PAGE = 1_000_000
FROM_AFTER_TO = "The first day must not be after the last."
MIN_ABOVE_MAX = "The lowest balance must not be above the highest."


@dataclass(frozen=True)
class Days:
    """A range of the account's days, both ends included (either may be open)."""

    first: date | None = None
    last: date | None = None

    def instants(self, time_zone: str) -> tuple[datetime | None, datetime | None]:
        """[from, until) as aware instants: local midnight of the first day, of the day after the last."""
        zone = time_zones.zone(time_zone)
        start = datetime.combine(self.first, time(0), tzinfo=zone) if self.first else None
        end = datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=zone) if self.last else None
        return start, end


@dataclass(frozen=True)
class Choices:
    """What the filters offer: the account's products and sites (deleted sites too: past sales keep them)."""

    products: list[ProductRow]
    sites: list[SiteRow]
    channels: dict[int, str]


def _check_days(days: Days, field: str, problems: Problems) -> None:
    if days.first and days.last and days.first > days.last:
        problems.add(field, FROM_AFTER_TO)


def _check_page(page: int, problems: Problems) -> None:
    if not 1 <= page <= MAX_PAGE:
        problems.add("page", "This page does not exist.")


async def filter_choices(services: Services, principal: Principal) -> Choices:
    principal.require(Permission.CARD_READ)
    async with services.unit_of_work(principal) as uow:
        return Choices(await uow.catalogue.products(), await uow.sites.every(), dict(SALES_CHANNELS))


async def list_cards(
    services: Services, principal: Principal, where: CardFilter, sold: Days, *, page: int = 1
) -> Page[CardLine]:
    """A page of the account's cards (`Find cards` permission); refused with the problems next to the filters."""
    principal.require(Permission.CARD_READ)
    problems = Problems()
    if where.state is not None and where.state not in CARD_STATES:
        problems.add("state", "Choose a state from the list.")
    if where.order not in CARD_ORDERS:
        problems.add("order", "Choose an order from the list.")
    if where.min_balance is not None and where.max_balance is not None and where.min_balance > where.max_balance:
        problems.add("min_balance", MIN_ABOVE_MAX)
    _check_days(sold, "sold_from", problems)
    _check_page(page, problems)
    if problems:
        await services.refuse(principal, problems.error())
    sold_from, sold_until = sold.instants(await zone_of(services, principal))
    where = replace(where, sold_from=sold_from, sold_until=sold_until)
    async with services.unit_of_work(principal) as uow:
        rows, total = await Listings(uow.conn, principal.account_id).cards(
            where, now=utcnow(), limit=PER_PAGE, offset=(page - 1) * PER_PAGE
        )
    return Page(rows, total, PER_PAGE, page)


async def list_orders(
    services: Services, principal: Principal, where: OrderFilter, created: Days, *, page: int = 1
) -> Page[OrderView]:
    """A page of the account's orders, newest first (`See orders` permission)."""
    principal.require(Permission.ORDER_READ)
    problems = Problems()
    if where.sales_channel_id is not None and where.sales_channel_id not in SALES_CHANNELS:
        problems.add("channel", "Choose a channel from the list.")
    _check_days(created, "from", problems)
    _check_page(page, problems)
    if problems:
        await services.refuse(principal, problems.error())
    created_from, created_until = created.instants(await zone_of(services, principal))
    where = replace(where, created_from=created_from, created_until=created_until)
    async with services.unit_of_work(principal) as uow:
        rows, total = await Listings(uow.conn, principal.account_id).orders(
            where, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
        )
        return Page(await order_views(uow, rows), total, PER_PAGE, page)
