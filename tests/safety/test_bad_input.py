"""Every kind of malformed input gets a clear error in the contract's shape, never a 500, and changes
nothing (checked around every request)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.safety.helpers import INVALID_CARD, NOT_EXPECTED, REQUIRED, SITE, verify_ledger
from tests.safety.tills import ADJUSTMENT, adjustment, reversal, sale, sell_new
from tests.support import LOGIN, Api, Demo, LiveServer, new_demo, signed_in, tls, unchanged


@dataclass(frozen=True)
class Setting:
    account: Demo
    till: Api
    card: str  # sold, holding 1000


@pytest.fixture(scope="module")
def setting(safety_server: LiveServer, database_url: str) -> Iterator[Setting]:
    """One account for the whole module: every request here is refused and changes nothing."""
    account = new_demo(database_url)
    till = signed_in(safety_server, account)
    card, _ = sell_new(till, account, 1000)
    yield Setting(account, till, card)
    verify_ledger(database_url, account.account_id)


LOOK_ALIKES = {
    # a valid 19-digit number written in fullwidth and in Arabic-Indic digits
    "fullwidth digits": "".join(chr(0xFF10 + int(d)) for d in "6301190012345678901"),
    "arabic-indic digits": "".join(chr(0x0660 + int(d)) for d in "6301190012345678901"),
    "cyrillic letters": "\u0410\u0412\u0421D\u041512345",  # Cyrillic letters that look Latin
}
HOSTILE = {
    "sql": "1' OR '1'='1'; DROP TABLE cards; --",
    "html": "<script>alert(1)</script>",
    "nul": "6301190\x00000000001",
    "10 kB": "9" * 10_240,
    "newline": "63011900\n12345678901",
}


def _shape(body: dict[str, Any], status: int) -> list[dict[str, Any]]:
    """The contract's error envelope: errors with a message, customer_facing and a code; data null."""
    assert status != 500
    errors: list[dict[str, Any]] = body["errors"]
    assert errors
    for error in errors:
        assert isinstance(error["message"], str) and error["message"]
        assert error["customer_facing"] in (True, False)
        assert isinstance(error["extensions"]["code"], str)
        assert error["extensions"]["code"] != "INTERNAL"
    data = body["data"]
    assert data is None or all(value is None for value in data.values())
    return errors


@dataclass(frozen=True)
class Case:
    """A bad adjustment: the variables to change and the `validation` (or message) the till must get."""

    changes: dict[str, Any]
    expected: dict[str, list[str]] | str


ADJUSTMENT_CASES: dict[str, Case] = {
    "value 0": Case({"value": 0}, {"value": [NOT_EXPECTED]}),
    "value null": Case({"value": None}, {"value": [REQUIRED]}),
    "value float": Case({"value": -1.5}, {"value": [NOT_EXPECTED]}),
    "value string": Case({"value": "abc"}, {"value": [NOT_EXPECTED]}),
    "value numeric string": Case({"value": "-100"}, {"value": [NOT_EXPECTED]}),
    "value boolean": Case({"value": True}, {"value": [NOT_EXPECTED]}),
    "value list": Case({"value": [-1]}, {"value": [NOT_EXPECTED]}),
    "value object": Case({"value": {"amount": -1}}, {"value": [NOT_EXPECTED]}),
    "value 2^31": Case({"value": 2**31}, {"value": [NOT_EXPECTED]}),
    "value -2^31-1": Case({"value": -(2**31) - 1}, {"value": [NOT_EXPECTED]}),
    "value 10^30": Case({"value": 10**30}, {"value": [NOT_EXPECTED]}),
    "value over the largest amount": Case({"value": 1_000_000_001}, {"value": [NOT_EXPECTED]}),
    "card empty": Case({"card_reference": ""}, {"card_reference": [REQUIRED]}),
    "card blank": Case({"card_reference": "   "}, {"card_reference": [REQUIRED]}),
    "card null": Case({"card_reference": None}, {"card_reference": [REQUIRED]}),
    "card bad check digit": Case({"card_reference": "6301190000000000000"}, {"card_reference": [INVALID_CARD]}),
    **{f"card {k}": Case({"card_reference": v}, {"card_reference": [INVALID_CARD]}) for k, v in LOOK_ALIKES.items()},
    **{f"card {k}": Case({"card_reference": v}, {"card_reference": [INVALID_CARD]}) for k, v in HOSTILE.items()},
    "site empty": Case({"unit_epos_reference": ""}, {"unit_epos_reference": [REQUIRED]}),
    "site 10 kB": Case({"unit_epos_reference": "x" * 10_240}, {"unit_epos_reference": [NOT_EXPECTED]}),
    "site nul": Case({"unit_epos_reference": "te\x00st"}, {"unit_epos_reference": [NOT_EXPECTED]}),
    "site sql": Case({"unit_epos_reference": HOSTILE["sql"]}, SITE),
    "site html": Case({"unit_epos_reference": HOSTILE["html"]}, SITE),
    "site look-alike": Case({"unit_epos_reference": "t\u0435st"}, SITE),  # Cyrillic letters that look Latin
    "reference 10 kB": Case(
        {"merchant_transaction_reference": "r" * 10_240}, {"merchant_transaction_reference": [NOT_EXPECTED]}
    ),
    "reference nul": Case(
        {"merchant_transaction_reference": "ab\x00c"}, {"merchant_transaction_reference": [NOT_EXPECTED]}
    ),
    "currency missing": Case({"currency": None}, {"currency": [REQUIRED]}),
    "currency empty": Case({"currency": ""}, {"currency": [REQUIRED]}),
    "currency wrong": Case({"currency": "USD"}, {"currency": [NOT_EXPECTED]}),
    "currency look-alike": Case(
        {"currency": "G\u0412P"}, {"currency": [NOT_EXPECTED]}
    ),  # Cyrillic letters that look Latin
    "currency id unknown": Case({"currency": "2"}, {"currency": [NOT_EXPECTED]}),
    "merchant other": Case({"merchant_id": 61}, {"merchant_id": [NOT_EXPECTED]}),
    "merchant string": Case({"merchant_id": "60"}, {"merchant_id": [NOT_EXPECTED]}),
    "merchant null": Case({"merchant_id": None}, {"merchant_id": [REQUIRED]}),
}


