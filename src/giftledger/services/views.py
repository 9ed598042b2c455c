"""What the use cases hand back: rows joined into the shapes callers read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from giftledger.domain.records import CardRow, ContactRow, LineItemRow, OrderRow
from giftledger.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class CardView:
    card: CardRow
    contact: ContactRow | None
    pin: str | None = None  # a PIN this very sale generated: shown once (services/card_pins.py)


@dataclass(frozen=True)
class LineItemView:
    item: LineItemRow
    card: CardView


@dataclass(frozen=True)
class OrderView:
    order: OrderRow
    line_items: list[LineItemView]
    receipt_contact: ContactRow | None


@dataclass(frozen=True)
class AdjustmentView:
    line_item: LineItemView


@dataclass(frozen=True)
class ReversalView:
    transaction_id: int
    merchant_transaction_reference: str | None
    line_items: list[LineItemView]

    @property
    def value(self) -> int:
        return sum(view.item.value for view in self.line_items)


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    data: list[T]
    total: int
    per_page: int
    current_page: int

    @property
    def last_page(self) -> int:
        return max(1, -(-self.total // self.per_page))


async def card_views(uow: UnitOfWork, rows: Sequence[CardRow]) -> list[CardView]:
    contacts = await uow.contacts.many(sorted({r.contact_id for r in rows if r.contact_id is not None}))
    return [CardView(r, contacts.get(r.contact_id) if r.contact_id is not None else None) for r in rows]


async def line_item_views(uow: UnitOfWork, items: Sequence[LineItemRow]) -> list[LineItemView]:
    cards: dict[int, CardView] = {}
    for card_id in sorted({i.card_id for i in items}):
        row = await uow.cards.get(card_id)
        if row is not None:
            cards[card_id] = (await card_views(uow, [row]))[0]
    return [LineItemView(i, cards[i.card_id]) for i in items]


async def order_views(uow: UnitOfWork, orders: Sequence[OrderRow]) -> list[OrderView]:
    items = await line_item_views(uow, await uow.ledger.for_order([o.id for o in orders]))
    contacts = await uow.contacts.many(sorted({o.receipt_contact_id for o in orders if o.receipt_contact_id}))
    return [
        OrderView(
            o,
            [v for v in items if v.item.order_id == o.id],
            contacts.get(o.receipt_contact_id) if o.receipt_contact_id else None,
        )
        for o in orders
    ]
