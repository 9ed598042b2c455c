"""A till's redemption on an account without webhook endpoints runs the statement without the webhook event, which
refuses to move money an event is due for; each process remembers which accounts had endpoints (a hint,
storage/tills.py). A stale hint costs one more round trip: never an event, and never a second movement."""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]

from giftledger.domain.catalogue import POINTONE
from giftledger.services import webhooks
from giftledger.services.adjustments import AdjustmentRequest, adjust_balance
from giftledger.services.context import Services, operator
from giftledger.services.sales import OrderItem, OrderRequest, sell_cards
from giftledger.storage import tills
from tests.support import api_user_principal, new_demo, with_services


async def _counts(url: str, account_id: int) -> tuple[int, int, int]:
    """(line items, webhook events queued, the first sold card's balance) of the account."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM line_items WHERE account_id = $1) AS items,
                      (SELECT count(*) FROM outbox_messages WHERE account_id = $1 AND channel = 'webhook') AS events,
                      (SELECT balance FROM cards WHERE account_id = $1 AND status = 'active' ORDER BY id LIMIT 1)
                      AS balance""",
            account_id,
        )
        return int(row["items"]), int(row["events"]), int(row["balance"] or 0)
    finally:
        await conn.close()


def test_a_stale_hint_never_loses_an_event_nor_moves_twice(database_url: str) -> None:
    demo = new_demo(database_url)
    account = demo.account_id

    async def work(services: Services) -> list[Any]:
        till = await api_user_principal(services, demo)
        seen: list[Any] = []

        async def redeem(reference: str) -> None:
            request = AdjustmentRequest(card, 100, "GBP", demo.epos, POINTONE, reference)
            await adjust_balance(services, till, request)
            seen.append((tills._EVENTS_HINT.get(account), await _counts(database_url, account)))

        card = demo.card_references[0]
        item = OrderItem(
            product_id=demo.product_id, custom_price_modifier_value=1000, fulfilment_method_id=3, card_reference=card
        )
        await sell_cards(services, till, OrderRequest(account, POINTONE, [item], "GBP", 1000, 3, demo.epos, "hint-0"))
        seen.append(await _counts(database_url, account))
        tills._EVENTS_HINT[account] = True  # stale: no endpoint yet
        await redeem("hint-1")
        endpoint = await webhooks.add_endpoint(
            services, operator(account), "https://example.com/hooks", ["card.balance_adjusted"]
        )
        await redeem("hint-2")  # the hint says none: the statement without the event refuses, the one with it moves
        await redeem("hint-3")
        await webhooks.set_enabled(services, operator(account), int(endpoint.id), False)
        await redeem("hint-4")  # the hint says one: the statement with the event runs, and finds none to write
        await redeem("hint-5")
        return seen

    seen = with_services(database_url, work)
    items, events, balance = seen[0]
    assert seen[1:] == [
        (False, (items + 1, events, balance + 100)),
        (True, (items + 2, events + 1, balance + 200)),
        (True, (items + 3, events + 2, balance + 300)),
        (False, (items + 4, events + 2, balance + 400)),
        (False, (items + 5, events + 2, balance + 500)),
    ]
