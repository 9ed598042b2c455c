"""The outbox's webhook deliveries: the sender's second loop (services/outbox.py `Sender` runs it beside the
emails' one), over the same table and the same lease, retry and mark steps.

It never waits for a batch to finish. It leases up to `LEASED_PER_ENDPOINT` due deliveries of an endpoint at
once (`LEASED_PER_ACCOUNT` of one account's endpoints, `LEASED` in all: the claim statement enforces them, given
what it holds already) and posts them as tasks, at most `PER_ENDPOINT` at a time to one endpoint and `CAPACITY`
in all; the deliveries taken are marked in batches, one statement for all that finished meanwhile, and each
batch marked lets it claim again. A slow or dead endpoint holds at most its own few slots, for at most the
10-second timeout each (its leased deliveries wait at most 4 rounds of that, well within the lease), so other
endpoints and other accounts are not held up; and the tills never wait for any of it (their events are rows,
written in their own transactions).

Stopping (SIGTERM) waits for the posts in flight and marks them; leased deliveries not yet posted are left to
their lease, as a sender that died leaves them.

A failed attempt (no 2xx reply in time) is retried after `webhook_retry_seconds`, doubling each time up to 6
hours, until `webhook_max_attempts`; then the delivery stops as failed (the endpoint's log shows it, with
"Redeliver"). An endpoint whose every attempt has failed for `DISABLE_AFTER` (3 days) is disabled, with the
reason the dashboard shows. Delivery is at least once: a sender that dies mid-delivery leaves its lease to run
out, and the same body, with the same event id, is sent again."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta

from giftledger.domain import webhooks as rules
from giftledger.outbound.webhooks import AttemptFailed, WebhookPoster
from giftledger.services.context import Services
from giftledger.storage.clock import utcnow
from giftledger.storage.webhooks import ClaimedWebhook, Delivered, WebhookQueue

log = logging.getLogger("giftledger.webhooks")

CAPACITY = 32  # deliveries posted at once, per process
PER_ENDPOINT = 4  # of those, to one endpoint
LEASED = 128  # deliveries leased at once, per process (posted, or waiting for a slot)
LEASED_PER_ENDPOINT = 16  # of those, of one endpoint: 4 rounds of PER_ENDPOINT, 40 s at most, within the lease
LEASED_PER_ACCOUNT = 32  # of those, of one account's endpoints
POLL_S = 0.5  # how often an idle sender looks for due deliveries
# Marking and claiming are batched: deliveries taken are marked when `MARK_BATCH` have finished, or all that were
# leased, or `GATHER_S` after the first of them; a claim waits `GATHER_S` after room was freed while deliveries are
# still in flight, so that it fills what frees meanwhile.
# Marked and claimed one at a time, a delivery cost two statements (2.6 transactions and 1.7 ms of PostgreSQL
# CPU each, draining 3,000 to a local receiver); batched, 0.15 transactions: docs/webhooks.md, "Cost".
MARK_BATCH = 32
GATHER_S = 0.02
RETRY_CAP = timedelta(hours=6)


def retry_at_delay(services: Services, attempts: int) -> timedelta | None:
    settings = services.settings
    return rules.retry_delay(
        timedelta(seconds=settings.webhook_retry_seconds), attempts, settings.webhook_max_attempts, RETRY_CAP
    )


async def attempt(services: Services, poster: WebhookPoster, delivery: ClaimedWebhook) -> Delivered | None:
    """One attempt at a claimed delivery: what to mark when the receiver took it; a failure is recorded here
    (None)."""
    try:
        reply = await poster.post(
            delivery.url, delivery.content, secret=delivery.secret, previous_secret=delivery.previous_secret
        )
    except Exception as error:
        if isinstance(error, AttemptFailed):
            failure = error
        else:  # a failure the poster did not expect is a failed attempt too, never a delivery leased for ever
            log.exception("delivery %s: the poster failed unexpectedly", delivery.id)
            failure = AttemptFailed(f"{type(error).__name__}: {error}")
        delay = retry_at_delay(services, delivery.attempts)
        now = utcnow()
        async with services.db.transaction() as conn:
            disabled = await WebhookQueue(conn).not_delivered(
                delivery.id,
                delivery.endpoint_id,
                status=failure.status,
                excerpt=failure.excerpt,
                error=failure.reason,
                retry_at=now + delay if delay else None,
                now=now,
                disable_after=rules.DISABLE_AFTER,
            )
        log.warning(
            "webhook delivery %s (event %s) to endpoint %s failed (attempt %d, %s): %s",
            delivery.id,
            delivery.event_id,
            delivery.endpoint_id,
            delivery.attempts,
            "retrying" if delay else "failed",
            failure.reason,
        )
        if disabled:
            log.warning("webhook endpoint %s disabled: failing for %s", delivery.endpoint_id, rules.DISABLE_AFTER)
        return None
    return Delivered(delivery.id, reply.status, reply.excerpt, utcnow())


async def deliver(services: Services, poster: WebhookPoster, delivery: ClaimedWebhook) -> bool:
    """One attempt at a claimed delivery, and its outcome recorded; True when delivered."""
    done = await attempt(services, poster, delivery)
    if done is not None:
        async with services.db.transaction() as conn:
            await WebhookQueue(conn).delivered([done])
    return done is not None


class WebhookSender:
    """Delivers due webhook deliveries until stopped (see the module's docstring)."""

    def __init__(self, services: Services, poster: WebhookPoster | None = None) -> None:
        self._services = services
        self._poster = poster
        self._stop = asyncio.Event()
        self._freed = asyncio.Event()  # a batch was marked (or a delivery failed): there may be room to claim
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._endpoints: Counter[int] = Counter()  # leased, by endpoint
        self._accounts: Counter[int] = Counter()
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._posting = asyncio.Semaphore(CAPACITY)
        self._done: list[tuple[Delivered, ClaimedWebhook]] = []
        self._marking = asyncio.Lock()
        self._gathering: asyncio.Task[None] | None = None  # marks what finished, `GATHER_S` after the first

    def start(self) -> None:
        if self._poster is None:
            self._poster = WebhookPoster(production=self._services.settings.environment == "production")
        self._task = asyncio.create_task(self._run(), name="giftledger-webhook-sender")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._gathering is not None:
            await asyncio.gather(self._gathering, return_exceptions=True)
        await self._mark()
        if self._poster is not None:
            await self._poster.close()

    async def claim_round(self) -> int:
        """Claim what the leases allow and start delivering it; how many were claimed."""
        free = LEASED - sum(self._endpoints.values())
        if free <= 0:
            return 0
        lease = timedelta(seconds=self._services.settings.webhook_lease_seconds)
        async with self._services.db.transaction() as conn:
            claimed = await WebhookQueue(conn).claim(
                utcnow(),
                lease,
                free,
                in_flight_endpoints=dict(self._endpoints),
                in_flight_accounts=dict(self._accounts),
                per_endpoint=LEASED_PER_ENDPOINT,
                per_account=LEASED_PER_ACCOUNT,
            )
        for delivery in claimed:
            self._endpoints[delivery.endpoint_id] += 1
            self._accounts[delivery.account_id] += 1
            task = asyncio.create_task(self._one(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def _one(self, delivery: ClaimedWebhook) -> None:
        assert self._poster is not None
        slots = self._slots.setdefault(delivery.endpoint_id, asyncio.Semaphore(PER_ENDPOINT))
        try:
            async with slots, self._posting:
                # Stopping: one still waiting for a slot is not posted, but left to its lease (another sender,
                # or this one's next start, sends it once the lease runs out), so that stopping waits for the
                # posts in flight (10 s at most), not for every round of a slow endpoint's leased deliveries.
                done = None if self._stop.is_set() else await attempt(self._services, self._poster, delivery)
        except Exception:
            log.exception("webhook delivery %s failed to record its outcome", delivery.id)
            done = None
        if done is None:  # failed (recorded, or left to its lease): its lease is given up here
            self._release([delivery])
            return
        self._done.append((done, delivery))
        everything_done = len(self._done) == sum(self._endpoints.values())  # nothing else leased is in flight
        if (len(self._done) >= MARK_BATCH or everything_done) and not self._marking.locked():
            await self._mark()
        elif self._gathering is None:
            self._gathering = asyncio.create_task(self._mark_soon())

    async def _mark_soon(self) -> None:
        try:
            await asyncio.sleep(GATHER_S)
            await self._mark()
        finally:
            self._gathering = None

    async def _mark(self) -> None:
        """Mark every delivery taken so far, in one statement; those taken meanwhile, in the next."""
        async with self._marking:
            while self._done:
                batch, self._done = self._done, []
                try:
                    async with self._services.db.transaction() as conn:
                        await WebhookQueue(conn).delivered([done for done, _ in batch])
                except Exception:  # left leased: the lease runs out and each is sent again
                    log.exception("marking %d webhook deliveries failed", len(batch))
                self._release([delivery for _, delivery in batch])

    def _release(self, deliveries: list[ClaimedWebhook]) -> None:
        for delivery in deliveries:
            self._endpoints[delivery.endpoint_id] -= 1
            self._accounts[delivery.account_id] -= 1
        self._endpoints += Counter()  # drop the zeros
        self._accounts += Counter()
        for endpoint_id in [e for e in self._slots if e not in self._endpoints]:
            del self._slots[endpoint_id]
        self._freed.set()

    async def _run(self) -> None:
        while not self._stop.is_set():
            self._freed.clear()
            try:
                await self.claim_round()  # all that is due, as far as the room allows: more only once room frees
            except Exception:
                log.exception("the webhook sender failed a round; trying again")
            if await self._stopped_within(POLL_S, self._freed):
                return
            if self._freed.is_set() and self._endpoints:  # room was freed with deliveries still in flight:
                self._freed.clear()  # gather what else frees meanwhile, then claim it all
                if await self._stopped_within(GATHER_S):
                    return

    async def _stopped_within(self, seconds: float, event: asyncio.Event | None = None) -> bool:
        """Wait `seconds`, or less if stopped (or `event` set): True when stopped."""
        stop = asyncio.ensure_future(self._stop.wait())
        waits = {stop}
        if event is not None:
            waits.add(asyncio.ensure_future(event.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        return self._stop.is_set()
