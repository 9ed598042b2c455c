"""Shop > In-Store Gift > PIN on sale: whether each card the product sells gets a PIN of 4 to 8 digits, shown
once in the sale's reply and in the card's e-gift email (services/card_pins.py). Audited by the change wrapper."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.forms import whole_number
from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain import card_pins as pin_rules
from giftledger.domain.errors import NOT_EXPECTED, ValidationFailed
from giftledger.domain.permissions import Permission, allows
from giftledger.services import account_settings, card_pins

SHOP = "/shop/in-store-gift"


async def pin_context(page: Page, product_id: int) -> dict[str, Any]:
    """What the product page's PIN section (`_product_pin.html`) needs."""
    return {
        "pin_digits": await card_pins.product_pin_digits(page.services, page.principal, product_id),
        "pin_choices": list(range(pin_rules.MIN_DIGITS, pin_rules.MAX_DIGITS + 1)),
        "can_set_pin": allows(page.principal.role, Permission.PRODUCT_MANAGE),
    }


def routes(dashboard: Dashboard) -> list[Route]:
    async def save(page: Page) -> Response:
        typed = page.field("pin_digits")
        digits = whole_number(typed) if typed else None
        if typed and digits is None:
            raise ValidationFailed.one("pin_digits", NOT_EXPECTED)
        gift = await account_settings.in_store_gift(page.services, page.principal)
        page.note(product_id=gift.product.id, pin_digits=digits)
        await card_pins.set_product_pin_digits(page.services, page.principal, gift.product.id, digits)
        return page.redirect(f"{SHOP}#pin", "pin-saved")

    return [Route(f"{SHOP}/pin", dashboard.change("dashboard.product.pin", save), methods=["POST"])]
