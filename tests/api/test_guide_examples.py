"""Every example operation in the integration guide, sent as a client would send it, returns the
documented shape (on both databases, over real HTTP)."""

from __future__ import annotations

import httpx

from tests.api import documents
from tests.api.till import adjust, line_item_ids, order_variables, ref, reverse, sell, sold
from tests.support import Api, Demo, LiveServer


def test_products(api: Api, demo: Demo) -> None:
    body = api.call(documents.PRODUCTS, {"account_id": demo.account_id})
    assert body == {"data": {"Products": [{"id": demo.product_id, "name": "In-Store Gift"}]}}


def test_price_modifiers_sent_as_the_guides_raw_json(server: LiveServer, api: Api, demo: Demo) -> None:
    raw = '{"query":"' + documents.PRICE_MODIFIERS + '","variables":{"account_id":' + str(demo.account_id) + "}}"
    response = httpx.post(
        server.graphql_url,
        content=raw,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api.token}"},
    )
    [product] = response.json()["data"]["Products"]
    assert product == {
        "id": demo.product_id,
        "name": "In-Store Gift",
        "PriceModifiers": [
            {"id": demo.price_modifier_ids[0], "price": 0, "description": "Blank card"},
            {"id": demo.price_modifier_ids[1], "price": 1000, "description": "£10"},
            {"id": demo.price_modifier_ids[2], "price": 2500, "description": "£25"},
            {"id": demo.price_modifier_ids[3], "price": 5000, "description": "£50"},
        ],
    }


def test_create_order_shape(api: Api, demo: Demo) -> None:
    card = demo.card_references[0]
    body = sell(api, demo, card, 2500, merchant_transaction_reference="testreference-" + card)
    order = body["data"]["createOrder"]
    assert set(order) == {"id", "LineItems"}
    [item] = order["LineItems"]
    assert set(item) == {"id", "value", "Transaction", "Card"}
    assert set(item["Card"]) == {
        "id",
        "card_reference",
        "card_alias_card_reference",
        "balance",
        "initial_balance",
        "created_at",
        "updated_at",
    }


def test_order_with_a_price_modifier_and_two_cards(api: Api, demo: Demo) -> None:
    first, second = demo.card_references[:2]
    variables = order_variables(demo, first, 1000, total=3500)
    variables["order_items"] = [
        {
            "fulfilment_method_id": 3,
            "product_id": demo.product_id,
            "card_reference": first,
            "price_modifier_id": demo.price_modifier_ids[1],
        },
        {
            "fulfilment_method_id": 3,
            "product_id": demo.product_id,
            "card_reference": second,
            "price_modifier_id": demo.price_modifier_ids[2],
        },
    ]
    body = api.call(documents.CREATE_ORDER, variables)
    items = body["data"]["createOrder"]["LineItems"]
    assert [(i["Card"]["card_reference"], i["value"], i["Card"]["balance"]) for i in items] == [
        (first, 1000, 1000),
        (second, 2500, 2500),
    ]


def test_top_up_and_redemption_shapes(api: Api, demo: Demo) -> None:
    card = sold(api, demo, 2500)
    top_up = adjust(api, demo, card, 2500)["data"]["createBalanceAdjustment"]
    assert set(top_up) == {"id", "value", "LineItem"}
    assert set(top_up["LineItem"]) == {"Transaction", "Card"}
    assert top_up["LineItem"]["Card"]["balance"] == 5000
    redemption = adjust(api, demo, card, -100)["data"]["createBalanceAdjustment"]
    assert redemption["value"] == -100
    assert redemption["LineItem"]["Card"]["balance"] == 4900


def test_reversal_and_line_items_lookup(api: Api, demo: Demo) -> None:
    card = sold(api, demo, 2500)
    reference = ref("test-123-123-123")
    adjustment = adjust(api, demo, card, -100, merchant_transaction_reference=reference)
    body = api.call(documents.LINE_ITEMS, {"merchant_transaction_reference": reference, "page": 1, "limit": 1})
    assert body == {"data": {"LineItems": {"data": [{"id": adjustment["data"]["createBalanceAdjustment"]["id"]}]}}}
    reversal = reverse(api, demo, line_item_ids(api, reference))["data"]["createReversal"]
    assert set(reversal) == {"merchant_transaction_reference", "LineItems"}
    [item] = reversal["LineItems"]
    assert item["value"] == 100 and item["Card"]["balance"] == 2500


