"""Tenant isolation, for every query and mutation of the schema: a caller of account A (its API user, or its
Store Owner signed in with email) naming account B's ids, card numbers, EPOS references, transaction
references or line items gets exactly the reply a non-existent one gets, and nothing changes in A or B.

`loginUser` names no account's data (it is the way in); `Merchants`, `SalesChannels` and
`FulfilmentMethods` are reference data shared by every account and are checked to be the same for both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from giftledger.api.endpoint import load_schema
from giftledger.domain import card_numbers
from tests.api import documents
from tests.api.till import adjustment_variables, line_item_ids, order_variables, ref, sell
from tests.support import Api, Demo, LiveServer, owner_signed_in, signed_in, unchanged

NOWHERE = 987_654_321


@pytest.fixture(params=["api_user", "dashboard_user"])
def caller(request: pytest.FixtureRequest, server: LiveServer, demo: Demo) -> Api:
    return signed_in(server, demo) if request.param == "api_user" else owner_signed_in(server, demo)


class B:
    """Account B's data, made by B's own till."""

    def __init__(self, till: Api, demo: Demo) -> None:
        self.demo = demo
        self.stock = demo.card_references[0]
        self.card = demo.card_references[-1]
        self.sale_reference = ref("b-sale")
        body = sell(till, demo, self.card, 2500, merchant_transaction_reference=self.sale_reference)
        order = body["data"]["createOrder"]
        self.order_id = order["id"]
        self.card_id = order["LineItems"][0]["Card"]["id"]
        self.line_item_id = line_item_ids(till, self.sale_reference)[0]
        self.epos = demo.unit_epos_references[-1]  # B's own reference ("<slug>-leeds"); "test" is everyone's
        assert self.epos != "test"


@pytest.fixture
def b(other_api: Api, other: Demo) -> B:
    return B(other_api, other)


@contextmanager
def nothing_changes(server: LiveServer, *accounts: int) -> Iterator[None]:
    with ExitStack() as stack:
        for account in accounts:
            stack.enter_context(unchanged(server.database_url, account))
        yield


def same(
    server: LiveServer, demo: Demo, b: B, caller: Api, query: str, theirs: dict[str, Any], missing: dict[str, Any]
) -> dict[str, Any]:
    with nothing_changes(server, demo.account_id, b.demo.account_id):
        with_theirs = caller.call(query, theirs)
        with_missing = caller.call(query, missing)
    assert with_theirs == with_missing
    return with_theirs


def test_every_operation_of_the_schema_is_covered() -> None:
    schema = load_schema()
    covered = {
        "loginUser", "Products", "Cards", "LineItems", "Orders", "Merchants", "SalesChannels", "FulfilmentMethods",
        "Accounts", "createOrder", "createBalanceAdjustment", "createReversal",
    }  # fmt: skip
    assert schema.query_type and schema.mutation_type
    assert set(schema.query_type.fields) | set(schema.mutation_type.fields) == covered


def test_products_of_another_account(server: LiveServer, demo: Demo, b: B, caller: Api) -> None:
    body = same(
        server, demo, b, caller, documents.PRICE_MODIFIERS, {"account_id": b.demo.account_id}, {"account_id": NOWHERE}
    )
    assert body["errors"][0]["validation"] == {"account_id": ["This field is not of an expected value"]}


def test_cards_by_another_accounts_number(server: LiveServer, demo: Demo, b: B, caller: Api) -> None:
    page = {"page": 1, "limit": 1}
    for number in (b.card, b.stock):
        body = same(
            server,
            demo,
            b,
            caller,
            documents.CARD_BALANCE,
            {**page, "card_reference": number},
            {**page, "card_reference": card_numbers.generate()},
        )
        assert body == {"data": {"Cards": {"data": [], "total": 0, "per_page": 1}}}


def test_cards_by_another_accounts_id(server: LiveServer, demo: Demo, b: B, caller: Api) -> None:
    query = "query($id:Int){ Cards(id:$id, limit:1, page:1) { data { id card_reference balance } total } }"
    body = same(server, demo, b, caller, query, {"id": b.card_id}, {"id": NOWHERE})
    assert body == {"data": {"Cards": {"data": [], "total": 0}}}


def test_line_items_by_another_accounts_reference(server: LiveServer, demo: Demo, b: B, caller: Api) -> None:
    page = {"page": 1, "limit": 10}
    body = same(
        server,
        demo,
        b,
        caller,
        documents.LINE_ITEMS,
        {**page, "merchant_transaction_reference": b.sale_reference},
        {**page, "merchant_transaction_reference": ref("never")},
    )
    assert body == {"data": {"LineItems": {"data": []}}}


def test_orders_and_accounts_list_only_the_callers_own(server: LiveServer, demo: Demo, b: B, caller: Api) -> None:
    own = sell(caller, demo, demo.card_references[0], 1000)["data"]["createOrder"]["id"]
    with nothing_changes(server, demo.account_id, b.demo.account_id):
        orders = caller.call(
            documents.ORDER_CUSTOMERS, {"limit": 100, "page": 1, "consents_limit": 10, "consents_page": 1}
        )
        accounts = caller.call("{ Accounts { id name } }")
    assert [o["id"] for o in orders["data"]["Orders"]["data"]] == [own] and b.order_id != own
    assert [a["id"] for a in accounts["data"]["Accounts"]] == [demo.account_id]


def test_reference_data_is_the_same_for_every_account(server: LiveServer, demo: Demo, b: B, caller: Api) -> None:
    query = "{ Merchants { id name } SalesChannels { id name } FulfilmentMethods { id name } }"
    theirs = owner_signed_in(server, b.demo)
    assert caller.call(query) == theirs.call(query)


def test_selling_with_another_accounts_references(server: LiveServer, demo: Demo, b: B, caller: Api) -> None:
    for theirs, missing, code in (
        ({"account_id": b.demo.account_id}, {"account_id": NOWHERE}, "VALIDATION"),
        ({"unit_epos_reference": b.epos}, {"unit_epos_reference": ref("nowhere")}, "SITE_NOT_RECOGNISED"),
    ):
        card = demo.card_references[0]
        body = same(
            server,
            demo,
            b,
            caller,
            documents.CREATE_ORDER,
            order_variables(demo, card, 2500, **theirs),
            order_variables(demo, card, 2500, **missing),
        )
        assert body["errors"][0]["extensions"]["code"] == code


def _shape(body: dict[str, Any]) -> Any:
    """The reply without what differs between two fresh sales anyway: ids, numbers, times, references."""
    if isinstance(body, dict):
        return {
            k: _shape(v)
            for k, v in body.items()
            if k not in {"id", "card_reference", "created_at", "updated_at", "merchant_transaction_reference"}
        }
    if isinstance(body, list):
        return [_shape(v) for v in body]
    return body


def test_selling_another_accounts_card_number_sells_a_card_of_ones_own(
    server: LiveServer, demo: Demo, b: B, caller: Api
) -> None:
    with unchanged(server.database_url, b.demo.account_id):
        theirs = caller.call(documents.CREATE_ORDER, order_variables(demo, b.stock, 1000))
        fresh = caller.call(documents.CREATE_ORDER, order_variables(demo, card_numbers.generate(), 1000))
    assert "errors" not in theirs and _shape(theirs) == _shape(fresh)
    assert theirs["data"]["createOrder"]["LineItems"][0]["Card"]["card_reference"] == b.stock
    found = caller.call(documents.CARD_BALANCE, {"page": 1, "limit": 1, "card_reference": b.stock})
    assert found["data"]["Cards"]["data"][0]["balance"] == 1000  # A's own card with that number


def test_adjusting_another_accounts_card(server: LiveServer, demo: Demo, b: B, caller: Api) -> None:
    for value in (-100, 100):
        body = same(
            server,
            demo,
            b,
            caller,
            documents.ADJUSTMENT,
            adjustment_variables(demo, b.card, value, merchant_transaction_reference=None),
            adjustment_variables(demo, card_numbers.generate(), value, merchant_transaction_reference=None),
        )
        assert body["errors"][0]["extensions"]["code"] == "CARD_NOT_FOUND"


def test_another_accounts_transaction_reference_is_free_for_ones_own(
    server: LiveServer, demo: Demo, b: B, caller: Api
) -> None:
    mine = sell(caller, demo, demo.card_references[0], 2500)["data"]["createOrder"]["LineItems"][0]["Card"]
    with unchanged(server.database_url, b.demo.account_id):
        theirs = caller.call(
            documents.ADJUSTMENT,
            adjustment_variables(demo, mine["card_reference"], 100, merchant_transaction_reference=b.sale_reference),
        )
        fresh = caller.call(documents.ADJUSTMENT, adjustment_variables(demo, mine["card_reference"], 100))
    assert "errors" not in theirs and "errors" not in fresh
    assert _shape(theirs)["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 2600
    assert fresh["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 2700


def test_reversing_another_accounts_line_item(server: LiveServer, demo: Demo, b: B, caller: Api) -> None:
    def reversal(line_item: int) -> dict[str, Any]:
        return {
            "ReversalItems": [{"line_item_id": line_item, "shipping_refund": False}],
            "merchant_transaction_reference": None,
            "merchant_id": demo.merchant_id,
            "unit_epos_reference": demo.epos,
        }

    first, second = reversal(b.line_item_id), reversal(NOWHERE)
    first["merchant_transaction_reference"] = second["merchant_transaction_reference"] = ref("rev")
    body = same(server, demo, b, caller, documents.REVERSAL, first, second)
    assert body["errors"][0]["validation"] == {
        "ReversalItems.0.line_item_id": ["This field is not of an expected value"]
    }
