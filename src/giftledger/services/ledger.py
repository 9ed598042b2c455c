"""The one way a use case moves a card's balance inside its unit of work, and what a broken constraint means.

Sales, reversals and manual adjustments each call `post` for every line item they write: the storage's one
movement statement (storage/ledger.py) locks the card, splits the movement, moves the balance and appends
the line item, and says when it refused; the refusal is decided here. (A till's redemption or top-up runs the
same movement folded into its own statement: services/adjustments.py.)"""

from __future__ import annotations

from giftledger.domain.errors import (
    AlreadyReversed,
    BalanceLimitExceeded,
    CardNotFound,
    DomainError,
    DuplicateReference,
    NegativeBalance,
)
from giftledger.services.context import Principal, Services
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.ledger import Actor, Entry
from giftledger.storage.unit_of_work import UnitOfWork

REFERENCE_TAKEN = "uq_transactions_reference"
REVERSED_TWICE = "uq_line_items_reverses"
BELOW_ZERO = "ck_cards_balance_not_negative"


async def post(uow: UnitOfWork, transaction_id: int, actor: Actor, entry: Entry) -> int:
    """Append `entry`'s line item and move its card's balance; the new line item's id. Refused, with nothing
    changed, when the card does not exist or would go below zero or above the maximum balance."""
    posted = await uow.ledger.post(transaction_id, actor, entry)
    if posted.before is None:
        raise CardNotFound()
    if posted.line_item_id is None:
        raise NegativeBalance() if entry.value < 0 else BalanceLimitExceeded()
    return posted.line_item_id


async def duplicate_reference(uow: UnitOfWork, merchant_id: int | None, reference: str) -> DuplicateReference:
    """The refusal of a merchant_transaction_reference used before: it names the line items of the transaction
    that used it."""
    return DuplicateReference(reference, await uow.ledger.ids_for_reference(merchant_id, reference) or [])


async def refusal_for(
    services: Services,
    principal: Principal,
    broken: ConstraintBroken,
    *,
    merchant_id: int | None = None,
    reference: str | None = None,
    reversing: list[int] | None = None,
) -> DomainError | ConstraintBroken:
    """What a constraint that stopped a racing write means, in the contract's words (the constraint itself
    when it means nothing the caller can act on)."""
    if broken.constraint == REFERENCE_TAKEN and reference is not None:
        async with services.unit_of_work(principal) as uow:
            return await duplicate_reference(uow, merchant_id, reference)
    if broken.constraint == REVERSED_TWICE and reversing is not None:
        return AlreadyReversed(reversing[0] if len(reversing) == 1 else 0)
    if broken.constraint == BELOW_ZERO:
        return NegativeBalance()
    return broken
