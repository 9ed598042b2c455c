"""Read use cases the tills and the dashboard share: cards, line items, orders, products, merchants."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.domain.catalogue import FULFILMENT_METHODS, SALES_CHANNELS
from giftledger.domain.errors import NOT_EXPECTED, REQUIRED, Unauthorized
from giftledger.domain.permissions import Permission
from giftledger.domain.validation import Problems
from giftledger.services import guessing
from giftledger.services.context import Principal, Services
from giftledger.services.views import (
    CardView,
    LineItemView,
    OrderView,
    Page,
    card_views,
    line_item_views,
    order_views,
)
from giftledger.storage.clock import utcnow
from giftledger.storage.people import Directory
from giftledger.storage.records import ConsentRow, PriceModifierRow, ProductRow
from giftledger.storage.tills import TillStatements

MAX_LIMIT = 100
DEFAULT_LIMIT = 15


def _paging(limit: int | None, page: int | None, problems: Problems) -> tuple[int, int]:
    size = DEFAULT_LIMIT if limit is None else limit
    number = 1 if page is None else page
    if not 1 <= size <= MAX_LIMIT:
        problems.add("limit", NOT_EXPECTED)
    if not 1 <= number <= 1_000_000:
        problems.add("page", NOT_EXPECTED)
    return size, number


async def find_cards(
    services: Services,
    principal: Principal,
    *,
    card_reference: str | None,
    card_id: int | None,
    limit: int | None,
    page: int | None,
) -> Page[CardView]:
    """Cards in circulation: one by number or alias (a balance check), by id, or all of them. A balance
    check on PostgreSQL confirms a pending caller's token in its statement (api/context.py)."""
    principal.require(Permission.CARD_READ)
    problems = Problems()
    size, number = _paging(limit, page, problems)
    reference = problems.card_reference("card_reference", card_reference) if card_reference is not None else None
    problems.raise_if_any()
    if reference is not None and services.db.native is not None:  # the balance check: one statement
        now = utcnow()
        lookup = await TillStatements(services.db.native).find_card(
            principal.account_id,
            reference,
            guessing.caller(services.settings, principal, now),
            limit=size,
            offset=(number - 1) * size,
            pending=principal.pending,
        )
        if not lookup.caller_live:
            raise Unauthorized()
        guessing.ensure_not_paused(services.settings, principal, lookup.misses, now)
        if lookup.total == 0:
            await guessing.record_miss(services, principal)
        return Page([CardView(card, contact) for card, contact in lookup.cards], lookup.total, size, number)
    principal.require_confirmed()
    async with services.unit_of_work(principal.account_id) as uow:
        if reference is not None:
            await guessing.ensure_allowed(uow, services.settings, principal)
        rows, total = await uow.cards.page_active(
            limit=size, offset=(number - 1) * size, card_id=card_id, reference=reference
        )
        found = Page(await card_views(uow, rows), total, size, number)
    if reference is not None and total == 0:
        await guessing.record_miss(services, principal)
    return found


async def find_line_items(
    services: Services,
    principal: Principal,
    *,
    merchant_transaction_reference: str | None,
    limit: int | None,
    page: int | None,
) -> Page[LineItemView]:
    """The line items a till's transaction reference created (for its own POS merchant)."""
    principal.require(Permission.CARD_READ)
    problems = Problems()
    size, number = _paging(limit, page, problems)
    reference = problems.reference("merchant_transaction_reference", merchant_transaction_reference, required=True)
    problems.raise_if_any()
    assert reference is not None
    if services.db.native is not None:
        found = await TillStatements(services.db.native).line_items_by_reference(
            principal.account_id,
            principal.merchant_id,
            reference,
            limit=size,
            offset=(number - 1) * size,
            pending=principal.pending,
        )
        if not found.caller_live:
            raise Unauthorized()
        views = [LineItemView(item, CardView(card, contact)) for item, card, contact in found.items]
        return Page(views, found.total, size, number)
    principal.require_confirmed()
    async with services.unit_of_work(principal.account_id) as uow:
        rows, total = await uow.ledger.page_by_reference(
            principal.merchant_id, reference, limit=size, offset=(number - 1) * size
        )
        return Page(await line_item_views(uow, rows), total, size, number)


async def list_orders(
    services: Services, principal: Principal, *, limit: int | None, page: int | None
) -> Page[OrderView]:
    principal.require(Permission.ORDER_READ)
    problems = Problems()
    size, number = _paging(limit, page, problems)
    problems.raise_if_any()
    async with services.unit_of_work(principal.account_id) as uow:
        rows, total = await uow.orders.page(limit=size, offset=(number - 1) * size)
        return Page(await order_views(uow, rows), total, size, number)


async def list_consents(
    services: Services, principal: Principal, contact_id: int, *, limit: int | None, page: int | None
) -> Page[ConsentRow]:
    principal.require(Permission.ORDER_READ)
    problems = Problems()
    size, number = _paging(limit, page, problems)
    problems.raise_if_any()
    async with services.unit_of_work(principal.account_id) as uow:
        rows, total = await uow.contacts.consents_page(contact_id, limit=size, offset=(number - 1) * size)
        return Page(rows, total, size, number)


@dataclass(frozen=True)
class ProductView:
    product: ProductRow
    price_modifiers: list[PriceModifierRow]


async def list_products(services: Services, principal: Principal, account_id: int | None) -> list[ProductView]:
    principal.require(Permission.PRODUCT_READ)
    problems = Problems()
    if account_id is None:
        problems.add("account_id", REQUIRED)
    elif account_id != principal.account_id:
        problems.add("account_id", NOT_EXPECTED)
    problems.raise_if_any()
    async with services.unit_of_work(principal.account_id) as uow:
        products = await uow.catalogue.products()
        modifiers = await uow.catalogue.price_modifiers([p.id for p in products])
        return [ProductView(p, [m for m in modifiers if m.product_id == p.id]) for p in products]


async def list_merchants(services: Services) -> dict[int, str]:
    async with services.db.transaction() as conn:
        return await Directory(conn).merchants()


def sales_channels() -> dict[int, str]:
    return dict(SALES_CHANNELS)


def fulfilment_methods() -> dict[int, str]:
    return dict(FULFILMENT_METHODS)


async def list_accounts(services: Services, principal: Principal) -> dict[int, str]:
    """The accounts the caller acts on: an API user's own; every membership of a dashboard user."""
    async with services.db.transaction() as conn:
        directory = Directory(conn)
        if principal.user_id is not None:
            return {m.account_id: m.account_name for m in await directory.memberships(principal.user_id)}
        name = await directory.account_name(principal.account_id)
        return {principal.account_id: name or ""}
