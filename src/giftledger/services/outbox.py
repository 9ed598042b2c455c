"""The outbox's use cases: queue a message in the unit of work of the change that causes it, and the sender
that delivers what is due (one per server process: `Sender`, started by the app's lifespan).

Delivery is at least once, and a repeat is recognisable: a message is leased while it is sent (for
`mail_lease_seconds`: 2 minutes by default, well beyond one SMTP exchange, outbound/mailers.py's 30 s timeout);
if the process dies between the mailer accepting it and the row being marked sent, the lease runs out and the
same bytes (the same Message-ID) are sent again. A failed attempt is retried after `mail_retry_seconds`,
doubling each time (up to 6 hours), until `mail_max_attempts`; then, or at once when the server refuses it for
good (a 5xx reply), the message stops as failed with the reason, which the dashboard shows. The schedule lives
in the database (the row's `next_attempt_at`), so it survives restarts: a retry library that sleeps in-process
would not."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from giftledger.outbound.emails import Built
from giftledger.outbound.mailers import DeliveryFailed, Mailer
from giftledger.services.context import Services
from giftledger.services.webhook_sender import WebhookSender
from giftledger.storage.clock import utcnow
from giftledger.storage.outbox import AccountOutbox, Claimed, OutboxQueue
from giftledger.storage.unit_of_work import UnitOfWork

log = logging.getLogger("giftledger.outbox")

RETRY_CAP = timedelta(hours=6)
BATCH = 50  # messages claimed at once by one sender
CONCURRENCY = 8  # of those, delivered at the same time
POLL_S = 1.0  # how often an idle sender looks for due messages


async def queue(
    uow: UnitOfWork, built: Built, *, kind: str, recipient: str, card_id: int | None = None, order_id: int | None = None
) -> int:
    """Queue a built message in the caller's transaction: it is sent if, and only if, that transaction commits."""
    return await AccountOutbox(uow.conn, uow.account_id).add(
        kind=kind,
        recipient=recipient,
        subject=built.subject,
        message_id=built.message_id,
        content=built.content,
        now=utcnow(),
        card_id=card_id,
        order_id=order_id,
    )


def retry_delay(services: Services, attempts: int) -> timedelta | None:
    """How long after its `attempts`-th failed attempt a message is tried again (None: no more)."""
    settings = services.settings
    if attempts >= settings.mail_max_attempts:
        return None
    return min(timedelta(seconds=settings.mail_retry_seconds * 2 ** (attempts - 1)), RETRY_CAP)


async def _attempt(services: Services, mailer: Mailer, message: Claimed) -> None:
    """One attempt, any failure as `DeliveryFailed`: an error the mailer did not expect is a failed attempt too
    (retried, then failed, with its reason shown), never a message left leased to be tried again for ever."""
    try:
        await mailer.deliver(
            message.content,
            sender=services.settings.mail_from,
            recipient=message.recipient,
            message_id=message.message_id,
        )
    except DeliveryFailed:
        raise
    except Exception as error:
        log.exception("message %s: the mailer failed unexpectedly", message.id)
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from error


async def _deliver(services: Services, mailer: Mailer, message: Claimed) -> bool:
    try:
        await _attempt(services, mailer, message)
    except DeliveryFailed as failure:
        delay = None if failure.permanent else retry_delay(services, message.attempts)
        async with services.db.transaction() as conn:
            await OutboxQueue(conn).not_sent(message.id, failure.reason, utcnow() + delay if delay else None)
        log.warning(
            "message %s not sent (attempt %d, %s): %s",
            message.id,
            message.attempts,
            "retrying" if delay else "failed",
            failure.reason,
        )
        return False
    async with services.db.transaction() as conn:
        await OutboxQueue(conn).sent(message.id, utcnow())
    return True


async def backlog(services: Services) -> tuple[int, datetime | None]:
    """How many messages wait to be sent, and when the oldest was queued (the metrics: metrics.py)."""
    async with services.db.read() as conn:
        return await OutboxQueue(conn).backlog()


async def deliver_due(services: Services, mailer: Mailer, *, limit: int = BATCH) -> int:
    """Claim up to `limit` due messages and deliver them (up to `CONCURRENCY` at a time); how many were claimed."""
    async with services.db.transaction() as conn:
        lease = timedelta(seconds=services.settings.mail_lease_seconds)
        claimed = await OutboxQueue(conn).claim(utcnow(), lease, limit)
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(message: Claimed) -> None:
        async with slots:
            await _deliver(services, mailer, message)

    await asyncio.gather(*(one(m) for m in claimed))
    return len(claimed)


class Sender:
    """Delivers due messages until stopped: a full batch is followed at once by the next, otherwise it looks
    again after `POLL_S`. An unexpected error (the database away, say) is logged and the loop goes on. The
    outbox's webhook deliveries have a loop of their own beside it (services/webhook_sender.py), so that a slow
    receiver never holds up an email, nor an email server a webhook."""

    def __init__(self, services: Services, mailer: Mailer, webhooks: WebhookSender | None = None) -> None:
        self._services = services
        self._mailer = mailer
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._webhooks = webhooks or WebhookSender(services)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="giftledger-outbox-sender")
        self._webhooks.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._webhooks.stop()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = await deliver_due(self._services, self._mailer)
            except Exception:
                log.exception("the outbox sender failed a round; trying again")
                claimed = 0
            if claimed < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=POLL_S)
