"""createBalanceAdjustment: a redemption (negative value) or a top-up (positive value) at a till."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from giftledger.domain.errors import NOT_EXPECTED, REQUIRED, CardNotFound, DuplicateReference, NegativeBalance
from giftledger.domain.ledger import Holding, LineItemType, movement_split
from giftledger.domain.permissions import Permission
from giftledger.domain.validation import MAX_AMOUNT, Problems
from giftledger.services import guessing
from giftledger.services.context import Principal, Services, broke
from giftledger.services.till import (
    active_card,
    check_currency,
    check_merchant,
    open_till,
)
from giftledger.services.views import AdjustmentView, line_item_views
from giftledger.storage.ledger import NewLineItem


@dataclass(frozen=True)
class AdjustmentRequest:
    card_reference: str | None
    value: int | None
    currency: str | None
    unit_epos_reference: str | None
    merchant_id: int | None
    merchant_transaction_reference: str | None


async def adjust_balance(services: Services, principal: Principal, request: AdjustmentRequest) -> AdjustmentView:
    problems = Problems()
    reference = problems.card_reference("card_reference", request.card_reference)
    currency = check_currency(request.currency, problems)
    epos = problems.reference("unit_epos_reference", request.unit_epos_reference, required=True)
    tx_reference = problems.reference(
        "merchant_transaction_reference", request.merchant_transaction_reference, required=False
    )
    if request.value is None:
        problems.add("value", REQUIRED)
    elif request.value == 0 or abs(request.value) > MAX_AMOUNT:
        problems.add("value", NOT_EXPECTED)
    else:
        principal.require(Permission.CARD_REDEEM if request.value < 0 else Permission.CARD_TOP_UP)
    try:
        async with services.unit_of_work(principal.account_id) as uow:
            await check_merchant(uow, principal, request.merchant_id, problems)
            problems.raise_if_any()
            assert reference and epos and request.value and request.merchant_id is not None
            actor = await open_till(uow, principal, request.merchant_id, epos, tx_reference)
            await guessing.ensure_allowed(uow, services.settings, principal)
            card = await active_card(uow, reference, currency)
            split = movement_split(Holding(card.tender_balance, card.discount_balance), request.value)
            kind = LineItemType.REDEMPTION if request.value < 0 else LineItemType.TOP_UP
            transaction_id = await uow.ledger.open_transaction("adjustment", actor, tx_reference)
            item_id = await uow.ledger.append(transaction_id, actor, NewLineItem(card.id, kind, split))
            if await uow.cards.move(card.id, split) is None:
                raise NegativeBalance()
            [view] = await line_item_views(uow, await uow.ledger.many([item_id]))
            return AdjustmentView(view)
    except IntegrityError as error:
        raise await translate_integrity(services, principal, request.merchant_id, tx_reference, error) from error
    except CardNotFound:
        await guessing.record_miss(services, principal)
        raise


async def translate_integrity(
    services: Services, principal: Principal, merchant_id: int | None, reference: str | None, error: IntegrityError
) -> Exception:
    """A constraint stopped a write that raced another one: say what happened in the contract's words."""
    if reference is not None and broke(
        error, "uq_transactions_reference", "transactions.merchant_transaction_reference"
    ):
        async with services.unit_of_work(principal.account_id) as uow:
            ids = await uow.ledger.ids_for_reference(merchant_id, reference)
        return DuplicateReference(reference, ids or [])
    if broke(error, "ck_cards_balance_not_negative", "ck_cards_balance_not_negative"):
        return NegativeBalance()
    return error
