"""Dashboard sessions: one row per signed-in browser, found by the hash of the random id in its cookie.

Sessions belong to a user (global, like `login_attempts`); `account_id` is the account the browser is
acting on now (null until a person who belongs to several accounts has chosen one). The raw session id
is never stored, so a copy of the database cannot be replayed as a cookie. Ending a session deletes its row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.storage.clock import as_utc
from giftledger.storage.tables import Id, metadata

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("account_id", Id, ForeignKey("accounts.id")),
    Column("csrf_token", String(64), nullable=False),
    # the user's token_version when the session started: rotating it ends every session
    Column("token_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_dashboard_sessions_user", "user_id"),
)


@dataclass(frozen=True)
class SessionRow:
    id: int
    user_id: int
    account_id: int | None
    csrf_token: str
    token_version: int
    created_at: datetime
    expires_at: datetime


def _row(row: Any) -> SessionRow:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    data["expires_at"] = as_utc(data["expires_at"])
    return SessionRow(**data)


class Sessions:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self,
        *,
        token_hash: str,
        user_id: int,
        account_id: int | None,
        csrf_token: str,
        token_version: int,
        created_at: datetime,
        expires_at: datetime,
    ) -> int:
        result = await self._conn.execute(
            dashboard_sessions.insert()
            .values(
                token_hash=token_hash,
                user_id=user_id,
                account_id=account_id,
                csrf_token=csrf_token,
                token_version=token_version,
                created_at=created_at,
                expires_at=expires_at,
            )
            .returning(dashboard_sessions.c.id)
        )
        return int(result.scalar_one())

    async def by_token_hash(self, token_hash: str) -> SessionRow | None:
        row = (
            await self._conn.execute(
                select(
                    dashboard_sessions.c.id,
                    dashboard_sessions.c.user_id,
                    dashboard_sessions.c.account_id,
                    dashboard_sessions.c.csrf_token,
                    dashboard_sessions.c.token_version,
                    dashboard_sessions.c.created_at,
                    dashboard_sessions.c.expires_at,
                ).where(dashboard_sessions.c.token_hash == token_hash)
            )
        ).first()
        return _row(row) if row else None

    async def set_account(self, session_id: int, account_id: int) -> None:
        await self._conn.execute(
            update(dashboard_sessions).where(dashboard_sessions.c.id == session_id).values(account_id=account_id)
        )

    async def remove(self, session_id: int) -> None:
        await self._conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.id == session_id))

    async def remove_expired(self, user_id: int, now: datetime) -> None:
        await self._conn.execute(
            delete(dashboard_sessions).where(
                dashboard_sessions.c.user_id == user_id, dashboard_sessions.c.expires_at <= now
            )
        )

    async def remove_for_user(self, user_id: int, *, keep: int | None = None, token_version: int = 0) -> None:
        """End every session of a user (all but `keep`, when given, which goes on at `token_version`: the user's
        own after a credential event it made itself, such as changing its password)."""
        query = delete(dashboard_sessions).where(dashboard_sessions.c.user_id == user_id)
        if keep is not None:
            query = query.where(dashboard_sessions.c.id != keep)
            await self._conn.execute(
                update(dashboard_sessions).where(dashboard_sessions.c.id == keep).values(token_version=token_version)
            )
        await self._conn.execute(query)
