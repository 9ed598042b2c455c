"""What a till sends, built from the guide's documents with the demo account's settings."""

from __future__ import annotations

import uuid
from typing import Any

from tests.api import documents
from tests.support import Api, Demo


def ref(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def order_variables(demo: Demo, card: str | None, value: int, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "fulfilment_method_id": 3,
        "product_id": demo.product_id,
        "card_reference": card,
        "custom_price_modifier_value": value,
    }
    item.update(overrides.pop("item", {}))
    variables: dict[str, Any] = {
        "account_id": demo.account_id,
        "order_items": [item],
        "merchant_transaction_reference": ref("sale"),
        "group_fulfilment": True,
        "total": value,
        "currency": "GBP",
        "merchant_id": demo.merchant_id,
        "unit_epos_reference": demo.epos,
        "sales_channel_id": 3,
    }
    variables.update(overrides)
    return variables


def sell(api: Api, demo: Demo, card: str, value: int, **overrides: Any) -> dict[str, Any]:
    return api.call(documents.CREATE_ORDER, order_variables(demo, card, value, **overrides))


def sold(api: Api, demo: Demo, value: int = 2500) -> str:
    """Sell the next stock card for `value` and return its number."""
    card = demo.card_references.pop()
    body = sell(api, demo, card, value)
    assert "errors" not in body, body
    return card


def adjustment_variables(demo: Demo, card: str, value: Any, **overrides: Any) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "currency": "GBP",
        "card_reference": card,
        "value": value,
        "unit_epos_reference": demo.epos,
        "merchant_id": demo.merchant_id,
        "merchant_transaction_reference": ref("adj"),
    }
    variables.update(overrides)
    return variables


def adjust(api: Api, demo: Demo, card: str, value: Any, **overrides: Any) -> dict[str, Any]:
    return api.call(documents.ADJUSTMENT, adjustment_variables(demo, card, value, **overrides))


def reverse(api: Api, demo: Demo, line_item_ids: list[Any], **overrides: Any) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "ReversalItems": [{"line_item_id": i, "shipping_refund": False} for i in line_item_ids],
        "merchant_transaction_reference": ref("rev"),
        "merchant_id": demo.merchant_id,
        "unit_epos_reference": demo.epos,
    }
    variables.update(overrides)
    return api.call(documents.REVERSAL, variables)


def line_item_ids(api: Api, reference: str) -> list[int]:
    body = api.call(documents.LINE_ITEMS, {"merchant_transaction_reference": reference, "page": 1, "limit": 10})
    return [item["id"] for item in body["data"]["LineItems"]["data"]]


def balance(api: Api, card: str) -> int | None:
    body = api.call(documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1})
    data = body["data"]["Cards"]["data"]
    return data[0]["balance"] if data else None


def only_error(body: dict[str, Any], operation: str) -> dict[str, Any]:
    """The single error of a refused request, after checking the contract's envelope."""
    assert body["data"] == {operation: None}, body
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    assert error["customer_facing"] in (True, False)
    assert error["locations"] and {"line", "column"} <= set(error["locations"][0])
    return error


def validation(body: dict[str, Any], operation: str) -> dict[str, list[str]]:
    error = only_error(body, operation)
    assert error["message"] == "validation", error
    result: dict[str, list[str]] = error["validation"]
    return result
