"""Two servers on one database, each with its own sender: 100 e-gift orders, taken by both, give 100 messages,
none twice (by Message-ID and by card), and both senders share the work (SKIP LOCKED, leases).

(100, not more: each e-gift order builds its whole message, QR code included, in the order's transaction, about
10 ms of CPU, and the suite has a time budget. `bench/outbox_drain.py` drains 10,000.)"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.outbox.live import (
    e_gift_order,
    grouped,
    message_ids,
    outbox_rows,
    qr_code,
    sold_card,
    start_mailing_server,
    states,
    text_of,
)
from tests.outbox.smtp import smtp_server
from tests.safety.helpers import wait_for
from tests.support import LiveServer, fresh_database, new_demo, signed_in

ORDERS = 100
TILLS = 16  # requests in flight at once, shared out over the two servers


@pytest.fixture
def isolated(pg_base_url: str) -> Iterator[str]:
    with fresh_database(pg_base_url) as url:
        yield url


async def order_all(servers: list[tuple[LiveServer, str]], bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send every order, alternating between the servers, `TILLS` at a time; the replies in order."""
    slots = asyncio.Semaphore(TILLS)
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=TILLS)) as client:

        async def one(n: int, body: dict[str, Any]) -> dict[str, Any]:
            server, token = servers[n % len(servers)]
            headers = {"Authorization": f"Bearer {token}"}
            async with slots:
                response = await client.post(server.graphql_url, json=body, headers=headers)
            assert response.status_code == 200, response.text
            reply: dict[str, Any] = response.json()
            return reply

        return list(await asyncio.gather(*(one(n, body) for n, body in enumerate(bodies))))


def test_two_servers_on_one_database_send_100_orders_as_100_messages_none_twice(isolated: str, tmp_path: Path) -> None:
    demo = new_demo(isolated)
    with smtp_server() as (inbox, url):
        # the envelope sender tells which server delivered a message (the message itself is built by the one
        # that took the order)
        servers = [
            start_mailing_server(isolated, tmp_path, url, MAIL_FROM=f"sender{n}@giftledger.test") for n in range(2)
        ]
        try:
            tills = [(server, signed_in(server, demo).token or "") for server in servers]
            bodies = [e_gift_order(demo, f"guest{n}@example.com", 1000 + n) for n in range(ORDERS)]
            sold = [sold_card(reply) for reply in asyncio.run(order_all(tills, bodies))]
            wait_for(lambda: states(outbox_rows(isolated)) == {"sent": ORDERS}, 60, "every message to be sent")
            rows = outbox_rows(isolated)
            received = inbox.snapshot()
        finally:
            for server in servers:
                server.stop()

    assert len(set(sold)) == ORDERS
    # 100 messages, one per row (by Message-ID), each tried once
    assert message_ids(received) == {r.message_id: 1 for r in rows}
    assert len(received) == ORDERS and all(r.attempts == 1 for r in rows)
    # one per card sold, to the address its order gave
    card_of = {r.message_id: r.card_reference for r in rows}
    assert sorted(card_of[got.message_id] or "" for got in received) == sorted(sold)
    wanted = {card: f"guest{n}@example.com" for n, card in enumerate(sold)}
    assert all(got.recipients == [wanted[card_of[got.message_id] or ""]] for got in received)
    for got in received[::10]:  # the content of some of them: the card's number ...
        assert grouped(card_of[got.message_id] or "") in text_of(got.message)
    for got in received[::50]:  # ... and its QR code
        assert qr_code(got.message) == card_of[got.message_id]
    # both senders sent some of them
    by_sender = Counter(got.sender for got in received)
    assert set(by_sender) == {"sender0@giftledger.test", "sender1@giftledger.test"}, by_sender