@pytest.mark.parametrize("name", list(ADJUSTMENT_CASES))
def test_bad_adjustment_arguments(safety_server: LiveServer, setting: Setting, name: str) -> None:
    account, till = setting.account, setting.till
    case = ADJUSTMENT_CASES[name]
    card = setting.card
    request = adjustment(account, card, -100)
    request["variables"].update(case.changes)
    with unchanged(safety_server.database_url, account.account_id):
        response = till.post(request["query"], request["variables"])
    [error] = _shape(response.json(), response.status_code)
    assert response.status_code == 200
    assert response.json()["data"] == {"createBalanceAdjustment": None}
    assert error["locations"]
    if isinstance(case.expected, str):
        assert (error["message"], error["customer_facing"]) == (case.expected, True)
    else:
        assert (error["message"], error["validation"]) == ("validation", case.expected)


def _item(demo: Demo, **changes: Any) -> dict[str, Any]:
    return {"fulfilment_method_id": 3, "product_id": demo.product_id, "card_reference": demo.card_references[0],
            "custom_price_modifier_value": 1000, **changes}  # fmt: skip


ORDER_CASES: dict[str, tuple[Callable[[Demo], dict[str, Any]], dict[str, list[str]]]] = {
    "negative value": (
        lambda d: {"order_items": [_item(d, custom_price_modifier_value=-1000)], "total": -1000},
        {"order_items.0.custom_price_modifier_value": [NOT_EXPECTED]},
    ),
    "zero value": (
        lambda d: {"order_items": [_item(d, custom_price_modifier_value=0)], "total": 0},
        {"order_items.0.custom_price_modifier_value": [NOT_EXPECTED]},
    ),
    "total too small": (
        lambda d: {"order_items": [_item(d)], "total": 999},
        {"total": ["The total must equal the sum of the order items less their discounts."]},
    ),
    "negative discount": (
        lambda d: {"order_items": [_item(d, discounts=[{"discount_type_id": 1, "value": -5}])], "total": 1000},
        {"order_items.0.discounts.0.value": [NOT_EXPECTED]},
    ),
    "discount over the value": (
        lambda d: {"order_items": [_item(d, discounts=[{"discount_type_id": 1, "value": 1001}])], "total": -1},
        {"order_items.0.discounts": [NOT_EXPECTED]},
    ),
    "no items": (lambda d: {"order_items": [], "total": 0}, {"order_items": [REQUIRED]}),
    "null item": (lambda d: {"order_items": [None], "total": 0}, {"order_items.0": [REQUIRED]}),
    "101 items": (lambda d: {"order_items": [_item(d)] * 101, "total": 101_000}, {"order_items": [NOT_EXPECTED]}),
    "same card twice": (
        lambda d: {"order_items": [_item(d), _item(d)], "total": 2000},
        {"order_items.1.card_reference": [NOT_EXPECTED]},
    ),
    "unknown product": (
        lambda d: {"order_items": [_item(d, product_id=2**31 - 1)]},
        {"order_items.0.product_id": [NOT_EXPECTED]},
    ),
    "float total": (lambda d: {"total": 1000.5}, {"total": [NOT_EXPECTED]}),
    "wrong currency": (lambda d: {"currency": "EUR"}, {"currency": [NOT_EXPECTED]}),
    "account of nobody": (lambda d: {"account_id": 2**31 - 1}, {"account_id": [NOT_EXPECTED]}),
    "sales channel": (lambda d: {"sales_channel_id": 4}, {"sales_channel_id": [NOT_EXPECTED]}),
    "items not a list of objects": (
        lambda d: {"order_items": ["6301190000000000000"]},
        {"order_items": [NOT_EXPECTED]},
    ),
}


