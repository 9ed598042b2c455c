"""The expiry run: breakage of every card whose expiry has come, and the reminder emails due before it.

At expiry a card's remaining balance moves out as one Breakage line item (its tender and discount parts),
through the ledger's one movement (storage/expiry.py). The run catches up on whatever came due while no
server was running, is safe with several servers at once (claims skip cards another run holds) and with a
crash at any point (each batch is one statement: done whole or not at all), and breaks each card's balance
once. Every server runs it in the background (`Expirer`, started by the app's lifespan) every
`INTERVAL_S`; `giftledger expire` runs it once by hand.

A reminder is an email to the card's recipient `expiry_reminder_days` before its expiry (when its product or
order item asked for one), queued through the outbox in the transaction that records it was queued for that
expiry: one per card per expiry, never twice. Changing a card's expiry makes a reminder due again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from giftledger.domain import webhooks as events
from giftledger.domain.validity import shown_expiry_date
from giftledger.outbound import emails
from giftledger.services import outbox, webhooks
from giftledger.services.card_lifecycle import time_zone
from giftledger.services.context import Services
from giftledger.services.messages import brand_of, card_page_url
from giftledger.storage import expiry
from giftledger.storage.clock import utcnow
from giftledger.storage.unit_of_work import UnitOfWork

log = logging.getLogger("giftledger.expiry")

BATCH = 1000  # cards broken by one statement
REMINDER_BATCH = 100  # reminders queued by one transaction
INTERVAL_S = 60.0  # how often a server runs the expiry
EXPIRY_REMINDER = "card.expiry_reminder"


@dataclass(frozen=True)
class ExpiryRun:
    expired: int  # cards whose balance moved out by a Breakage line item
    reminded: int  # reminder emails queued


async def expire_due(services: Services, *, now: datetime | None = None, batch: int = BATCH) -> int:
    """Break every due card (one statement per batch of one account); how many this run broke."""
    at = now or utcnow()
    async with services.db.transaction() as conn:
        accounts = await expiry.accounts_due(conn, at)
    broken = 0
    for account_id in accounts:
        after = expiry.START
        while True:
            async with services.db.transaction() as conn:
                done = await expiry.break_batch(conn, account_id, at, batch, after)
            broken += done.broken
            if done.after is None or done.claimed < batch:  # fewer than asked: nothing left nobody else holds
                break
            after = done.after
    return broken


async def remind_due(services: Services, *, now: datetime | None = None, batch: int = REMINDER_BATCH) -> int:
    """Queue every due expiry reminder; how many this run queued."""
    at = now or utcnow()
    async with services.db.transaction() as conn:
        accounts = await expiry.reminder_accounts(conn, at)
    queued = 0
    for account_id in accounts:
        while True:
            async with services.db.transaction() as conn:
                uow = UnitOfWork(conn, account_id)
                due = await expiry.claim_reminders(conn, account_id, at, batch)
                if due:
                    await _queue_reminders(services, uow, due, at)
            queued += len(due)
            if len(due) < batch:
                break
    return queued


async def _queue_reminders(services: Services, uow: UnitOfWork, due: list[expiry.DueReminder], now: datetime) -> None:
    brand = await brand_of(uow)
    zone = await time_zone(uow)
    for card in due:
        reminder = emails.ExpiryReminder(
            card_reference=card.card_reference,
            balance=card.balance,
            expires_on=shown_expiry_date(card.expiry_time, zone),
            card_page_url=await card_page_url(services, uow, card.card_id),
        )
        sender = services.settings.mail_from
        built = emails.expiry_reminder(brand, reminder, sender=sender, recipient=card.email, now=now)
        await outbox.queue(uow, built, kind=EXPIRY_REMINDER, recipient=card.email, card_id=card.card_id)
        await webhooks.queue_event(uow, events.EXPIRY_REMINDER, card_id=card.card_id)  # its webhook event
        await expiry.mark_reminded(uow.conn, uow.account_id, card.card_id, card.expiry_time)


async def run_expiry(services: Services, *, now: datetime | None = None, batch: int = BATCH) -> ExpiryRun:
    """One whole run: breakage first (a card whose expiry has come is never reminded), then reminders."""
    at = now or utcnow()
    return ExpiryRun(await expire_due(services, now=at, batch=batch), await remind_due(services, now=at))


class Expirer:
    """Runs the expiry at start (catching up on what came due while no server ran) and every `interval`
    seconds until stopped. An unexpected error (the database away, say) is logged and the loop goes on."""

    def __init__(self, services: Services, interval: float = INTERVAL_S) -> None:
        self._services = services
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="giftledger-expirer")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = await run_expiry(self._services)
                if done.expired or done.reminded:
                    log.info("expiry run", extra={"expired": done.expired, "reminded": done.reminded})
            except Exception:
                log.exception("the expiry run failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)
