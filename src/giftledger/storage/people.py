"""Accounts, dashboard users and their memberships, API users, and login attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.records import ApiUserRow, MembershipRow, UserRow
from giftledger.storage.clock import as_utc, utcnow
from giftledger.storage.tables import accounts, api_users, login_attempts, memberships, merchants, users


def _api_user(row: Any) -> ApiUserRow:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    data["deleted_at"] = as_utc(data["deleted_at"]) if data["deleted_at"] else None
    return ApiUserRow(**data)


class Directory:
    """Global look-ups that come before an account is known (logins, tokens, account creation)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_account(self, name: str) -> int:
        result = await self._conn.execute(
            accounts.insert().values(name=name, created_at=utcnow()).returning(accounts.c.id)
        )
        return int(result.scalar_one())

    async def account_named(self, name: str) -> int | None:
        found = (
            await self._conn.execute(
                select(accounts.c.id).where(accounts.c.name == name).order_by(accounts.c.id).limit(1)
            )
        ).scalar()
        return int(found) if found is not None else None

    async def account_name(self, account_id: int) -> str | None:
        return (await self._conn.execute(select(accounts.c.name).where(accounts.c.id == account_id))).scalar()

    async def account_time_zone(self, account_id: int) -> str | None:
        """The account's IANA time zone (None: no such account)."""
        return (await self._conn.execute(select(accounts.c.time_zone).where(accounts.c.id == account_id))).scalar()

    async def set_account_time_zone(self, account_id: int, time_zone: str) -> None:
        await self._conn.execute(update(accounts).where(accounts.c.id == account_id).values(time_zone=time_zone))

    async def account_ids(self) -> list[int]:
        return [int(i) for i in (await self._conn.execute(select(accounts.c.id).order_by(accounts.c.id))).scalars()]

    async def merchants(self) -> dict[int, str]:
        rows = await self._conn.execute(select(merchants.c.id, merchants.c.name).order_by(merchants.c.id))
        return {int(r.id): r.name for r in rows}

    async def api_user_by_username(self, username: str) -> ApiUserRow | None:
        row = (await self._conn.execute(select(*api_users.c).where(api_users.c.username == username))).first()
        return _api_user(row) if row else None

    async def api_user(self, api_user_id: int) -> ApiUserRow | None:
        row = (await self._conn.execute(select(*api_users.c).where(api_users.c.id == api_user_id))).first()
        return _api_user(row) if row else None

    async def user_by_email(self, email: str) -> UserRow | None:
        row = (
            await self._conn.execute(
                select(
                    users.c.id,
                    users.c.email,
                    users.c.name,
                    users.c.password_hash,
                    users.c.token_version,
                    users.c.deleted_at,
                ).where(func.lower(users.c.email) == email.lower())
            )
        ).first()
        return UserRow(**row._mapping) if row else None

    async def user(self, user_id: int) -> UserRow | None:
        row = (
            await self._conn.execute(
                select(
                    users.c.id,
                    users.c.email,
                    users.c.name,
                    users.c.password_hash,
                    users.c.token_version,
                    users.c.deleted_at,
                ).where(users.c.id == user_id)
            )
        ).first()
        return UserRow(**row._mapping) if row else None

    async def add_user(self, email: str, name: str, password_hash: str) -> int:
        result = await self._conn.execute(
            users.insert()
            .values(email=email.lower(), name=name, password_hash=password_hash, created_at=utcnow())
            .returning(users.c.id)
        )
        return int(result.scalar_one())

    async def set_user_password(self, user_id: int, password_hash: str) -> int:
        """A new password; every token and session issued before it is revoked. The new token version."""
        result = await self._conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, token_version=users.c.token_version + 1)
            .returning(users.c.token_version)
        )
        return int(result.scalar_one())

    async def revoke_tokens(self, user_id: int) -> None:
        """Revoke every token and session of a team member (a credential event: removal, a new role)."""
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(token_version=users.c.token_version + 1)
        )

    async def memberships(self, user_id: int) -> list[MembershipRow]:
        rows = await self._conn.execute(
            select(
                memberships.c.account_id,
                accounts.c.name.label("account_name"),
                memberships.c.user_id,
                memberships.c.role,
            )
            .join(accounts, accounts.c.id == memberships.c.account_id)
            .where(memberships.c.user_id == user_id)
            .order_by(memberships.c.account_id)
        )
        return [MembershipRow(**r._mapping) for r in rows]

    async def record_login(self, subjects: list[str], succeeded: bool) -> None:
        now = utcnow()
        await self._conn.execute(
            login_attempts.insert(), [{"subject": s, "succeeded": succeeded, "created_at": now} for s in subjects]
        )

    async def recent_failures(self, subject: str, since: datetime) -> int:
        count = (
            await self._conn.execute(
                select(func.count())
                .select_from(login_attempts)
                .where(
                    login_attempts.c.subject == subject,
                    login_attempts.c.succeeded.is_(False),
                    login_attempts.c.created_at >= since,
                )
            )
        ).scalar_one()
        return int(count)


