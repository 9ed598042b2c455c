"""POS Mode: the dashboard's own till, for venues without an integrated one.

A team member whose role may redeem, sell or top up chooses one of the account's live sites, then works as a
till there. Every money operation goes through the till's own use cases (`adjustments.adjust_balance`,
`sales.sell_cards`, `reversals.reverse_line_items`, `queries.find_cards`) with the request naming the site
itself (`site_id`) and no POS merchant (services/till.check_till): the line items carry the site and the team
member (`user_id`), as a till's carry its site and API user. This module only adds what the screen reads
around them: which sites may be chosen, the products a card is sold as, and what one line item did."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.domain.errors import Forbidden, NotFound
from giftledger.domain.permissions import Permission
from giftledger.domain.records import CardRow, LineItemRow, ProductRow, SiteRow
from giftledger.services.context import Principal, Services

# A role holding any of these may open POS Mode; each operation still asks its own permission.
POS_MODE_PERMISSIONS = (Permission.CARD_REDEEM, Permission.CARD_SELL, Permission.CARD_TOP_UP)
NOT_A_SITE = "This site is not one of this account's sites. Choose a site from the list."


def may_use(principal: Principal) -> bool:
    return any(principal.allows(permission) for permission in POS_MODE_PERMISSIONS)


def _require(principal: Principal) -> None:
    if not may_use(principal):
        raise Forbidden()


@dataclass(frozen=True)
class Till:
    """A POS Mode screen: the site chosen and what can be sold there."""

    site: SiteRow
    products: list[ProductRow]


async def sites(services: Services, principal: Principal) -> list[SiteRow]:
    """The sites a team member may work at in POS Mode: the account's live sites."""
    _require(principal)
    async with services.unit_of_work(principal) as uow:
        return await uow.sites.active()


async def open_till(services: Services, principal: Principal, site_id: int) -> Till:
    """POS Mode at one of the account's live sites (`NotFound` for any other id)."""
    _require(principal)
    async with services.unit_of_work(principal) as uow:
        site = await uow.sites.get(site_id)
        if site is None or site.deleted_at is not None:
            raise NotFound(NOT_A_SITE)
        products = await uow.catalogue.products() if principal.allows(Permission.CARD_SELL) else []
        return Till(site, products)


@dataclass(frozen=True)
class Receipt:
    """What one line item did to its card, as POS Mode shows it after an operation."""

    item: LineItemRow
    card: CardRow
    reversible: bool  # not a reversal, not reversed yet


async def receipt(services: Services, principal: Principal, line_item_id: int) -> Receipt:
    """One line item of the account and its card now (the card read permission, as a balance check)."""
    _require(principal)
    principal.require(Permission.CARD_READ)
    async with services.unit_of_work(principal) as uow:
        item = await uow.ledger.get(line_item_id)
        card = await uow.cards.get(item.card_id) if item is not None else None
        if item is None or card is None:
            raise NotFound("No such line item.")
        reversed_already = await uow.ledger.is_reversed(item.id)
        return Receipt(item, card, reversible=item.reverses_line_item_id is None and not reversed_already)
