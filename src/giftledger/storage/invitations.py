"""Invitations to join an account's team: pending until the person invited accepts them, signed in as the
address invited (or creating their login for it), or until they expire or are cancelled.

An invitation belongs to the inviting account (`account_id`); the person's login, if any, is never read or
changed by inviting. The secret in the invitation's link is stored only as its hash, like a session id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, String, Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.storage.clock import as_utc
from giftledger.storage.tables import Id, accounts, metadata

invitations = Table(
    "invitations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("email", String(320), nullable=False),  # lower case
    Column("name", String(200), nullable=False),  # as the inviter typed it
    Column("role", String(40), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("invited_by", Id, ForeignKey("users.id")),  # None: the operator
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_invitations_account_email", "account_id", "email", unique=True),
    Index("ix_invitations_email", "email"),
)


@dataclass(frozen=True)
class InvitationRow:
    id: int
    account_id: int
    account_name: str
    email: str
    name: str
    role: str
    created_at: datetime
    expires_at: datetime


_COLUMNS = (
    invitations.c.id,
    invitations.c.account_id,
    accounts.c.name.label("account_name"),
    invitations.c.email,
    invitations.c.name,
    invitations.c.role,
    invitations.c.created_at,
    invitations.c.expires_at,
)


def _row(row: Any) -> InvitationRow:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    data["expires_at"] = as_utc(data["expires_at"])
    return InvitationRow(**data)


def _select() -> Any:
    return select(*_COLUMNS).join(accounts, accounts.c.id == invitations.c.account_id)


class AccountInvitations:
    """The invitations an account has sent."""

    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def replace(
        self,
        *,
        email: str,
        name: str,
        role: str,
        token_hash: str,
        invited_by: int | None,
        now: datetime,
        expires_at: datetime,
    ) -> int:
        """Invite `email`; an earlier invitation of the same address by this account is replaced (its link
        stops working)."""
        await self._conn.execute(
            delete(invitations).where(
                invitations.c.account_id == self._account_id, invitations.c.email == email.lower()
            )
        )
        result = await self._conn.execute(
            invitations.insert()
            .values(
                account_id=self._account_id,
                email=email.lower(),
                name=name,
                role=role,
                token_hash=token_hash,
                invited_by=invited_by,
                created_at=now,
                expires_at=expires_at,
            )
            .returning(invitations.c.id)
        )
        return int(result.scalar_one())

    async def pending(self, now: datetime) -> list[InvitationRow]:
        rows = await self._conn.execute(
            _select()
            .where(invitations.c.account_id == self._account_id, invitations.c.expires_at > now)
            .order_by(invitations.c.email)
        )
        return [_row(r) for r in rows]

    async def cancel(self, invitation_id: int) -> bool:
        result = await self._conn.execute(
            delete(invitations).where(invitations.c.account_id == self._account_id, invitations.c.id == invitation_id)
        )
        return result.rowcount == 1


class Invitees:
    """The invitee's side, before an account is chosen: an invitation by its link, or by the address."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def by_token_hash(self, token_hash: str, now: datetime, *, lock: bool = False) -> InvitationRow | None:
        query = _select().where(invitations.c.token_hash == token_hash, invitations.c.expires_at > now)
        if lock:
            query = query.with_for_update(of=invitations)
        row = (await self._conn.execute(query)).first()
        return _row(row) if row else None

    async def for_email(self, email: str, now: datetime, *, invitation_id: int | None = None) -> list[InvitationRow]:
        query = _select().where(func.lower(invitations.c.email) == email.lower(), invitations.c.expires_at > now)
        if invitation_id is not None:
            query = query.where(invitations.c.id == invitation_id).with_for_update(of=invitations)
        rows = await self._conn.execute(query.order_by(accounts.c.name, invitations.c.id))
        return [_row(r) for r in rows]

    async def remove(self, invitation_id: int) -> None:
        await self._conn.execute(delete(invitations).where(invitations.c.id == invitation_id))