@pytest.mark.parametrize("name", list(ORDER_CASES))
def test_bad_order_arguments(safety_server: LiveServer, setting: Setting, name: str) -> None:
    account, till = setting.account, setting.till
    changes, expected = ORDER_CASES[name]
    request = sale(account, {account.card_references[0]: 1000})
    request["variables"].update(changes(account))
    with unchanged(safety_server.database_url, account.account_id):
        response = till.post(request["query"], request["variables"])
    [error] = _shape(response.json(), response.status_code)
    assert response.status_code == 200 and response.json()["data"] == {"createOrder": None}
    assert (error["message"], error["validation"]) == ("validation", expected)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([{"line_item_id": 0, "shipping_refund": False}], {"ReversalItems.0.line_item_id": [NOT_EXPECTED]}),
        ([{"line_item_id": -5, "shipping_refund": False}], {"ReversalItems.0.line_item_id": [NOT_EXPECTED]}),
        ([{"line_item_id": 2**31 - 1, "shipping_refund": False}], {"ReversalItems.0.line_item_id": [NOT_EXPECTED]}),
        ([{"line_item_id": "abc", "shipping_refund": False}], {"ReversalItems": [NOT_EXPECTED]}),
        ([{"line_item_id": None}], {"ReversalItems.0.line_item_id": [REQUIRED]}),
        ([], {"ReversalItems": [REQUIRED]}),
        ([None], {"ReversalItems.0.line_item_id": [REQUIRED]}),
    ],
    ids=["zero", "negative", "unknown", "string", "null", "empty", "null item"],
)
def test_bad_reversal_arguments(
    safety_server: LiveServer, setting: Setting, items: list[Any], expected: dict[str, list[str]]
) -> None:
    account, till = setting.account, setting.till
    request = reversal(account, [])
    request["variables"]["ReversalItems"] = items
    with unchanged(safety_server.database_url, account.account_id):
        response = till.post(request["query"], request["variables"])
    [error] = _shape(response.json(), response.status_code)
    assert response.status_code == 200 and response.json()["data"] == {"createReversal": None}
    assert (error["message"], error["validation"]) == ("validation", expected)