def test_balance_check_found_and_not_found(api: Api, demo: Demo) -> None:
    card = sold(api, demo, 2500)
    found = api.call(documents.CARD_BALANCE, {"limit": 1, "page": 1, "card_reference": card})
    [data] = found["data"]["Cards"]["data"]
    assert (data["card_reference"], data["balance"], data["initial_balance"]) == (card, 2500, 2500)
    assert found["data"]["Cards"]["total"] == 1 and found["data"]["Cards"]["per_page"] == 1
    unsold = demo.card_references[0]
    assert api.call(documents.CARD_BALANCE, {"limit": 1, "page": 1, "card_reference": unsold}) == {
        "data": {"Cards": {"data": [], "total": 0, "per_page": 1}}
    }


def test_customers_on_cards_and_orders(api: Api, demo: Demo) -> None:
    variables = order_variables(
        demo,
        None,
        2000,
        item={
            "card_reference": None,
            "generate_card_reference": True,
            "fulfilment_method_id": 1,
            "fulfilment_email": "joshua+test@example.co.uk",
        },
    )
    variables["receipt_contact"] = {
        "email": "buyer@example.com",
        "first_name": "Jo",
        "last_name": "Buyer",
        "consent_copy": "Test marketing consent",
    }
    query = documents.CREATE_ORDER.replace(
        "$merchant_transaction_reference:String\n",
        "$merchant_transaction_reference:String,\n$receipt_contact:ReceiptContactInput\n",
    ).replace(
        "merchant_transaction_reference : $merchant_transaction_reference\n",
        "merchant_transaction_reference : $merchant_transaction_reference, receipt_contact: $receipt_contact\n",
    )
    order = api.call(query, variables)["data"]["createOrder"]
    paging = {"limit": 10, "page": 1, "consents_limit": 10, "consents_page": 1}
    cards = api.call(documents.CARD_CUSTOMERS, paging)["data"]["Cards"]
    assert cards["total"] == 1 and cards["per_page"] == 10
    [card] = cards["data"]
    assert card["Email"]["email"] == "joshua+test@example.co.uk"
    assert card["Email"]["Consents"] == {"data": []}
    assert isinstance(card["Email"]["id"], str)
    orders = api.call(documents.ORDER_CUSTOMERS, paging)["data"]["Orders"]
    [found] = orders["data"]
    assert found["id"] == order["id"]
    receipt = found["ReceiptEmail"]
    assert (receipt["email"], receipt["first_name"], receipt["last_name"]) == ("buyer@example.com", "Jo", "Buyer")
    [consent] = receipt["Consents"]["data"]
    assert consent["consent_copy"] == "Test marketing consent"
    assert len(consent["consented_at"]) == 19


def test_introspection_over_get_without_a_token(server: LiveServer) -> None:
    schema = httpx.get(server.graphql_url, params={"query": documents.SCHEMA_TYPES}).json()
    names = {t["name"] for t in schema["data"]["__schema"]["types"]}
    assert {
        "Card",
        "Product",
        "PriceModifier",
        "LineItem",
        "Order",
        "OrderItemInput",
        "ReversalItemInput",
        "ValueSplit",
        "BalanceAdjustment",
        "Reversal",
    } <= names
    card = httpx.get(server.graphql_url, params={"query": documents.CARD_TYPE}).json()["data"]["__type"]
    assert card["name"] == "Card" and card["kind"] == "OBJECT"
    assert {
        "card_reference",
        "card_alias_card_reference",
        "balance",
        "initial_balance",
        "created_at",
        "updated_at",
        "expiry_time",
        "ValueSplit",
        "Email",
    } <= {f["name"] for f in card["fields"]}


def test_browser_gets_graphiql(server: LiveServer) -> None:
    response = httpx.get(server.graphql_url, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "GraphiQL" in response.text


def test_reference_queries(api: Api) -> None:
    body = api.call("{ Merchants { id name } SalesChannels { id name } FulfilmentMethods { id name } }")
    merchants = {m["id"]: m["name"] for m in body["data"]["Merchants"]}
    assert merchants[60] == "PointOne" and merchants[61] == "Polaris" and merchants[26] == "Other (third party)"
    assert body["data"]["SalesChannels"] == [
        {"id": 3, "name": "In store"},
        {"id": 5, "name": "B2B"},
        {"id": 7, "name": "Guest Gratuity"},
    ]
    assert [f["id"] for f in body["data"]["FulfilmentMethods"]] == [1, 2, 3, 7, 8]
