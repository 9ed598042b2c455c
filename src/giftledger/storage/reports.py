"""Read-only report queries over the ledger: activity per site, outstanding balance, line-item exports.

Every query filters by account. Line items that were reversed are left out of activity (a reversed sale
was never a sale); the reversals themselves are not activity either. Exports list every line item."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from giftledger.storage.clock import as_utc
from giftledger.storage.tables import api_users, cards, line_items, merchants, sites, transactions, users


@dataclass(frozen=True)
class ActivityRow:
    """Line items of one type at one site in a period, reversed ones left out."""

    site_id: int | None
    site_name: str | None
    type_id: int
    count: int
    total: int  # sum of the values (pence; redemptions negative)


@dataclass(frozen=True)
class LiabilityRow:
    cards_with_balance: int
    balance: int
    tender: int
    discount: int


@dataclass(frozen=True)
class ExportRow:
    card_id: int
    card_reference: str
    currency: str
    line_item_id: int
    type_id: int
    value: int
    tender: int
    discount: int
    site_name: str | None
    merchant_name: str | None
    merchant_transaction_reference: str | None
    order_id: int | None
    note: str | None
    actor: str | None
    reverses_line_item_id: int | None
    reversed_by_line_item_id: int | None
    created_at: datetime


_reversal = aliased(line_items, name="reversal")


class Reports:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def activity(self, type_ids: list[int], start: datetime, end: datetime) -> list[ActivityRow]:
        """Count and sum of unreversed line items of `type_ids` created in [start, end), per site."""
        query = (
            select(
                line_items.c.site_id,
                sites.c.name.label("site_name"),
                line_items.c.type_id,
                func.count(line_items.c.id).label("items"),
                func.coalesce(func.sum(line_items.c.value), 0).label("total"),
            )
            .select_from(
                line_items.outerjoin(sites, sites.c.id == line_items.c.site_id).outerjoin(
                    _reversal,
                    (_reversal.c.account_id == line_items.c.account_id)
                    & (_reversal.c.reverses_line_item_id == line_items.c.id),
                )
            )
            .where(
                line_items.c.account_id == self._account_id,
                line_items.c.type_id.in_(type_ids),
                line_items.c.created_at >= start,
                line_items.c.created_at < end,
                _reversal.c.id.is_(None),
            )
            .group_by(line_items.c.site_id, sites.c.name, line_items.c.type_id)
        )
        rows = (await self._conn.execute(query)).all()
        return [ActivityRow(r.site_id, r.site_name, int(r.type_id), int(r.items), int(r.total)) for r in rows]

    async def liability(self) -> LiabilityRow:
        """What the account owes card holders right now: the sum of every card's balance."""
        row = (
            await self._conn.execute(
                select(
                    func.count(cards.c.id).filter(cards.c.balance > 0).label("cards_with_balance"),
                    func.coalesce(func.sum(cards.c.balance), 0).label("balance"),
                    func.coalesce(func.sum(cards.c.tender_balance), 0).label("tender"),
                    func.coalesce(func.sum(cards.c.discount_balance), 0).label("discount"),
                ).where(cards.c.account_id == self._account_id)
            )
        ).one()
        return LiabilityRow(int(row.cards_with_balance), int(row.balance), int(row.tender), int(row.discount))

    async def line_items_between(self, start: datetime, end: datetime) -> list[ExportRow]:
        """Every line item created in [start, end), oldest first, with what a till reconciles against."""
        query = (
            select(
                cards.c.id.label("card_id"),
                cards.c.card_reference,
                cards.c.currency,
                line_items.c.id.label("line_item_id"),
                line_items.c.type_id,
                line_items.c.value,
                line_items.c.tender,
                line_items.c.discount,
                sites.c.name.label("site_name"),
                merchants.c.name.label("merchant_name"),
                transactions.c.merchant_transaction_reference,
                line_items.c.order_id,
                line_items.c.note,
                func.coalesce(users.c.email, api_users.c.username).label("actor"),
                line_items.c.reverses_line_item_id,
                _reversal.c.id.label("reversed_by_line_item_id"),
                line_items.c.created_at,
            )
            .select_from(
                line_items.join(cards, cards.c.id == line_items.c.card_id)
                .join(transactions, transactions.c.id == line_items.c.transaction_id)
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
            .where(
                line_items.c.account_id == self._account_id,
                line_items.c.created_at >= start,
                line_items.c.created_at < end,
            )
            .order_by(line_items.c.id)
        )
        rows = (await self._conn.execute(query)).all()
        return [_export(r) for r in rows]


def _export(row: Any) -> ExportRow:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    return ExportRow(**data)
