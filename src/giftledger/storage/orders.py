"""Orders and the contacts (receipt emails, recipients) and consents attached to them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.records import ConsentRow, ContactRow, OrderRow
from giftledger.storage.clock import as_utc, utcnow
from giftledger.storage.tables import consents, contacts, orders, transactions


def _order(row: Any) -> OrderRow:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    return OrderRow(**data)


class Orders:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    def _select(self) -> Any:
        return (
            select(*orders.c, transactions.c.merchant_transaction_reference)
            .select_from(orders.join(transactions, transactions.c.id == orders.c.transaction_id))
            .where(orders.c.account_id == self._account_id)
        )

    async def add(
        self,
        *,
        transaction_id: int,
        merchant_id: int | None,
        site_id: int | None,
        sales_channel_id: int,
        currency: str,
        total: int,
        discount_total: int,
        note: str | None,
        receipt_contact_id: int | None,
    ) -> int:
        result = await self._conn.execute(
            orders.insert()
            .values(
                account_id=self._account_id,
                transaction_id=transaction_id,
                merchant_id=merchant_id,
                site_id=site_id,
                sales_channel_id=sales_channel_id,
                currency=currency,
                total=total,
                discount_total=discount_total,
                note=note,
                receipt_contact_id=receipt_contact_id,
                status="completed",
                created_at=utcnow(),
            )
            .returning(orders.c.id)
        )
        return int(result.scalar_one())

    async def get(self, order_id: int) -> OrderRow | None:
        row = (await self._conn.execute(self._select().where(orders.c.id == order_id))).first()
        return _order(row) if row else None

    async def page(self, *, limit: int, offset: int) -> tuple[list[OrderRow], int]:
        total = (
            await self._conn.execute(
                select(func.count()).select_from(orders).where(orders.c.account_id == self._account_id)
            )
        ).scalar_one()
        rows = (await self._conn.execute(self._select().order_by(orders.c.id.desc()).limit(limit).offset(offset))).all()
        return [_order(r) for r in rows], int(total)

    async def set_status(self, order_id: int, status: str) -> None:
        await self._conn.execute(
            update(orders).where(orders.c.account_id == self._account_id, orders.c.id == order_id).values(status=status)
        )


class Contacts:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def add(self, email: str, first_name: str | None = None, last_name: str | None = None) -> int:
        result = await self._conn.execute(
            contacts.insert()
            .values(
                account_id=self._account_id,
                email=email,
                first_name=first_name,
                last_name=last_name,
                created_at=utcnow(),
            )
            .returning(contacts.c.id)
        )
        return int(result.scalar_one())

    async def add_consent(self, contact_id: int, consent_copy: str) -> int:
        result = await self._conn.execute(
            consents.insert()
            .values(
                account_id=self._account_id,
                contact_id=contact_id,
                consent_copy=consent_copy,
                consented_at=utcnow(),
            )
            .returning(consents.c.id)
        )
        return int(result.scalar_one())

    async def many(self, ids: list[int]) -> dict[int, ContactRow]:
        if not ids:
            return {}
        rows = await self._conn.execute(
            select(contacts.c.id, contacts.c.email, contacts.c.first_name, contacts.c.last_name).where(
                contacts.c.account_id == self._account_id, contacts.c.id.in_(ids)
            )
        )
        return {int(r.id): ContactRow(**r._mapping) for r in rows}

    async def consents_page(self, contact_id: int, *, limit: int, offset: int) -> tuple[list[ConsentRow], int]:
        where = (consents.c.account_id == self._account_id, consents.c.contact_id == contact_id)
        total = (await self._conn.execute(select(func.count()).select_from(consents).where(*where))).scalar_one()
        rows = await self._conn.execute(
            select(consents.c.id, consents.c.consent_copy, consents.c.consented_at)
            .where(*where)
            .order_by(consents.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [ConsentRow(r.id, r.consent_copy, as_utc(r.consented_at)) for r in rows], int(total)
