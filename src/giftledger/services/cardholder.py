"""A card's own page, for the person holding it: the secret link of its e-gift (`/c/<token>`) shows the
balance, the card number and its QR code, and what happened to the card, under the merchant's name, logo and
colour. No sign-in: the link is the key, and only the SHA-256 of its token is stored (services/messages.py).

A link belongs to the sale it was made for: the card's last sale at or before the link was made. When that
sale was reversed and the card went back to stock (or was left empty), or the card has been sold again since,
the page says the card is no longer valid and shows neither its number, nor its balance, nor anything that
happened after that sale's period (a card sold again is someone else's). A token that is malformed or matches
no page is refused as not found, both alike, without a database look-up for a malformed one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from giftledger.auth.handed_out import stored_hash
from giftledger.domain import branding, time_zones
from giftledger.domain.errors import NotFound
from giftledger.domain.ledger import LineItemType
from giftledger.domain.records import CardRow, LineItemRow
from giftledger.domain.time_zones import DEFAULT_TIME_ZONE
from giftledger.domain.validity import shown_expiry_date
from giftledger.outbound.emails import group_digits, qr_png
from giftledger.services.context import Services
from giftledger.storage.outbox import Branding, BrandingRow, CardPages
from giftledger.storage.people import Directory
from giftledger.storage.unit_of_work import UnitOfWork

NO_SUCH_CARD = "This link does not lead to a gift card."
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # secrets.token_urlsafe's alphabet

# What each line item is called on the page (a reversal: "Cancelled " and what it cancelled).
MOVEMENTS: dict[int, str] = {
    LineItemType.SALE: "Gift card purchase",
    LineItemType.REDEMPTION: "Payment",
    LineItemType.BREAKAGE: "Expired value",
    LineItemType.REVERSAL: "Cancellation",
    LineItemType.OUTBOUND_BALANCE_TRANSFER: "Transfer to another card",
    LineItemType.INBOUND_BALANCE_TRANSFER: "Transfer from another card",
    LineItemType.TOP_UP: "Top-up",
    LineItemType.MANUAL_ADJUSTMENT: "Balance adjustment",
}


@dataclass(frozen=True)
class Movement:
    what: str
    value: int  # pence: positive adds value to the card, negative takes it off
    at: datetime  # in the account's time zone
    site: str | None
    cancelled: bool  # reversed since


@dataclass(frozen=True)
class CardPage:
    merchant: str  # the account's name
    colour: str
    ink: str  # the text colour on `colour`
    has_logo: bool
    valid: bool
    number: str | None  # grouped in fours; None when no longer valid
    currency: str
    balance: int | None  # pence; None when no longer valid
    expires_at: date | None  # the last day it may be used (it expires at 03:00 the next day)
    history: list[Movement]  # newest first
    time_zone: str  # the account's, which the page's times are in


@dataclass(frozen=True)
class _Found:
    merchant: str
    branding: BrandingRow | None
    card: CardRow
    period: list[LineItemRow]  # the line items of the link's sale and after it, oldest first
    valid: bool
    time_zone: str = DEFAULT_TIME_ZONE  # the account's: the expiry date shown is in it


def _label(item: LineItemRow, by_id: dict[int, LineItemRow]) -> str:
    if item.type_id == LineItemType.REVERSAL and item.reverses_line_item_id in by_id:
        original = by_id[item.reverses_line_item_id]
        return "Cancelled " + MOVEMENTS.get(original.type_id, "movement").lower()
    return MOVEMENTS.get(item.type_id, "Movement")


async def _find(services: Services, token: str, *, history: bool) -> _Found:
    if not _TOKEN.fullmatch(token):
        raise NotFound(NO_SUCH_CARD)
    async with services.db.transaction() as conn:
        page = await CardPages(conn).find(stored_hash(token))
        if page is None:
            raise NotFound(NO_SUCH_CARD)
        uow = UnitOfWork(conn, page.account_id)
        card = await uow.cards.get(page.card_id)
        if card is None:
            raise NotFound(NO_SUCH_CARD)
        merchant = await Directory(conn).account_name(page.account_id) or ""
        brand = await Branding(conn, page.account_id).get()
        zone = await Directory(conn).account_time_zone(page.account_id) or DEFAULT_TIME_ZONE
        if not history:
            return _Found(merchant, brand, card, [], False, zone)
        items = await uow.ledger.for_card(card.id)
    sales = [i for i in items if i.type_id == LineItemType.SALE]
    own = [s for s in sales if s.created_at <= page.created_at]
    if not own:
        raise NotFound(NO_SUCH_CARD)
    sale = own[-1]
    later = [s.id for s in sales if s.id > sale.id]
    period = [i for i in items if i.id >= sale.id and (not later or i.id < later[0])]
    emptied = sale.reversed_by_line_item_id is not None and card.balance == 0
    valid = not later and card.status == "active" and not emptied
    return _Found(merchant, brand, card, period, valid, zone)


def _colour(brand: BrandingRow | None) -> str:
    stored = branding.colour(brand.colour) if brand else None
    return stored or branding.DEFAULT_COLOUR


async def card_page(services: Services, token: str) -> CardPage:
    found = await _find(services, token, history=True)
    card = found.card
    by_id = {i.id: i for i in found.period}
    history = [
        Movement(
            _label(i, by_id),
            i.value,
            time_zones.local(i.created_at, found.time_zone),
            i.site_name,
            i.reversed_by_line_item_id is not None,
        )
        for i in reversed(found.period)
    ]
    colour = _colour(found.branding)
    return CardPage(
        merchant=found.merchant,
        colour=colour,
        ink=branding.ink_on(colour),
        has_logo=bool(found.branding and found.branding.logo and found.branding.logo_type),
        valid=found.valid,
        number=group_digits(card.card_reference) if found.valid else None,
        currency=card.currency,
        balance=card.balance if found.valid else None,
        expires_at=shown_expiry_date(card.expiry_time, found.time_zone) if card.expiry_time else None,
        history=history,
        time_zone=found.time_zone,
    )


async def card_qr(services: Services, token: str) -> bytes:
    """The QR code of the card's number, as PNG: only while the card is valid."""
    found = await _find(services, token, history=True)
    if not found.valid:
        raise NotFound(NO_SUCH_CARD)
    return qr_png(found.card.card_reference)


async def card_logo(services: Services, token: str) -> tuple[bytes, str]:
    """The merchant's logo and its content type."""
    found = await _find(services, token, history=False)
    brand = found.branding
    if brand is None or brand.logo is None or brand.logo_type not in (branding.PNG, branding.JPEG):
        raise NotFound("This account has no logo.")
    return brand.logo, brand.logo_type


async def card_colours(services: Services, token: str) -> tuple[str, str]:
    """The merchant's colour and the text colour on it."""
    found = await _find(services, token, history=False)
    colour = _colour(found.branding)
    return colour, branding.ink_on(colour)
