"""Cards (find, history, messages, manual adjustment, reversal, sending the e-gift again) and Orders."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.forms import day, pence, whole_number
from giftledger.dashboard.pages.lifecycle import card_panel
from giftledger.dashboard.pages.replacement import replacement_panel
from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.errors import (
    AlreadyReversed,
    CardNotFound,
    Conflict,
    NegativeBalance,
    ValidationFailed,
)
from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import Permission, allows
from giftledger.domain.records import LineItemRow
from giftledger.domain.validation import Problems
from giftledger.services import card_admin, card_messages, listings
from giftledger.services.card_admin import ManualAdjustment
from giftledger.services.guessing import CardLookupsThrottled

NO_CARD_FOUND = "No card found with this number or alias in this account."

CARD_FILTERS = ("state", "product", "min_balance", "max_balance", "sold_from", "sold_to", "site", "email", "order")
ORDER_FILTERS = ("from", "to", "channel", "site", "email", "reversed")
CARD_ORDER_NAMES = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "balance_high": "Highest balance",
    "balance_low": "Lowest balance",
    "sold_newest": "Sold most recently",
    "sold_oldest": "Sold longest ago",
}
STATE_NAMES = {"sold": "Sold (usable)", "stock": "Not sold (stock)", "blocked": "Blocked", "expired": "Expired"}


def routes(dashboard: Dashboard) -> list[Route]:
    async def search(page: Page, *, status: int = 200, **context: object) -> Response:
        """The card search above the list of the account's cards, with the list's filters from the query."""
        params = page.request.query_params
        values = {name: params.get(name, "") for name in CARD_FILTERS}
        problems = Problems()
        where = listings.CardFilter(
            state=values["state"] or None,
            product_id=whole_number(values["product"]),
            min_balance=pence(values["min_balance"], "min_balance", problems, required=False),
            max_balance=pence(values["max_balance"], "max_balance", problems, required=False),
            site_id=whole_number(values["site"]),
            buyer_email=values["email"].strip() or None,
            order=values["order"] or "newest",
        )
        sold = listings.Days(
            day(values["sold_from"], "sold_from", problems), day(values["sold_to"], "sold_to", problems)
        )
        number = whole_number(params.get("page", "1")) or 1  # not a page number: the first page
        found, errors = None, {}
        try:
            problems.raise_if_any()
            found = await listings.list_cards(page.services, page.principal, where, sold, page=number)
        except ValidationFailed as error:
            errors = error.fields
        kept = {k: v for k, v in values.items() if v}
        return page.render(
            "cards.html",
            status=status if not errors else 400,
            cards=found,
            list_errors=errors,
            list_values=values,
            choices=await listings.filter_choices(page.services, page.principal),
            states=STATE_NAMES,
            orders=CARD_ORDER_NAMES,
            query=lambda **extra: urlencode({**kept, **extra}),
            **context,
        )

    async def find(page: Page) -> Response:
        reference = page.field("card_reference")
        values = {"card_reference": reference}
        try:
            card_id = await card_admin.find_card(page.services, page.principal, reference)
        except ValidationFailed as error:
            return await search(page, status=400, errors=error.fields, values=values)
        except CardNotFound:  # the API's message is a till's ("Transaction not applied"): the dashboard says its own
            return await search(page, status=404, errors={"card_reference": [NO_CARD_FOUND]}, values=values)
        except CardLookupsThrottled as error:
            response = await search(page, status=429, paused=error.message, values=values)
            response.headers["Retry-After"] = str(error.retry_after_seconds)
            return response
        return page.redirect(f"/cards/{card_id}")

    async def _card_page(page: Page, *, status: int = 200, **context: object) -> Response:
        history = await card_admin.card_history(page.services, page.principal, page.path_int("card_id"))
        can_adjust = allows(page.principal.role, Permission.CARD_ADJUST)
        sites = await card_admin.adjustment_sites(page.services, page.principal) if can_adjust else []
        sent = await card_messages.card_messages(page.services, page.principal, history)
        context.setdefault("resend_values", {"email": sent.resend_to})
        return page.render(
            "card.html",
            status=status,
            history=history,
            sites=sites,
            can_adjust=can_adjust,
            can_reverse=allows(page.principal.role, Permission.LINE_ITEM_REVERSE),
            can_resend=allows(page.principal.role, Permission.ORDER_READ),
            messages=sent.lines,
            resend_errors=context.pop("resend_errors", {}),
            types=LineItemType,
            lifecycle=card_panel(page, history.card),  # state, expiry, blocking (pages/lifecycle.py)
            replacement=await replacement_panel(page, history.card),  # pages/replacement.py
            **context,
        )

    async def card(page: Page) -> Response:
        return await _card_page(page, values={"credit_as": "tender"})

    async def adjust(page: Page) -> Response:
        card_id = page.path_int("card_id")
        site_id = whole_number(page.field("site_id"))
        page.note(card_id=card_id, site_id=site_id)
        problems = Problems()
        amount = pence(page.field("value"), "value", problems)
        direction = page.field("direction")
        if direction not in ("debit", "credit"):
            problems.add("direction", "Choose whether to take value off or add it.")
        values = {
            "value": page.field("value"),
            "direction": direction,
            "site_id": page.field("site_id"),
            "reason": page.field("reason"),
            "credit_as": page.field("credit_as") or "tender",
        }
        page.note(amount=values["value"], direction=direction, reason=values["reason"], credit_as=values["credit_as"])
        try:
            problems.raise_if_any()
            assert amount is not None
            adjustment = ManualAdjustment(
                value=-amount if direction == "debit" else amount,
                site_id=site_id,
                reason=page.field("reason"),
                credit_as=values["credit_as"],
            )
            page.note(value=adjustment.value)
            await card_admin.adjust_card(page.services, page.principal, card_id, adjustment, audit=page.audit())
        except ValidationFailed as error:
            return await _card_page(page, status=400, errors=error.fields, values=values)
        except (NegativeBalance, CardNotFound) as error:
            page.refused(error)
            return await _card_page(page, status=409, errors={"value": [error.message]}, values=values)
        return page.redirect(f"/cards/{card_id}#history", "adjusted")

    async def resend(page: Page) -> Response:
        card_id = page.path_int("card_id")
        typed = page.field("email")
        page.note(card_id=card_id, email=typed)
        try:
            queued = await card_messages.resend_e_gift(page.services, page.principal, card_id, typed)
        except ValidationFailed as error:
            return await _card_page(page, status=400, resend_errors=error.fields, resend_values={"email": typed})
        page.note(outbox_message_id=queued.id)
        return page.redirect(f"/cards/{card_id}#messages", "resent")

    async def _preview(page: Page) -> tuple[card_admin.CardHistory, LineItemRow]:
        return await card_admin.reversal_preview(
            page.services, page.principal, page.path_int("card_id"), page.path_int("line_item_id")
        )

    async def confirm_reverse(page: Page) -> Response:
        history, item = await _preview(page)
        return page.render("reverse.html", history=history, item=item, types=LineItemType)

    async def reverse(page: Page) -> Response:
        page.note(card_id=page.path_int("card_id"), line_item_id=page.path_int("line_item_id"))
        history, item = await _preview(page)
        page.note(site_id=item.site_id)
        try:
            await card_admin.reverse_line_item(page.services, page.principal, item.id, audit=page.audit())
        except (AlreadyReversed, NegativeBalance) as error:
            raise Conflict(error.message) from error
        except ValidationFailed as error:
            raise Conflict("; ".join(m for messages in error.fields.values() for m in messages)) from error
        return page.redirect(f"/cards/{history.card.id}#history", "reversed")

    async def orders(page: Page) -> Response:
        params = page.request.query_params
        values = {name: params.get(name, "") for name in ORDER_FILTERS}
        problems = Problems()
        created = listings.Days(day(values["from"], "from", problems), day(values["to"], "to", problems))
        where = listings.OrderFilter(
            sales_channel_id=whole_number(values["channel"]),
            site_id=whole_number(values["site"]),
            buyer_email=values["email"].strip() or None,
            reversed={"yes": True, "no": False}.get(values["reversed"]),
        )
        number = whole_number(params.get("page", "1")) or 1  # not a page number: the first page
        result, errors = None, {}
        try:
            problems.raise_if_any()
            result = await listings.list_orders(page.services, page.principal, where, created, page=number)
        except ValidationFailed as error:
            errors = error.fields
        kept = {k: v for k, v in values.items() if v}
        return page.render(
            "orders.html",
            status=400 if errors else 200,
            orders=result,
            errors=errors,
            values=values,
            choices=await listings.filter_choices(page.services, page.principal),
            query=lambda **extra: urlencode({**kept, **extra}),
        )

    async def order(page: Page) -> Response:
        view = await card_admin.order_detail(page.services, page.principal, page.path_int("order_id"))
        sent = await card_messages.order_messages(page.services, page.principal, view.order)
        return page.render("order.html", view=view, messages=sent, types=LineItemType)

    p, c = dashboard.page, dashboard.change
    return [
        Route("/cards", p(search), methods=["GET"]),
        Route("/cards", p(find), methods=["POST"]),
        Route("/cards/{card_id}", p(card), methods=["GET"]),
        Route("/cards/{card_id}/adjust", c("dashboard.card.adjust", adjust), methods=["POST"]),
        Route("/cards/{card_id}/send", c("dashboard.card.resend", resend), methods=["POST"]),
        Route("/cards/{card_id}/line-items/{line_item_id}/reverse", p(confirm_reverse), methods=["GET"]),
        Route(
            "/cards/{card_id}/line-items/{line_item_id}/reverse", c("dashboard.card.reverse", reverse), methods=["POST"]
        ),
        Route("/orders", p(orders), methods=["GET"]),
        Route("/orders/{order_id}", p(order), methods=["GET"]),
    ]
