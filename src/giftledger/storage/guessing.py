"""Look-ups of card numbers that matched no card ("misses"), counted per caller and per client address.

Rows are account-owned (the account the caller acted on), but the per-address count deliberately spans
accounts: one address guessing across many accounts is one guesser."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey, Index, String, Table, case, delete, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.storage.clock import as_utc
from giftledger.storage.tables import Id, metadata

card_lookup_misses = Table(
    "card_lookup_misses",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("subject", String(100), nullable=False),  # "api_user:7" or "user:3"
    Column("client_address", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_card_lookup_misses_subject_created", "subject", "created_at"),
    Index("ix_card_lookup_misses_address_created", "client_address", "created_at"),
)


@dataclass(frozen=True)
class MissCount:
    count: int
    oldest: datetime | None  # the oldest miss counted (when the count next drops)


def _when(value: datetime | str | None) -> datetime | None:
    """SQLite hands the minimum of a CASE back as text; PostgreSQL as a timestamp."""
    if value is None:
        return None
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


class CardMisses:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, account_id: int, subject: str, client_address: str | None, at: datetime) -> None:
        await self._conn.execute(
            card_lookup_misses.insert().values(
                account_id=account_id, subject=subject, client_address=client_address, created_at=at
            )
        )

    async def counts(self, subject: str, client_address: str | None, since: datetime) -> tuple[MissCount, MissCount]:
        """Misses since `since` of this caller and of this address, in one round trip."""
        t = card_lookup_misses
        mine = t.c.subject == subject
        theirs = t.c.client_address == client_address if client_address is not None else false()
        row = (
            await self._conn.execute(
                select(
                    func.coalesce(func.sum(case((mine, 1), else_=0)), 0),
                    func.min(case((mine, t.c.created_at), else_=None)),
                    func.coalesce(func.sum(case((theirs, 1), else_=0)), 0),
                    func.min(case((theirs, t.c.created_at), else_=None)),
                ).where(or_(mine, theirs), t.c.created_at >= since)
            )
        ).one()
        return MissCount(int(row[0]), _when(row[1])), MissCount(int(row[2]), _when(row[3]))

    async def forget_before(self, subject: str, client_address: str | None, before: datetime) -> None:
        """Drop misses of this caller and address that no longer count (keeps the table small)."""
        condition = card_lookup_misses.c.subject == subject
        if client_address is not None:
            condition = condition | (card_lookup_misses.c.client_address == client_address)
        await self._conn.execute(delete(card_lookup_misses).where(condition, card_lookup_misses.c.created_at < before))
