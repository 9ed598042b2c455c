"""The messages sent for a card or an order, as the dashboard shows them, and sending a card's e-gift again.

Reading them needs what reading the card (`card.read`) or the order (`order.read`) needs. Sending a card's
e-gift again needs `order.read`: it is customer service on a sale (the buyer lost the email, or gave a wrong
address), it moves no money, and Guest Service, who looks after customers, holds no other permission that
concerns sales; Front of House Staff (redeeming at the till) do not hold it. Only a sold (active) card is sent.

The copy is a new message (a new Message-ID, a new link to the card's own page) queued through the same outbox,
in one unit of work, showing the card's balance now: what it is worth to whoever receives it (as Toggle's
resend does), rather than what it was sold for. It carries the buyer's message from the sale and is linked to
the card only: the order page lists what the sale itself sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from giftledger.domain.errors import Conflict, NotFound
from giftledger.domain.permissions import Permission
from giftledger.domain.records import OrderRow
from giftledger.domain.validation import Problems, is_email
from giftledger.domain.webhooks import RESEND_RECIPIENT_EMAIL
from giftledger.services import messages, webhooks
from giftledger.services.card_admin import CardHistory
from giftledger.services.context import Principal, Services
from giftledger.storage.outbox import QUEUED, AccountOutbox, MessageRow

KIND_LABELS = MappingProxyType({messages.E_GIFT: "E-gift email", messages.RECEIPT: "Receipt email"})
EMAIL_HINT = "Enter an email address, like name@example.com."
NOT_SOLD = "This card has not been sold (it is stock): only a sold card can be sent."
MAX_EMAIL_LENGTH = 320


@dataclass(frozen=True)
class MessageLine:
    """One message of a card or an order: whom, what, and how far it got (never its content)."""

    id: int
    kind: str
    label: str  # the kind in plain words
    recipient: str
    subject: str
    message_id: str
    state: str  # queued, sent or failed
    attempts: int  # attempts made so far
    max_attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @property
    def retrying(self) -> bool:
        """Queued again after a failed attempt."""
        return self.state == QUEUED and self.attempts > 0 and self.last_error is not None


@dataclass(frozen=True)
class CardMessages:
    lines: list[MessageLine]  # oldest first
    resend_to: str  # the address a copy goes to unless another is typed: the last e-gift's, else the card's contact


def _line(row: MessageRow, max_attempts: int) -> MessageLine:
    return MessageLine(
        id=row.id,
        kind=row.kind,
        label=KIND_LABELS.get(row.kind, row.kind),
        recipient=row.recipient,
        subject=row.subject,
        message_id=row.message_id,
        state=row.state,
        attempts=row.attempts,
        max_attempts=max_attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


async def card_messages(services: Services, principal: Principal, history: CardHistory) -> CardMessages:
    """The messages of a card just read (`card_admin.card_history`, which found it in the caller's account),
    oldest first, and the address a copy of its e-gift would go to."""
    principal.require(Permission.CARD_READ)
    async with services.unit_of_work(principal) as uow:
        rows = await AccountOutbox(uow.conn, uow.account_id).listed(card_id=history.card.id)
    lines = [_line(row, services.settings.mail_max_attempts) for row in rows]
    e_gifts = [line.recipient for line in lines if line.kind == messages.E_GIFT]
    contact = history.contact.email if history.contact else ""
    return CardMessages(lines, e_gifts[-1] if e_gifts else contact)


async def order_messages(services: Services, principal: Principal, order: OrderRow) -> list[MessageLine]:
    """What an order's sale sent (its e-gifts and receipt), oldest first, for an order just read
    (`card_admin.order_detail`)."""
    principal.require(Permission.ORDER_READ)
    async with services.unit_of_work(principal) as uow:
        rows = await AccountOutbox(uow.conn, uow.account_id).listed(order_id=order.id)
    return [_line(row, services.settings.mail_max_attempts) for row in rows]


async def resend_e_gift(services: Services, principal: Principal, card_id: int, email: str | None) -> MessageLine:
    """Queue a new copy of a sold card's e-gift to `email` (the same address or another): refused for a card
    not in this account (NotFound), a card not sold (Conflict) and an address that is not one (`email`)."""
    principal.require(Permission.ORDER_READ)
    problems = Problems()
    address = problems.required_text("email", email, max_length=MAX_EMAIL_LENGTH)
    if address is not None and not is_email(address):
        problems.add("email", EMAIL_HINT)
    async with services.unit_of_work(principal) as uow:
        card = await uow.cards.get(card_id)
        if card is None:
            raise NotFound("No such card.")
        if card.status != "active":
            raise Conflict(NOT_SOLD)
        problems.raise_if_any()
        assert address is not None
        message_id = await messages.queue_e_gift(
            services,
            uow,
            await messages.brand_of(uow),
            card_id=card.id,
            card_reference=card.card_reference,
            value=card.balance,
            message=await uow.cards.message(card.id),
            expires_at=card.expiry_time,
            recipient=address,
            order_id=None,
        )
        await webhooks.queue_event(uow, RESEND_RECIPIENT_EMAIL, card_id=card.id, mail_to=address)
        rows = await AccountOutbox(uow.conn, uow.account_id).listed(card_id=card.id)
    [queued] = [row for row in rows if row.id == message_id]
    return _line(queued, services.settings.mail_max_attempts)
