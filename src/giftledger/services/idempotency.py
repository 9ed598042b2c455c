"""Idempotency keys (an extension beyond the guide): the rules of claiming a key, replaying its stored reply,
and giving it back.

A key belongs to one account. The first request with a key claims it for a lease; when it ends, its
reply is stored (or, if it applied nothing, the key is given back). A later request with the same key
and the same request gets the stored reply; with a different request it is refused; while the first
is still running it is told to retry. A claim whose holder died (its lease ran out) is taken over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from giftledger.services.context import Principal, Services
from giftledger.storage.clock import utcnow
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.idempotency import IdempotencyKeys

# Longer than any request can run (see the transaction deadline in storage/database.py): a key whose
# holder has not finished by then is treated as abandoned.
LEASE = timedelta(seconds=60)
# Stored replies are kept this long; the key can be used afresh afterwards.
RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class Claimed:
    """The caller holds the key: run the request, then `finish` or `release`."""


@dataclass(frozen=True)
class Replay:
    """The request already ran: here is its reply."""

    status: int
    body: bytes


@dataclass(frozen=True)
class InProgress:
    """Another request with this key is still running."""


@dataclass(frozen=True)
class Mismatch:
    """The key was used for a different request."""


Claim = Claimed | Replay | InProgress | Mismatch


async def claim(services: Services, principal: Principal, key: str, request_hash: str, owner: str) -> Claim:
    """Claim `key` of the principal's account for this request (a stored reply only goes to a caller whose
    credential is still live: the unit of work checks it first)."""
    for _ in range(2):  # a second look settles a race between two first claims
        try:
            return await _claim_once(services, principal, key, request_hash, owner)
        except ConstraintBroken:
            continue
    return InProgress()


async def _claim_once(services: Services, principal: Principal, key: str, request_hash: str, owner: str) -> Claim:
    async with services.unit_of_work(principal) as uow:
        keys = IdempotencyKeys(uow.conn, principal.account_id)
        now = utcnow()
        await keys.purge_created_before(now - RETENTION)
        record = await keys.get(key, lock=True)
        if record is None:
            await keys.start(key, request_hash, owner, now, now + LEASE)
            return Claimed()
        if record.request_hash != request_hash:
            return Mismatch()
        if record.state == "done":
            assert record.response_status is not None and record.response_body is not None
            return Replay(record.response_status, record.response_body)
        if record.locked_until > now:
            return InProgress()
        await keys.take_over(key, owner, now + LEASE)
        return Claimed()


async def finish(services: Services, account_id: int, key: str, owner: str, status: int, body: bytes) -> bool:
    """Store the reply; False when the key is no longer ours (our lease ran out and another took it)."""
    async with services.db.transaction() as conn:
        return await IdempotencyKeys(conn, account_id).finish(key, owner, status, body, utcnow())


async def release(services: Services, account_id: int, key: str, owner: str) -> None:
    async with services.db.transaction() as conn:
        await IdempotencyKeys(conn, account_id).release(key, owner)
