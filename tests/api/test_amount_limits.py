"""Every amount the API can produce fits its type, and no committed change answers 500 or is applied again.

A card's balance is capped at 2,147,483,647 (the largest GraphQL Int) by the ledger's one movement statement
and a CHECK constraint: a sale, top-up or reversal that would pass it is refused in the contract's shape
("would exceed the maximum card balance") and changes nothing. Once a mutation may have written anything, its
Idempotency-Key keeps the reply whatever it is, so a retry is never applied twice; a query ignores the key."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from giftledger.api import shapes
from giftledger.app import create_app
from giftledger.domain.errors import BALANCE_LIMIT
from giftledger.domain.ledger import MAX_BALANCE
from giftledger.domain.validation import MAX_AMOUNT
from tests.api import documents
from tests.api.till import adjustment_variables, order_variables, sold
from tests.support import LOGIN, Api, Demo, LiveServer, snapshot, tls, unchanged
from tests.support import test_settings as settings_for


def _error(body: dict[str, Any]) -> tuple[str, str]:
    error = body["errors"][0]
    return error["extensions"]["code"], error["message"]


def test_a_top_up_past_the_largest_balance_is_refused_and_changes_nothing(
    server: LiveServer, demo: Demo, api: Api
) -> None:
    card = sold(api, demo, MAX_AMOUNT)
    body = api.call(documents.ADJUSTMENT, adjustment_variables(demo, card, MAX_AMOUNT))
    assert body["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 2 * MAX_AMOUNT
    with unchanged(server.database_url, demo.account_id):
        response = api.post(documents.ADJUSTMENT, adjustment_variables(demo, card, MAX_AMOUNT))
        assert response.status_code == 200, response.text
        assert _error(response.json()) == ("BALANCE_LIMIT", BALANCE_LIMIT)
        assert response.json()["errors"][0]["customer_facing"] is True
        assert response.json()["data"] == {"createBalanceAdjustment": None}
        check = api.post(documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1})
        assert (check.status_code, check.json()["data"]["Cards"]["data"][0]["balance"]) == (200, 2 * MAX_AMOUNT)
    # up to the cap exactly is fine
    last = MAX_BALANCE - 2 * MAX_AMOUNT
    body = api.call(documents.ADJUSTMENT, adjustment_variables(demo, card, last))
    assert body["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == MAX_BALANCE
    with unchanged(server.database_url, demo.account_id):
        assert _error(api.call(documents.ADJUSTMENT, adjustment_variables(demo, card, 1)))[0] == "BALANCE_LIMIT"


def test_the_same_refused_top_up_with_an_idempotency_key_and_no_reference_is_replayed(
    server: LiveServer, demo: Demo, api: Api
) -> None:
    card = sold(api, demo, MAX_AMOUNT)
    api.call(documents.ADJUSTMENT, adjustment_variables(demo, card, MAX_AMOUNT))
    variables = adjustment_variables(demo, card, MAX_AMOUNT)
    del variables["merchant_transaction_reference"]
    headers = {"Authorization": f"Bearer {api.token}", "Idempotency-Key": str(uuid.uuid4())}
    payload = {"query": documents.ADJUSTMENT, "variables": variables}
    with unchanged(server.database_url, demo.account_id):
        first = httpx.post(server.graphql_url, json=payload, headers=headers, timeout=30, verify=tls())
        second = httpx.post(server.graphql_url, json=payload, headers=headers, timeout=30, verify=tls())
    assert (first.status_code, _error(first.json())[0]) == (200, "BALANCE_LIMIT")
    assert (second.status_code, second.content, second.headers["Idempotent-Replayed"]) == (200, first.content, "true")


def test_a_query_with_an_idempotency_key_is_answered_afresh(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 1000)
    headers = {"Authorization": f"Bearer {api.token}", "Idempotency-Key": str(uuid.uuid4())}
    payload = {"query": documents.CARD_BALANCE, "variables": {"card_reference": card, "page": 1, "limit": 1}}
    first = httpx.post(server.graphql_url, json=payload, headers=headers, timeout=30, verify=tls())
    api.call(documents.ADJUSTMENT, adjustment_variables(demo, card, -250))
    again = httpx.post(server.graphql_url, json=payload, headers=headers, timeout=30, verify=tls())
    assert first.json()["data"]["Cards"]["data"][0]["balance"] == 1000
    assert again.json()["data"]["Cards"]["data"][0]["balance"] == 750
    assert "Idempotent-Replayed" not in again.headers


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Starlette]:
    application = create_app(settings_for(database_url, cost_maximum=0))
    yield application
    await application.state.services.db.dispose()


async def test_a_reply_that_fails_after_its_change_committed_is_kept_with_its_key(
    app: Starlette, demo: Demo, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The class behind the 500 the probe found: whatever goes wrong after the write, a retry with the key
    gets that reply and applies nothing a second time."""
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://till.test") as http:
        login = await http.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"username": demo.api_username, "password": demo.api_password}},
        )
        auth = {"Authorization": login.headers["X-Authorization"]}
        card = demo.card_references[0]
        sale = await http.post(
            "/graphql",
            json={"query": documents.CREATE_ORDER, "variables": order_variables(demo, card, 1000)},
            headers=auth,
        )
        assert "errors" not in sale.json(), sale.text

        def broken(view: Any) -> Any:
            raise RuntimeError("the reply could not be shaped")

        monkeypatch.setattr(shapes, "adjustment", broken)
        variables = adjustment_variables(demo, card, 300)
        del variables["merchant_transaction_reference"]
        payload = {"query": documents.ADJUSTMENT, "variables": variables}
        headers = {**auth, "Idempotency-Key": str(uuid.uuid4())}
        first = await http.post("/graphql", json=payload, headers=headers)
        after_first = await asyncio.to_thread(snapshot, database_url, demo.account_id)
        second = await http.post("/graphql", json=payload, headers=headers)
    assert (first.status_code, _error(first.json())[0]) == (500, "INTERNAL")
    assert (second.status_code, second.content, second.headers["Idempotent-Replayed"]) == (500, first.content, "true")
    assert await asyncio.to_thread(snapshot, database_url, demo.account_id) == after_first
    assert after_first.balances[card] == 1300  # the top-up committed once


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sale=st.integers(1, MAX_AMOUNT),
    moves=st.lists(st.integers(-MAX_AMOUNT, MAX_AMOUNT).filter(bool), min_size=1, max_size=6),
)
def test_large_amounts_never_answer_500_and_every_refusal_changes_nothing(
    server: LiveServer, demo: Demo, api: Api, sale: int, moves: list[int]
) -> None:
    new_card = {"card_reference": None, "generate_card_reference": True}
    body = api.call(documents.CREATE_ORDER, order_variables(demo, None, sale, item=new_card))
    assert "errors" not in body, body
    card = body["data"]["createOrder"]["LineItems"][0]["Card"]["card_reference"]
    expected = sale
    for value in moves:
        before = snapshot(server.database_url, demo.account_id)
        response = api.post(documents.ADJUSTMENT, adjustment_variables(demo, card, value))
        assert response.status_code == 200, response.text
        reply = response.json()
        if expected + value > MAX_BALANCE:
            assert _error(reply)[0] == "BALANCE_LIMIT"
        elif expected + value < 0:
            assert _error(reply)[0] == "NEGATIVE_BALANCE"
        else:
            expected += value
            assert reply["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == expected
            continue
        assert snapshot(server.database_url, demo.account_id) == before
        check = api.post(documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1})
        assert (check.status_code, check.json()["data"]["Cards"]["data"][0]["balance"]) == (200, expected)
