"""createOrder: sell one or more cards (stock numbers, new numbers, or generated ones) in one order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from giftledger.domain import card_numbers
from giftledger.domain.catalogue import DISCOUNT_TYPES, EMAIL_FULFILMENT, FULFILMENT_METHODS, SALES_CHANNELS
from giftledger.domain.errors import NOT_EXPECTED, REQUIRED, ValidationFailed
from giftledger.domain.ledger import LineItemType, Split
from giftledger.domain.permissions import Permission
from giftledger.domain.validation import Problems, is_email
from giftledger.domain.validity import Overrides, check_overrides
from giftledger.domain.webhooks import ORDER_CREATED
from giftledger.services import card_lifecycle, card_pins, ledger, messages, webhooks
from giftledger.services.audit.recording import Audit, record_accepted
from giftledger.services.context import Principal, Services
from giftledger.services.till import check_currency, check_till, open_till
from giftledger.services.views import OrderView, order_views
from giftledger.storage.clock import utcnow
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.ledger import Entry
from giftledger.storage.unit_of_work import UnitOfWork

ALREADY_SOLD = "This card has already been sold."
CARD_NUMBER_TAKEN = "uq_cards_account_reference"  # another order issued the same number meanwhile
MAX_ITEMS = 100


@dataclass(frozen=True)
class Discount:
    discount_type_id: int | None
    value: int | None


@dataclass(frozen=True)
class OrderItem:
    product_id: int | None = None
    price_modifier_id: int | None = None
    custom_price_modifier_value: int | None = None
    fulfilment_method_id: int | None = None
    fulfilment_email: str | None = None
    message: str | None = None
    card_reference: str | None = None
    generate_card_reference: bool = False
    discounts: list[Discount] = field(default_factory=list)
    validity_rules: list[dict[str, Any] | None] | None = None  # the API's, overriding the product's
    expiry_config: dict[str, Any] | None = None


@dataclass(frozen=True)
class ReceiptContact:
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    consent_copy: str | None = None


@dataclass(frozen=True)
class OrderRequest:
    account_id: int | None
    merchant_id: int | None
    order_items: list[OrderItem | None]
    currency: str | None
    total: int | None
    sales_channel_id: int | None
    unit_epos_reference: str | None
    merchant_transaction_reference: str | None = None
    note: str | None = None
    receipt_contact: ReceiptContact | None = None
    site_id: int | None = None  # POS Mode: the dashboard's till names its site (services/till.check_till)


@dataclass(frozen=True)
class _Line:
    """One checked order item, ready to write."""

    product_id: int
    price_modifier_id: int | None
    value: int
    discount: int
    fulfilment_method_id: int
    card_reference: str | None  # None: generate
    email: str | None
    message: str | None
    overrides: Overrides | None = None  # the order item's own validity and expiry (domain/validity.py)


async def sell_cards(
    services: Services, principal: Principal, request: OrderRequest, *, audit: Audit | None = None
) -> OrderView:
    """Sell the order's cards; `audit`: the transport's name for the change, recorded with it when accepted."""
    problems = Problems()
    if request.account_id is None:
        problems.add("account_id", REQUIRED)
    elif request.account_id != principal.account_id:
        problems.add("account_id", NOT_EXPECTED)
    currency = check_currency(request.currency, problems)
    if request.sales_channel_id is None:
        problems.add("sales_channel_id", REQUIRED)
    elif request.sales_channel_id not in SALES_CHANNELS:
        problems.add("sales_channel_id", NOT_EXPECTED)
    epos = problems.reference("unit_epos_reference", request.unit_epos_reference, required=request.site_id is None)
    tx_reference = problems.reference(
        "merchant_transaction_reference", request.merchant_transaction_reference, required=False
    )
    note = problems.optional_text("note", request.note)
    receipt = _check_receipt(request.receipt_contact, problems)
    try:
        async with services.unit_of_work(principal) as uow:
            principal.require(Permission.CARD_SELL)
            await check_till(services, principal, request.merchant_id, request.site_id, problems, uow)
            lines = await _check_items(uow, request.order_items, problems)
            if request.total is None:
                problems.add("total", REQUIRED)
            elif lines and not problems and request.total != sum(line.value - line.discount for line in lines):
                problems.add("total", "The total must equal the sum of the order items less their discounts.")
            problems.raise_if_any()
            assert currency and request.sales_channel_id
            actor = await open_till(uow, principal, request.merchant_id, epos, tx_reference, site_id=request.site_id)
            transaction_id = await uow.ledger.open_transaction("order", actor, tx_reference, note)
            receipt_id = None
            if receipt is not None and receipt.email:
                receipt_id = await uow.contacts.add(receipt.email, receipt.first_name, receipt.last_name)
                if receipt.consent_copy:
                    await uow.contacts.add_consent(receipt_id, receipt.consent_copy)
            order_id = await uow.orders.add(
                transaction_id=transaction_id,
                merchant_id=request.merchant_id,
                site_id=actor.site_id,
                sales_channel_id=request.sales_channel_id,
                currency=currency,
                total=sum(line.value - line.discount for line in lines),
                discount_total=sum(line.discount for line in lines),
                note=note,
                receipt_contact_id=receipt_id,
            )
            sold_numbers = [line.card_reference for line in lines if line.card_reference]
            sold_cards = []
            for index, line in enumerate(lines):
                card_id = await _issue_card(uow, index, line, currency)
                sold_cards.append((card_id, line.product_id, line.overrides))
                sold = Entry(
                    card_id,
                    LineItemType.SALE,
                    line.value,
                    credit=Split(tender=line.value - line.discount, discount=line.discount),
                    order_id=order_id,
                    product_id=line.product_id,
                    price_modifier_id=line.price_modifier_id,
                    fulfilment_method_id=line.fulfilment_method_id,
                )
                await ledger.post(uow, transaction_id, actor, sold)
            await card_lifecycle.apply_sale_terms(uow, sold_cards, utcnow())  # validity and expiry
            pins = await card_pins.issue_pins(services, uow, [(c[0], c[1]) for c in sold_cards])  # shown once
            order = await uow.orders.get(order_id)
            assert order is not None
            [view] = await order_views(uow, [order])
            view = card_pins.with_pins(view, pins)
            await webhooks.queue_event(uow, ORDER_CREATED, order_id=order_id)  # before its e-gifts' events
            asked = [messages.Sent(line.email, line.message) for line in lines]
            await messages.queue_for_sale(services, uow, view, asked, [line.fulfilment_method_id for line in lines])
            sold_numbers += [item.card.card.card_reference for item in view.line_items]
            await record_accepted(
                uow,
                principal,
                audit,
                site_id=actor.site_id,
                card_references=sold_numbers,
                detail={"result_id": order_id},
            )
            return view
    except ConstraintBroken as broken:
        if broken.constraint == CARD_NUMBER_TAKEN:
            raise ValidationFailed.one("order_items", ALREADY_SOLD) from broken
        raise await ledger.refusal_for(
            services, principal, broken, merchant_id=request.merchant_id, reference=tx_reference
        ) from broken


def _check_receipt(contact: ReceiptContact | None, problems: Problems) -> ReceiptContact | None:
    if contact is None or contact.email is None:
        return None
    email = problems.optional_text("receipt_contact.email", contact.email, max_length=320)
    if email and not is_email(email):
        problems.add("receipt_contact.email", NOT_EXPECTED)
    return ReceiptContact(
        email=email,
        first_name=problems.optional_text("receipt_contact.first_name", contact.first_name, max_length=200),
        last_name=problems.optional_text("receipt_contact.last_name", contact.last_name, max_length=200),
        consent_copy=problems.optional_text("receipt_contact.consent_copy", contact.consent_copy),
    )


async def _check_items(uow: UnitOfWork, items: list[OrderItem | None], problems: Problems) -> list[_Line]:
    if not items:
        problems.add("order_items", REQUIRED)
        return []
    if len(items) > MAX_ITEMS:
        problems.add("order_items", NOT_EXPECTED)
        return []
    products = {p.id for p in await uow.catalogue.products()}
    modifiers = {m.id: m for m in await uow.catalogue.price_modifiers(sorted(products))}
    lines: list[_Line] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        at = f"order_items.{index}"
        if item is None:
            problems.add(at, REQUIRED)
            continue
        if item.product_id is None:
            problems.add(f"{at}.product_id", REQUIRED)
        elif item.product_id not in products:
            problems.add(f"{at}.product_id", NOT_EXPECTED)
        if item.fulfilment_method_id is None:
            problems.add(f"{at}.fulfilment_method_id", REQUIRED)
        elif item.fulfilment_method_id not in FULFILMENT_METHODS:
            problems.add(f"{at}.fulfilment_method_id", NOT_EXPECTED)
        value = _item_value(item, modifiers, at, problems)
        discount = 0
        for d_index, d in enumerate(item.discounts or []):
            d_at = f"{at}.discounts.{d_index}"
            if d is None or d.discount_type_id is None:
                problems.add(f"{d_at}.discount_type_id", REQUIRED)
            elif d.discount_type_id not in DISCOUNT_TYPES:
                problems.add(f"{d_at}.discount_type_id", NOT_EXPECTED)
            if d is not None and (amount := problems.positive_amount(f"{d_at}.value", d.value)):
                discount += amount
        if value is not None and discount > value:
            problems.add(f"{at}.discounts", NOT_EXPECTED)
        reference = None
        if item.generate_card_reference:
            if item.card_reference:
                problems.add(f"{at}.card_reference", NOT_EXPECTED)
        else:
            reference = problems.card_reference(f"{at}.card_reference", item.card_reference)
            if reference is not None:
                if reference in seen:
                    problems.add(f"{at}.card_reference", NOT_EXPECTED)
                seen.add(reference)
        email = problems.optional_text(f"{at}.fulfilment_email", item.fulfilment_email, max_length=320)
        if item.fulfilment_method_id == EMAIL_FULFILMENT and not email:
            problems.add(f"{at}.fulfilment_email", REQUIRED)
        elif email and not is_email(email):
            problems.add(f"{at}.fulfilment_email", NOT_EXPECTED)
        message = problems.optional_text(f"{at}.message", item.message)
        overrides = check_overrides(item.validity_rules, item.expiry_config, at, problems, utcnow())
        if value is not None and item.product_id is not None and item.fulfilment_method_id is not None:
            lines.append(
                _Line(
                    item.product_id,
                    item.price_modifier_id,
                    value,
                    discount,
                    item.fulfilment_method_id,
                    reference,
                    email,
                    message,
                    overrides=overrides,
                )
            )
    return lines


def _item_value(item: OrderItem, modifiers: dict, at: str, problems: Problems) -> int | None:  # type: ignore[type-arg]
    """A custom value wins; otherwise the price modifier's price (which must belong to the product)."""
    if item.price_modifier_id is not None:
        modifier = modifiers.get(item.price_modifier_id)
        if modifier is None or modifier.product_id != item.product_id:
            problems.add(f"{at}.price_modifier_id", NOT_EXPECTED)
            return None
        if item.custom_price_modifier_value is None:
            if modifier.price <= 0:
                problems.add(f"{at}.custom_price_modifier_value", REQUIRED)
                return None
            return int(modifier.price)
    if item.custom_price_modifier_value is None:
        problems.add(f"{at}.custom_price_modifier_value", REQUIRED)
        return None
    return problems.positive_amount(f"{at}.custom_price_modifier_value", item.custom_price_modifier_value)


async def _issue_card(uow: UnitOfWork, index: int, line: _Line, currency: str) -> int:
    """The card this line sells: unsold stock, a new number, or a freshly generated one."""
    contact_id = await uow.contacts.add(line.email) if line.email else None
    details = {
        "product_id": line.product_id,
        "initial_balance": line.value,
        "contact_id": contact_id,
        "message": line.message,
    }
    if line.card_reference is None:
        while True:
            number = card_numbers.generate()
            if await uow.cards.find(number) is None:
                card_id = await uow.cards.create_active(number, currency, line.product_id)
                await uow.cards.describe_sale(card_id, **details)  # type: ignore[arg-type]
                return card_id
    existing = await uow.cards.find(line.card_reference, lock=True)
    if existing is None:
        card_id = await uow.cards.create_active(line.card_reference, currency, line.product_id)
        await uow.cards.describe_sale(card_id, **details)  # type: ignore[arg-type]
        return card_id
    if (
        existing.status != "stock"
        or existing.currency != currency
        or not await uow.cards.activate(
            existing.id,
            **details,  # type: ignore[arg-type]
        )
    ):
        raise ValidationFailed.one(f"order_items.{index}.card_reference", ALREADY_SOLD)
    return existing.id
