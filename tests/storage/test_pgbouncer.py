"""Behind PgBouncer in transaction mode (Debian's 1.18: no prepared statements across transactions), with
GIFTLEDGER_DATABASE_POOLER=pgbouncer: a till's whole workflow, tills at once on more of giftledger's connections
than PgBouncer has server connections, and the ledger checks out. Without the setting PgBouncer refuses
giftledger's connections (the session settings it sends at start-up), so nothing runs by accident."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from giftledger.app import create_app
from giftledger.storage.database import Database
from tests.api import documents
from tests.api.till import adjustment_variables, order_variables
from tests.safety.helpers import verify_ledger
from tests.storage.pgbouncer import Bouncer, unavailable
from tests.support import Demo, snapshot
from tests.support import test_settings as settings_for  # (not collected as a test)

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))


@pytest.fixture(scope="module")
def bouncer(pg_base_url: str) -> Iterator[Bouncer]:
    started = Bouncer(pg_base_url, pool_size=2)
    yield started
    started.stop()


class Till:
    """GraphQL calls to the app in-process, logged in as the demo account's API user."""

    def __init__(self, http: httpx.AsyncClient, demo: Demo) -> None:
        self.http, self.demo = http, demo
        self.auth: dict[str, str] = {}

    async def call(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables}, headers=self.auth)
        assert response.status_code == 200, response.text
        if "X-Authorization" in response.headers:
            self.auth = {"Authorization": response.headers["X-Authorization"]}
        body: dict[str, Any] = response.json()
        return body

    async def balance(self, card: str) -> Any:
        body = await self.call(documents.CARD_BALANCE, {"card_reference": card, "page": 1, "limit": 1})
        return body["data"]["Cards"]["data"][0]["balance"] if body["data"]["Cards"]["data"] else body

    async def adjust(self, card: str, value: int, reference: str) -> dict[str, Any]:
        variables = adjustment_variables(self.demo, card, value, merchant_transaction_reference=reference)
        return await self.call(documents.ADJUSTMENT, variables)


@pytest.fixture
async def till(bouncer: Bouncer, database_url: str, demo: Demo) -> AsyncIterator[Till]:
    through = bouncer.url(str(make_url(database_url).database))
    app = create_app(settings_for(through, database_pooler="pgbouncer", database_pool_size=6, cost_maximum=0))
    try:
        transport = httpx.ASGITransport(app=app, client=("10.20.30.40", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://till.test") as http:
            caller = Till(http, demo)
            login = {"username": demo.api_username, "password": demo.api_password}
            assert "errors" not in await caller.call(documents.LOGIN, login)
            yield caller
    finally:
        await app.state.services.db.dispose()


async def test_a_till_workflow_runs_through_pgbouncer_in_transaction_mode(
    till: Till, bouncer: Bouncer, database_url: str, demo: Demo
) -> None:
    card, unsold = demo.card_references[0], demo.card_references[1]
    sale = await till.call(documents.CREATE_ORDER, order_variables(demo, card, 5000))
    assert "errors" not in sale, sale
    assert await till.balance(card) == 5000
    redeemed = await till.adjust(card, -1200, "PGB-1")
    assert redeemed["data"]["createBalanceAdjustment"]["value"] == -1200
    assert redeemed["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 3800
    items = await till.call(documents.LINE_ITEMS, {"merchant_transaction_reference": "PGB-1", "page": 1, "limit": 10})
    [item] = items["data"]["LineItems"]["data"]
    reversal = await till.call(
        documents.REVERSAL,
        {
            "ReversalItems": [{"line_item_id": item["id"], "shipping_refund": False}],
            "merchant_transaction_reference": "PGB-1-REVERSAL",
            "merchant_id": demo.merchant_id,
            "unit_epos_reference": demo.epos,
        },
    )
    assert "errors" not in reversal, reversal
    assert await till.balance(card) == 5000
    before = await asyncio.to_thread(snapshot, database_url, demo.account_id)
    refused = await till.adjust(unsold, -100, "PGB-UNSOLD")
    assert refused["errors"][0]["extensions"]["code"] == "CARD_NOT_FOUND"
    assert await asyncio.to_thread(snapshot, database_url, demo.account_id) == before  # nothing changed
    # 20 redemptions at once: more of giftledger's connections (6) than PgBouncer's server connections (2)
    replies = await asyncio.gather(*(till.adjust(card, -100, f"PGB-MANY-{n}") for n in range(20)))
    assert [r.get("errors") for r in replies] == [None] * 20
    assert await till.balance(card) == 5000 - 20 * 100
    assert (await asyncio.to_thread(verify_ledger, database_url, demo.account_id))["ok"] is True
    assert f"db={make_url(database_url).database}" in bouncer.log()  # the app's connections went through it


async def test_without_the_pooler_setting_pgbouncer_refuses_the_connection(bouncer: Bouncer, database_url: str) -> None:
    db = Database(bouncer.url(str(make_url(database_url).database)), pool_size=1)
    try:
        with pytest.raises(Exception) as refused:  # whatever class the driver gives PgBouncer's refusal
            await db.fetch("SELECT 1")
    finally:
        await db.dispose()
    assert "unsupported startup parameter" in str(refused.value.__cause__ or refused.value)
