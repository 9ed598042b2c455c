"""An account's team as the dashboard manages it: members with their names, role changes, removals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.storage.clock import as_utc
from giftledger.storage.people import Directory
from giftledger.storage.tables import memberships, users


@dataclass(frozen=True)
class MemberRow:
    user_id: int
    email: str
    name: str
    role: str
    joined_at: datetime


class Members:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def all(self) -> list[MemberRow]:
        rows = await self._conn.execute(
            select(users.c.id, users.c.email, users.c.name, memberships.c.role, memberships.c.created_at)
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.account_id == self._account_id, users.c.deleted_at.is_(None))
            .order_by(users.c.name, users.c.id)
        )
        return [MemberRow(int(r.id), r.email, r.name, r.role, as_utc(r.created_at)) for r in rows]

    async def has_email(self, email: str) -> bool:
        """Whether a live member of this account has this address (nothing is read of anyone else)."""
        found = await self._conn.execute(
            select(users.c.id)
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(
                memberships.c.account_id == self._account_id,
                func.lower(users.c.email) == email.lower(),
                users.c.deleted_at.is_(None),
            )
        )
        return found.first() is not None

    async def role_of(self, user_id: int, *, lock: bool = False) -> str | None:
        query = select(memberships.c.role).where(
            memberships.c.account_id == self._account_id, memberships.c.user_id == user_id
        )
        if lock:
            query = query.with_for_update()
        return (await self._conn.execute(query)).scalar()

    async def count_with_role(self, role: str, *, lock: bool = False) -> int:
        """How many live users hold `role` here (locks those memberships when asked, so two owners
        cannot demote each other at the same moment)."""
        if lock:
            ids = select(memberships.c.id).where(
                memberships.c.account_id == self._account_id, memberships.c.role == role
            )
            await self._conn.execute(ids.with_for_update())
        total = (
            await self._conn.execute(
                select(func.count())
                .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
                .where(
                    memberships.c.account_id == self._account_id,
                    memberships.c.role == role,
                    users.c.deleted_at.is_(None),
                )
            )
        ).scalar_one()
        return int(total)

    async def set_role(self, user_id: int, role: str) -> bool:
        """A new role; the person's tokens and sessions are revoked (they sign in again to act with it)."""
        result = await self._conn.execute(
            update(memberships)
            .where(memberships.c.account_id == self._account_id, memberships.c.user_id == user_id)
            .values(role=role)
        )
        await Directory(self._conn).revoke_tokens(user_id)
        return result.rowcount == 1

    async def remove(self, user_id: int) -> bool:
        """Out of this account; the person's tokens and sessions are revoked (for every account: they sign in
        again to act on the others)."""
        result = await self._conn.execute(
            delete(memberships).where(memberships.c.account_id == self._account_id, memberships.c.user_id == user_id)
        )
        await Directory(self._conn).revoke_tokens(user_id)
        return result.rowcount == 1
