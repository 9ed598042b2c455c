"""Back-office card work: find a card, read its full history, adjust its balance by hand with a reason,
reverse one of its line items, and read orders. Money moves through the same ledger helpers the tills use."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.domain.errors import (
    NOT_EXPECTED,
    REQUIRED,
    CardNotFound,
    NotFound,
    ValidationFailed,
)
from giftledger.domain.ledger import Holding, LineItemType, Split
from giftledger.domain.permissions import Permission
from giftledger.domain.records import CardRow, ContactRow, LineItemRow, SiteRow
from giftledger.domain.validation import MAX_AMOUNT, Problems
from giftledger.services import ledger
from giftledger.services.audit.recording import Audit, record_accepted
from giftledger.services.context import Principal, Services
from giftledger.services.queries import look_up_card
from giftledger.services.reversals import reverse_one
from giftledger.services.views import OrderView, order_views
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.ledger import Actor, Entry

MAX_REASON_LENGTH = 500
# How a manual credit is booked: paid-for value (tender) or free value (discount).
CREDIT_KINDS = ("tender", "discount")


@dataclass(frozen=True)
class CardHistory:
    card: CardRow
    contact: ContactRow | None
    line_items: list[LineItemRow]  # oldest first

    @property
    def holding(self) -> Holding:
        return Holding(self.card.tender_balance, self.card.discount_balance)


async def find_card(services: Services, principal: Principal, reference: str | None) -> int:
    """The id of the card with this number or alias (spaces and dashes ignored), sold or not.

    A number that matches no card is a miss, counted per dashboard user and per client address exactly as
    a till's balance check is; while the caller or its address is paused, every look-up by number is
    refused (`CardLookupsThrottled`), even of a real card."""
    principal.require(Permission.CARD_READ)
    problems = Problems()
    cleaned = "".join(ch for ch in (reference or "") if ch not in " -")
    number = problems.card_reference("card_reference", cleaned)
    problems.raise_if_any()
    assert number is not None
    lookup = await look_up_card(services, principal, number, limit=1, offset=0, include_stock=True)
    if not lookup.cards:
        raise CardNotFound()
    return lookup.cards[0][0].id


async def card_history(services: Services, principal: Principal, card_id: int) -> CardHistory:
    principal.require(Permission.CARD_READ)
    async with services.unit_of_work(principal) as uow:
        card = await uow.cards.get(card_id)
        if card is None:
            raise NotFound("No such card.")
        contacts = await uow.contacts.many([card.contact_id]) if card.contact_id is not None else {}
        items = await uow.ledger.for_card(card.id)
        return CardHistory(card, contacts.get(card.contact_id) if card.contact_id else None, items)


@dataclass(frozen=True)
class ManualAdjustment:
    value: int | None  # pence: negative takes value off, positive adds it
    site_id: int | None
    reason: str | None
    credit_as: str = "tender"  # for a credit: "tender" (paid for) or "discount" (free value)


async def adjust_card(
    services: Services,
    principal: Principal,
    card_id: int,
    adjustment: ManualAdjustment,
    *,
    audit: Audit | None = None,
) -> LineItemRow:
    """A manual balance adjustment with a reason, at a site, by a dashboard user. Debits take from tender
    and discount in proportion, exactly as a till's redemption does. `audit`: the transport's name for the
    change, recorded with it when accepted."""
    principal.require(Permission.CARD_ADJUST)
    problems = Problems()
    value = adjustment.value
    if value is None:
        problems.add("value", REQUIRED)
    elif value == 0 or abs(value) > MAX_AMOUNT:
        problems.add("value", NOT_EXPECTED)
    reason = problems.required_text("reason", adjustment.reason, max_length=MAX_REASON_LENGTH)
    if adjustment.site_id is None:
        problems.add("site_id", REQUIRED)
    if adjustment.credit_as not in CREDIT_KINDS:
        problems.add("credit_as", NOT_EXPECTED)
    try:
        async with services.unit_of_work(principal) as uow:
            live_sites = {s.id for s in await uow.sites.active()}
            if adjustment.site_id is not None and adjustment.site_id not in live_sites:
                problems.add("site_id", NOT_EXPECTED)
            problems.raise_if_any()
            assert value is not None and reason is not None
            card = await uow.cards.get(card_id)
            if card is None or card.status != "active":
                raise CardNotFound()
            credit = Split(value, 0) if adjustment.credit_as == "tender" else Split(0, value)
            actor = Actor(user_id=principal.user_id, site_id=adjustment.site_id)
            transaction_id = await uow.ledger.open_transaction("manual_adjustment", actor, None, reason)
            adjusted = Entry(card.id, LineItemType.MANUAL_ADJUSTMENT, value, credit=credit, note=reason)
            item_id = await ledger.post(uow, transaction_id, actor, adjusted)
            [item] = await uow.ledger.many([item_id])
            facts = {"line_item_id": item_id}
            await record_accepted(
                uow, principal, audit, site_id=adjustment.site_id, card_references=[card.card_reference], detail=facts
            )
            return item
    except ConstraintBroken as broken:
        raise await ledger.refusal_for(services, principal, broken) from broken


async def reversal_preview(
    services: Services, principal: Principal, card_id: int, line_item_id: int
) -> tuple[CardHistory, LineItemRow]:
    """A card's history and one of its line items, for confirming a reversal (asks the reversal permission)."""
    principal.require(Permission.LINE_ITEM_REVERSE)
    history = await card_history(services, principal, card_id)
    item = next((i for i in history.line_items if i.id == line_item_id), None)
    if item is None:
        raise NotFound("No such line item on this card.")
    return history, item


async def reverse_line_item(
    services: Services, principal: Principal, line_item_id: int, *, audit: Audit | None = None
) -> LineItemRow:
    """Reverse one whole line item from the dashboard. The reversal is booked at the original line item's
    site (so per-site figures stay right) and by the dashboard user; it has no till reference. `audit`: the
    transport's name for the change, recorded with it when accepted."""
    principal.require(Permission.LINE_ITEM_REVERSE)
    try:
        async with services.unit_of_work(principal) as uow:
            original = await uow.ledger.get(line_item_id)
            if original is None:
                raise NotFound("No such line item.")
            actor = Actor(user_id=principal.user_id, site_id=original.site_id)
            transaction_id = await uow.ledger.open_transaction("reversal", actor, None)
            try:
                item_id = await reverse_one(uow, actor, transaction_id, 0, line_item_id)
            except ValidationFailed as error:
                raise ValidationFailed.one(
                    "line_item_id", "A reversal or a balance transfer cannot be reversed."
                ) from error
            [item] = await uow.ledger.many([item_id])
            card = await uow.cards.get(original.card_id)
            assert card is not None
            facts = {"reversal_line_item_id": item_id}
            await record_accepted(
                uow, principal, audit, site_id=original.site_id, card_references=[card.card_reference], detail=facts
            )
            return item
    except ConstraintBroken as broken:
        raise await ledger.refusal_for(services, principal, broken, reversing=[line_item_id]) from broken


async def adjustment_sites(services: Services, principal: Principal) -> list[SiteRow]:
    """The sites a manual adjustment can be booked at."""
    principal.require(Permission.CARD_ADJUST)
    async with services.unit_of_work(principal) as uow:
        return await uow.sites.active()


async def order_detail(services: Services, principal: Principal, order_id: int) -> OrderView:
    principal.require(Permission.ORDER_READ)
    async with services.unit_of_work(principal) as uow:
        order = await uow.orders.get(order_id)
        if order is None:
            raise NotFound("No such order.")
        [view] = await order_views(uow, [order])
        return view
