"""Transactions and line items: append-only. A reversal is a new line item pointing at the old one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from giftledger.domain.ledger import LineItemType, Split
from giftledger.storage.clock import as_utc, utcnow
from giftledger.storage.records import LineItemRow
from giftledger.storage.tables import api_users, line_items, merchants, sites, transactions, users


@dataclass(frozen=True)
class NewLineItem:
    card_id: int
    type: LineItemType
    split: Split
    order_id: int | None = None
    product_id: int | None = None
    price_modifier_id: int | None = None
    fulfilment_method_id: int | None = None
    reverses_line_item_id: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class Actor:
    """Who did it: an API user (a till) or a dashboard user, and where."""

    api_user_id: int | None = None
    user_id: int | None = None
    merchant_id: int | None = None
    site_id: int | None = None


_reversal = aliased(line_items, name="reversal")


def _select() -> Any:
    return select(
        line_items.c.id,
        line_items.c.account_id,
        line_items.c.card_id,
        line_items.c.transaction_id,
        line_items.c.order_id,
        line_items.c.type_id,
        line_items.c.value,
        line_items.c.tender,
        line_items.c.discount,
        line_items.c.site_id,
        sites.c.name.label("site_name"),
        line_items.c.merchant_id,
        merchants.c.name.label("merchant_name"),
        transactions.c.merchant_transaction_reference,
        line_items.c.reverses_line_item_id,
        _reversal.c.id.label("reversed_by_line_item_id"),
        line_items.c.note,
        func.coalesce(users.c.email, api_users.c.username).label("actor"),
        line_items.c.created_at,
    ).select_from(
        line_items.join(transactions, transactions.c.id == line_items.c.transaction_id)
        .outerjoin(sites, sites.c.id == line_items.c.site_id)
        .outerjoin(merchants, merchants.c.id == line_items.c.merchant_id)
        .outerjoin(users, users.c.id == line_items.c.user_id)
        .outerjoin(api_users, api_users.c.id == line_items.c.api_user_id)
        .outerjoin(
            _reversal,
            (_reversal.c.account_id == line_items.c.account_id)
            & (_reversal.c.reverses_line_item_id == line_items.c.id),
        )
    )


def _row(row: Any) -> LineItemRow:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    return LineItemRow(**data)


class Ledger:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def open_transaction(self, kind: str, actor: Actor, reference: str | None, note: str | None = None) -> int:
        """Record a transaction. The unique (account, merchant, reference) index refuses a reused
        reference even between two requests racing each other."""
        result = await self._conn.execute(
            transactions.insert()
            .values(
                account_id=self._account_id,
                merchant_id=actor.merchant_id,
                merchant_transaction_reference=reference,
                kind=kind,
                site_id=actor.site_id,
                api_user_id=actor.api_user_id,
                user_id=actor.user_id,
                note=note,
                created_at=utcnow(),
            )
            .returning(transactions.c.id)
        )
        return int(result.scalar_one())

    async def append(self, transaction_id: int, actor: Actor, item: NewLineItem) -> int:
        result = await self._conn.execute(
            line_items.insert()
            .values(
                account_id=self._account_id,
                card_id=item.card_id,
                transaction_id=transaction_id,
                order_id=item.order_id,
                type_id=int(item.type),
                value=item.split.value,
                tender=item.split.tender,
                discount=item.split.discount,
                site_id=actor.site_id,
                merchant_id=actor.merchant_id,
                product_id=item.product_id,
                price_modifier_id=item.price_modifier_id,
                fulfilment_method_id=item.fulfilment_method_id,
                reverses_line_item_id=item.reverses_line_item_id,
                note=item.note,
                api_user_id=actor.api_user_id,
                user_id=actor.user_id,
                created_at=utcnow(),
            )
            .returning(line_items.c.id)
        )
        return int(result.scalar_one())

    async def ids_for_reference(self, merchant_id: int | None, reference: str) -> list[int] | None:
        """The line items of the transaction that used `reference`, or None when it was never used."""
        tx = (
            await self._conn.execute(
                select(transactions.c.id).where(
                    transactions.c.account_id == self._account_id,
                    transactions.c.merchant_id == merchant_id,
                    transactions.c.merchant_transaction_reference == reference,
                )
            )
        ).scalar_one_or_none()
        if tx is None:
            return None
        ids = await self._conn.execute(
            select(line_items.c.id)
            .where(line_items.c.account_id == self._account_id, line_items.c.transaction_id == tx)
            .order_by(line_items.c.id)
        )
        return [int(i) for i in ids.scalars()]

    async def get(self, line_item_id: int, *, lock: bool = False) -> LineItemRow | None:
        query = _select().where(line_items.c.account_id == self._account_id, line_items.c.id == line_item_id)
        row = (await self._conn.execute(query)).first()
        return _row(row) if row else None

    async def many(self, ids: Sequence[int]) -> list[LineItemRow]:
        if not ids:
            return []
        query = _select().where(line_items.c.account_id == self._account_id, line_items.c.id.in_(list(ids)))
        rows = (await self._conn.execute(query.order_by(line_items.c.id))).all()
        return [_row(r) for r in rows]

    async def for_order(self, order_ids: Sequence[int]) -> list[LineItemRow]:
        if not order_ids:
            return []
        query = _select().where(line_items.c.account_id == self._account_id, line_items.c.order_id.in_(list(order_ids)))
        rows = (await self._conn.execute(query.order_by(line_items.c.id))).all()
        return [_row(r) for r in rows]

    async def for_card(self, card_id: int) -> list[LineItemRow]:
        query = _select().where(line_items.c.account_id == self._account_id, line_items.c.card_id == card_id)
        rows = (await self._conn.execute(query.order_by(line_items.c.id))).all()
        return [_row(r) for r in rows]

    async def page_by_reference(
        self, merchant_id: int | None, reference: str, *, limit: int, offset: int
    ) -> tuple[list[LineItemRow], int]:
        conditions = [
            line_items.c.account_id == self._account_id,
            transactions.c.account_id == self._account_id,  # lets the (account, merchant, reference) index serve
            transactions.c.merchant_transaction_reference == reference,
        ]
        if merchant_id is not None:
            conditions.append(transactions.c.merchant_id == merchant_id)
        total = (
            await self._conn.execute(
                select(func.count())
                .select_from(line_items.join(transactions, transactions.c.id == line_items.c.transaction_id))
                .where(*conditions)
            )
        ).scalar_one()
        rows = (
            await self._conn.execute(_select().where(*conditions).order_by(line_items.c.id).limit(limit).offset(offset))
        ).all()
        return [_row(r) for r in rows], int(total)

    async def is_reversed(self, line_item_id: int) -> bool:
        found = (
            await self._conn.execute(
                select(line_items.c.id).where(
                    line_items.c.account_id == self._account_id,
                    line_items.c.reverses_line_item_id == line_item_id,
                )
            )
        ).first()
        return found is not None

    async def card_sum(self, card_id: int) -> int:
        total = (
            await self._conn.execute(
                select(func.coalesce(func.sum(line_items.c.value), 0)).where(
                    line_items.c.account_id == self._account_id, line_items.c.card_id == card_id
                )
            )
        ).scalar_one()
        return int(total)
