"""The audit log: one row per mutation attempt (accepted or refused), dashboard change or security event.

Rows are written, never changed. `account_id` is empty for attempts that could not be tied to an account
(no valid token), which only an operator sees."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, String, Table, Text, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.storage.clock import as_utc
from giftledger.storage.database import Database
from giftledger.storage.tables import Id, api_users, login_attempts, memberships, metadata, sites, users

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # no foreign keys on the account and the site (migration 0011): a till's redemption writes its record in its
    # own statement, which reads both; `ledger verify` reports a record naming a site of another account
    Column("account_id", Id),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("actor_kind", String(20), nullable=False),  # api_user, user, system, anonymous
    Column("actor_id", Id),
    Column("actor_name", String(320)),
    Column("site_id", Id),
    Column("operation", String(100), nullable=False),
    Column("card", Text),  # masked card numbers, comma separated
    Column("outcome", String(20), nullable=False),  # accepted, refused
    Column("error_code", String(60)),
    Column("client_address", String(100)),
    Column("detail", Text),  # JSON object of non-secret facts
    Index("ix_audit_events_account_created", "account_id", "created_at"),
)


@dataclass(frozen=True)
class NewAuditEvent:
    account_id: int | None
    created_at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str | None
    site_id: int | None
    operation: str
    card: str | None
    outcome: str
    error_code: str | None
    client_address: str | None
    detail: str | None


@dataclass(frozen=True)
class AuditEventRow:
    id: int
    account_id: int | None
    created_at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str | None
    site_id: int | None
    operation: str
    card: str | None
    outcome: str
    error_code: str | None
    client_address: str | None
    detail: str | None


def _row(row: Any) -> AuditEventRow:
    data = dict(row._mapping)
    data["created_at"] = as_utc(data["created_at"])
    return AuditEventRow(**data)


@dataclass(frozen=True)
class AuditFilter:
    operation: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive


class AuditLog:
    """The audit rows of one account (`account_id=None`: the rows tied to no account)."""

    def __init__(self, conn: AsyncConnection, account_id: int | None) -> None:
        self._conn = conn
        self._account_id = account_id

    async def add(self, event: NewAuditEvent) -> int:
        result = await self._conn.execute(audit_events.insert().values(**event.__dict__).returning(audit_events.c.id))
        return int(result.scalar_one())

    def _conditions(self, where: AuditFilter) -> list[Any]:
        t = audit_events
        conditions: list[Any] = [
            t.c.account_id.is_(None) if self._account_id is None else t.c.account_id == self._account_id
        ]
        if where.operation:
            conditions.append(t.c.operation == where.operation)
        if where.outcome:
            conditions.append(t.c.outcome == where.outcome)
        if where.since is not None:
            conditions.append(t.c.created_at >= where.since)
        if where.until is not None:
            conditions.append(t.c.created_at < where.until)
        return conditions

    async def page(self, where: AuditFilter, *, limit: int, offset: int) -> tuple[list[AuditEventRow], int]:
        """Newest first."""
        conditions = self._conditions(where)
        total = (
            await self._conn.execute(select(func.count()).select_from(audit_events).where(*conditions))
        ).scalar_one()
        rows = await self._conn.execute(
            select(*audit_events.c).where(*conditions).order_by(audit_events.c.id.desc()).limit(limit).offset(offset)
        )
        return [_row(r) for r in rows], int(total)

    async def after(self, where: AuditFilter, after_id: int, limit: int) -> list[AuditEventRow]:
        """Oldest first, from the row after `after_id` (for exports, a batch at a time)."""
        rows = await self._conn.execute(
            select(*audit_events.c)
            .where(*self._conditions(where), audit_events.c.id > after_id)
            .order_by(audit_events.c.id)
            .limit(limit)
        )
        return [_row(r) for r in rows]

    async def site_names(self, site_ids: Iterable[int]) -> dict[int, str]:
        """The names of these sites of the account, deleted ones included (audit rows keep pointing at them)."""
        wanted = sorted(set(site_ids))
        if not wanted or self._account_id is None:
            return {}
        rows = await self._conn.execute(
            select(sites.c.id, sites.c.name).where(sites.c.account_id == self._account_id, sites.c.id.in_(wanted))
        )
        return {int(r[0]): str(r[1]) for r in rows}


_ADD_EVENTS = """
INSERT INTO audit_events (account_id, created_at, actor_kind, actor_id, actor_name, site_id, operation, card,
                          outcome, error_code, client_address, detail)
SELECT e.account_id, e.created_at, e.actor_kind, e.actor_id, e.actor_name,
       coalesce(e.site_id, (
           SELECT site_mappings.site_id
           FROM site_mappings
           JOIN sites ON sites.account_id = site_mappings.account_id AND sites.id = site_mappings.site_id
           WHERE site_mappings.account_id = e.account_id AND site_mappings.merchant_id = e.where_merchant_id
             AND site_mappings.epos_reference = e.where_reference AND sites.deleted_at IS NULL)),
       e.operation, e.card, e.outcome, e.error_code, e.client_address, e.detail
FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[])
     AS e(account_id, created_at, actor_kind, actor_id, actor_name, site_id, operation, card, outcome, error_code,
          client_address, detail, where_merchant_id, where_reference)
"""

_EVENT_FIELDS = tuple(f.name for f in fields(NewAuditEvent))
Till = tuple[int, str]  # a till's merchant and EPOS reference, whose site (in the row's account) the row names


class AuditStatements:
    """PostgreSQL: a batch of rows in one statement, each `Till` resolved to its site inside it."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, rows: Sequence[tuple[NewAuditEvent, Till | None]]) -> None:
        if not rows:
            return
        columns: list[list[Any]] = [[] for _ in range(14)]
        for event, till in rows:
            values = (*(getattr(event, name) for name in _EVENT_FIELDS), *(till or (None, None)))
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        await self._db.fetch(_ADD_EVENTS, *columns)


@dataclass(frozen=True)
class LoginFailures:
    name: str  # the API username or the team member's email
    kind: str  # "api_user" or "user"
    failures: int  # failed attempts within the window
    last_failure: datetime


async def login_failures(conn: AsyncConnection, account_id: int, since: datetime) -> list[LoginFailures]:
    """Failed logins since `since` for the login names of this account: its API users and team members."""
    names = union_all(
        select(api_users.c.username.label("name"), literal("api_user").label("kind")).where(
            api_users.c.account_id == account_id, api_users.c.deleted_at.is_(None)
        ),
        select(users.c.email.label("name"), literal("user").label("kind"))
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.account_id == account_id, users.c.deleted_at.is_(None)),
    ).subquery()
    subject = literal("name:") + func.lower(names.c.name)
    rows = await conn.execute(
        select(names.c.name, names.c.kind, func.count().label("failures"), func.max(login_attempts.c.created_at))
        .select_from(names.join(login_attempts, login_attempts.c.subject == subject))
        .where(login_attempts.c.succeeded.is_(False), login_attempts.c.created_at >= since)
        .group_by(names.c.name, names.c.kind)
        .order_by(func.count().desc(), names.c.name)
    )
    return [LoginFailures(r[0], r[1], int(r[2]), as_utc(r[3])) for r in rows]
