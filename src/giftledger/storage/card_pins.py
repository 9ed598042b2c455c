"""Card PINs in the database: which products ask for a PIN on each sale (`products.pin_digits`), and a card's
PIN hash (`cards.pin_hash`: only a keyed hash is ever stored, auth/pins.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.storage.clock import utcnow
from giftledger.storage.tables import cards, products


class CardPins:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def digits(self, product_ids: Sequence[int]) -> dict[int, int]:
        """The products among these that ask for a PIN on each sale, and how many digits it has."""
        if not product_ids:
            return {}
        rows = await self._conn.execute(
            select(products.c.id, products.c.pin_digits).where(
                products.c.account_id == self._account_id,
                products.c.id.in_(list(product_ids)),
                products.c.pin_digits.is_not(None),
            )
        )
        return {int(r.id): int(r.pin_digits) for r in rows}

    async def set_product_digits(self, product_id: int, digits: int | None) -> bool:
        """False when the account has no such product."""
        result = await self._conn.execute(
            update(products)
            .where(products.c.account_id == self._account_id, products.c.id == product_id)
            .values(pin_digits=digits)
        )
        return result.rowcount == 1

    async def set_hash(self, card_id: int, pin_hash: str) -> None:
        await self._conn.execute(
            update(cards)
            .where(cards.c.account_id == self._account_id, cards.c.id == card_id)
            .values(pin_hash=pin_hash, updated_at=utcnow())
        )

    async def stored_hash(self, card_id: int) -> str | None:
        found = await self._conn.execute(
            select(cards.c.pin_hash).where(cards.c.account_id == self._account_id, cards.c.id == card_id)
        )
        value = found.scalar()
        return str(value) if value is not None else None
