"""Read use cases the tills and the dashboard share: cards, line items, orders, products, merchants."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.domain.catalogue import FULFILMENT_METHODS, SALES_CHANNELS
from giftledger.domain.errors import NOT_EXPECTED, REQUIRED, Unauthorized
from giftledger.domain.permissions import Permission
from giftledger.domain.records import ConsentRow, PriceModifierRow, ProductRow
from giftledger.domain.validation import Problems
from giftledger.services import guessing
from giftledger.services.context import Principal, Services
from giftledger.services.views import (
    CardView,
    LineItemView,
    OrderView,
    Page,
    card_views,
    order_views,
)
from giftledger.storage.clock import utcnow
from giftledger.storage.tills import CardLookup, TillStatements

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


async def look_up_card(
    services: Services, principal: Principal, reference: str, *, limit: int, offset: int, include_stock: bool
) -> CardLookup:
    """Cards with this number or alias, in one statement that also checks the caller and counts its
    card-number misses: the balance check, for a till and for the dashboard's card search alike. While the
    caller or its address is paused, every look-up by number is refused (`CardLookupsThrottled`), even of a
    real card; a number that matches nothing is a miss."""
    now = utcnow()
    lookup = await TillStatements(services.db).find_card(
        reference,
        guessing.caller(services.settings, principal, now),
        limit=limit,
        offset=offset,
        include_stock=include_stock,
    )
    if not lookup.caller_live:
        raise Unauthorized()
    guessing.ensure_not_paused(services.settings, principal, lookup.misses, now)
    if lookup.total == 0:
        await guessing.record_miss(services, principal)
    return lookup


async def find_cards(
    services: Services,
    principal: Principal,
    *,
    card_reference: str | None,
    card_id: int | None,
    limit: int | None,
    page: int | None,
) -> Page[CardView]:
    """Cards in circulation: one by number or alias (a balance check), by id, or all of them."""
    problems = Problems()
    size, number = _paging(limit, page, problems)
    reference = problems.card_reference("card_reference", card_reference) if card_reference is not None else None
    await services.check(principal, Permission.CARD_READ, problems)
    if reference is not None:
        lookup = await look_up_card(
            services, principal, reference, limit=size, offset=(number - 1) * size, include_stock=False
        )
        return Page([CardView(card, contact) for card, contact in lookup.cards], lookup.total, size, number)
    async with services.unit_of_work(principal) as uow:
        rows, total = await uow.cards.page_active(limit=size, offset=(number - 1) * size, card_id=card_id)
        return Page(await card_views(uow, rows), total, size, number)


async def find_line_items(
    services: Services,
    principal: Principal,
    *,
    merchant_transaction_reference: str | None,
    limit: int | None,
    page: int | None,
) -> Page[LineItemView]:
    """The line items a till's transaction reference created (for its own POS merchant)."""
    problems = Problems()
    size, number = _paging(limit, page, problems)
    reference = problems.reference("merchant_transaction_reference", merchant_transaction_reference, required=True)
    await services.check(principal, Permission.CARD_READ, problems)
    assert reference is not None
    found = await TillStatements(services.db).line_items_by_reference(
        principal.credential, principal.merchant_id, reference, limit=size, offset=(number - 1) * size
    )
    if not found.caller_live:
        raise Unauthorized()
    views = [LineItemView(item, CardView(card, contact)) for item, card, contact in found.items]
    return Page(views, found.total, size, number)


async def list_orders(
    services: Services, principal: Principal, *, limit: int | None, page: int | None
) -> Page[OrderView]:
    async with services.unit_of_work(principal) as uow:
        principal.require(Permission.ORDER_READ)
        problems = Problems()
        size, number = _paging(limit, page, problems)
        problems.raise_if_any()
        rows, total = await uow.orders.page(limit=size, offset=(number - 1) * size)
        return Page(await order_views(uow, rows), total, size, number)


async def list_consents(
    services: Services, principal: Principal, contact_id: int, *, limit: int | None, page: int | None
) -> Page[ConsentRow]:
    async with services.unit_of_work(principal) as uow:
        principal.require(Permission.ORDER_READ)
        problems = Problems()
        size, number = _paging(limit, page, problems)
        problems.raise_if_any()
        rows, total = await uow.contacts.consents_page(contact_id, limit=size, offset=(number - 1) * size)
        return Page(rows, total, size, number)


@dataclass(frozen=True)
class ProductView:
    product: ProductRow
    price_modifiers: list[PriceModifierRow]


async def list_products(services: Services, principal: Principal, account_id: int | None) -> list[ProductView]:
    async with services.unit_of_work(principal) as uow:
        principal.require(Permission.PRODUCT_READ)
        problems = Problems()
        if account_id is None:
            problems.add("account_id", REQUIRED)
        elif account_id != principal.account_id:
            problems.add("account_id", NOT_EXPECTED)
        problems.raise_if_any()
        products = await uow.catalogue.products()
        modifiers = await uow.catalogue.price_modifiers([p.id for p in products])
        return [ProductView(p, [m for m in modifiers if m.product_id == p.id]) for p in products]


async def list_merchants(services: Services, principal: Principal) -> dict[int, str]:
    async with services.unit_of_work(principal) as uow:
        return await uow.directory.merchants()


async def sales_channels(services: Services, principal: Principal) -> dict[int, str]:
    await services.confirm(principal)
    return dict(SALES_CHANNELS)


async def fulfilment_methods(services: Services, principal: Principal) -> dict[int, str]:
    await services.confirm(principal)
    return dict(FULFILMENT_METHODS)


async def list_accounts(services: Services, principal: Principal) -> dict[int, str]:
    """The accounts the caller acts on: an API user's own; every membership of a dashboard user."""
    async with services.unit_of_work(principal) as uow:
        if principal.user_id is not None:
            return {m.account_id: m.account_name for m in await uow.directory.memberships(principal.user_id)}
        name = await uow.directory.account_name(principal.account_id)
        return {principal.account_id: name or ""}