class Team:
    """An account's people: memberships and API users."""

    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def add_membership(self, user_id: int, role: str) -> None:
        await self._conn.execute(
            memberships.insert().values(account_id=self._account_id, user_id=user_id, role=role, created_at=utcnow())
        )

    async def role_of(self, user_id: int) -> str | None:
        return (
            await self._conn.execute(
                select(memberships.c.role).where(
                    memberships.c.account_id == self._account_id, memberships.c.user_id == user_id
                )
            )
        ).scalar()

    async def add_api_user(
        self, merchant_id: int, username: str, password_hash: str, *, password_noted: bool = True
    ) -> int:
        result = await self._conn.execute(
            api_users.insert()
            .values(
                account_id=self._account_id,
                merchant_id=merchant_id,
                username=username,
                password_hash=password_hash,
                created_at=utcnow(),
                password_noted=password_noted,
            )
            .returning(api_users.c.id)
        )
        return int(result.scalar_one())

    async def api_users(self, merchant_id: int | None = None) -> list[ApiUserRow]:
        query = select(*api_users.c).where(api_users.c.account_id == self._account_id, api_users.c.deleted_at.is_(None))
        if merchant_id is not None:
            query = query.where(api_users.c.merchant_id == merchant_id)
        rows = await self._conn.execute(query.order_by(api_users.c.id))
        return [_api_user(r) for r in rows]

    async def set_api_user_password(self, api_user_id: int, password_hash: str) -> bool:
        result = await self._conn.execute(
            update(api_users)
            .where(
                api_users.c.account_id == self._account_id,
                api_users.c.id == api_user_id,
                api_users.c.deleted_at.is_(None),
            )
            .values(password_hash=password_hash, token_version=api_users.c.token_version + 1)
        )
        return result.rowcount == 1

    async def note_api_user_password(self, merchant_id: int, api_user_id: int) -> bool:
        """Record that someone confirmed they noted this live API user's password."""
        result = await self._conn.execute(
            update(api_users)
            .where(
                api_users.c.account_id == self._account_id,
                api_users.c.merchant_id == merchant_id,
                api_users.c.id == api_user_id,
                api_users.c.deleted_at.is_(None),
            )
            .values(password_noted=True)
        )
        return result.rowcount == 1

    async def delete_api_user(self, api_user_id: int) -> bool:
        """Revokes at once: a deleted API user's tokens stop working on the next request."""
        result = await self._conn.execute(
            update(api_users)
            .where(
                api_users.c.account_id == self._account_id,
                api_users.c.id == api_user_id,
                api_users.c.deleted_at.is_(None),
            )
            .values(deleted_at=utcnow(), token_version=api_users.c.token_version + 1)
        )
        return result.rowcount == 1
