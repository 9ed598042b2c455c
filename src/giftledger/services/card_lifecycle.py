"""A card's lifecycle: a product's validity and expiry rules, the terms each card is sold with, blocking and
unblocking, and changing expiry (one card, or every card of a product or of a creation date range).

The rules themselves (the 3 am rule, which state refuses what) are in domain/validity.py; a breakage and
its reversal move money through the ledger (services/expiry.py, services/reversals.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from giftledger.domain.errors import Conflict, NotFound, ValidationFailed
from giftledger.domain.permissions import Permission
from giftledger.domain.records import CardRow
from giftledger.domain.time_zones import DEFAULT_TIME_ZONE
from giftledger.domain.validation import Problems
from giftledger.domain.validity import (
    CHOSEN_BLOCK_REASONS,
    CardState,
    CardTerms,
    ExpiryChange,
    Overrides,
    ValidityRules,
    card_state,
    check_expiry_change,
    check_rules,
    start_of_day,
    terms_on_sale,
)
from giftledger.services.context import Principal, Services
from giftledger.storage.clock import utcnow
from giftledger.storage.lifecycle import CardSelection, Lifecycle
from giftledger.storage.unit_of_work import UnitOfWork

EXPIRED_ALREADY = "This card has expired: reverse its breakage to reactivate it before changing its expiry."
NOTHING_TO_EXTEND = "This card never expires: set a date instead."


def state_of(card: CardRow, now: datetime | None = None) -> CardState:
    """The state a sold card is in now (what a balance check shows and a till is held to)."""
    return card_state(
        expiry_time=card.expiry_time,
        validity_start_time=card.validity_start_time,
        blocked_reason=card.blocked_reason,
        now=now or utcnow(),
    )


async def time_zone(uow: UnitOfWork) -> str:
    return await uow.directory.account_time_zone(uow.account_id) or DEFAULT_TIME_ZONE


# -- a product's rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RulesInput:
    """A product's validity settings as typed (None: left empty)."""

    activation_delay_seconds: int | None
    valid_after: date | None
    expiry_kind: str
    expiry_period_days: int | None
    expiry_date: date | None
    reminder_days: int | None


async def product_rules(services: Services, principal: Principal, product_id: int) -> ValidityRules:
    principal.require(Permission.PRODUCT_READ)
    async with services.unit_of_work(principal) as uow:
        found = await Lifecycle(uow.conn, uow.account_id).rules([product_id])
    if product_id not in found:
        raise NotFound("No such product.")
    return found[product_id]


async def set_product_rules(
    services: Services, principal: Principal, product_id: int, typed: RulesInput, problems: Problems | None = None
) -> ValidityRules:
    """Set a product's validity and expiry rules (they apply to cards sold from now on). `problems`: what the
    transport already found wrong with the input (a number it could not read), refused with the rest."""
    principal.require(Permission.PRODUCT_MANAGE)
    problems = Problems() if problems is None else problems
    rules = check_rules(
        activation_delay_seconds=typed.activation_delay_seconds,
        valid_after=typed.valid_after,
        expiry_kind=typed.expiry_kind,
        expiry_period_days=typed.expiry_period_days,
        expiry_date=typed.expiry_date,
        reminder_days=typed.reminder_days,
        problems=problems,
    )
    async with services.unit_of_work(principal) as uow:
        if rules is not None and rules.expiry_date is not None:
            zone = await time_zone(uow)
            if start_of_day(rules.expiry_date, zone) <= utcnow():
                problems.add("expiry_date", "Choose a date that has not passed.")
        problems.raise_if_any()
        assert rules is not None
        if not await Lifecycle(uow.conn, uow.account_id).set_rules(product_id, rules):
            raise NotFound("No such product.")
    return rules


async def apply_sale_terms(
    uow: UnitOfWork, sold: list[tuple[int, int, Overrides | None]], purchased_at: datetime
) -> list[CardTerms]:
    """In a sale's unit of work: give each sold card (card id, product id, the order item's overrides) the
    validity start, expiry and reminder its product and its order item say."""
    lifecycle = Lifecycle(uow.conn, uow.account_id)
    rules = await lifecycle.rules(sorted({product_id for _, product_id, _ in sold}))
    zone = await time_zone(uow)
    given = []
    for card_id, product_id, overrides in sold:
        terms = terms_on_sale(rules.get(product_id, ValidityRules()), overrides, purchased_at, zone)
        await lifecycle.set_terms(card_id, terms)
        given.append(terms)
    return given


# -- blocking ------------------------------------------------------------------------------------------------


