"""Shop > In-Store Gift: the product ID tills send, and its price modifiers (preset denominations)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.forms import pence
from giftledger.dashboard.pages.lifecycle import validity_context
from giftledger.dashboard.pages.product_pins import pin_context
from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.errors import ValidationFailed
from giftledger.domain.validation import Problems
from giftledger.services import account_settings, setup

PAGE = "/shop/in-store-gift"


def routes(dashboard: Dashboard) -> list[Route]:
    async def show(page: Page) -> Response:
        gift = await account_settings.in_store_gift(page.services, page.principal)
        pins = await pin_context(page, gift.product.id)  # pages/product_pins.py
        return page.render("in_store_gift.html", gift=gift, **await validity_context(page, gift.product.id), **pins)

    async def _invalid(page: Page, error: ValidationFailed, editing: int | None) -> Response:
        gift = await account_settings.in_store_gift(page.services, page.principal)
        values = {"price": page.field("price"), "description": page.field("description")}
        return page.render(
            "in_store_gift.html",
            status=400,
            gift=gift,
            errors=error.fields,
            values=values,
            editing=editing,
            **await validity_context(page, gift.product.id),
            **await pin_context(page, gift.product.id),
        )

    def _read(page: Page) -> tuple[int | None, str]:
        page.note(price=page.field("price"), description=page.field("description"))
        problems = Problems()
        price = pence(page.field("price"), "price", problems)
        problems.raise_if_any()
        page.note(price=price)
        return price, page.field("description")

    async def add(page: Page) -> Response:
        try:
            price, description = _read(page)
            gift = await account_settings.in_store_gift(page.services, page.principal)
            page.note(product_id=gift.product.id)
            modifier_id = await setup.add_price_modifier(
                page.services, page.principal, gift.product.id, price, description
            )
        except ValidationFailed as error:
            return await _invalid(page, error, None)
        page.note(price_modifier_id=modifier_id)
        return page.redirect(PAGE, "modifier-added")

    async def save(page: Page) -> Response:
        modifier_id = page.path_int("modifier_id")
        page.note(price_modifier_id=modifier_id)
        try:
            price, description = _read(page)
            await setup.update_price_modifier(page.services, page.principal, modifier_id, price, description)
        except ValidationFailed as error:
            return await _invalid(page, error, modifier_id)
        return page.redirect(PAGE, "modifier-saved")

    async def remove(page: Page) -> Response:
        modifier_id = page.path_int("modifier_id")
        page.note(price_modifier_id=modifier_id)
        await setup.remove_price_modifier(page.services, page.principal, modifier_id)
        return page.redirect(PAGE, "modifier-removed")

    p, c = dashboard.page, dashboard.change
    return [
        Route(PAGE, p(show), methods=["GET"]),
        Route(PAGE + "/price-modifiers", c("dashboard.price_modifier.add", add), methods=["POST"]),
        Route(PAGE + "/price-modifiers/{modifier_id}", c("dashboard.price_modifier.edit", save), methods=["POST"]),
        Route(
            PAGE + "/price-modifiers/{modifier_id}/delete",
            c("dashboard.price_modifier.remove", remove),
            methods=["POST"],
        ),
    ]
