"""The cost budget charges every request exactly its actual cost, never less: lists are priced by their real
bound, a `limit` of 100.0 is 100 (as GraphQL's Int reads it), and what a reply costs beyond its estimate is
charged after it ran (and what it cost less, given back). Checked over generated documents against a server
whose budget restores nothing meanwhile, so each reply's remaining credits are exactly the last ones less the
reply's actual cost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api import documents
from tests.api.till import order_variables
from tests.security.helpers import isolated_server
from tests.support import Api, Demo, LiveServer, logged_in, new_demo

UNRESTORED = {
    "GIFTLEDGER_COST_MAXIMUM": "1000000000",
    "GIFTLEDGER_COST_RESTORE": "1",
    "GIFTLEDGER_COST_RESTORE_SECONDS": "1000000000",
}
ORDERS = "query($l:Int){Orders(limit:$l,page:1){data{id LineItems{id Card{id card_reference balance}}}}}"
CARDS = "query($l:Int){Cards(limit:$l,page:1){data{id card_reference balance}}}"
PRODUCTS = "query($a:Int!){Products(account_id:$a){id name PriceModifiers{id price}}}"
LINE_ITEMS = "query($l:Int,$r:String){LineItems(limit:$l,page:1,merchant_transaction_reference:$r){data{id Card{id}}}}"


@pytest.fixture(scope="module")
def unrestored(database_url: str, pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with isolated_server(database_url, pg_base_url, Path(tmp_path_factory.mktemp("charged")), UNRESTORED) as server:
        yield server


@pytest.fixture(scope="module")
def big_order(unrestored: LiveServer) -> tuple[Demo, Api, str]:
    """An account with an order of 100 cards (the most an order holds)."""
    demo = new_demo(unrestored.database_url)
    till = logged_in(unrestored, demo)
    generated = {"card_reference": None, "generate_card_reference": True, "custom_price_modifier_value": 100}
    variables = order_variables(demo, None, 100 * 100)
    variables["order_items"] = [{**variables["order_items"][0], **generated} for _ in range(100)]
    body = till.call(documents.CREATE_ORDER, variables)
    assert "errors" not in body and len(body["data"]["createOrder"]["LineItems"]) == 100, body
    return demo, till, variables["merchant_transaction_reference"]


def _available(till: Api, query: str, variables: dict[str, Any]) -> tuple[int, int, int]:
    """(requested, actual, credits left after) of one request."""
    response = till.post(query, variables)
    assert response.status_code == 200, response.text
    cost = response.json()["extensions"]["cost"]
    return cost["requestedQueryCost"], cost["actualQueryCost"], cost["throttleStatus"]["currentlyAvailable"]


def test_the_probes_undercharged_requests_are_charged_what_they_cost(big_order: tuple[Demo, Api, str]) -> None:
    _, till, _ = big_order
    left = _available(till, "{ __typename }", {})[2]
    requested, actual, after = _available(till, ORDERS, {"l": 1})
    assert (requested, actual, left - after) == (202, 202, 202)  # was requested 22, charged 22
    requested, actual, after2 = _available(till, CARDS, {"l": 100.0})
    assert (requested, actual, after - after2) == (101, 101, 101)  # was priced as 15 cards


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=st.sampled_from(["orders", "cards", "products", "line_items"]),
    limit=st.one_of(st.none(), st.integers(-5, 150), st.integers(1, 120).map(float)),
)
def test_every_request_is_charged_exactly_its_actual_cost(
    big_order: tuple[Demo, Api, str], document: str, limit: int | float | None
) -> None:
    demo, till, reference = big_order
    query, variables = {
        "orders": (ORDERS, {"l": limit}),
        "cards": (CARDS, {"l": limit}),
        "products": (PRODUCTS, {"a": demo.account_id}),
        "line_items": (LINE_ITEMS, {"l": limit, "r": reference}),
    }[document]
    left = _available(till, "{ __typename }", {})[2]  # what is left once that probe (cost 1) was charged
    _, actual, after = _available(till, query, variables)
    assert left - after == actual, (document, limit)
