"""A card's latest sale (its purchaser, in every webhook event's card object) is one probe of the sales index
(migration 0013), however many line items the card has: the plan reads one line item, not the card's history."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from giftledger.domain.catalogue import POINTONE
from giftledger.services.context import Services
from giftledger.services.sales import OrderItem, OrderRequest, ReceiptContact, sell_cards
from giftledger.storage.webhooks import card_object
from tests.support import api_user_principal, new_demo, with_services

HISTORY = 2_000  # top-ups after the sale


def _line_item_rows(plan: dict[str, Any]) -> list[tuple[str | None, int, int]]:
    """(index used, rows returned, rows read and dropped) of every scan of line_items in the plan, subplans
    included."""
    found = []
    if plan.get("Relation Name") == "line_items":
        found.append((plan.get("Index Name"), int(plan["Actual Rows"]), int(plan.get("Rows Removed by Filter", 0))))
    for child in plan.get("Plans", []):
        found.extend(_line_item_rows(child))
    return found


async def _purchaser_plan(url: str, account_id: int, card_id: int) -> tuple[Any, list[tuple[str | None, int, int]]]:
    conn = await asyncpg.connect(url)
    try:
        query = f"SELECT {card_object('c')}::text FROM cards AS c WHERE c.account_id = $1 AND c.id = $2"
        card = json.loads(await conn.fetchval(query, account_id, card_id))
        [explained] = json.loads(await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", account_id, card_id))
        return card, _line_item_rows(explained["Plan"])
    finally:
        await conn.close()


def test_the_purchaser_is_one_probe_whatever_the_cards_history(database_url: str) -> None:
    demo = new_demo(database_url)
    account = demo.account_id
    number = demo.card_references[0]

    async def sell(services: Services) -> int:
        till = await api_user_principal(services, demo)
        item = OrderItem(
            product_id=demo.product_id, custom_price_modifier_value=1000, fulfilment_method_id=3, card_reference=number
        )
        request = OrderRequest(
            account,
            POINTONE,
            [item],
            "GBP",
            1000,
            3,
            demo.epos,
            "sales-index-1",
            receipt_contact=ReceiptContact("buyer@example.com", "Ann", "Buyer"),
        )
        order = await sell_cards(services, till, request)
        return order.line_items[0].card.card.id

    card_id = with_services(database_url, sell)

    async def grow() -> tuple[int, int]:
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                await conn.execute(
                    """INSERT INTO line_items (account_id, card_id, transaction_id, type_id, value, tender, discount,
                                               site_id, merchant_id, created_at)
                       SELECT account_id, card_id, transaction_id, 7, 1, 1, 0, site_id, merchant_id, created_at
                       FROM line_items, generate_series(1, $3)
                       WHERE account_id = $1 AND card_id = $2 AND type_id = 1""",
                    account,
                    card_id,
                    HISTORY,
                )
                await conn.execute(
                    "UPDATE cards SET balance = balance + $3, tender_balance = tender_balance + $3 "
                    "WHERE account_id = $1 AND id = $2",
                    account,
                    card_id,
                    HISTORY,
                )
            await conn.execute("ANALYZE line_items")
            row = await conn.fetchrow(
                "SELECT count(*) AS items, (SELECT balance FROM cards WHERE id = $2) AS balance FROM line_items "
                "WHERE account_id = $1 AND card_id = $2",
                account,
                card_id,
            )
            return int(row["items"]), int(row["balance"])
        finally:
            await conn.close()

    assert asyncio.run(grow()) == (HISTORY + 1, 1000 + HISTORY)
    card, scans = asyncio.run(_purchaser_plan(database_url, account, card_id))
    assert (card["card_reference"], card["balance"], card["purchaser_contact"]["email"]) == (
        number,
        1000 + HISTORY,
        "buyer@example.com",
    )
    assert scans == [("ix_line_items_card_sales", 1, 0)]
