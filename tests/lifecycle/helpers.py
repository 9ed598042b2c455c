"""Helpers for the card-lifecycle tests: a till over in-process ASGI (no lifespan, so no background expiry run
races the test), the account's state for "nothing changed", and cards made due in bulk."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from giftledger.services.context import Services
from giftledger.storage.outbox import outbox_messages
from giftledger.storage.tables import cards, line_items, products, transactions
from tests.support import Demo, api_user_token

CARD_FIELDS = """id card_reference balance expiry_time validity_start_time state blocked_reason
    ValueSplit { tender discount }"""
SELL = f"""mutation($account_id:Int!,$merchant_id:Int!,$order_items:[OrderItemInput]!,$total:Int!,
  $unit_epos_reference:String!){{
  createOrder(account_id:$account_id,merchant_id:$merchant_id,order_items:$order_items,currency:"GBP",
    group_fulfilment:true,total:$total,sales_channel_id:3,unit_epos_reference:$unit_epos_reference,
    merchant_transaction_reference:null){{ LineItems {{ id Card {{ {CARD_FIELDS} }} }} }} }}"""
ADJUST = f"""mutation($value:Int,$card_reference:String!,$unit_epos_reference:String!,$merchant_id:Int!){{
  createBalanceAdjustment(currency:"GBP",value:$value,card_reference:$card_reference,
    unit_epos_reference:$unit_epos_reference,merchant_id:$merchant_id,merchant_transaction_reference:null)
    {{ id value LineItem {{ Card {{ {CARD_FIELDS} }} }} }} }}"""
BALANCE = f"query($r:String!){{ Cards(card_reference:$r,page:1,limit:1){{ data {{ {CARD_FIELDS} }} }} }}"


class Till:
    """A till over in-process ASGI, signed in as the demo account's API user."""

    def __init__(self, app: Starlette, demo: Demo) -> None:
        transport = httpx.ASGITransport(app=app, client=(f"10.7.{uuid.uuid4().int % 250}.1", 1))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://till.test")
        self.demo = demo
        self.auth: dict[str, str] = {}

    async def sign_in(self, services: Services) -> Till:
        """Hold a token for the API user, issued without a password check (tests/support.py signed_in)."""
        self.auth = {"Authorization": f"Bearer {await api_user_token(services, self.demo.api_username)}"}
        return self

    async def call(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        reply = await self.http.post("/graphql", json={"query": query, "variables": variables}, headers=self.auth)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        body.pop("extensions", None)
        return body

    async def sell(self, value: int, *, discount: int = 0, **item: Any) -> dict[str, Any]:
        """Sell one generated card; its line item (with the card)."""
        order_item: dict[str, Any] = {
            "fulfilment_method_id": 3,
            "product_id": self.demo.product_id,
            "generate_card_reference": True,
            "custom_price_modifier_value": value,
            **item,
        }
        if discount:
            order_item["discounts"] = [{"discount_type_id": 1, "value": discount}]
        body = await self.call(SELL, {**self._till(), "account_id": self.demo.account_id,
                                      "order_items": [order_item], "total": value - discount})  # fmt: skip
        assert "errors" not in body, body
        line: dict[str, Any] = body["data"]["createOrder"]["LineItems"][0]
        return line

    async def adjust(self, card: str, value: int) -> dict[str, Any]:
        return await self.call(ADJUST, {**self._till(), "value": value, "card_reference": card})

    async def balance(self, card: str) -> dict[str, Any]:
        body = await self.call(BALANCE, {"r": card})
        [found] = body["data"]["Cards"]["data"]
        result: dict[str, Any] = found
        return result

    def _till(self) -> dict[str, Any]:
        return {"merchant_id": self.demo.merchant_id, "unit_epos_reference": self.demo.epos}

    async def close(self) -> None:
        await self.http.aclose()


def refusal(body: dict[str, Any], operation: str) -> tuple[str, str, bool]:
    """(code, message, customer_facing) of a refused request, whose data must be null."""
    assert body["data"] == {operation: None}, body
    [error] = body["errors"]
    return error["extensions"]["code"], error["message"], error["customer_facing"]


@dataclass(frozen=True)
class State:
    """What a refused request must leave as it was, for one account."""

    cards: list[tuple[Any, ...]]
    line_items: int
    transactions: int
    messages: int
    products: list[tuple[Any, ...]]


async def state(services: Services, account_id: int) -> State:
    async with services.db.engine.connect() as conn:

        async def count(table: Any) -> int:
            found = await conn.execute(select(func.count()).select_from(table).where(table.c.account_id == account_id))
            return int(found.scalar_one())

        rows = await conn.execute(
            select(
                cards.c.card_reference, cards.c.status, cards.c.balance, cards.c.tender_balance,
                cards.c.discount_balance, cards.c.expiry_time, cards.c.validity_start_time, cards.c.blocked_reason,
                cards.c.expiry_reminded_for,
            ).where(cards.c.account_id == account_id).order_by(cards.c.id)
        )  # fmt: skip
        product_rows = await conn.execute(select(products).where(products.c.account_id == account_id))
        return State(
            [tuple(r) for r in rows],
            await count(line_items),
            await count(transactions),
            await count(outbox_messages),
            [tuple(r) for r in product_rows],
        )


async def set_card(services: Services, account_id: int, reference: str, **values: Any) -> None:
    """Set a card's columns directly (an expiry in the past, say: no use case sets one)."""
    async with services.db.transaction() as conn:
        await conn.execute(
            update(cards).where(cards.c.account_id == account_id, cards.c.card_reference == reference).values(**values)
        )


async def line_item_types(services: Services, account_id: int, reference: str) -> list[tuple[int, int, int, int]]:
    """(type id, value, tender, discount) of a card's line items, oldest first."""
    async with services.db.engine.connect() as conn:
        rows = await conn.execute(
            select(line_items.c.type_id, line_items.c.value, line_items.c.tender, line_items.c.discount)
            .select_from(line_items.join(cards, cards.c.id == line_items.c.card_id))
            .where(line_items.c.account_id == account_id, cards.c.card_reference == reference)
            .order_by(line_items.c.id)
        )
        return [tuple(int(v) for v in r) for r in rows]  # type: ignore[misc]


# $1 account, $2 how many, $3 tender each, $4 discount each, $5 expiry (in the past: due), $6 the numbers' prefix.
# One transaction holds the cards' sales (Sale line items without an order), so `ledger verify` holds before and
# after the run.
DUE_CARDS = """
WITH tx AS (
    INSERT INTO transactions (account_id, kind, created_at) VALUES ($1, 'order', now()) RETURNING id
),
made AS (
    INSERT INTO cards (account_id, card_reference, currency, status, balance, tender_balance, discount_balance,
                       initial_balance, expiry_time, created_at, updated_at)
    SELECT $1, $6::text || lpad(n::text, 9, '0'), 'GBP', 'active', $3::bigint + $4::bigint, $3, $4,
           $3::bigint + $4::bigint, $5, now(), now()
    FROM generate_series(1, $2::integer) AS n
    RETURNING id
)
INSERT INTO line_items (account_id, card_id, transaction_id, type_id, value, tender, discount, created_at)
SELECT $1, made.id, tx.id, 1, $3::bigint + $4::bigint, $3, $4, now() FROM made, tx
"""


async def due_cards(
    services: Services, account_id: int, count: int, *, tender: int, discount: int, expiry: datetime
) -> str:
    """`count` sold cards holding tender + discount, expiring at `expiry`; their numbers' common prefix."""
    prefix = "9" + uuid.uuid4().int.__str__()[:9]
    async with services.db.transaction() as conn:
        await conn.exec_driver_sql(DUE_CARDS, (account_id, count, tender, discount, expiry, prefix))
    return prefix
