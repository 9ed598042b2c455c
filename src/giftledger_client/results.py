"""What the operations return: frozen dataclasses. Money is always an int in minor units (pence)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ValueSplit:
    """How an amount divides into tender (paid-for value) and discount (promotional value).

    Book `tender` as a payment and `discount` as a discount. Values are as the server reports them
    (Toggle signs a redemption's split like its value: negative).
    """

    tender: int
    discount: int


@dataclass(frozen=True)
class Balance:
    """A card's state from a balance check."""

    card_reference: str
    balance: int
    initial_balance: int
    created_at: datetime | None
    updated_at: datetime | None
    value_split: ValueSplit | None


@dataclass(frozen=True)
class LineItem:
    """One ledger entry (a sale, redemption, top-up or reversal) as the server lists it."""

    id: int
    value: int
    reference: str | None
    card_reference: str | None
    card_balance: int | None
    value_split: ValueSplit | None
    created_at: datetime | None


@dataclass(frozen=True)
class Sale:
    """A card sold at the till (physical or digital).

    `order_id` is None when the sale was confirmed by looking up its reference after a lost reply.
    """

    reference: str
    order_id: int | None
    line_item_id: int
    card_reference: str
    amount: int
    balance: int


@dataclass(frozen=True)
class Adjustment:
    """A balance adjustment (a top-up is positive, a debit negative) and the card's balance after it."""

    reference: str
    line_item_id: int
    card_reference: str
    amount: int
    balance: int
    value_split: ValueSplit | None


@dataclass(frozen=True)
class Redemption:
    """A card used towards a bill: never more than the card's balance or the bill.

    `taken` is what the card paid, `remaining_to_pay` what the guest still owes. When the card was empty
    nothing is sent: `taken` is 0 and `reference` and `line_item_id` are None.
    """

    reference: str | None
    card_reference: str
    bill: int
    taken: int
    remaining_to_pay: int
    balance: int
    line_item_id: int | None
    value_split: ValueSplit | None


@dataclass(frozen=True)
class Reversal:
    """A reversed transaction: the reversal's own reference, what it reversed, and the new line items."""

    reference: str
    original_reference: str
    reversed_line_item_ids: tuple[int, ...]
    line_items: tuple[LineItem, ...]


@dataclass(frozen=True)
class PriceModifier:
    """A preset value of a product (e.g. 1000 = £10.00)."""

    id: int
    price: int
    description: str | None


@dataclass(frozen=True)
class Product:
    """A product of the account, with its preset values."""

    id: int
    name: str
    price_modifiers: tuple[PriceModifier, ...]
