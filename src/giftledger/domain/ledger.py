"""The ledger's rules: line-item types, the tender/discount split, and what a movement may do.

A card's balance is the sum of its line items. Every movement carries a split of its value into
tender (paid-for money) and discount (free value); the split's sign follows the value and its two
parts always add up to the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from giftledger.domain.errors import BalanceLimitExceeded, NegativeBalance

# The most a card may hold, in pence: the contract returns balances as GraphQL Int (32-bit signed), so a
# larger one could be stored but never reported. Sums of many cards are reported as Float or not at all.
MAX_BALANCE = 2_147_483_647


class LineItemType(IntEnum):
    """Toggle's line-item types with their fixed ids."""

    SALE = 1
    REDEMPTION = 2
    BREAKAGE = 3
    REVERSAL = 4
    OUTBOUND_BALANCE_TRANSFER = 5
    INBOUND_BALANCE_TRANSFER = 6
    TOP_UP = 7
    MANUAL_ADJUSTMENT = 8

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").title().replace("Top Up", "Top-up")


@dataclass(frozen=True)
class Split:
    """The tender and discount parts of an amount (pence, same sign as the amount)."""

    tender: int
    discount: int

    @property
    def value(self) -> int:
        return self.tender + self.discount

    def __neg__(self) -> Split:
        return Split(-self.tender, -self.discount)


@dataclass(frozen=True)
class Holding:
    """What a card holds right now: its tender and discount parts (never negative)."""

    tender: int
    discount: int

    @property
    def balance(self) -> int:
        return self.tender + self.discount

    def apply(self, movement: Split) -> Holding:
        after = Holding(self.tender + movement.tender, self.discount + movement.discount)
        if after.tender < 0 or after.discount < 0:
            raise NegativeBalance()
        if after.balance > MAX_BALANCE:
            raise BalanceLimitExceeded()
        return after


def debit_split(holding: Holding, amount: int) -> Split:
    """Split a debit of `amount` pence (> 0) across tender and discount in proportion.

    The discount part is rounded down and the tender part takes the rest, so a card's two parts reach
    zero together and neither ever goes below zero. Refuses a debit larger than the balance.
    """
    if amount <= 0:
        raise ValueError("a debit is a positive amount")
    if amount > holding.balance:
        raise NegativeBalance()
    discount = amount * holding.discount // holding.balance
    return Split(tender=-(amount - discount), discount=-discount)


def movement_split(holding: Holding, value: int, credit_split: Split | None = None) -> Split:
    """The split of a movement of `value` pence on a card holding `holding`.

    Debits (value < 0) always take from tender and discount in proportion. Credits (value > 0) add
    `credit_split` when given (a sale with discounts, the reversal of a debit) and tender otherwise
    (a top-up is paid for).
    """
    if value < 0:
        return debit_split(holding, -value)
    if credit_split is not None:
        if credit_split.value != value:
            raise ValueError("credit split does not add up to the value")
        return credit_split
    return Split(tender=value, discount=0)
