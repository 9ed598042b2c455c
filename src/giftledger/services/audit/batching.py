"""Refused GraphQL mutations' audit records, written behind the requests that made them: a batch per short
delay, in one statement, so recording a refusal adds no database round trip to a till's request."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from giftledger.domain.errors import Retryable
from giftledger.services.audit.recording import Detail, Where, account_of, add_event, new_event
from giftledger.services.context import Principal, Services
from giftledger.storage import audit as storage
from giftledger.storage.database import DATABASE_ERRORS
from giftledger.storage.unit_of_work import UnitOfWork

log = logging.getLogger("giftledger.audit")


@dataclass(frozen=True)
class Attempt:
    """One audit record waiting in an `AuditQueue` (the arguments of `record`, and when it happened)."""

    principal: Principal | None
    operation: str
    outcome: str
    at: datetime
    where: Where | None = None
    card_references: tuple[str, ...] = ()
    line_item_ids: tuple[int, ...] = ()
    error_code: str | None = None
    client_address: str | None = None
    detail: Detail | None = None


# Why a batch may not be written now (it waits and is tried again): the database is away or refused it.
AUDIT_WRITE_ERRORS: tuple[type[Exception], ...] = (Retryable, OSError, *DATABASE_ERRORS)


@dataclass
class AuditQueue:
    """Audit records written behind the requests that made them: a batch per short delay, in one
    transaction, so auditing adds no database round trip to a till's request. `flush()` writes what is
    waiting now; `close()` flushes and stops (the app calls it on shutdown). If the database is down the
    batch waits and is retried; past `max_pending` waiting records the oldest are dropped, and logged."""

    services: Services
    delay_seconds: float = 0.05
    max_batch: int = 500
    max_pending: int = 50_000
    _pending: deque[Attempt] = field(default_factory=deque)
    _task: asyncio.Task[None] | None = None
    _wake: asyncio.Event | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closing: bool = False
    dropped: int = 0

    def put(self, attempt: Attempt) -> None:
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.dropped += 1
            log.error("audit queue full: %d audit records dropped so far", self.dropped)
        self._pending.append(attempt)
        if self._task is None or self._task.done():
            self._closing = False
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        assert self._wake is not None
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            if not self._closing:
                await asyncio.sleep(self.delay_seconds)
            if not await self._write_waiting() and not self._closing:
                await asyncio.sleep(max(1.0, self.delay_seconds))  # the database is down: try again shortly
                self._wake.set()

    async def _write_waiting(self, *, everything: bool = False) -> bool:
        """Write what was waiting when called (`everything`: and what arrives meanwhile), a batch per
        transaction. False when the database refused. Records that arrive during a write wait for the next
        round (after `delay_seconds`): writing them at once would make a stream of tiny batches, each a
        commit of its own, under steady load."""
        async with self._lock:
            left = len(self._pending)
            while self._pending and (everything or left > 0):
                batch = [self._pending[i] for i in range(min(self.max_batch, len(self._pending)))]
                try:
                    await _write_batch(self.services, batch)
                except AUDIT_WRITE_ERRORS as error:
                    log.warning("audit records not written yet (%s); retrying", type(error).__name__)
                    return False
                for _ in batch:
                    self._pending.popleft()
                left -= len(batch)
        return True

    async def flush(self) -> None:
        """Write every waiting record now (raises `Retryable` if the database refuses)."""
        if not await self._write_waiting(everything=True):
            raise Retryable("The audit log could not be written.")

    async def close(self) -> None:
        """Write what is waiting and stop the writer (on shutdown)."""
        self._closing = True
        if self._task is not None and not self._task.done():
            assert self._wake is not None
            self._wake.set()
            await self._task
        self._task = None
        await self._write_waiting(everything=True)


async def _write_batch(services: Services, batch: list[Attempt]) -> None:
    """A batch of attempts in one transaction: one statement writes them all (each till's site is looked up
    inside it), unless an attempt names line items (a reversal: their cards are read first)."""
    if not any(a.line_item_ids for a in batch):
        rows = [
            (
                new_event(
                    a.principal,
                    a.operation,
                    a.outcome,
                    account_of(a.principal, None),
                    None,
                    a.card_references,
                    a.error_code,
                    a.client_address,
                    a.detail,
                    a.at,
                ),
                (a.where.merchant_id, a.where.epos_reference) if a.where is not None and a.principal else None,
            )
            for a in batch
        ]
        await storage.AuditStatements(services.db).add(rows)
        return
    async with services.db.transaction() as conn:
        for attempt in batch:
            await _add(UnitOfWork(conn, attempt.principal.account_id if attempt.principal else 0), attempt)


async def _add(uow: UnitOfWork, attempt: Attempt) -> None:
    await add_event(
        uow,
        attempt.principal,
        operation=attempt.operation,
        outcome=attempt.outcome,
        where=attempt.where,
        card_references=attempt.card_references,
        line_item_ids=attempt.line_item_ids,
        error_code=attempt.error_code,
        client_address=attempt.client_address,
        detail=attempt.detail,
        at=attempt.at,
    )
