"""The dashboard's lists: cards and orders of one account, filtered, sorted and paged.

Every statement is filtered by the account first. Cards are read through `uq_cards_account_reference` (its
account prefix), each card's sale through `ix_line_items_account_card` and whether it was reversed through
`uq_line_items_reverses`; orders through `ix_orders_account_created`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from giftledger.domain.ledger import LineItemType
from giftledger.domain.records import OrderRow
from giftledger.storage.clock import as_utc
from giftledger.storage.orders import _order
from giftledger.storage.tables import cards, contacts, line_items, orders, products, sites, transactions

# How a list of cards may be ordered (newest: by card id).
CARD_ORDERS = ("newest", "oldest", "balance_high", "balance_low", "sold_newest", "sold_oldest")
# A card's state in the list: `status` of the card, blocked, or expired (at `now`).
CARD_STATES = ("sold", "stock", "blocked", "expired")


@dataclass(frozen=True)
class CardFilter:
    state: str | None = None  # one of CARD_STATES
    product_id: int | None = None
    min_balance: int | None = None  # pence, both ends included
    max_balance: int | None = None
    sold_from: datetime | None = None  # included
    sold_until: datetime | None = None  # excluded
    site_id: int | None = None  # where it was sold
    buyer_email: str | None = None  # the sale's receipt email or the card's own contact, any case
    order: str = "newest"


@dataclass(frozen=True)
class CardLine:
    """One card in the list, with its sale (the last one not reversed) when it has one."""

    id: int
    card_reference: str
    status: str
    currency: str
    balance: int
    product_name: str | None
    expiry_time: datetime | None
    blocked_reason: str | None
    sold_at: datetime | None
    site_name: str | None
    order_id: int | None
    buyer_email: str | None


@dataclass(frozen=True)
class OrderFilter:
    created_from: datetime | None = None  # included
    created_until: datetime | None = None  # excluded
    sales_channel_id: int | None = None
    site_id: int | None = None
    buyer_email: str | None = None  # the receipt email, any case
    reversed: bool | None = None  # True: cancelled (every card's sale reversed); False: the others


class Listings:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def cards(self, where: CardFilter, *, now: datetime, limit: int, offset: int) -> tuple[list[CardLine], int]:
        account = self._account_id
        undone = line_items.alias("undone")
        sale = (
            select(
                line_items.c.site_id.label("site_id"),
                line_items.c.created_at.label("sold_at"),
                line_items.c.order_id.label("order_id"),
            )
            .where(
                line_items.c.account_id == account,
                line_items.c.card_id == cards.c.id,
                line_items.c.type_id == int(LineItemType.SALE),
                ~exists().where(undone.c.account_id == account, undone.c.reverses_line_item_id == line_items.c.id),
            )
            .order_by(line_items.c.id.desc())
            .limit(1)
            .lateral("sale")
        )
        recipient = contacts.alias("recipient")
        buyer = contacts.alias("buyer")
        buyer_email = func.coalesce(buyer.c.email, recipient.c.email)
        joined = (
            cards.outerjoin(products, and_(products.c.account_id == account, products.c.id == cards.c.product_id))
            .outerjoin(sale, true())
            .outerjoin(sites, and_(sites.c.account_id == account, sites.c.id == sale.c.site_id))
            .outerjoin(orders, and_(orders.c.account_id == account, orders.c.id == sale.c.order_id))
            .outerjoin(buyer, and_(buyer.c.account_id == account, buyer.c.id == orders.c.receipt_contact_id))
            .outerjoin(recipient, and_(recipient.c.account_id == account, recipient.c.id == cards.c.contact_id))
        )
        conditions: list[ColumnElement[bool]] = [cards.c.account_id == account]
        expired = and_(cards.c.expiry_time.is_not(None), cards.c.expiry_time <= now)
        if where.state == "stock":
            conditions.append(cards.c.status == "stock")
        elif where.state == "sold":
            conditions += [cards.c.status == "active", cards.c.blocked_reason.is_(None), ~expired]
        elif where.state == "blocked":
            conditions.append(cards.c.blocked_reason.is_not(None))
        elif where.state == "expired":
            conditions.append(expired)
        if where.product_id is not None:
            conditions.append(cards.c.product_id == where.product_id)
        if where.min_balance is not None:
            conditions.append(cards.c.balance >= where.min_balance)
        if where.max_balance is not None:
            conditions.append(cards.c.balance <= where.max_balance)
        if where.sold_from is not None:
            conditions.append(sale.c.sold_at >= where.sold_from)
        if where.sold_until is not None:
            conditions.append(sale.c.sold_at < where.sold_until)
        if where.site_id is not None:
            conditions.append(sale.c.site_id == where.site_id)
        if where.buyer_email:
            email = where.buyer_email.lower()
            conditions.append(or_(func.lower(buyer.c.email) == email, func.lower(recipient.c.email) == email))
        # Counted from the cards alone unless a filter needs each card's sale (the page reads only its own rows').
        by_sale = any(v is not None for v in (where.sold_from, where.sold_until, where.site_id)) or where.buyer_email
        counted = joined if by_sale else cards
        total = (await self._conn.execute(select(func.count()).select_from(counted).where(*conditions))).scalar_one()
        ordering: dict[str, tuple[Any, ...]] = {
            "newest": (cards.c.id.desc(),),
            "oldest": (cards.c.id.asc(),),
            "balance_high": (cards.c.balance.desc(), cards.c.id.desc()),
            "balance_low": (cards.c.balance.asc(), cards.c.id.desc()),
            "sold_newest": (sale.c.sold_at.desc().nulls_last(), cards.c.id.desc()),
            "sold_oldest": (sale.c.sold_at.asc().nulls_last(), cards.c.id.desc()),
        }
        query = (
            select(
                cards.c.id,
                cards.c.card_reference,
                cards.c.status,
                cards.c.currency,
                cards.c.balance,
                products.c.name.label("product_name"),
                cards.c.expiry_time,
                cards.c.blocked_reason,
                sale.c.sold_at,
                sites.c.name.label("site_name"),
                sale.c.order_id,
                buyer_email.label("buyer_email"),
            )
            .select_from(joined)
            .where(*conditions)
            .order_by(*ordering[where.order])
            .limit(limit)
            .offset(offset)
        )
        lines = []
        for row in (await self._conn.execute(query)).all():
            data = dict(row._mapping)
            for key in ("sold_at", "expiry_time"):
                data[key] = as_utc(data[key]) if data[key] is not None else None
            lines.append(CardLine(**data))
        return lines, int(total)

    async def orders(self, where: OrderFilter, *, limit: int, offset: int) -> tuple[list[OrderRow], int]:
        account = self._account_id
        conditions: list[ColumnElement[bool]] = [orders.c.account_id == account]
        if where.created_from is not None:
            conditions.append(orders.c.created_at >= where.created_from)
        if where.created_until is not None:
            conditions.append(orders.c.created_at < where.created_until)
        if where.sales_channel_id is not None:
            conditions.append(orders.c.sales_channel_id == where.sales_channel_id)
        if where.site_id is not None:
            conditions.append(orders.c.site_id == where.site_id)
        if where.reversed is not None:
            conditions.append((orders.c.status == "cancelled") if where.reversed else (orders.c.status != "cancelled"))
        if where.buyer_email:
            conditions.append(
                exists().where(
                    contacts.c.account_id == account,
                    contacts.c.id == orders.c.receipt_contact_id,
                    func.lower(contacts.c.email) == where.buyer_email.lower(),
                )
            )
        total = (await self._conn.execute(select(func.count()).select_from(orders).where(*conditions))).scalar_one()
        query = (
            select(*orders.c, transactions.c.merchant_transaction_reference)
            .select_from(
                orders.join(
                    transactions,
                    and_(transactions.c.account_id == account, transactions.c.id == orders.c.transaction_id),
                )
            )
            .where(*conditions)
            .order_by(orders.c.created_at.desc(), orders.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [_order(r) for r in (await self._conn.execute(query)).all()], int(total)
