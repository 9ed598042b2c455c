"""A card's lifecycle outside its balance: a product's validity and expiry rules, the terms a card is sold
with, blocking, and changes of expiry (one card or many). Balances move only through storage/ledger.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.validity import CardTerms, ExpiryKind, ValidityRules
from giftledger.storage.clock import utcnow
from giftledger.storage.tables import cards, products

_RULE_COLUMNS = (
    products.c.id,
    products.c.activation_delay_seconds,
    products.c.valid_after,
    products.c.expiry_kind,
    products.c.expiry_period_days,
    products.c.expiry_date,
    products.c.reminder_days,
)


def _rules(row: Any) -> ValidityRules:
    return ValidityRules(
        activation_delay_seconds=int(row.activation_delay_seconds),
        valid_after=row.valid_after,
        expiry_kind=ExpiryKind(row.expiry_kind),
        expiry_period_days=row.expiry_period_days,
        expiry_date=row.expiry_date,
        reminder_days=row.reminder_days,
    )


@dataclass(frozen=True)
class CardSelection:
    """Which cards a bulk change of expiry touches: those of a product, and/or created in a time range."""

    product_id: int | None = None
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


class Lifecycle:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def rules(self, product_ids: list[int]) -> dict[int, ValidityRules]:
        if not product_ids:
            return {}
        rows = await self._conn.execute(
            select(*_RULE_COLUMNS).where(products.c.account_id == self._account_id, products.c.id.in_(product_ids))
        )
        return {int(r.id): _rules(r) for r in rows}

    async def set_rules(self, product_id: int, rules: ValidityRules) -> bool:
        result = await self._conn.execute(
            update(products)
            .where(products.c.account_id == self._account_id, products.c.id == product_id)
            .values(
                activation_delay_seconds=rules.activation_delay_seconds,
                valid_after=rules.valid_after,
                expiry_kind=rules.expiry_kind.value,
                expiry_period_days=rules.expiry_period_days,
                expiry_date=rules.expiry_date,
                reminder_days=rules.reminder_days,
            )
        )
        return result.rowcount == 1

    async def set_terms(self, card_id: int, terms: CardTerms) -> None:
        """The validity start, expiry and reminder a card is sold with."""
        await self._conn.execute(
            update(cards)
            .where(cards.c.account_id == self._account_id, cards.c.id == card_id)
            .values(
                validity_start_time=terms.validity_start_time,
                expiry_time=terms.expiry_time,
                expiry_reminder_days=terms.reminder_days,
                expiry_reminded_for=None,
            )
        )

    async def block(self, card_id: int, reason: str, now: datetime) -> bool:
        """Block a sold card that is not blocked yet; False when there is none."""
        result = await self._conn.execute(
            update(cards)
            .where(
                cards.c.account_id == self._account_id,
                cards.c.id == card_id,
                cards.c.status == "active",
                cards.c.blocked_reason.is_(None),
            )
            .values(blocked_reason=reason, blocked_at=now, updated_at=now)
        )
        return result.rowcount == 1

    async def unblock(self, card_id: int, now: datetime) -> bool:
        result = await self._conn.execute(
            update(cards)
            .where(cards.c.account_id == self._account_id, cards.c.id == card_id, cards.c.blocked_reason.is_not(None))
            .values(blocked_reason=None, blocked_at=None, updated_at=now)
        )
        return result.rowcount == 1

    def _live(self, now: datetime) -> Any:
        """Sold cards whose expiry has not come (the only ones whose expiry may change)."""
        return and_(
            cards.c.account_id == self._account_id,
            cards.c.status == "active",
            or_(cards.c.expiry_time.is_(None), cards.c.expiry_time > now),
        )

    async def change_expiry(
        self,
        now: datetime,
        *,
        card_id: int | None = None,
        selection: CardSelection | None = None,
        extend_days: int | None = None,
        expiry_time: datetime | None = None,
    ) -> int:
        """Extend by `extend_days` (cards with an expiry) or set `expiry_time` (None: remove) on one live card
        or on every live card of `selection`; how many changed. A card's reminder is due again for the new
        expiry."""
        conditions = [self._live(now)]
        if card_id is not None:
            conditions.append(cards.c.id == card_id)
        if selection is not None:
            if selection.product_id is not None:
                conditions.append(cards.c.product_id == selection.product_id)
            if selection.created_from is not None:
                conditions.append(cards.c.created_at >= selection.created_from)
            if selection.created_before is not None:
                conditions.append(cards.c.created_at < selection.created_before)
        if extend_days is not None:
            conditions.append(cards.c.expiry_time.is_not(None))
            new_expiry: Any = cards.c.expiry_time + timedelta(days=extend_days)
        else:
            new_expiry = expiry_time
        result = await self._conn.execute(
            update(cards).where(*conditions).values(expiry_time=new_expiry, expiry_reminded_for=None, updated_at=now)
        )
        return int(result.rowcount)

    async def reactivate(self, card_id: int) -> None:
        """After its breakage is reversed: the card never expires (until someone sets a new expiry)."""
        await self._conn.execute(
            update(cards)
            .where(cards.c.account_id == self._account_id, cards.c.id == card_id)
            .values(expiry_time=None, expiry_reminded_for=None, updated_at=utcnow())
        )
