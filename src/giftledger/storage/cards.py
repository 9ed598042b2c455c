"""Cards repository: look-ups, stock, and selling a card (its balance moves through storage/ledger.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.records import CardRow
from giftledger.storage.clock import as_utc, utcnow
from giftledger.storage.tables import cards, products

_COLUMNS = (
    cards.c.id,
    cards.c.account_id,
    cards.c.card_reference,
    cards.c.alias,
    cards.c.currency,
    cards.c.status,
    cards.c.balance,
    cards.c.tender_balance,
    cards.c.discount_balance,
    cards.c.initial_balance,
    cards.c.product_id,
    products.c.name.label("product_name"),
    cards.c.contact_id,
    cards.c.expiry_time,
    cards.c.created_at,
    cards.c.updated_at,
    cards.c.validity_start_time,
    cards.c.blocked_reason,
    cards.c.blocked_at,
)


def _row(row: Any) -> CardRow:
    data = dict(row._mapping)
    for key in ("created_at", "updated_at"):
        data[key] = as_utc(data[key])
    for key in ("expiry_time", "validity_start_time", "blocked_at"):
        if data[key] is not None:
            data[key] = as_utc(data[key])
    return CardRow(**data)


class Cards:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    def _select(self) -> Any:
        return (
            select(*_COLUMNS)
            .select_from(cards.outerjoin(products, products.c.id == cards.c.product_id))
            .where(cards.c.account_id == self._account_id)
        )

    async def find(self, reference: str, *, lock: bool = False) -> CardRow | None:
        """A card by its number or its alias (the number wins when both match)."""
        query = self._select().where(or_(cards.c.card_reference == reference, cards.c.alias == reference))
        query = query.order_by((cards.c.card_reference != reference).asc(), cards.c.id).limit(1)
        if lock:
            query = query.with_for_update(of=cards)
        row = (await self._conn.execute(query)).first()
        return _row(row) if row else None

    async def get(self, card_id: int, *, lock: bool = False) -> CardRow | None:
        query = self._select().where(cards.c.id == card_id)
        if lock:
            query = query.with_for_update(of=cards)
        row = (await self._conn.execute(query)).first()
        return _row(row) if row else None

    async def page_active(self, *, limit: int, offset: int, card_id: int | None = None) -> tuple[list[CardRow], int]:
        conditions = [cards.c.account_id == self._account_id, cards.c.status == "active"]
        if card_id is not None:
            conditions.append(cards.c.id == card_id)
        total = (await self._conn.execute(select(func.count()).select_from(cards).where(*conditions))).scalar_one()
        query = self._select().where(*conditions[1:]).order_by(cards.c.id).limit(limit).offset(offset)
        rows = (await self._conn.execute(query)).all()
        return [_row(r) for r in rows], int(total)

    async def add_stock(self, references: Sequence[str], currency: str) -> list[str]:
        """Blank card numbers for physical cards; numbers already in the account are skipped."""
        existing = set(
            (
                await self._conn.execute(
                    select(cards.c.card_reference).where(
                        cards.c.account_id == self._account_id, cards.c.card_reference.in_(list(references))
                    )
                )
            ).scalars()
        )
        now = utcnow()
        fresh = [r for r in dict.fromkeys(references) if r not in existing]
        if fresh:
            await self._conn.execute(
                cards.insert(),
                [
                    {
                        "account_id": self._account_id,
                        "card_reference": r,
                        "currency": currency,
                        "status": "stock",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for r in fresh
                ],
            )
        return fresh

    async def stock_references(self, limit: int = 1000) -> list[str]:
        query = (
            select(cards.c.card_reference)
            .where(cards.c.account_id == self._account_id, cards.c.status == "stock")
            .order_by(cards.c.id)
            .limit(limit)
        )
        return list((await self._conn.execute(query)).scalars())

    async def create_active(self, reference: str, currency: str, product_id: int | None) -> int:
        now = utcnow()
        result = await self._conn.execute(
            cards.insert()
            .values(
                account_id=self._account_id,
                card_reference=reference,
                currency=currency,
                status="active",
                product_id=product_id,
                created_at=now,
                updated_at=now,
            )
            .returning(cards.c.id)
        )
        return int(result.scalar_one())

    async def activate(
        self, card_id: int, *, product_id: int | None, initial_balance: int, contact_id: int | None, message: str | None
    ) -> bool:
        """Stock -> active. False when another sale got there first."""
        result = await self._conn.execute(
            update(cards)
            .where(cards.c.account_id == self._account_id, cards.c.id == card_id, cards.c.status == "stock")
            .values(
                status="active",
                product_id=product_id,
                initial_balance=initial_balance,
                contact_id=contact_id,
                message=message,
                updated_at=utcnow(),
            )
        )
        return result.rowcount == 1

    async def describe_sale(
        self, card_id: int, *, product_id: int | None, initial_balance: int, contact_id: int | None, message: str | None
    ) -> None:
        await self._conn.execute(
            update(cards)
            .where(cards.c.account_id == self._account_id, cards.c.id == card_id)
            .values(product_id=product_id, initial_balance=initial_balance, contact_id=contact_id, message=message)
        )

    async def message(self, card_id: int) -> str | None:
        """The buyer's message kept from the card's sale (its e-gift carries it)."""
        found = await self._conn.execute(
            select(cards.c.message).where(cards.c.account_id == self._account_id, cards.c.id == card_id)
        )
        value = found.scalar()
        return str(value) if value is not None else None

    async def return_to_stock(self, card_id: int) -> None:
        """Unsold again (its sale reversed): a block of that sale goes with it, so that the number sells again
        as any stock does (a block by hand; a replaced card holds nothing whose sale could be reversed)."""
        await self._conn.execute(
            update(cards)
            .where(cards.c.account_id == self._account_id, cards.c.id == card_id, cards.c.balance == 0)
            .values(status="stock", blocked_reason=None, blocked_at=None, updated_at=utcnow())
        )

    async def liability(self) -> int:
        total = (
            await self._conn.execute(
                select(func.coalesce(func.sum(cards.c.balance), 0)).where(cards.c.account_id == self._account_id)
            )
        ).scalar_one()
        return int(total)
