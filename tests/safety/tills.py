"""Request bodies a till sends, for the safety tests (the guide's documents, fresh references)."""

from __future__ import annotations

import uuid
from typing import Any

from giftledger.domain import card_numbers
from tests.api import documents
from tests.api.till import adjustment_variables, order_variables
from tests.support import Api, Demo

# The guide's documents, asking for the line items' ids too.
ADJUSTMENT = documents.ADJUSTMENT.replace("LineItem{", "LineItem{\n id,", 1)
REVERSAL = documents.REVERSAL.replace("LineItems{", "LineItems{\n id, reverses_line_item_id,", 1)
CREATE_ORDER = documents.CREATE_ORDER


def ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def new_card() -> str:
    """A well-formed card number nobody has used: sold as a new card (not from stock)."""
    return card_numbers.generate()


def sale(demo: Demo, cards: dict[str, int], reference: str | None = None) -> dict[str, Any]:
    """createOrder selling `cards` (number -> value) in one order."""
    items = [
        {
            "fulfilment_method_id": 3,
            "product_id": demo.product_id,
            "card_reference": card,
            "custom_price_modifier_value": v,
        }
        for card, v in cards.items()
    ]
    variables = order_variables(demo, None, 0, order_items=items, total=sum(cards.values()))
    variables["merchant_transaction_reference"] = reference or ref("sale")
    return {"query": CREATE_ORDER, "variables": variables}


def adjustment(demo: Demo, card: str, value: Any, reference: str | None = None) -> dict[str, Any]:
    variables = adjustment_variables(demo, card, value, merchant_transaction_reference=reference or ref("adj"))
    return {"query": ADJUSTMENT, "variables": variables}


def reversal(demo: Demo, line_item_ids: list[Any], reference: str | None = None) -> dict[str, Any]:
    variables = {
        "ReversalItems": [{"line_item_id": i, "shipping_refund": False} for i in line_item_ids],
        "merchant_transaction_reference": reference or ref("rev"),
        "merchant_id": demo.merchant_id,
        "unit_epos_reference": demo.epos,
    }
    return {"query": REVERSAL, "variables": variables}


def send(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(body["query"], body["variables"])
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def sell_new(api: Api, demo: Demo, value: int) -> tuple[str, int]:
    """Sell one new card for `value`; returns its number and its sale line item's id."""
    card = new_card()
    body = send(api, sale(demo, {card: value}))
    assert "errors" not in body, body
    return card, body["data"]["createOrder"]["LineItems"][0]["id"]


def balance(api: Api, card: str) -> int | None:
    body = api.call(documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1})
    data = body["data"]["Cards"]["data"]
    return data[0]["balance"] if data else None
