"""Service views -> the contract's field names. No rules here, only naming and formatting."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from giftledger.domain.ledger import LineItemType
from giftledger.domain.records import ConsentRow, ContactRow
from giftledger.services.card_lifecycle import state_of
from giftledger.services.queries import ProductView
from giftledger.services.views import AdjustmentView, CardView, LineItemView, OrderView, Page, ReversalView

Shape = dict[str, Any]


def timestamp(value: datetime | None) -> str | None:
    """The contract's `Y-m-d H:i:s`, in UTC (isoformat: the same text as strftime, a tenth of the cost)."""
    return value.replace(tzinfo=None).isoformat(" ", "seconds") if value is not None else None


def page(result: Page[Any], shape: Any) -> Shape:
    return {
        "data": [shape(item) for item in result.data],
        "total": result.total,
        "per_page": result.per_page,
        "current_page": result.current_page,
        "last_page": result.last_page,
    }


def contact(row: ContactRow | None) -> Shape | None:
    if row is None:
        return None
    return {"id": str(row.id), "email": row.email, "first_name": row.first_name, "last_name": row.last_name}


def consent(row: ConsentRow) -> Shape:
    return {"id": row.id, "consent_copy": row.consent_copy, "consented_at": timestamp(row.consented_at)}


def card(view: CardView) -> Shape:
    row = view.card
    return {
        "id": row.id,
        "card_reference": row.card_reference,
        "card_alias_card_reference": row.alias,
        "pin": view.pin,  # only in the reply of the sale that generated it (services/card_pins.py)
        "balance": row.balance,
        "initial_balance": row.initial_balance,
        "currency": row.currency,
        "product_name": row.product_name,
        "used": row.balance != row.initial_balance,
        "expiry_time": timestamp(row.expiry_time),
        "validity_start_time": timestamp(row.validity_start_time),
        "state": state_of(row).value if row.status == "active" else None,
        "blocked_reason": row.blocked_reason,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
        "ValueSplit": {"tender": row.tender_balance, "discount": row.discount_balance},
        "Email": contact(view.contact),
    }


def line_item(view: LineItemView) -> Shape:
    item = view.item
    return {
        "id": item.id,
        "value": item.value,
        "LineItemType": {"id": item.type_id, "name": LineItemType(item.type_id).label},
        "ValueSplit": {"tender": item.tender, "discount": item.discount},
        "Transaction": {
            "id": item.transaction_id,
            "merchant_transaction_reference": item.merchant_transaction_reference,
            "merchant_id": item.merchant_id,
        },
        "Card": card(view.card),
        "order_id": item.order_id,
        "unit_name": item.site_name,
        "reverses_line_item_id": item.reverses_line_item_id,
        "reversed_by_line_item_id": item.reversed_by_line_item_id,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.created_at),
    }


def order(view: OrderView) -> Shape:
    row = view.order
    return {
        "id": row.id,
        "total": row.total,
        "discount_total": row.discount_total,
        "currency": row.currency,
        "sales_channel_id": row.sales_channel_id,
        "status": row.status,
        "note": row.note,
        "created_at": timestamp(row.created_at),
        "Transaction": {
            "id": row.transaction_id,
            "merchant_transaction_reference": row.merchant_transaction_reference,
            "merchant_id": row.merchant_id,
        },
        "LineItems": [line_item(v) for v in view.line_items],
        "ReceiptEmail": contact(view.receipt_contact),
    }


def adjustment(view: AdjustmentView) -> Shape:
    item = view.line_item.item
    return {
        "id": item.id,
        "value": item.value,
        "ValueSplit": {"tender": item.tender, "discount": item.discount},
        "LineItem": line_item(view.line_item),
    }


def reversal(view: ReversalView) -> Shape:
    return {
        "id": view.transaction_id,
        "merchant_transaction_reference": view.merchant_transaction_reference,
        "value": view.value,
        "LineItems": [line_item(v) for v in view.line_items],
    }


def product(view: ProductView) -> Shape:
    return {
        "id": view.product.id,
        "name": view.product.name,
        "PriceModifiers": [{"id": m.id, "price": m.price, "description": m.description} for m in view.price_modifiers],
    }


def named(items: dict[int, str]) -> list[Shape]:
    return [{"id": key, "name": value} for key, value in items.items()]
