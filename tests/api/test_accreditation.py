"""Toggle's EPOS accreditation checklist (25 cases) and the guest-gratuity set, one test each,
against a live server on both databases. Every refused request also proves nothing changed."""

from __future__ import annotations

import jwt
import pytest

from tests.api import documents
from tests.api.till import (
    adjust,
    balance,
    line_item_ids,
    only_error,
    order_variables,
    ref,
    reverse,
    sell,
    sold,
    validation,
)
from tests.support import SECRET, Api, Demo, LiveServer, unchanged

NEGATIVE = "Applying this transaction would have resulted in a negative balance. Transaction not applied."
REQUIRED = "This field is required"
NOT_EXPECTED = "This field is not of an expected value"
SITE = "The external_site_id supplied was not recognised for this account."


def test_01_auth_ok(server: LiveServer, demo: Demo) -> None:
    till = Api(server)
    response = till.login(demo.api_username, demo.api_password)
    assert response.status_code == 200
    reply = response.json()
    assert reply.pop("extensions")["cost"]["actualQueryCost"] == 1  # every reply carries its cost
    assert reply == {"data": {"loginUser": {"id": reply["data"]["loginUser"]["id"]}}}
    assert response.headers["Authorization"] == response.headers["X-Authorization"]
    assert response.headers["X-Authorization"].startswith("Bearer ")
    claims = jwt.decode(till.token or "", SECRET, algorithms=["HS256"], audience="giftledger-api")
    assert claims["exp"] - claims["iat"] == 3600
    products = till.call(documents.PRODUCTS, {"account_id": demo.account_id})
    assert products == {"data": {"Products": [{"id": demo.product_id, "name": "In-Store Gift"}]}}


@pytest.mark.parametrize("wrong", ["username", "password"])
def test_02_auth_fails_wrong_user_or_password(server: LiveServer, demo: Demo, wrong: str) -> None:
    till = Api(server)
    username = demo.api_username + ("x" if wrong == "username" else "")
    password = demo.api_password + ("x" if wrong == "password" else "")
    response = till.login(username, password)
    assert response.status_code == 200
    assert "Authorization" not in response.headers and "X-Authorization" not in response.headers
    error = only_error(response.json(), "loginUser")
    assert error["message"] == "Unauthorized"
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("token", ["not-a-token", "expired"])
def test_03_request_fails_invalid_or_expired_token(server: LiveServer, demo: Demo, token: str) -> None:
    if token == "expired":
        token = jwt.encode(
            {
                "sub": "api_user:1",
                "acc": demo.account_id,
                "ver": 0,
                "iat": 1,
                "nbf": 1,
                "exp": 2,
                "iss": "giftledger",
                "aud": "giftledger-api",
            },
            SECRET,
            algorithm="HS256",
        )
    till = Api(server, token)
    card = demo.card_references[0]
    with unchanged(server.database_url, demo.account_id):
        body = till.call(documents.CREATE_ORDER, order_variables(demo, card, 2500))
    error = only_error(body, "createOrder")
    assert error["message"] == "Unauthorized"
    assert error["customer_facing"] is False


def test_04_create_physical_card(server: LiveServer, demo: Demo, api: Api) -> None:
    card = demo.card_references[0]
    reference = ref("sale")
    body = sell(api, demo, card, 2500, merchant_transaction_reference=reference)
    order = body["data"]["createOrder"]
    [item] = order["LineItems"]
    assert item["value"] == 2500
    assert item["Transaction"] == {"merchant_transaction_reference": reference}
    assert item["Card"]["card_reference"] == card
    assert item["Card"]["balance"] == 2500
    assert item["Card"]["initial_balance"] == 2500
    assert item["Card"]["card_alias_card_reference"] is None
    assert len(item["Card"]["created_at"]) == 19  # Y-m-d H:i:s
    assert balance(api, card) == 2500
    assert line_item_ids(api, reference) == [item["id"]]


@pytest.mark.parametrize("merchant_id", [9999, 61])
def test_05_order_fails_invalid_merchant_id(server: LiveServer, demo: Demo, api: Api, merchant_id: int) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = sell(api, demo, demo.card_references[0], 2500, merchant_id=merchant_id)
    assert validation(body, "createOrder") == {"merchant_id": [NOT_EXPECTED]}


