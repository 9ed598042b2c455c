"""POS Mode: the dashboard's till (services/pos_mode.py). Choose a site, then check a balance, take a payment
(part of a bill or all of the card), top up, sell a card, and reverse what was just done, through the till's
own use cases. Each form stands alone (Enter sends the one the cursor is in); a done operation redirects to its
receipt (`/pos/{site}/line-items/{id}`), so reloading never sends it twice."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.forms import pence, whole_number
from giftledger.dashboard.pages.cards import NO_CARD_FOUND
from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.catalogue import IN_STORE
from giftledger.domain.errors import (
    AlreadyReversed,
    BalanceLimitExceeded,
    CardNotFound,
    DomainError,
    Forbidden,
    NegativeBalance,
    NotFound,
    Retryable,
    SiteNotRecognised,
    Throttled,
    Unauthorized,
    ValidationFailed,
)
from giftledger.domain.ledger import LineItemType
from giftledger.domain.validation import Problems
from giftledger.services import pos_mode, queries
from giftledger.services.adjustments import AdjustmentRequest, adjust_balance
from giftledger.services.guessing import CardLookupsThrottled
from giftledger.services.reversals import ReversalItem, ReversalRequest, reverse_line_items
from giftledger.services.sales import OrderItem, OrderRequest, sell_cards

IN_VENUE = 3  # fulfilment method: the card is handed over at the venue

# What POS Mode says for the till path's refusals (the API keeps its contract's wording).
SAID = {
    CardNotFound: NO_CARD_FOUND,
    NegativeBalance: "The card's balance is less than this amount. Nothing was taken.",
    BalanceLimitExceeded: "This would take the card over its largest allowed balance. Nothing was added.",
    SiteNotRecognised: pos_mode.NOT_A_SITE,
    AlreadyReversed: "This has been reversed already.",
}
CANNOT_REVERSE = "This cannot be reversed: it is not a line item of this account, or it is a reversal itself."
# A till field's name -> the POS Mode field it is shown next to.
FIELDS = {
    "amount": "amount",  # (the page's own names stay as they are)
    "product_id": "product_id",
    "card_reference": "card_reference",
    "order_items.0.card_reference": "card_reference",
    "value": "amount",
    "order_items.0.custom_price_modifier_value": "amount",
    "order_items.0.product_id": "product_id",
    "total": "amount",
    "currency": "card_reference",
}


def _typed_number(page: Page) -> str:
    """A card number as typed (spaces and dashes ignored, as on the card search)."""
    return "".join(ch for ch in page.field("card_reference") if ch not in " -")


def _message(error: DomainError) -> str:
    return SAID.get(type(error), error.message)


def _problems(error: ValidationFailed) -> dict[str, list[str]]:
    shown: dict[str, list[str]] = {}
    for name, messages in error.fields.items():
        field = shown.setdefault(FIELDS.get(name, "form"), [])
        field.extend(m for m in messages if m not in field)
    return shown


def _with_typing(error: DomainError, typed: Problems) -> DomainError:
    """The till's refusal, with what the page could not read as typed (an amount that is not one) said in the
    page's words next to its field. The till's use case is called even then, so a permission it refuses is
    refused first, as at a till."""
    if not isinstance(error, ValidationFailed) or not typed:
        return error
    fields = _problems(error)
    fields.update(typed.error().fields)
    return ValidationFailed(fields)


def routes(dashboard: Dashboard) -> list[Route]:
    async def choose(page: Page) -> Response:
        return page.render("pos_sites.html", sites=await pos_mode.sites(page.services, page.principal))

    async def screen(page: Page, *, action: str | None = None, status: int = 200, **context: Any) -> Response:
        till = await pos_mode.open_till(page.services, page.principal, page.path_int("site_id"))
        context.setdefault("errors", {})
        context.setdefault("values", {})
        return page.render("pos.html", till=till, action=action, status=status, types=LineItemType, **context)

    async def till(page: Page) -> Response:
        return await screen(page)

    async def refused(page: Page, action: str, error: DomainError, **context: Any) -> Response:
        """The screen again with the refusal next to the form that was sent: nothing changed."""
        if isinstance(error, (Unauthorized, Retryable, Throttled, Forbidden)) and not isinstance(
            error, CardLookupsThrottled
        ):
            raise error
        page.refused(error)
        values = {name: page.field(name) for name in ("card_reference", "amount", "product_id")}
        if isinstance(error, ValidationFailed):
            errors = _problems(error)
            status = 400
        else:
            errors = {"form": [_message(error)]}
            status = {CardNotFound: 404, SiteNotRecognised: 404}.get(type(error), 409)
            if isinstance(error, CardLookupsThrottled):
                status = 429
        return await screen(page, action=action, status=status, errors=errors, values=values, **context)

    def _site(page: Page) -> int:
        site_id = page.path_int("site_id")
        page.note(site_id=site_id)
        return site_id

    async def balance(page: Page) -> Response:
        reference = _typed_number(page)
        try:
            found = await queries.find_cards(
                page.services, page.principal, card_reference=reference, card_id=None, limit=1, page=1
            )
            if not found.data:
                raise CardNotFound()
        except DomainError as error:
            return await refused(page, "balance", error)
        card = found.data[0].card
        return await screen(page, action="balance", card=card, values={"card_reference": card.card_reference})

    async def move(page: Page, action: str) -> Response:
        site_id = _site(page)
        problems = Problems()
        amount = pence(page.field("amount"), "amount", problems)
        page.note(amount=page.field("amount"))
        request = AdjustmentRequest(
            card_reference=_typed_number(page),
            value=None if amount is None else -amount if action == "pay" else amount,
            currency="GBP",
            unit_epos_reference=None,
            merchant_id=None,
            merchant_transaction_reference=None,
            site_id=site_id,
        )
        try:
            done = await adjust_balance(page.services, page.principal, request, audit=page.audit())
        except DomainError as error:
            return await refused(page, action, _with_typing(error, problems))
        page.note(card_id=done.line_item.item.card_id)
        return page.redirect(f"/pos/{site_id}/line-items/{done.line_item.item.id}")

    async def pay(page: Page) -> Response:
        return await move(page, "pay")

    async def top_up(page: Page) -> Response:
        return await move(page, "top_up")

    async def sell(page: Page) -> Response:
        site_id = _site(page)
        problems = Problems()
        amount = pence(page.field("amount"), "amount", problems)
        product_id = whole_number(page.field("product_id"))
        page.note(amount=page.field("amount"), product_id=product_id)
        item = OrderItem(
            product_id=product_id,
            custom_price_modifier_value=amount,
            fulfilment_method_id=IN_VENUE,
            card_reference=_typed_number(page),
        )
        request = OrderRequest(
            account_id=page.principal.account_id,
            merchant_id=None,
            order_items=[item],
            currency="GBP",
            total=amount,
            sales_channel_id=IN_STORE,
            unit_epos_reference=None,
            site_id=site_id,
        )
        try:
            order = await sell_cards(page.services, page.principal, request, audit=page.audit())
        except DomainError as error:
            return await refused(page, "sell", _with_typing(error, problems))
        [line] = order.line_items
        page.note(card_id=line.item.card_id)  # never its PIN
        if line.card.pin is not None:
            # The card's product generates a PIN, and this is the one time it exists in clear (services/card_pins):
            # the receipt with it is this reply (not stored: every page is no-store), not a page to come back to.
            receipt = await pos_mode.receipt(page.services, page.principal, line.item.id)
            return await screen(page, action="receipt", receipt=receipt, pin=line.card.pin)
        return page.redirect(f"/pos/{site_id}/line-items/{line.item.id}")

    async def _receipt(page: Page) -> pos_mode.Receipt:
        return await pos_mode.receipt(page.services, page.principal, page.path_int("line_item_id"))

    async def receipt(page: Page) -> Response:
        return await screen(page, action="receipt", receipt=await _receipt(page))

    async def reverse(page: Page) -> Response:
        site_id = _site(page)
        line_item_id = page.path_int("line_item_id")
        page.note(line_item_id=line_item_id)
        request = ReversalRequest(
            items=[ReversalItem(line_item_id)],
            merchant_transaction_reference=None,
            unit_epos_reference=None,
            merchant_id=None,
            site_id=site_id,
        )
        try:
            done = await reverse_line_items(page.services, page.principal, request, audit=page.audit())
        except ValidationFailed as error:  # not a line item of this account, or a reversal itself
            page.refused(error)
            return await refused(page, "receipt", NotFound(CANNOT_REVERSE), receipt=await _receipt(page))
        except (AlreadyReversed, NegativeBalance, SiteNotRecognised) as error:
            return await refused(page, "receipt", error, receipt=await _receipt(page))
        [item] = done.line_items
        page.note(card_id=item.item.card_id)
        return page.redirect(f"/pos/{site_id}/line-items/{item.item.id}")

    p, c = dashboard.page, dashboard.change
    return [
        Route("/pos", p(choose), methods=["GET"]),
        Route("/pos/{site_id}", p(till), methods=["GET"]),
        Route("/pos/{site_id}/balance", p(balance), methods=["POST"]),
        Route("/pos/{site_id}/pay", c("dashboard.pos.pay", pay), methods=["POST"]),
        Route("/pos/{site_id}/top-up", c("dashboard.pos.top_up", top_up), methods=["POST"]),
        Route("/pos/{site_id}/sell", c("dashboard.pos.sell", sell), methods=["POST"]),
        Route("/pos/{site_id}/line-items/{line_item_id}", p(receipt), methods=["GET"]),
        Route(
            "/pos/{site_id}/line-items/{line_item_id}/reverse", c("dashboard.pos.reverse", reverse), methods=["POST"]
        ),
    ]
