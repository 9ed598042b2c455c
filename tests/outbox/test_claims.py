"""The claim leases at most its limit, oldest first, whatever plan PostgreSQL has cached for it: a sender that
polled an empty outbox for a while (as every idle server does) and then meets a burst of messages takes one
batch, not the whole backlog (storage/outbox.py, `OutboxQueue.claim`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from giftledger.app import build_services
from giftledger.storage.clock import utcnow
from giftledger.storage.outbox import AccountOutbox, OutboxQueue, outbox_messages
from tests.support import fresh_database, new_demo, run
from tests.support import test_settings as settings_for

LEASE = timedelta(minutes=2)
BURST = 300


@pytest.fixture
def isolated(pg_base_url: str) -> Iterator[str]:
    with fresh_database(pg_base_url) as url:
        yield url


def test_a_claim_takes_one_batch_of_a_burst_even_with_a_plan_cached_while_the_outbox_was_empty(
    isolated: str,
) -> None:
    demo = new_demo(isolated)

    async def work() -> None:
        # one connection, so the claim's prepared statement (and the plan PostgreSQL caches for it) is reused
        services = build_services(settings_for(isolated, database_pool_size=1))
        try:
            async with services.db.transaction() as conn:
                await conn.execute(text("ANALYZE outbox_messages"))  # empty, as an idle outbox's statistics say
            for _ in range(8):  # an idle sender's polls: from the sixth on, PostgreSQL may run a generic plan
                async with services.db.transaction() as conn:
                    assert await OutboxQueue(conn).claim(utcnow(), LEASE, 50) == []
            async with services.db.transaction() as conn:
                outbox = AccountOutbox(conn, demo.account_id)
                now = utcnow()
                for n in range(BURST):
                    await outbox.add(
                        kind="card.e_gift",
                        recipient=f"guest{n}@example.com",
                        subject="A gift card",
                        message_id=f"<burst-{n}@giftledger.test>",
                        content=b"Subject: A gift card\r\n\r\nHello\r\n",
                        now=now,
                    )
            batches = []
            for _ in range(2):
                async with services.db.transaction() as conn:
                    batches.append(await OutboxQueue(conn).claim(utcnow(), LEASE, 50))
            async with services.db.read() as conn:
                leased = await conn.execute(select(func.count()).where(outbox_messages.c.locked_until.is_not(None)))
                ids = (await conn.execute(select(outbox_messages.c.id).order_by(outbox_messages.c.id))).scalars()
                oldest = list(ids)[:100]
            assert [len(b) for b in batches] == [50, 50]
            assert [c.id for b in batches for c in b] == oldest  # the oldest, each once
            assert leased.scalar_one() == 100  # and no more than that is leased
        finally:
            await services.db.dispose()

    run(work())