@pytest.mark.parametrize("card", [None, ""])
def test_06_card_creation_fails_missing_card_reference(
    server: LiveServer, demo: Demo, api: Api, card: str | None
) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = sell(api, demo, card, 2500)
    assert validation(body, "createOrder") == {"order_items.0.card_reference": [REQUIRED]}


@pytest.mark.parametrize(("product", "message"), [(None, REQUIRED), (999_999, NOT_EXPECTED)])
def test_07_order_fails_invalid_or_missing_product_id(
    server: LiveServer, demo: Demo, api: Api, product: int | None, message: str
) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = sell(api, demo, demo.card_references[0], 2500, item={"product_id": product})
    assert validation(body, "createOrder") == {"order_items.0.product_id": [message]}


@pytest.mark.parametrize(("currency", "message"), [("EUR", NOT_EXPECTED), ("", REQUIRED), (None, REQUIRED)])
def test_08_order_fails_invalid_or_missing_currency(
    server: LiveServer, demo: Demo, api: Api, currency: str | None, message: str
) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = sell(api, demo, demo.card_references[0], 2500, currency=currency)
    assert validation(body, "createOrder") == {"currency": [message]}


@pytest.mark.parametrize("channel", [4, 0])
def test_09_order_fails_invalid_sales_channel_id(server: LiveServer, demo: Demo, api: Api, channel: int) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = sell(api, demo, demo.card_references[0], 2500, sales_channel_id=channel)
    assert validation(body, "createOrder") == {"sales_channel_id": [NOT_EXPECTED]}


