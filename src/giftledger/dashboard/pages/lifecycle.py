"""A card's lifecycle on the dashboard: a product's validity and expiry (Shop > In-Store Gift), a card's state
with blocking and changing its expiry (the card page), and changing many cards' expiry at once (Cards >
Change expiry). Every form is audited by the dashboard's change wrapper."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.forms import day, whole_number
from giftledger.dashboard.pages.product_pins import pin_context
from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.errors import ValidationFailed
from giftledger.domain.permissions import Permission, allows
from giftledger.domain.records import CardRow
from giftledger.domain.validation import Problems
from giftledger.domain.validity import (
    ACTIVATION_DELAYS,
    CHOSEN_BLOCK_REASONS,
    CardState,
    ValidityRules,
    shown_expiry_date,
)
from giftledger.services import account_settings, card_lifecycle, queries

SHOP = "/shop/in-store-gift"
BULK = "/cards/expiry"
WHOLE_NUMBER = "Enter a whole number."


@dataclass(frozen=True)
class CardPanel:
    """What the card page shows of a card's lifecycle, and which of its forms the person may use."""

    state: CardState | None  # None: not sold
    expires_on: date | None  # the date shown (the card expires at 03:00 the next day)
    can_block: bool
    can_change_expiry: bool
    block_reasons: tuple[str, ...]


def card_panel(page: Page, card: CardRow) -> CardPanel:
    sold = card.status == "active"
    state = card_lifecycle.state_of(card) if sold else None
    role = page.principal.role
    return CardPanel(
        state=state,
        expires_on=shown_expiry_date(card.expiry_time, page.session.time_zone) if card.expiry_time else None,
        can_block=sold and allows(role, Permission.CARD_BLOCK),
        can_change_expiry=sold and state is not CardState.EXPIRED and allows(role, Permission.CARD_EXPIRY),
        block_reasons=tuple(r.value for r in CHOSEN_BLOCK_REASONS),
    )


async def validity_context(page: Page, product_id: int) -> dict[str, Any]:
    """What the product page's validity section (`_product_validity.html`) needs."""
    rules = await card_lifecycle.product_rules(page.services, page.principal, product_id)
    return {"validity": rules, "validity_values": rules_values(rules), "delays": ACTIVATION_DELAYS}


def rules_values(rules: ValidityRules) -> dict[str, str]:
    """A product's rules as the form shows them."""
    return {
        "activation_delay_seconds": str(rules.activation_delay_seconds),
        "valid_after": rules.valid_after.isoformat() if rules.valid_after else "",
        "expiry_kind": rules.expiry_kind.value,
        "expiry_period_days": str(rules.expiry_period_days or ""),
        "expiry_date": rules.expiry_date.isoformat() if rules.expiry_date else "",
        "reminder_days": str(rules.reminder_days or ""),
    }


def _number(page: Page, name: str, problems: Problems) -> int | None:
    raw = page.field(name).strip()
    if not raw:
        return None
    number = whole_number(raw)
    if number is None:
        problems.add(name, WHOLE_NUMBER)
    return number


def _expiry_input(page: Page, problems: Problems) -> card_lifecycle.ExpiryInput:
    return card_lifecycle.ExpiryInput(
        change=page.field("change"),
        days=_number(page, "days", problems),
        expiry_date=day(page.field("expiry_date"), "expiry_date", problems),
    )


