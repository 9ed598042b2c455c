"""Stopping a sender waits for its posts in flight, not for every leased delivery of a slow endpoint: those not
yet posted are left to their lease (found by the bench, where a dead endpoint's 16 leased deliveries, 4 at a
time and 10 s each, held a stopping server for 40 s)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from giftledger.outbound.webhooks import Reply, WebhookPoster
from giftledger.services import webhook_sender, webhooks
from giftledger.services.context import Services, operator
from giftledger.storage.outbox import outbox_messages
from tests.support import new_demo


class SlowReceiver(WebhookPoster):
    """Posts that take until `answer` is set, then succeed; the bodies posted, in order."""

    def __init__(self) -> None:
        super().__init__(production=False)
        self.answer = asyncio.Event()
        self.posted: list[bytes] = []

    async def post(self, url: str, body: bytes, *, secret: str, previous_secret: str | None = None) -> Reply:
        self.posted.append(body)
        await self.answer.wait()
        return Reply(200, "ok")


async def test_stopping_posts_nothing_new_and_leaves_the_rest_to_their_lease(services: Services, database: str) -> None:
    demo = await asyncio.to_thread(new_demo, database)
    owner = operator(demo.account_id)
    endpoint = await webhooks.add_endpoint(services, owner, "https://example.com/hooks", ["order.created"])
    leased = webhook_sender.LEASED_PER_ENDPOINT
    for _ in range(leased):
        await webhooks.send_test_event(services, owner, endpoint.id)
    poster = SlowReceiver()
    sender = webhook_sender.WebhookSender(services, poster)
    sender.start()
    while len(poster.posted) < webhook_sender.PER_ENDPOINT:  # the first round is in flight, the rest wait
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(sender.stop())
    await asyncio.sleep(0)  # `stop` has begun: the sender is stopping
    poster.answer.set()  # then the posts in flight are answered
    await stopping

    assert len(poster.posted) == webhook_sender.PER_ENDPOINT
    async with services.db.read() as conn:
        rows = (
            await conn.execute(
                select(outbox_messages.c.state, outbox_messages.c.attempts, outbox_messages.c.locked_until)
                .where(outbox_messages.c.endpoint_id == endpoint.id)
                .order_by(outbox_messages.c.id)
            )
        ).all()
    sent = [(r.state, r.attempts, r.locked_until) for r in rows if r.state == "sent"]
    waiting = [(r.state, r.attempts) for r in rows if r.state != "sent"]
    assert sent == [("sent", 1, None)] * webhook_sender.PER_ENDPOINT
    # claimed (one attempt counted, as for a sender that died) and leased: sent by whoever claims them next
    assert waiting == [("queued", 1)] * (leased - webhook_sender.PER_ENDPOINT)
    assert all(r.locked_until is not None for r in rows if r.state == "queued")