def test_10_debit_ok(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    reference = ref("debit")
    body = adjust(api, demo, card, -100, merchant_transaction_reference=reference)
    adjustment = body["data"]["createBalanceAdjustment"]
    assert adjustment["value"] == -100
    assert adjustment["LineItem"]["Transaction"] == {"merchant_transaction_reference": reference}
    assert adjustment["LineItem"]["Card"]["balance"] == 2400
    assert adjustment["LineItem"]["Card"]["initial_balance"] == 2500
    assert balance(api, card) == 2400
    assert line_item_ids(api, reference) == [adjustment["id"]]


def test_11_credit_ok(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    body = adjust(api, demo, card, 2500)
    assert body["data"]["createBalanceAdjustment"]["value"] == 2500
    assert body["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 5000
    assert balance(api, card) == 5000


@pytest.mark.parametrize("merchant_id", [9999, 61])
def test_12_adjustment_fails_wrong_merchant_id(server: LiveServer, demo: Demo, api: Api, merchant_id: int) -> None:
    card = sold(api, demo)
    with unchanged(server.database_url, demo.account_id):
        body = adjust(api, demo, card, -100, merchant_id=merchant_id)
    assert validation(body, "createBalanceAdjustment") == {"merchant_id": [NOT_EXPECTED]}


def test_13_debit_fails_negative_balance(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    with unchanged(server.database_url, demo.account_id):
        body = adjust(api, demo, card, -2501)
    error = only_error(body, "createBalanceAdjustment")
    assert error["message"] == NEGATIVE
    assert error["customer_facing"] is True
    assert balance(api, card) == 2500


@pytest.mark.parametrize("value", ["-1.50", "abc", -1.5, "1e3", True, 2**31, 10**30])
def test_14_debit_fails_bad_value_format(server: LiveServer, demo: Demo, api: Api, value: object) -> None:
    card = sold(api, demo, 2500)
    with unchanged(server.database_url, demo.account_id):
        body = adjust(api, demo, card, value)
    assert validation(body, "createBalanceAdjustment") == {"value": [NOT_EXPECTED]}


def test_15_top_up_fails_duplicate_merchant_transaction_reference(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    reference = ref("topup")
    first = adjust(api, demo, card, 500, merchant_transaction_reference=reference)
    first_id = first["data"]["createBalanceAdjustment"]["id"]
    with unchanged(server.database_url, demo.account_id):
        body = adjust(api, demo, card, 500, merchant_transaction_reference=reference)
    error = only_error(body, "createBalanceAdjustment")
    assert error["message"] == "Duplicate reference supplied"
    assert error["extensions"] == {
        "code": "DUPLICATE_REFERENCE",
        "merchant_transaction_reference": reference,
        "line_item_ids": [first_id],
    }
    assert balance(api, card) == 3000


@pytest.mark.parametrize("card", ["", "   "])
def test_16_top_up_with_empty_card_reference(server: LiveServer, demo: Demo, api: Api, card: str) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = adjust(api, demo, card, 500)
    assert validation(body, "createBalanceAdjustment") == {"card_reference": [REQUIRED]}


def test_17_top_up_fails_wrong_unit_epos_reference(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    with unchanged(server.database_url, demo.account_id):
        body = adjust(api, demo, card, 500, unit_epos_reference="no-such-till")
    error = only_error(body, "createBalanceAdjustment")
    assert error["message"] == SITE
    assert error["extensions"]["code"] == "SITE_NOT_RECOGNISED"


@pytest.mark.parametrize(("currency", "message"), [("USD", NOT_EXPECTED), (None, REQUIRED), ("", REQUIRED)])
def test_18_adjustment_fails_invalid_or_missing_currency(
    server: LiveServer, demo: Demo, api: Api, currency: str | None, message: str
) -> None:
    card = sold(api, demo, 2500)
    with unchanged(server.database_url, demo.account_id):
        body = adjust(api, demo, card, -100, currency=currency)
    assert validation(body, "createBalanceAdjustment") == {"currency": [message]}


@pytest.mark.parametrize(("method", "message"), [(None, REQUIRED), (4, NOT_EXPECTED)])
def test_19_order_fails_invalid_or_missing_fulfilment_method_id(
    server: LiveServer, demo: Demo, api: Api, method: int | None, message: str
) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = sell(api, demo, demo.card_references[0], 2500, item={"fulfilment_method_id": method})
    assert validation(body, "createOrder") == {"order_items.0.fulfilment_method_id": [message]}


def test_20_reverse_card_creation(server: LiveServer, demo: Demo, api: Api) -> None:
    card = demo.card_references[0]
    reference = ref("sale")
    sale = sell(api, demo, card, 2500, merchant_transaction_reference=reference)
    [sale_item] = sale["data"]["createOrder"]["LineItems"]
    reversal_reference = reference + "-REVERSAL"
    body = reverse(api, demo, line_item_ids(api, reference), merchant_transaction_reference=reversal_reference)
    result = body["data"]["createReversal"]
    assert result["merchant_transaction_reference"] == reversal_reference
    [item] = result["LineItems"]
    assert item["value"] == -2500
    assert item["Card"]["balance"] == 0
    assert sale_item["id"] != item
    # the card is out of circulation again: a balance check finds nothing, and it can be sold anew
    assert balance(api, card) is None
    again = sell(api, demo, card, 1000)
    assert again["data"]["createOrder"]["LineItems"][0]["Card"]["balance"] == 1000


def test_21_reverse_debit(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    reference = ref("debit")
    adjust(api, demo, card, -700, merchant_transaction_reference=reference)
    assert balance(api, card) == 1800
    body = reverse(api, demo, line_item_ids(api, reference))
    [item] = body["data"]["createReversal"]["LineItems"]
    assert item["value"] == 700
    assert item["Card"]["balance"] == 2500
    assert balance(api, card) == 2500


def test_22_reverse_credit(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    reference = ref("credit")
    adjust(api, demo, card, 1000, merchant_transaction_reference=reference)
    body = reverse(api, demo, line_item_ids(api, reference))
    [item] = body["data"]["createReversal"]["LineItems"]
    assert item["value"] == -1000
    assert balance(api, card) == 2500


@pytest.mark.parametrize(("line_item", "message"), [(None, REQUIRED), (987_654_321, NOT_EXPECTED), (-1, NOT_EXPECTED)])
def test_23_reversal_fails_missing_or_invalid_line_item_id(
    server: LiveServer, demo: Demo, api: Api, line_item: int | None, message: str
) -> None:
    sold(api, demo, 2500)
    with unchanged(server.database_url, demo.account_id):
        body = reverse(api, demo, [line_item])
    assert validation(body, "createReversal") == {"ReversalItems.0.line_item_id": [message]}


def test_24_card_query_ok(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    body = api.call(documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1})
    cards = body["data"]["Cards"]
    assert cards["total"] == 1 and cards["per_page"] == 1
    [found] = cards["data"]
    assert found["card_reference"] == card
    assert found["balance"] == 2500 and found["initial_balance"] == 2500
    assert found["created_at"] == found["updated_at"] or len(found["updated_at"]) == 19


@pytest.mark.parametrize("card", ["12", "6301190000554511995", "abc def", "x" * 40, "6301-1900"])
def test_25_card_query_fails_invalid_card_reference(server: LiveServer, demo: Demo, api: Api, card: str) -> None:
    body = api.call(documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1})
    assert validation(body, "Cards") == {"card_reference": ["Must be a valid card reference."]}


def test_25b_card_query_unknown_card_is_empty(server: LiveServer, demo: Demo, api: Api) -> None:
    body = api.call(documents.CARD_BALANCE, {"card_reference": "6301190000554511994", "page": 1, "limit": 1})
    assert body == {"data": {"Cards": {"data": [], "total": 0, "per_page": 1}}}


GRATUITY = dict(
    sales_channel_id=7,
    total=0,
    item={
        "card_reference": None,
        "generate_card_reference": True,
        "fulfilment_method_id": 1,
        "fulfilment_email": "guest@example.com",
        "custom_price_modifier_value": 5000,
        "discounts": [{"discount_type_id": 1, "value": 5000}],
        "message": "Sorry about tonight",
    },
)

GRATUITY_ORDER = documents.CREATE_ORDER.replace("initial_balance,", "initial_balance, ValueSplit{tender discount},")


def test_guest_gratuity_free_card_and_its_reversal(server: LiveServer, demo: Demo, api: Api) -> None:
    reference = ref("foc")
    body = api.call(
        GRATUITY_ORDER, order_variables(demo, None, 5000, merchant_transaction_reference=reference, **GRATUITY)
    )
    [item] = body["data"]["createOrder"]["LineItems"]
    card = item["Card"]
    assert item["value"] == 5000
    assert card["balance"] == 5000
    assert card["ValueSplit"] == {"tender": 0, "discount": 5000}
    number = card["card_reference"]
    assert len(number) == 19 and number.startswith("63011900")
    from giftledger.domain.card_numbers import passes_luhn

    assert passes_luhn(number)
    result = reverse(api, demo, line_item_ids(api, reference))
    assert result["data"]["createReversal"]["LineItems"][0]["value"] == -5000
    assert balance(api, number) is None


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"merchant_id": 9999}, "merchant_id"),
        ({"item": {**GRATUITY["item"], "product_id": 999_999}}, "order_items.0.product_id"),  # type: ignore[dict-item]
        ({"currency": "XXX"}, "currency"),
        ({"sales_channel_id": 8}, "sales_channel_id"),
        ({"item": {**GRATUITY["item"], "fulfilment_method_id": 5}}, "order_items.0.fulfilment_method_id"),  # type: ignore[dict-item]
    ],
)
def test_guest_gratuity_refusals(
    server: LiveServer, demo: Demo, api: Api, override: dict[str, object], field: str
) -> None:
    variables = order_variables(demo, None, 5000, **{**GRATUITY, **override})
    with unchanged(server.database_url, demo.account_id):
        body = api.call(documents.CREATE_ORDER, variables)
    assert validation(body, "createOrder") == {field: [NOT_EXPECTED]}


def test_guest_gratuity_failed_reversal_bad_line_item(server: LiveServer, demo: Demo, api: Api) -> None:
    with unchanged(server.database_url, demo.account_id):
        body = reverse(api, demo, [123_456_789])
    assert validation(body, "createReversal") == {"ReversalItems.0.line_item_id": [NOT_EXPECTED]}
