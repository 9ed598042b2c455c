"""The outbox: every outbound message, written in the transaction of the change that causes it, then claimed,
sent and marked by the sender (services/outbox.py).

A message row holds the whole message as it will be sent (`content`, with its Message-ID), so a resend after a
crash between "sent" and "marked" is the same message, byte for byte. Claiming takes due rows with
`FOR UPDATE SKIP LOCKED` and leases them (`locked_until`): two senders never hold one message at once, and a
sender that dies leaves its lease to expire. The queue's operations span accounts (the sender serves them all);
an account's own reads (`AccountOutbox`) are scoped by it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
    Text,
    and_,
    any_,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.storage.clock import as_utc
from giftledger.storage.tables import Id, metadata

QUEUED, SENT, FAILED = "queued", "sent", "failed"
EMAIL, WEBHOOK = "email", "webhook"  # channels

outbox_messages = Table(
    "outbox_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, nullable=False),  # no key: a till's statement writes deliveries (migration 0012)
    Column("kind", String(40), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("content", LargeBinary, nullable=False),
    Column("card_id", Id, ForeignKey("cards.id")),
    Column("order_id", Id, ForeignKey("orders.id")),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    # webhooks (migration 0009; storage/webhooks.py): the channel, the endpoint (webhook_endpoints.id), the
    # event's id, and the last attempt's HTTP status and response excerpt
    Column("channel", String(10), nullable=False, server_default="email"),
    Column("endpoint_id", Id),
    Column("event_id", Id),
    Column("last_status", Integer),
    Column("last_response", Text),
    CheckConstraint("state IN ('queued', 'sent', 'failed')", name="state_known"),
    Index("ix_outbox_messages_card", "account_id", "card_id", postgresql_where=text("channel = 'email'")),  # 0009
    Index("ix_outbox_messages_order", "account_id", "order_id", postgresql_where=text("channel = 'email'")),
)


@dataclass(frozen=True)
class MessageRow:
    """What the dashboard shows of a message (never its content)."""

    id: int
    kind: str
    recipient: str
    subject: str
    message_id: str
    card_id: int | None
    order_id: int | None
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class Claimed:
    """A message leased to one sender: what it sends."""

    id: int
    account_id: int
    recipient: str
    message_id: str
    content: bytes
    attempts: int  # including this one


_LISTED = (
    outbox_messages.c.id,
    outbox_messages.c.kind,
    outbox_messages.c.recipient,
    outbox_messages.c.subject,
    outbox_messages.c.message_id,
    outbox_messages.c.card_id,
    outbox_messages.c.order_id,
    outbox_messages.c.state,
    outbox_messages.c.attempts,
    outbox_messages.c.next_attempt_at,
    outbox_messages.c.last_error,
    outbox_messages.c.created_at,
    outbox_messages.c.sent_at,
)


def _listed(row: Any) -> MessageRow:
    data = dict(row._mapping)
    for name in ("next_attempt_at", "created_at", "sent_at"):
        data[name] = as_utc(data[name]) if data[name] is not None else None
    return MessageRow(**data)


class AccountOutbox:
    """An account's messages: queue one, list those of a card or an order."""

    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def add(
        self,
        *,
        kind: str,
        recipient: str,
        subject: str,
        message_id: str,
        content: bytes,
        now: datetime,
        card_id: int | None = None,
        order_id: int | None = None,
    ) -> int:
        result = await self._conn.execute(
            outbox_messages.insert()
            .values(
                account_id=self._account_id,
                kind=kind,
                recipient=recipient,
                subject=subject,
                message_id=message_id,
                content=content,
                card_id=card_id,
                order_id=order_id,
                state=QUEUED,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .returning(outbox_messages.c.id)
        )
        return int(result.scalar_one())

    async def listed(self, *, card_id: int | None = None, order_id: int | None = None) -> list[MessageRow]:
        query = select(*_LISTED).where(
            outbox_messages.c.account_id == self._account_id, outbox_messages.c.channel == EMAIL
        )  # webhook deliveries: each endpoint's log (storage/webhooks.py)
        if card_id is not None:
            query = query.where(outbox_messages.c.card_id == card_id)
        if order_id is not None:
            query = query.where(outbox_messages.c.order_id == order_id)
        rows = await self._conn.execute(query.order_by(outbox_messages.c.id))
        return [_listed(r) for r in rows]

    async def content(self, message_id: int) -> bytes | None:
        found = await self._conn.execute(
            select(outbox_messages.c.content).where(
                outbox_messages.c.account_id == self._account_id, outbox_messages.c.id == message_id
            )
        )
        value = found.scalar()
        return bytes(value) if value is not None else None


class OutboxQueue:
    """The sender's side, across accounts."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        """Lease up to `limit` due messages, oldest due first, skipping any another sender holds.

        The due ids are taken once, as an array: `id = ANY(ARRAY(SELECT ... LIMIT n FOR UPDATE SKIP LOCKED))`.
        Written `id IN (SELECT ...)`, the planner may run a semi-join that rescans the subquery for each row of
        the table: with the generic plan a prepared statement cached while the outbox was empty, a burst of
        10,000 messages was leased whole to one sender, in time growing with the square of the backlog (claims
        timed out holding the other sender's rows locked, whose messages were then sent twice)."""
        due = (
            select(outbox_messages.c.id)
            .where(
                outbox_messages.c.state == QUEUED,
                outbox_messages.c.channel == EMAIL,  # webhooks have their own claim (storage/webhooks.py)
                outbox_messages.c.next_attempt_at <= now,
                or_(outbox_messages.c.locked_until.is_(None), outbox_messages.c.locked_until < now),
            )
            .order_by(outbox_messages.c.next_attempt_at, outbox_messages.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = await self._conn.execute(
            update(outbox_messages)
            .where(outbox_messages.c.id == any_(func.array(due.scalar_subquery())))
            .values(locked_until=now + lease, attempts=outbox_messages.c.attempts + 1)
            .returning(
                outbox_messages.c.id,
                outbox_messages.c.account_id,
                outbox_messages.c.recipient,
                outbox_messages.c.message_id,
                outbox_messages.c.content,
                outbox_messages.c.attempts,
            )
        )
        claimed = [
            Claimed(int(r.id), int(r.account_id), r.recipient, r.message_id, bytes(r.content), int(r.attempts))
            for r in rows
        ]
        return sorted(claimed, key=lambda c: c.id)

    async def sent(self, message_id: int, now: datetime) -> None:
        await self._conn.execute(
            update(outbox_messages)
            .where(outbox_messages.c.id == message_id)
            .values(state=SENT, sent_at=now, locked_until=None, last_error=None)
        )

    async def not_sent(self, message_id: int, error: str, retry_at: datetime | None) -> None:
        """A failed attempt: due again at `retry_at`, or failed for good (None)."""
        values: dict[str, Any] = {"locked_until": None, "last_error": error[:2000]}
        if retry_at is None:
            values["state"] = FAILED
        else:
            values["next_attempt_at"] = retry_at
        await self._conn.execute(update(outbox_messages).where(outbox_messages.c.id == message_id).values(**values))

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many messages wait to be sent, and when the oldest was queued."""
        row = (
            await self._conn.execute(
                select(func.count(), func.min(outbox_messages.c.created_at)).where(
                    and_(outbox_messages.c.state == QUEUED)
                )
            )
        ).one()
        return int(row[0]), as_utc(row[1]) if row[1] is not None else None


card_pages = Table(
    "card_pages",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("card_id", Id, ForeignKey("cards.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_card_pages_card", "account_id", "card_id"),
)


@dataclass(frozen=True)
class CardPageRow:
    account_id: int
    card_id: int
    created_at: datetime


class CardPages:
    """The secret links to cards' own pages: only the hash of each token is kept."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, account_id: int, card_id: int, token_hash: str, now: datetime) -> None:
        await self._conn.execute(
            card_pages.insert().values(token_hash=token_hash, account_id=account_id, card_id=card_id, created_at=now)
        )

    async def find(self, token_hash: str) -> CardPageRow | None:
        """The page of a token's hash: its card, in its account, and when the link was made."""
        row = (
            await self._conn.execute(
                select(card_pages.c.account_id, card_pages.c.card_id, card_pages.c.created_at).where(
                    card_pages.c.token_hash == token_hash
                )
            )
        ).first()
        return CardPageRow(int(row.account_id), int(row.card_id), as_utc(row.created_at)) if row else None

    async def card_of(self, token_hash: str) -> tuple[int, int] | None:
        """(account id, card id) of a page's token."""
        row = (
            await self._conn.execute(
                select(card_pages.c.account_id, card_pages.c.card_id).where(card_pages.c.token_hash == token_hash)
            )
        ).first()
        return (int(row.account_id), int(row.card_id)) if row else None


account_branding = Table(
    "account_branding",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("colour", String(7), nullable=False),
    Column("logo", LargeBinary),
    Column("logo_type", String(40)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class BrandingRow:
    colour: str
    logo: bytes | None
    logo_type: str | None


class Branding:
    """An account's colour and logo: one row, made by the first change (until then, the defaults)."""

    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    async def get(self) -> BrandingRow | None:
        row = (
            await self._conn.execute(
                select(account_branding.c.colour, account_branding.c.logo, account_branding.c.logo_type).where(
                    account_branding.c.account_id == self._account_id
                )
            )
        ).first()
        if row is None:
            return None
        return BrandingRow(row.colour, bytes(row.logo) if row.logo is not None else None, row.logo_type)

    async def set_colour(self, colour: str, now: datetime) -> None:
        statement = insert(account_branding).values(account_id=self._account_id, colour=colour, updated_at=now)
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=[account_branding.c.account_id], set_={"colour": colour, "updated_at": now}
            )
        )

    async def set_logo(self, logo: bytes | None, logo_type: str | None, *, default_colour: str, now: datetime) -> None:
        """Replace the logo (None: remove it); an account with no row yet gets `default_colour` with it."""
        statement = insert(account_branding).values(
            account_id=self._account_id, colour=default_colour, logo=logo, logo_type=logo_type, updated_at=now
        )
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=[account_branding.c.account_id],
                set_={"logo": logo, "logo_type": logo_type, "updated_at": now},
            )
        )
