"""Look-ups of card numbers that matched no card ("misses"), counted per caller and per client address.

Rows are account-owned (the account the caller acted on), but the per-address count deliberately spans
accounts: one address guessing across many accounts is one guesser."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, String, Table, delete
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


# A CTE `misses`: misses of this caller ({sub}) and of this client address ({addr}) since {since}, and the
# oldest of each (when the count next drops). Every look-up by card number counts them in its own statement.
MISSES = """
misses AS (
    SELECT count(*) FILTER (WHERE subject = {sub}) AS caller_misses,
           min(created_at) FILTER (WHERE subject = {sub}) AS caller_oldest,
           count(*) FILTER (WHERE client_address = {addr}) AS address_misses,
           min(created_at) FILTER (WHERE client_address = {addr}) AS address_oldest
    FROM card_lookup_misses
    WHERE (subject = {sub} OR client_address = {addr}) AND created_at >= {since}
)"""

_COUNTS = "WITH " + MISSES.format(sub="$1::text", addr="$2::text", since="$3::timestamptz").strip()
_COUNTS += " SELECT * FROM misses"


@dataclass(frozen=True)
class MissCount:
    count: int
    oldest: datetime | None  # the oldest miss counted (when the count next drops)


def miss_counts(row: Any) -> tuple[MissCount, MissCount]:
    """The caller's and its address's counts from a row that selected `misses.*`."""

    def oldest(value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    return (
        MissCount(int(row["caller_misses"]), oldest(row["caller_oldest"])),
        MissCount(int(row["address_misses"]), oldest(row["address_oldest"])),
    )


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
        """Misses since `since` of this caller and of this address (`MISSES`), in one round trip."""
        row = (await self._conn.exec_driver_sql(_COUNTS, (subject, client_address, since))).one()
        return miss_counts(row._mapping)

    async def forget_before(self, subject: str, client_address: str | None, before: datetime) -> None:
        """Drop misses of this caller and address that no longer count (keeps the table small)."""
        condition = card_lookup_misses.c.subject == subject
        if client_address is not None:
            condition = condition | (card_lookup_misses.c.client_address == client_address)
        await self._conn.execute(delete(card_lookup_misses).where(condition, card_lookup_misses.c.created_at < before))
