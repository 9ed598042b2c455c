"""The messages a sale causes, queued in the sale's own unit of work: an e-gift email for each card sold with
fulfilment method Email (to its `fulfilment_email`, with a new link to the card's own page), and a receipt to
the order's `receipt_contact`, when it has an email; with each, its webhook event (card.send_recipient_email,
order.send_receipt_email) for the endpoints that want it. Built here, whole, from the account's branding as it is at
the sale; the outbox sends them after the sale commits (services/outbox.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from giftledger.auth.handed_out import new_secret, stored_hash
from giftledger.domain.catalogue import EMAIL_FULFILMENT
from giftledger.domain.time_zones import DEFAULT_TIME_ZONE
from giftledger.domain.validity import shown_expiry_date
from giftledger.domain.webhooks import SEND_RECEIPT_EMAIL, SEND_RECIPIENT_EMAIL
from giftledger.outbound import emails
from giftledger.services import outbox, webhooks
from giftledger.services.context import Services
from giftledger.services.views import OrderView
from giftledger.storage.clock import utcnow
from giftledger.storage.outbox import Branding, CardPages
from giftledger.storage.people import Directory
from giftledger.storage.unit_of_work import UnitOfWork

E_GIFT = "card.e_gift"
RECEIPT = "order.receipt"


@dataclass(frozen=True)
class Sent:
    """What an order item asked for: the e-gift's address and the sender's message."""

    email: str | None
    message: str | None


async def brand_of(uow: UnitOfWork) -> emails.Brand:
    name = await Directory(uow.conn).account_name(uow.account_id) or ""
    branding = await Branding(uow.conn, uow.account_id).get()
    if branding is None:
        return emails.Brand(name)
    return emails.Brand(name, branding.colour, branding.logo, branding.logo_type)


async def card_page_url(services: Services, uow: UnitOfWork, card_id: int) -> str:
    """A new secret link to a card's own page (only its hash is kept)."""
    token = new_secret(24)
    await CardPages(uow.conn).add(uow.account_id, card_id, stored_hash(token), utcnow())
    return f"{services.settings.public_url}/c/{token}"


async def queue_e_gift(
    services: Services,
    uow: UnitOfWork,
    brand: emails.Brand,
    *,
    card_id: int,
    card_reference: str,
    value: int,
    message: str | None,
    expires_at: datetime | None,
    recipient: str,
    order_id: int | None,
    pin: str | None = None,
) -> int:
    zone = await Directory(uow.conn).account_time_zone(uow.account_id) or DEFAULT_TIME_ZONE
    card = emails.EGift(
        card_reference=card_reference,
        value=value,
        message=message,
        expires_at=shown_expiry_date(expires_at, zone) if expires_at else None,  # the card's expiry time: its date
        card_page_url=await card_page_url(services, uow, card_id),
        pin=pin,
    )
    built = emails.e_gift(brand, card, sender=services.settings.mail_from, recipient=recipient, now=utcnow())
    return await outbox.queue(uow, built, kind=E_GIFT, recipient=recipient, card_id=card_id, order_id=order_id)


async def queue_for_sale(
    services: Services, uow: UnitOfWork, view: OrderView, sent: list[Sent], fulfilment: list[int]
) -> None:
    """The sale's e-gifts and receipt (`sent` and `fulfilment` line up with the order's line items)."""
    wanted = [s for s, f in zip(sent, fulfilment, strict=True) if f == EMAIL_FULFILMENT and s.email]
    receipt_to = view.receipt_contact.email if view.receipt_contact else None
    if not wanted and not receipt_to:
        return
    brand = await brand_of(uow)
    lines = []
    for line, asked, method in zip(view.line_items, sent, fulfilment, strict=True):
        card = line.card.card
        emailed = asked.email if method == EMAIL_FULFILMENT else None
        if emailed:
            await queue_e_gift(
                services,
                uow,
                brand,
                card_id=card.id,
                card_reference=card.card_reference,
                value=line.item.value,
                message=asked.message,
                expires_at=card.expiry_time,
                recipient=emailed,
                order_id=view.order.id,
                pin=line.card.pin,
            )
            await webhooks.queue_event(uow, SEND_RECIPIENT_EMAIL, card_id=card.id, order_id=view.order.id)
        lines.append(
            emails.ReceiptLine(
                description=card.product_name or "Gift card",
                card_reference=card.card_reference,
                value=line.item.value,
                discount=line.item.discount,
                recipient=emailed,
            )
        )
    if receipt_to:
        order = view.order
        contact = view.receipt_contact
        receipt = emails.Receipt(
            order_id=order.id,
            first_name=contact.first_name if contact else None,
            lines=lines,
            total=order.total,
            currency=order.currency,
            ordered_at=order.created_at,
        )
        built = emails.receipt(brand, receipt, sender=services.settings.mail_from, recipient=receipt_to, now=utcnow())
        await outbox.queue(uow, built, kind=RECEIPT, recipient=receipt_to, order_id=order.id)
        await webhooks.queue_event(uow, SEND_RECEIPT_EMAIL, order_id=order.id)
