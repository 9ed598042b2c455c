"""Sites (units) and their EPOS references per POS merchant (site mapping)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exists, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.records import SiteRow
from giftledger.storage.clock import as_utc, utcnow
from giftledger.storage.tables import site_mappings, sites, transactions


def _site(row: Any) -> SiteRow:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    data["deleted_at"] = as_utc(data["deleted_at"]) if data["deleted_at"] else None
    return SiteRow(**data)


class Sites:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def add(self, name: str, address: str, reference: str) -> int:
        result = await self._conn.execute(
            sites.insert()
            .values(account_id=self._account_id, name=name, address=address, reference=reference, created_at=utcnow())
            .returning(sites.c.id)
        )
        return int(result.scalar_one())

    async def update(self, site_id: int, name: str, address: str, reference: str) -> bool:
        result = await self._conn.execute(
            update(sites)
            .where(sites.c.account_id == self._account_id, sites.c.id == site_id, sites.c.deleted_at.is_(None))
            .values(name=name, address=address, reference=reference)
        )
        return result.rowcount == 1

    async def delete(self, site_id: int) -> bool:
        """Soft delete: history keeps the site's name; its EPOS references stop working."""
        result = await self._conn.execute(
            update(sites)
            .where(sites.c.account_id == self._account_id, sites.c.id == site_id, sites.c.deleted_at.is_(None))
            .values(deleted_at=utcnow())
        )
        await self._conn.execute(
            delete(site_mappings).where(
                site_mappings.c.account_id == self._account_id, site_mappings.c.site_id == site_id
            )
        )
        return result.rowcount == 1

    async def get(self, site_id: int) -> SiteRow | None:
        row = (
            await self._conn.execute(
                select(*sites.c).where(sites.c.account_id == self._account_id, sites.c.id == site_id)
            )
        ).first()
        return _site(row) if row else None

    async def active(self) -> list[SiteRow]:
        rows = await self._conn.execute(
            select(*sites.c)
            .where(sites.c.account_id == self._account_id, sites.c.deleted_at.is_(None))
            .order_by(sites.c.id)
        )
        return [_site(r) for r in rows]

    async def every(self) -> list[SiteRow]:
        """Live and deleted sites, by name (a deleted site's past sales and orders keep it)."""
        rows = await self._conn.execute(
            select(*sites.c).where(sites.c.account_id == self._account_id).order_by(sites.c.name, sites.c.id)
        )
        return [_site(r) for r in rows]

    async def clashing(self, name: str, reference: str, excluding: int | None = None) -> list[SiteRow]:
        """The other live sites whose name equals `name` ignoring case, or (when `reference` is not empty) whose
        reference equals `reference`: what the unique indexes uq_sites_account_name and
        uq_sites_account_reference refuse."""
        same = func.lower(sites.c.name) == func.lower(name)
        if reference:
            same = or_(same, sites.c.reference == reference)
        query = select(*sites.c).where(sites.c.account_id == self._account_id, sites.c.deleted_at.is_(None), same)
        if excluding is not None:
            query = query.where(sites.c.id != excluding)
        rows = await self._conn.execute(query.order_by(sites.c.id))
        return [_site(r) for r in rows]

    def _site_for_reference(self, merchant_id: int, epos_reference: str) -> Any:
        """The live site mapped to `epos_reference` for this merchant (a SELECT of its id)."""
        return (
            select(site_mappings.c.site_id)
            .join(sites, sites.c.id == site_mappings.c.site_id)
            .where(
                site_mappings.c.account_id == self._account_id,
                site_mappings.c.merchant_id == merchant_id,
                site_mappings.c.epos_reference == epos_reference,
                sites.c.deleted_at.is_(None),
            )
        )

    async def site_for_reference(self, merchant_id: int, epos_reference: str) -> int | None:
        found = await self._conn.execute(self._site_for_reference(merchant_id, epos_reference))
        value = found.scalar_one_or_none()
        return int(value) if value is not None else None

    async def till_context(
        self, merchant_id: int, epos_reference: str, reference: str | None
    ) -> tuple[int | None, bool]:
        """In one round trip: the live site mapped to `epos_reference` for this merchant (or None), and
        whether the merchant already used `reference` in this account."""
        site = self._site_for_reference(merchant_id, epos_reference).scalar_subquery()
        used = (
            exists().where(
                transactions.c.account_id == self._account_id,
                transactions.c.merchant_id == merchant_id,
                transactions.c.merchant_transaction_reference == reference,
            )
            if reference is not None
            else false()
        )
        row = (await self._conn.execute(select(site.label("site_id"), used.label("used")))).one()
        return (int(row.site_id) if row.site_id is not None else None), bool(row.used)

    async def mapping(self, merchant_id: int) -> dict[int, str]:
        """site id -> EPOS reference for one merchant."""
        rows = await self._conn.execute(
            select(site_mappings.c.site_id, site_mappings.c.epos_reference).where(
                site_mappings.c.account_id == self._account_id, site_mappings.c.merchant_id == merchant_id
            )
        )
        return {int(r.site_id): r.epos_reference for r in rows}

    async def replace_mapping(self, merchant_id: int, references: dict[int, str]) -> None:
        await self._conn.execute(
            delete(site_mappings).where(
                site_mappings.c.account_id == self._account_id, site_mappings.c.merchant_id == merchant_id
            )
        )
        if references:
            await self._conn.execute(
                site_mappings.insert(),
                [
                    {
                        "account_id": self._account_id,
                        "merchant_id": merchant_id,
                        "site_id": site_id,
                        "epos_reference": ref,
                    }
                    for site_id, ref in references.items()
                ],
            )
