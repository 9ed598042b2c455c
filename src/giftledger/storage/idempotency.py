"""Idempotency keys: a till's `Idempotency-Key` per account, the request it named, and the stored reply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from giftledger.domain.validation import MAX_KEY_LENGTH
from giftledger.storage.clock import as_utc
from giftledger.storage.tables import Id, metadata

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("key", String(MAX_KEY_LENGTH), nullable=False),
    Column("request_hash", String(64), nullable=False),
    # running: a request holds the key until `locked_until`; done: `response_*` is the stored reply
    Column("state", String(10), nullable=False),
    Column("owner", String(80), nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=False),
    Column("response_status", Integer),
    Column("response_body", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
    CheckConstraint("state IN ('running', 'done')", name="state_known"),
    Index("ix_idempotency_keys_account_created", "account_id", "created_at"),
)


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    request_hash: str
    state: str
    owner: str
    locked_until: datetime
    response_status: int | None
    response_body: bytes | None


class IdempotencyKeys:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    def _where(self, key: str) -> tuple[ColumnElement[bool], ...]:
        return (idempotency_keys.c.account_id == self._account_id, idempotency_keys.c.key == key)

    async def get(self, key: str, *, lock: bool = False) -> IdempotencyRecord | None:
        query = select(
            idempotency_keys.c.key,
            idempotency_keys.c.request_hash,
            idempotency_keys.c.state,
            idempotency_keys.c.owner,
            idempotency_keys.c.locked_until,
            idempotency_keys.c.response_status,
            idempotency_keys.c.response_body,
        ).where(*self._where(key))
        if lock:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data["locked_until"] = as_utc(data["locked_until"])
        if data["response_body"] is not None:
            data["response_body"] = bytes(data["response_body"])
        return IdempotencyRecord(**data)

    async def start(self, key: str, request_hash: str, owner: str, now: datetime, locked_until: datetime) -> None:
        """Claim a new key. Two claims racing each other: the unique index refuses the second."""
        await self._conn.execute(
            idempotency_keys.insert().values(
                account_id=self._account_id,
                key=key,
                request_hash=request_hash,
                state="running",
                owner=owner,
                locked_until=locked_until,
                created_at=now,
            )
        )

    async def take_over(self, key: str, owner: str, locked_until: datetime) -> bool:
        """Claim a key whose previous holder stopped without finishing (its lease ran out)."""
        result = await self._conn.execute(
            update(idempotency_keys)
            .where(*self._where(key), idempotency_keys.c.state == "running")
            .values(owner=owner, locked_until=locked_until)
        )
        return result.rowcount == 1

    async def finish(self, key: str, owner: str, status: int, body: bytes, now: datetime) -> bool:
        """Store the reply of the request that holds the key."""
        result = await self._conn.execute(
            update(idempotency_keys)
            .where(*self._where(key), idempotency_keys.c.state == "running", idempotency_keys.c.owner == owner)
            .values(state="done", response_status=status, response_body=body, completed_at=now)
        )
        return result.rowcount == 1

    async def release(self, key: str, owner: str) -> None:
        """Give a key back unused (the request applied nothing), so a retry runs afresh."""
        await self._conn.execute(
            delete(idempotency_keys).where(
                *self._where(key), idempotency_keys.c.state == "running", idempotency_keys.c.owner == owner
            )
        )

    async def purge_created_before(self, cutoff: datetime) -> None:
        await self._conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.account_id == self._account_id, idempotency_keys.c.created_at < cutoff
            )
        )