def routes(dashboard: Dashboard) -> list[Route]:
    async def save_validity(page: Page) -> Response:
        gift = await account_settings.in_store_gift(page.services, page.principal)
        names = ("activation_delay_seconds", "valid_after", "expiry_kind", "expiry_period_days", "expiry_date")
        values = {name: page.field(name) for name in (*names, "reminder_days")}
        page.note(product_id=gift.product.id, rules=[f"{name}={value}" for name, value in values.items()])
        problems = Problems()
        typed = card_lifecycle.RulesInput(
            activation_delay_seconds=_number(page, "activation_delay_seconds", problems),
            valid_after=day(page.field("valid_after"), "valid_after", problems),
            expiry_kind=page.field("expiry_kind"),
            expiry_period_days=_number(page, "expiry_period_days", problems),
            expiry_date=day(page.field("expiry_date"), "expiry_date", problems),
            reminder_days=_number(page, "reminder_days", problems),
        )
        try:
            await card_lifecycle.set_product_rules(page.services, page.principal, gift.product.id, typed, problems)
        except ValidationFailed as error:
            context = await validity_context(page, gift.product.id)
            context.update(validity_errors=error.fields, validity_values=values)
            context.update(await pin_context(page, gift.product.id))  # the same page's PIN section
            return page.render("in_store_gift.html", status=400, gift=gift, **context)
        return page.redirect(SHOP + "#validity", "validity-saved")

    async def block(page: Page) -> Response:
        card_id = page.path_int("card_id")
        reason = page.field("reason")
        page.note(card_id=card_id, reason=reason)
        await card_lifecycle.block_card(page.services, page.principal, card_id, reason)
        return page.redirect(f"/cards/{card_id}#lifecycle", "card-blocked")

    async def unblock(page: Page) -> Response:
        card_id = page.path_int("card_id")
        page.note(card_id=card_id)
        reason = await card_lifecycle.unblock_card(page.services, page.principal, card_id)
        page.note(reason=reason)
        return page.redirect(f"/cards/{card_id}#lifecycle", "card-unblocked")

    async def change_expiry(page: Page) -> Response:
        card_id = page.path_int("card_id")
        page.note(card_id=card_id, change=page.field("change"), days=page.field("days"), date=page.field("expiry_date"))
        problems = Problems()
        typed = _expiry_input(page, problems)
        card = await card_lifecycle.change_card_expiry(page.services, page.principal, card_id, typed, problems)
        page.note(expiry_time=card.expiry_time.isoformat() if card.expiry_time else None)
        return page.redirect(f"/cards/{card_id}#lifecycle", "expiry-changed")

    async def bulk_form(page: Page) -> Response:
        page.principal.require(Permission.CARD_EXPIRY)
        return page.render("card_expiry_bulk.html", products=await _products(page), values={"change": "extend"})

    async def bulk(page: Page) -> Response:
        fields = ("product_id", "created_from", "created_to", "change", "days", "expiry_date")
        values = {name: page.field(name) for name in fields}
        page.note(selected=[f"{name}={value}" for name, value in values.items()])
        problems = Problems()
        selection = card_lifecycle.BulkSelection(
            product_id=_number(page, "product_id", problems),
            created_from=day(page.field("created_from"), "created_from", problems),
            created_to=day(page.field("created_to"), "created_to", problems),
        )
        typed = _expiry_input(page, problems)
        try:
            changed = await card_lifecycle.change_expiry_in_bulk(
                page.services, page.principal, selection, typed, problems
            )
        except ValidationFailed as error:
            return page.render(
                "card_expiry_bulk.html", status=400, products=await _products(page), errors=error.fields, values=values
            )
        page.note(changed=changed)
        return page.render("card_expiry_bulk.html", products=await _products(page), values=values, changed=changed)

    async def _products(page: Page) -> list[tuple[int, str]]:
        found = await queries.list_products(page.services, page.principal, page.principal.account_id)
        return [(view.product.id, view.product.name) for view in found]

    p, c = dashboard.page, dashboard.change
    return [
        Route(SHOP + "/validity", c("dashboard.product.validity", save_validity), methods=["POST"]),
        Route("/cards/{card_id}/block", c("dashboard.card.block", block), methods=["POST"]),
        Route("/cards/{card_id}/unblock", c("dashboard.card.unblock", unblock), methods=["POST"]),
        Route("/cards/{card_id}/expiry", c("dashboard.card.expiry", change_expiry), methods=["POST"]),
        Route(BULK, p(bulk_form), methods=["GET"]),
        Route(BULK, c("dashboard.cards.expiry", bulk), methods=["POST"]),
    ]
