"""Products and their price modifiers."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.records import PriceModifierRow, ProductRow
from giftledger.storage.clock import utcnow
from giftledger.storage.tables import price_modifiers, products


class Catalogue:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def add_product(self, name: str) -> int:
        result = await self._conn.execute(
            products.insert()
            .values(account_id=self._account_id, name=name, created_at=utcnow())
            .returning(products.c.id)
        )
        return int(result.scalar_one())

    async def products(self) -> list[ProductRow]:
        rows = await self._conn.execute(
            select(products.c.id, products.c.name)
            .where(products.c.account_id == self._account_id)
            .order_by(products.c.id)
        )
        return [ProductRow(int(r.id), r.name) for r in rows]

    async def product(self, product_id: int) -> ProductRow | None:
        row = (
            await self._conn.execute(
                select(products.c.id, products.c.name).where(
                    products.c.account_id == self._account_id, products.c.id == product_id
                )
            )
        ).first()
        return ProductRow(int(row.id), row.name) if row else None

    async def product_named(self, name: str) -> ProductRow | None:
        row = (
            await self._conn.execute(
                select(products.c.id, products.c.name)
                .where(products.c.account_id == self._account_id, products.c.name == name)
                .order_by(products.c.id)
                .limit(1)
            )
        ).first()
        return ProductRow(int(row.id), row.name) if row else None

    async def add_price_modifier(self, product_id: int, price: int, description: str | None) -> int:
        result = await self._conn.execute(
            price_modifiers.insert()
            .values(account_id=self._account_id, product_id=product_id, price=price, description=description)
            .returning(price_modifiers.c.id)
        )
        return int(result.scalar_one())

    async def update_price_modifier(self, modifier_id: int, price: int, description: str | None) -> bool:
        result = await self._conn.execute(
            update(price_modifiers)
            .where(
                price_modifiers.c.account_id == self._account_id,
                price_modifiers.c.id == modifier_id,
                price_modifiers.c.deleted_at.is_(None),
            )
            .values(price=price, description=description)
        )
        return result.rowcount == 1

    async def remove_price_modifier(self, modifier_id: int) -> bool:
        result = await self._conn.execute(
            update(price_modifiers)
            .where(
                price_modifiers.c.account_id == self._account_id,
                price_modifiers.c.id == modifier_id,
                price_modifiers.c.deleted_at.is_(None),
            )
            .values(deleted_at=utcnow())
        )
        return result.rowcount == 1

    async def price_modifiers(self, product_ids: list[int]) -> list[PriceModifierRow]:
        if not product_ids:
            return []
        rows = await self._conn.execute(
            select(
                price_modifiers.c.id,
                price_modifiers.c.product_id,
                price_modifiers.c.price,
                price_modifiers.c.description,
            )
            .where(
                price_modifiers.c.account_id == self._account_id,
                price_modifiers.c.product_id.in_(product_ids),
                price_modifiers.c.deleted_at.is_(None),
            )
            .order_by(price_modifiers.c.price, price_modifiers.c.id)
        )
        return [PriceModifierRow(int(r.id), int(r.product_id), int(r.price), r.description) for r in rows]
