"""Card PINs: generated on a sale when the card's product asks for one (4 to 8 digits, `products.pin_digits`),
kept only as a keyed hash (auth/pins.py), and shown once: in the sale's reply (the API's `Card.pin` in
createOrder's reply, POS Mode's sale receipt) and in the card's e-gift email. Nothing can show a PIN again;
tills never need one."""

from __future__ import annotations

from dataclasses import replace

from giftledger.auth.pins import PinHasher
from giftledger.domain import card_pins
from giftledger.domain.errors import NOT_EXPECTED, NotFound, ValidationFailed
from giftledger.domain.permissions import Permission
from giftledger.services.context import Principal, Services
from giftledger.services.views import OrderView
from giftledger.storage.card_pins import CardPins
from giftledger.storage.unit_of_work import UnitOfWork


def hasher(services: Services) -> PinHasher:
    return PinHasher(services.settings.secret_key, services.settings.previous_secret_keys)


async def issue_pins(services: Services, uow: UnitOfWork, sold: list[tuple[int, int | None]]) -> dict[int, str]:
    """For each card just sold (card id, product id) whose product asks for a PIN: a new PIN, stored hashed.
    The PINs by card id, to be shown once."""
    store = CardPins(uow.conn, uow.account_id)
    digits = await store.digits(sorted({p for _, p in sold if p is not None}))
    pins: dict[int, str] = {}
    keyed = hasher(services)
    for card_id, product_id in sold:
        wanted = digits.get(product_id) if product_id is not None else None
        if wanted is None:
            continue
        card = await uow.cards.get(card_id)
        assert card is not None
        pin = card_pins.generate(wanted)
        await store.set_hash(card_id, keyed.hash(uow.account_id, card.card_reference, pin))
        pins[card_id] = pin
    return pins


def with_pins(view: OrderView, pins: dict[int, str]) -> OrderView:
    """The order's view with each new PIN beside its card (the one time it is shown)."""
    if not pins:
        return view
    lines = [replace(line, card=replace(line.card, pin=pins.get(line.card.card.id))) for line in view.line_items]
    return replace(view, line_items=lines)


async def product_pin_digits(services: Services, principal: Principal, product_id: int) -> int | None:
    """How many digits the PIN generated on each sale of the product has (None: no PIN)."""
    principal.require(Permission.PRODUCT_READ)
    async with services.unit_of_work(principal) as uow:
        return (await CardPins(uow.conn, uow.account_id).digits([product_id])).get(product_id)


async def set_product_pin_digits(services: Services, principal: Principal, product_id: int, digits: int | None) -> None:
    """Ask for a PIN of `digits` digits (4 to 8) on every sale of the product from now on; None: no PIN."""
    principal.require(Permission.PRODUCT_MANAGE)
    if digits is not None and not card_pins.MIN_DIGITS <= digits <= card_pins.MAX_DIGITS:
        raise ValidationFailed.one("pin_digits", NOT_EXPECTED)
    async with services.unit_of_work(principal) as uow:
        if not await CardPins(uow.conn, uow.account_id).set_product_digits(product_id, digits):
            raise NotFound("No such product.")
