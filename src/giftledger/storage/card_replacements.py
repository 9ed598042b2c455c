"""Replacing a card: what the old card is, carrying its details over to the new one, blocking it as replaced,
and finding a card's replacement (or the card it replaced).

The two cards are linked by their balance transfer: the Outbound Balance Transfer line item on the old card and
the Inbound one on the new card belong to one `transactions` row of kind `replacement` (only a card that holds
something is replaced, so there is always a transfer). The money moves through the ledger's one
movement (storage/ledger.py); nothing here changes a balance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from giftledger.domain.ledger import LineItemType
from giftledger.domain.validity import BlockReason
from giftledger.storage.tables import cards, line_items

REPLACED = BlockReason.REPLACED.value  # cards.blocked_reason of a card that was replaced


@dataclass(frozen=True)
class CardState:
    id: int
    card_reference: str
    status: str
    currency: str
    blocked_reason: str | None
    tender_balance: int
    discount_balance: int


@dataclass(frozen=True)
class Linked:
    """The other card of a replacement: the one that replaced this card, or the one this card replaced."""

    card_id: int
    card_reference: str
    replaced_this: bool  # True: the other card is this card's replacement


class Replacements:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def state(self, card_id: int) -> CardState | None:
        """The card, locked for the rest of the transaction."""
        row = (
            await self._conn.execute(
                select(
                    cards.c.id,
                    cards.c.card_reference,
                    cards.c.status,
                    cards.c.currency,
                    cards.c.blocked_reason,
                    cards.c.tender_balance,
                    cards.c.discount_balance,
                )
                .where(cards.c.account_id == self._account_id, cards.c.id == card_id)
                .with_for_update()
            )
        ).first()
        return CardState(**row._mapping) if row else None

    async def carry_over(self, old_card_id: int, new_card_id: int, now: datetime) -> None:
        """The new card takes the old one's product, contact, validity and expiry; its initial balance is what
        it receives."""
        old = aliased(cards, name="old")
        await self._conn.execute(
            update(cards)
            .where(
                cards.c.account_id == self._account_id,
                cards.c.id == new_card_id,
                old.c.account_id == cards.c.account_id,
                old.c.id == old_card_id,
            )
            .values(
                product_id=old.c.product_id,
                contact_id=old.c.contact_id,
                expiry_time=old.c.expiry_time,
                validity_start_time=old.c.validity_start_time,
                initial_balance=old.c.balance,
                updated_at=now,
            )
        )

    async def block_as_replaced(self, card_id: int, now: datetime) -> None:
        await self._conn.execute(
            update(cards)
            .where(cards.c.account_id == self._account_id, cards.c.id == card_id)
            .values(blocked_reason=REPLACED, blocked_at=now, updated_at=now)
        )

    async def linked(self, card_id: int) -> list[Linked]:
        """The cards this card's balance transfers link it to (its replacement, the card it replaced)."""
        mine = aliased(line_items, name="mine")
        other = aliased(line_items, name="other")
        transfers = (int(LineItemType.OUTBOUND_BALANCE_TRANSFER), int(LineItemType.INBOUND_BALANCE_TRANSFER))
        query = (
            select(other.c.card_id, cards.c.card_reference, other.c.type_id)
            .select_from(
                mine.join(
                    other,
                    and_(
                        other.c.account_id == mine.c.account_id,
                        other.c.transaction_id == mine.c.transaction_id,
                        other.c.card_id != mine.c.card_id,
                        other.c.type_id.in_(transfers),
                    ),
                ).join(cards, and_(cards.c.account_id == other.c.account_id, cards.c.id == other.c.card_id))
            )
            .where(mine.c.account_id == self._account_id, mine.c.card_id == card_id, mine.c.type_id.in_(transfers))
            .order_by(other.c.id)
        )
        rows = (await self._conn.execute(query)).all()
        return [
            Linked(int(r.card_id), r.card_reference, r.type_id == int(LineItemType.INBOUND_BALANCE_TRANSFER))
            for r in rows
        ]
