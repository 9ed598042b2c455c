"""createBalanceAdjustment: a redemption (negative value) or a top-up (positive value) at a till."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from giftledger.domain.errors import (
    NOT_EXPECTED,
    REQUIRED,
    CardNotFound,
    DuplicateReference,
    NegativeBalance,
    SiteNotRecognised,
    Unauthorized,
    ValidationFailed,
)
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
from giftledger.services.views import AdjustmentView, CardView, LineItemView, line_item_views
from giftledger.storage.clock import utcnow
from giftledger.storage.ledger import NewLineItem
from giftledger.storage.native import NativePool
from giftledger.storage.tills import ReferenceTaken, TillStatements


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
    if services.db.native is not None:
        await check_merchant(services, principal, request.merchant_id, problems)
        problems.raise_if_any()
        assert reference and epos and currency and request.value and request.merchant_id is not None
        return await _adjust_in_one_statement(
            services,
            services.db.native,
            principal,
            request.merchant_id,
            epos,
            tx_reference,
            reference,
            currency,
            request.value,
        )
    principal.require_confirmed()
    try:
        async with services.unit_of_work(principal.account_id) as uow:
            await check_merchant(services, principal, request.merchant_id, problems, uow)
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


async def _adjust_in_one_statement(
    services: Services,
    native: NativePool,
    principal: Principal,
    merchant_id: int,
    epos: str,
    tx_reference: str | None,
    reference: str,
    currency: str,
    value: int,
) -> AdjustmentView:
    """PostgreSQL: the same checks and writes as below, in one statement (storage/tills.py), which also
    confirms a pending caller's token (api/context.py)."""
    now = utcnow()
    statements = TillStatements(native)
    try:
        done = await statements.adjust(
            principal.account_id,
            merchant_id=merchant_id,
            epos_reference=epos,
            reference=tx_reference,
            card_reference=reference,
            currency=currency,
            value=value,
            api_user_id=principal.api_user_id,
            user_id=principal.user_id,
            actor=principal.name,
            caller=guessing.caller(services.settings, principal, now),
            now=now,
            pending=principal.pending,
        )
    except ReferenceTaken:  # only inserted once everything, the caller included, allowed it
        done = None
    if done is not None and not done.caller_live:
        raise Unauthorized()
    if done is not None and done.site_id is None:
        raise SiteNotRecognised()
    if done is None or done.reference_used:
        assert tx_reference is not None
        raise DuplicateReference(
            tx_reference, await statements.ids_for_reference(principal.account_id, merchant_id, tx_reference)
        )
    guessing.ensure_not_paused(services.settings, principal, done.misses, now)
    if not done.card_active:
        await guessing.record_miss(services, principal)
        raise CardNotFound()
    if done.card_currency != currency:
        raise ValidationFailed.one("currency", NOT_EXPECTED)
    if done.line_item is None or done.card is None:
        raise NegativeBalance()
    card, contact = done.card
    return AdjustmentView(LineItemView(done.line_item, CardView(card, contact)))


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
