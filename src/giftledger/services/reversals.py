"""createReversal: undo whole line items (a sale, a redemption, a top-up), each at most once."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.domain.errors import NOT_EXPECTED, REQUIRED, AlreadyReversed, ValidationFailed
from giftledger.domain.ledger import LineItemType, Split
from giftledger.domain.permissions import Permission
from giftledger.domain.validation import Problems
from giftledger.domain.webhooks import ORDER_CANCELLED
from giftledger.services import ledger, webhooks
from giftledger.services.audit.recording import Audit, record_accepted
from giftledger.services.context import Principal, Services
from giftledger.services.till import check_till, open_till
from giftledger.services.views import ReversalView, line_item_views
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.ledger import Actor, Entry
from giftledger.storage.lifecycle import Lifecycle
from giftledger.storage.unit_of_work import UnitOfWork

MAX_REVERSAL_ITEMS = 100
# A reversal is final; a balance transfer (a replacement's pair, an import's opening balance) is undone by
# another transfer or an adjustment, never by reversing one half of it (that would make or lose value).
NOT_REVERSIBLE = (
    LineItemType.REVERSAL,
    LineItemType.OUTBOUND_BALANCE_TRANSFER,
    LineItemType.INBOUND_BALANCE_TRANSFER,
)


@dataclass(frozen=True)
class ReversalItem:
    line_item_id: int | None
    shipping_refund: bool = False


@dataclass(frozen=True)
class ReversalRequest:
    items: list[ReversalItem | None]
    merchant_transaction_reference: str | None
    unit_epos_reference: str | None
    merchant_id: int | None
    site_id: int | None = None  # POS Mode: the dashboard's till names its site (services/till.check_till)


async def reverse_line_items(
    services: Services, principal: Principal, request: ReversalRequest, *, audit: Audit | None = None
) -> ReversalView:
    """Reverse the line items; `audit`: the transport's name for the change, recorded with it when accepted."""
    problems = Problems()
    ids = _check_items(request.items, problems)
    till = request.site_id is None  # POS Mode names its site and has no POS merchant, EPOS or till reference
    epos = problems.reference("unit_epos_reference", request.unit_epos_reference, required=till)
    tx_reference = problems.reference(
        "merchant_transaction_reference", request.merchant_transaction_reference, required=till
    )
    try:
        async with services.unit_of_work(principal) as uow:
            principal.require(Permission.LINE_ITEM_REVERSE)
            await check_till(services, principal, request.merchant_id, request.site_id, problems, uow)
            problems.raise_if_any()
            actor = await open_till(uow, principal, request.merchant_id, epos, tx_reference, site_id=request.site_id)
            transaction_id = await uow.ledger.open_transaction("reversal", actor, tx_reference)
            created = [
                await reverse_one(uow, actor, transaction_id, index, item_id) for index, item_id in enumerate(ids)
            ]
            views = await line_item_views(uow, await uow.ledger.many(created))
            cards = [view.card.card.card_reference for view in views]
            result = {"result_id": transaction_id}
            await record_accepted(uow, principal, audit, site_id=actor.site_id, card_references=cards, detail=result)
            return ReversalView(transaction_id, tx_reference, views)
    except ConstraintBroken as broken:
        raise await ledger.refusal_for(
            services, principal, broken, merchant_id=request.merchant_id, reference=tx_reference, reversing=ids
        ) from broken


def _check_items(items: list[ReversalItem | None], problems: Problems) -> list[int]:
    if not items:
        problems.add("ReversalItems", REQUIRED)
        return []
    if len(items) > MAX_REVERSAL_ITEMS:
        problems.add("ReversalItems", NOT_EXPECTED)
        return []
    ids: list[int] = []
    for index, item in enumerate(items):
        field = f"ReversalItems.{index}.line_item_id"
        if item is None or item.line_item_id is None:
            problems.add(field, REQUIRED)
        elif item.line_item_id <= 0 or item.line_item_id in ids:
            problems.add(field, NOT_EXPECTED)
        else:
            ids.append(item.line_item_id)
    return ids


async def _nothing_outstanding(uow: UnitOfWork, card_id: int) -> bool:
    """True when every line item on the card (other than reversals) has been reversed."""
    items = await uow.ledger.for_card(card_id)
    return all(i.reversed_by_line_item_id is not None for i in items if i.type_id != LineItemType.REVERSAL)


async def reverse_one(uow: UnitOfWork, actor: Actor, transaction_id: int, index: int, line_item_id: int) -> int:
    """Append the reversal of one line item. Debits come back with their exact split; credits are taken
    back like any debit (in proportion), and never below zero. A reversed sale that leaves the card with
    nothing outstanding (every other line item on it reversed too) returns the card to unsold stock; a
    card with other activity stays in circulation, so no reversal ever moves value on an unsold card. A
    reversed breakage reactivates its card: the balance comes back and the card no longer expires."""
    field = f"ReversalItems.{index}.line_item_id"
    original = await uow.ledger.get(line_item_id)
    if original is None or original.type_id in NOT_REVERSIBLE:
        raise ValidationFailed.one(field, NOT_EXPECTED)
    await uow.cards.get(original.card_id, lock=True)  # a reversal racing this one waits, then sees it
    if await uow.ledger.is_reversed(line_item_id):
        raise AlreadyReversed(line_item_id)
    undo = Entry(
        original.card_id,
        LineItemType.REVERSAL,
        -original.value,
        credit=Split(-original.tender, -original.discount),  # a debit comes back exactly as it was taken
        order_id=original.order_id,
        reverses_line_item_id=original.id,
    )
    item_id = await ledger.post(uow, transaction_id, actor, undo)
    if original.type_id == LineItemType.BREAKAGE:  # the card is usable again, with no expiry (docs/dashboard.md)
        await Lifecycle(uow.conn, uow.account_id).reactivate(original.card_id)
    if original.type_id == LineItemType.SALE:
        if await _nothing_outstanding(uow, original.card_id):
            await uow.cards.return_to_stock(original.card_id)
        if original.order_id is not None:
            sales = [i for i in await uow.ledger.for_order([original.order_id]) if i.type_id == LineItemType.SALE]
            if all(i.reversed_by_line_item_id is not None for i in sales):
                await uow.orders.set_status(original.order_id, "cancelled")
                await webhooks.queue_event(uow, ORDER_CANCELLED, order_id=original.order_id)
    return item_id
