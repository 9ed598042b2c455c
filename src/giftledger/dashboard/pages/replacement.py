"""A card's replacement on the card page: "Replace card" (lost, damaged) moves its whole balance to a new card
(a new number, or an unsold stock card handed over) and blocks it as replaced; the page links the two cards
(services/card_replacement.py). The form is audited by the dashboard's change wrapper."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.card_numbers import mask_card
from giftledger.domain.errors import CardNotFound, ValidationFailed
from giftledger.domain.permissions import Permission, allows
from giftledger.domain.records import CardRow
from giftledger.services import card_replacement
from giftledger.services.card_replacement import REASONS


@dataclass(frozen=True)
class ReplacementPanel:
    can_replace: bool
    reasons: tuple[str, ...]
    replaced_by: list[tuple[int, str]]  # (card id, number) of the card that replaced this one
    replaced: list[tuple[int, str]]  # of the card this one replaced


async def replacement_panel(page: Page, card: CardRow) -> ReplacementPanel:
    linked = await card_replacement.linked_cards(page.services, page.principal, card.id)
    return ReplacementPanel(
        can_replace=card.status == "active"
        and card.balance > 0
        and allows(page.principal.role, Permission.CARD_ADJUST),
        reasons=REASONS,
        replaced_by=[(x.card_id, x.card_reference) for x in linked if x.replaced_this],
        replaced=[(x.card_id, x.card_reference) for x in linked if not x.replaced_this],
    )


def routes(dashboard: Dashboard) -> list[Route]:
    async def replace(page: Page) -> Response:
        card_id = page.path_int("card_id")
        reason = page.field("reason")
        stock = page.field("stock_number")
        page.note(card_id=card_id, reason=reason, stock_card=mask_card(stock) if stock else None)
        try:
            done = await card_replacement.replace_card(
                page.services, page.principal, card_id, reason, stock_number=stock or None, audit=page.audit()
            )
        except (ValidationFailed, CardNotFound) as error:
            page.handed_over = False
            fields = error.fields if isinstance(error, ValidationFailed) else {"card_id": [error.message]}
            return page.render(
                "card_replacement_refused.html",
                status=400 if isinstance(error, ValidationFailed) else 404,
                card_id=card_id,
                errors=fields,
            )
        return page.redirect(f"/cards/{done.new_card_id}", "card-replaced")

    return [Route("/cards/{card_id}/replace", dashboard.change("dashboard.card.replace", replace), methods=["POST"])]
