"""Replacing a card (lost, damaged): its whole balance, tender and discount parts, moves to a new card in one
transaction, and the old card is blocked as replaced.

The move is two line items of one `replacement` transaction, both posted through the ledger's one movement
(`services.ledger.post`): an Outbound Balance Transfer taking the old card's whole balance (a debit of all of
it takes exactly its tender and its discount) and an Inbound Balance Transfer giving the new card those same
parts. The new card is a new 19-digit number, or an unsold stock card the operator chose (a physical card
handed over the counter); it takes the old card's product, contact, validity and expiry. It has no PIN: a PIN
is kept only as a hash bound to its card's number. The old card is blocked (`blocked_reason` `replaced`), so
tills refuse it."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.domain import card_numbers
from giftledger.domain.errors import NOT_EXPECTED, REQUIRED, CardNotFound, Conflict, ValidationFailed
from giftledger.domain.ledger import LineItemType, Split
from giftledger.domain.permissions import Permission
from giftledger.domain.validation import Problems
from giftledger.domain.webhooks import CARD_REFERENCE_UPDATED
from giftledger.services import ledger, webhooks
from giftledger.services.audit.recording import Audit, record_accepted
from giftledger.services.context import Principal, Services
from giftledger.storage.card_replacements import Linked, Replacements
from giftledger.storage.clock import utcnow
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.ledger import Actor, Entry
from giftledger.storage.unit_of_work import UnitOfWork

REASONS = ("lost", "damaged")
NOT_ACTIVE = "Only a sold card can be replaced."
BLOCKED = "This card is blocked: unblock it first, or it has been replaced already."
EMPTY = "This card holds nothing: there is no balance to move to a new card."
NOT_STOCK = "This card is not an unsold stock card of this account."


@dataclass(frozen=True)
class Replacement:
    old_card_id: int
    new_card_id: int
    new_card_reference: str
    transaction_id: int
    tender: int  # pence moved
    discount: int

    @property
    def value(self) -> int:
        return self.tender + self.discount


async def _new_card(uow: UnitOfWork, currency: str, stock_number: str | None) -> int:
    if stock_number is None:
        while True:
            number = card_numbers.generate()
            if await uow.cards.find(number) is None:
                return await uow.cards.create_active(number, currency, None)
    stock = await uow.cards.find(stock_number, lock=True)
    if stock is None or stock.status != "stock" or stock.currency != currency:
        raise ValidationFailed.one("stock_number", NOT_STOCK)
    if not await uow.cards.activate(stock.id, product_id=None, initial_balance=0, contact_id=None, message=None):
        raise ValidationFailed.one("stock_number", NOT_STOCK)
    return stock.id


async def replace_card(
    services: Services,
    principal: Principal,
    card_id: int,
    reason: str | None,
    *,
    stock_number: str | None = None,
    audit: Audit | None = None,
) -> Replacement:
    """Move card `card_id`'s whole balance to a new card (or the unsold stock card `stock_number`) and block
    it as replaced; `reason`: lost or damaged. `audit`: the transport's name for the change."""
    principal.require(Permission.CARD_ADJUST)
    problems = Problems()
    if not reason:
        problems.add("reason", REQUIRED)
    elif reason not in REASONS:
        problems.add("reason", NOT_EXPECTED)
    stock = None
    if stock_number is not None and stock_number.strip():
        stock = problems.card_reference("stock_number", "".join(ch for ch in stock_number if ch not in " -"))
    problems.raise_if_any()
    try:
        async with services.unit_of_work(principal) as uow:
            replacements = Replacements(uow.conn, uow.account_id)
            old = await replacements.state(card_id)
            if old is None:
                raise CardNotFound()
            if old.status != "active":
                raise ValidationFailed.one("card_id", NOT_ACTIVE)
            if old.blocked_reason is not None:
                raise ValidationFailed.one("card_id", BLOCKED)
            moved = Split(old.tender_balance, old.discount_balance)
            if moved.value == 0:
                raise ValidationFailed.one("card_id", EMPTY)
            new_id = await _new_card(uow, old.currency, stock)
            now = utcnow()
            await replacements.carry_over(old.id, new_id, now)
            actor = Actor(user_id=principal.user_id)
            note = f"Replacement ({reason})"
            transaction_id = await uow.ledger.open_transaction("replacement", actor, None, note)
            out = Entry(old.id, LineItemType.OUTBOUND_BALANCE_TRANSFER, -moved.value, note=note)
            into = Entry(new_id, LineItemType.INBOUND_BALANCE_TRANSFER, moved.value, credit=moved, note=note)
            await ledger.post(uow, transaction_id, actor, out)
            await ledger.post(uow, transaction_id, actor, into)
            await replacements.block_as_replaced(old.id, now)
            await webhooks.queue_event(uow, CARD_REFERENCE_UPDATED, card_id=new_id, previous_card_id=old.id)
            new = await uow.cards.get(new_id)
            assert new is not None
            facts: dict[str, int | str] = {
                "transaction_id": transaction_id,
                "new_card_id": new_id,
                "reason": str(reason),
            }
            await record_accepted(
                uow, principal, audit, card_references=[old.card_reference, new.card_reference], detail=facts
            )
            return Replacement(old.id, new_id, new.card_reference, transaction_id, moved.tender, moved.discount)
    except ConstraintBroken as broken:
        if broken.constraint == "uq_cards_account_reference":
            raise Conflict("Another sale issued the same new number meanwhile; try again.") from broken
        raise await ledger.refusal_for(services, principal, broken) from broken


async def linked_cards(services: Services, principal: Principal, card_id: int) -> list[Linked]:
    """The card that replaced this one, and the card this one replaced (for the card's page)."""
    principal.require(Permission.CARD_READ)
    async with services.unit_of_work(principal) as uow:
        return await Replacements(uow.conn, uow.account_id).linked(card_id)