def _raw(
    server: LiveServer, till: Api, content: bytes, content_type: str | None = "application/json"
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {till.token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(server.graphql_url, content=content, headers=headers, timeout=30, verify=tls())


def _deep(depth: int) -> bytes:
    return b'{"query":"{ Merchants { id } }","variables":{"x":' + b"[" * depth + b"]" * depth + b"}}"


HTTP_CASES: dict[str, tuple[bytes, str | None, int, str | None]] = {
    "malformed json": (b'{"query": "mutation {", ', "application/json", 400, "The request body is not valid JSON."),
    "empty body": (b"", "application/json", 400, "The request body is not valid JSON."),
    "not utf-8": (b'{"query": "\xff\xfe"}', "application/json", 400, "The request body is not valid JSON."),
    "json nested too deep": (_deep(5000), "application/json", 400, "The request body is not valid JSON."),
    "json array": (b"[1, 2]", "application/json", 400, None),  # batches are refused (issue 6's wording)
    "json null": (b"null", "application/json", 400, "The body must be a JSON object with a query string."),
    "query not a string": (
        b'{"query": 5}',
        "application/json",
        400,
        "The body must be a JSON object with a query string.",
    ),
    "variables not an object": (
        b'{"query": "{ Merchants { id } }", "variables": [1]}',
        "application/json",
        400,
        "variables must be a JSON object.",
    ),
    "operationName not a string": (
        b'{"query": "{ Merchants { id } }", "operationName": 5}',
        "application/json",
        400,
        "operationName must be a string.",
    ),
    "text/plain": (b'{"query": "{ Merchants { id } }"}', "text/plain", 415, "Send the request as application/json."),
    "form": (
        b"query=%7B%20Merchants%20%7B%20id%20%7D%20%7D",
        "application/x-www-form-urlencoded",
        415,
        "Send the request as application/json.",
    ),
    "no content type": (b'{"query": "{ Merchants { id } }"}', None, 415, "Send the request as application/json."),
    "over 64 kB": (
        orjson.dumps({"query": "{ Merchants { id } }", "variables": {"pad": "x" * 70_000}}),
        "application/json",
        413,
        "The request body is too large.",
    ),
}


@pytest.mark.parametrize("name", list(HTTP_CASES))
def test_bad_http_requests(safety_server: LiveServer, setting: Setting, name: str) -> None:
    account, till = setting.account, setting.till
    content, content_type, status, message = HTTP_CASES[name]
    with unchanged(safety_server.database_url, account.account_id):
        response = _raw(safety_server, till, content, content_type)
    assert response.status_code == status
    [error] = _shape(response.json(), response.status_code)
    assert message is None or error["message"] == message
    assert response.json()["data"] is None


GRAPHQL_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "syntax error": ("mutation { createBalanceAdjustment(value: -1 { id } }", {}),
    "unterminated string": ('{ Cards(card_reference: "6301) { data { id } } }', {}),
    "unknown field": ("{ Cards { data { id balance secret_field } } }", {}),
    "unknown argument": ('{ Cards(card_number: "x") { data { id } } }', {}),
    "unknown operation": ("{ dropAllTables { id } }", {}),
    "literal of the wrong type": ('{ Cards(limit: "ten") { data { id } } }', {}),
    "variable of the wrong declared type": (
        'mutation($value: String){ createBalanceAdjustment(value: $value, card_reference: "x", '
        'unit_epos_reference: "test", merchant_id: 60) { id } }',
        {"value": "-1"},
    ),
    "undeclared variable": ("{ Cards(limit: $limit) { data { id } } }", {"limit": 1}),
    "missing required variable": (ADJUSTMENT, {"value": -1}),
    "two anonymous operations": ("{ Merchants { id } } { Merchants { name } }", {}),
    "subscription": ("subscription { Merchants { id } }", {}),
    "empty document": ("", {}),
    "only a comment": ("# nothing here", {}),
}


@pytest.mark.parametrize("name", list(GRAPHQL_CASES))
def test_bad_graphql_documents(safety_server: LiveServer, setting: Setting, name: str) -> None:
    account, till = setting.account, setting.till
    query, variables = GRAPHQL_CASES[name]
    with unchanged(safety_server.database_url, account.account_id):
        response = till.post(query, variables)
    assert response.status_code in (200, 400)
    errors = _shape(response.json(), response.status_code)
    assert {e["extensions"]["code"] for e in errors} <= {"GRAPHQL", "VALIDATION", "BAD_REQUEST"}


def test_a_mutation_sent_with_get_is_refused(safety_server: LiveServer, setting: Setting) -> None:
    account, till, card = setting.account, setting.till, setting.card
    request = adjustment(account, card, -100)
    with unchanged(safety_server.database_url, account.account_id):
        response = httpx.get(
            safety_server.graphql_url,
            params={"query": request["query"], "variables": orjson.dumps(request["variables"]).decode()},
            headers={"Authorization": f"Bearer {till.token}"},
        )
    assert response.status_code == 405
    assert _shape(response.json(), 405)[0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    "name", ["till\x00one", "\x00", "u" * 10_240, "tab\tname"], ids=["nul", "only nul", "10 kB", "tab"]
)
@pytest.mark.parametrize("field", ["username", "email"])
def test_malformed_login_names_are_refused_like_wrong_ones(
    safety_server: LiveServer, setting: Setting, field: str, name: str
) -> None:
    with unchanged(safety_server.database_url, setting.account.account_id):
        response = Api(safety_server).post(LOGIN, {field: name, "password": "not-the-password"})
    assert response.status_code == 200
    assert "Authorization" not in response.headers
    [error] = _shape(response.json(), 200)
    assert (error["message"], error["extensions"]["code"]) == ("Unauthorized", "UNAUTHENTICATED")
    assert response.json()["data"] == {"loginUser": None}