async def block_card(services: Services, principal: Principal, card_id: int, reason: str | None) -> None:
    """Block a sold card with a reason (lost, stolen, fraud): tills are refused until it is unblocked."""
    principal.require(Permission.CARD_BLOCK)
    if reason not in CHOSEN_BLOCK_REASONS:
        raise ValidationFailed.one("reason", "Choose why the card is blocked: lost, stolen or fraud.")
    async with services.unit_of_work(principal) as uow:
        card = await _sold_card(uow, card_id)
        if card.blocked_reason is not None:
            raise Conflict(f"This card is already blocked ({card.blocked_reason}).")
        if not await Lifecycle(uow.conn, uow.account_id).block(card.id, reason, utcnow()):
            raise Conflict("This card changed meanwhile; try again.")


async def unblock_card(services: Services, principal: Principal, card_id: int) -> str:
    """Unblock a card blocked by hand; the reason it had. A replaced card stays blocked."""
    principal.require(Permission.CARD_BLOCK)
    async with services.unit_of_work(principal) as uow:
        card = await _sold_card(uow, card_id)
        if card.blocked_reason is None:
            raise Conflict("This card is not blocked.")
        if card.blocked_reason not in CHOSEN_BLOCK_REASONS:
            raise Conflict(f"This card was {card.blocked_reason}: it cannot be unblocked.")
        if not await Lifecycle(uow.conn, uow.account_id).unblock(card.id, utcnow()):
            raise Conflict("This card changed meanwhile; try again.")
        return card.blocked_reason


async def _sold_card(uow: UnitOfWork, card_id: int) -> CardRow:
    card = await uow.cards.get(card_id, lock=True)
    if card is None:
        raise NotFound("No such card.")
    if card.status != "active":
        raise Conflict("This card has not been sold.")
    return card


# -- changing expiry -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryInput:
    """A change of expiry as typed: `change` is extend (by `days`), date (to expire on `expiry_date`) or
    remove."""

    change: str
    days: int | None = None
    expiry_date: date | None = None


async def change_card_expiry(
    services: Services, principal: Principal, card_id: int, typed: ExpiryInput, problems: Problems | None = None
) -> CardRow:
    """Change one sold card's expiry; refused, with nothing changed, once its expiry has come (reversing its
    breakage reactivates it first). `problems`: as for `set_product_rules`."""
    principal.require(Permission.CARD_EXPIRY)
    now = utcnow()
    async with services.unit_of_work(principal) as uow:
        problems = Problems() if problems is None else problems
        new = check_expiry_change(typed.change, typed.days, typed.expiry_date, await time_zone(uow), now, problems)
        card = await _sold_card(uow, card_id)
        problems.raise_if_any()
        assert new is not None
        if card.expiry_time is not None and card.expiry_time <= now:
            raise Conflict(EXPIRED_ALREADY)
        if new.change is ExpiryChange.EXTEND and card.expiry_time is None:
            raise ValidationFailed.one("days", NOTHING_TO_EXTEND)
        changed = await Lifecycle(uow.conn, uow.account_id).change_expiry(
            now, card_id=card.id, extend_days=new.days, expiry_time=new.expiry_time
        )
        assert changed == 1  # the card is locked, sold, and its expiry has not come
        after = await uow.cards.get(card.id)
        assert after is not None
        return after


@dataclass(frozen=True)
class BulkSelection:
    """Which cards a bulk change touches, as typed: a product, and/or a creation date range (inclusive dates,
    in the account's time zone). At least one must be given."""

    product_id: int | None = None
    created_from: date | None = None
    created_to: date | None = None


async def change_expiry_in_bulk(
    services: Services,
    principal: Principal,
    selection: BulkSelection,
    typed: ExpiryInput,
    problems: Problems | None = None,
) -> int:
    """Change the expiry of every sold card of the selection whose expiry has not come (extending touches only
    cards that have one); how many changed. `problems`: as for `set_product_rules`."""
    principal.require(Permission.CARD_EXPIRY)
    now = utcnow()
    async with services.unit_of_work(principal) as uow:
        zone = await time_zone(uow)
        problems = Problems() if problems is None else problems
        new = check_expiry_change(typed.change, typed.days, typed.expiry_date, zone, now, problems)
        if selection.product_id is None and selection.created_from is None and selection.created_to is None:
            problems.add("product_id", "Choose a product or a creation date range.")
        lifecycle = Lifecycle(uow.conn, uow.account_id)
        if selection.product_id is not None and not await lifecycle.rules([selection.product_id]):
            problems.add("product_id", "No such product.")
        if selection.created_from and selection.created_to and selection.created_to < selection.created_from:
            problems.add("created_to", "The range ends before it starts.")
        problems.raise_if_any()
        assert new is not None
        chosen = CardSelection(
            product_id=selection.product_id,
            created_from=start_of_day(selection.created_from, zone) if selection.created_from else None,
            created_before=_day_after(selection.created_to, zone),
        )
        return await lifecycle.change_expiry(now, selection=chosen, extend_days=new.days, expiry_time=new.expiry_time)


def _day_after(day: date | None, zone: str) -> datetime | None:
    if day is None:
        return None
    return start_of_day(date.fromordinal(day.toordinal() + 1), zone)
