"""createBalanceAdjustment: a redemption (negative value) or a top-up (positive value) at a till."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger import metrics
from giftledger.domain.errors import (
    NOT_EXPECTED,
    REQUIRED,
    BalanceLimitExceeded,
    CardNotFound,
    Forbidden,
    NegativeBalance,
    SiteNotRecognised,
    Unauthorized,
    ValidationFailed,
)
from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import Permission
from giftledger.domain.validation import MAX_AMOUNT, Problems
from giftledger.domain.validity import card_state, refusal
from giftledger.services import guessing
from giftledger.services.audit.recording import Audit, clean_detail, mask_card
from giftledger.services.context import Principal, Services
from giftledger.services.ledger import duplicate_reference, refusal_for
from giftledger.services.till import check_currency, check_till
from giftledger.services.views import AdjustmentView, CardView, LineItemView
from giftledger.storage.clock import utcnow
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.tills import Recorded, TillStatements


@dataclass(frozen=True)
class AdjustmentRequest:
    card_reference: str | None
    value: int | None
    currency: str | None
    unit_epos_reference: str | None
    merchant_id: int | None
    merchant_transaction_reference: str | None
    site_id: int | None = None  # POS Mode: the dashboard's till names its site (services/till.check_till)


async def adjust_balance(
    services: Services, principal: Principal, request: AdjustmentRequest, *, audit: Audit | None = None
) -> AdjustmentView:
    """One statement (storage/tills.py) checks the caller, the site, the reference, the card-guessing pause
    and the card (sold, in the currency, not blocked, expired or not yet valid: domain/validity.py), and moves
    the balance when all allow it, writing the audit record of the change (`audit`: the transport's name for
    it) beside it; its outcome decides the refusal, in this order."""
    problems = Problems()
    reference = problems.card_reference("card_reference", request.card_reference)
    currency = check_currency(request.currency, problems)
    epos = problems.reference("unit_epos_reference", request.unit_epos_reference, required=request.site_id is None)
    tx_reference = problems.reference(
        "merchant_transaction_reference", request.merchant_transaction_reference, required=False
    )
    if request.value is None:
        problems.add("value", REQUIRED)
    elif request.value == 0 or abs(request.value) > MAX_AMOUNT:
        problems.add("value", NOT_EXPECTED)
    elif not principal.allows(Permission.CARD_REDEEM if request.value < 0 else Permission.CARD_TOP_UP):
        await services.refuse(principal, Forbidden())
    await check_till(services, principal, request.merchant_id, request.site_id, problems)
    if problems:  # (the permission, when the value says which, was checked above: before the merchant)
        await services.refuse(principal, problems.error())
    assert reference and currency and request.value
    now = utcnow()
    statements = TillStatements(services.db)
    try:
        done = await statements.adjust(
            merchant_id=request.merchant_id,
            epos_reference=epos,
            site_id=request.site_id,
            reference=tx_reference,
            card_reference=reference,
            currency=currency,
            value=request.value,
            actor=principal.name,
            caller=guessing.caller(services.settings, principal, now),
            now=now,
            recorded=_recorded(principal, audit, reference),
        )
    except ConstraintBroken as broken:  # the reference, taken meanwhile (the statement inserts it only once
        # everything, the caller included, allowed the change)
        raise await refusal_for(
            services, principal, broken, merchant_id=request.merchant_id, reference=tx_reference
        ) from broken
    if done.line_item is not None:  # moved, and committed by the statement: counted (metrics.py)
        metrics.money_moved([(LineItemType(done.line_item.type_id).name.lower(), done.line_item.value)])
    if not done.caller_live:
        raise Unauthorized()
    if done.site_id is None:
        raise SiteNotRecognised()
    if done.reference_used:
        assert tx_reference is not None and request.merchant_id is not None
        async with services.unit_of_work(principal) as uow:
            raise await duplicate_reference(uow, request.merchant_id, tx_reference)
    guessing.ensure_not_paused(services.settings, principal, done.misses, now)
    if not done.card_active:
        await guessing.record_miss(services, principal)
        raise CardNotFound()
    if done.card_currency != currency:
        raise ValidationFailed.one("currency", NOT_EXPECTED)
    state = card_state(
        expiry_time=done.card_expiry_time,
        validity_start_time=done.card_validity_start_time,
        blocked_reason=done.card_blocked_reason,
        now=now,
    )
    if (unusable := refusal(state)) is not None:
        raise unusable
    if done.line_item is None or done.card is None:
        raise NegativeBalance() if request.value < 0 else BalanceLimitExceeded()
    card, contact = done.card
    return AdjustmentView(LineItemView(done.line_item, CardView(card, contact)))


def _recorded(principal: Principal, audit: Audit | None, card_reference: str) -> Recorded | None:
    if audit is None:
        return None
    return Recorded(
        operation=audit.operation,
        actor_name=principal.name,
        card=mask_card(card_reference),
        client_address=principal.client_address,
        detail=clean_detail(audit.detail),
    )
