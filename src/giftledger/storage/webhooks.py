"""Webhooks in storage: an account's endpoints, the events written into the one outbox (`outbox_messages`,
channel 'webhook': one row per event and endpoint), the webhook sender's claim, and each endpoint's delivery log.

An event's body is built here, in SQL, in the statement that writes it, inside the transaction of the change:
the card and order objects below are the one definition of their shape (Toggle's, reference section 2.4),
used by the balance movement's own statement (`balance_event`, folded into `ledger.MOVEMENT`, so a till's
redemption still takes one round trip) and by `queue_event` (every other event). The body is kept whole, so
every attempt, and a redelivery, sends the same bytes with the same event id; it is signed when sent (with the
endpoint's secret then).

Order: a delivery is claimable only while no earlier one (a smaller id) to the same endpoint for the same card,
or the same order, is still queued: events of one card reach an endpoint one at a time, in the order they
were written. Every change of a card's balance locks the card's row until it commits, so the ids of its events
follow the order of the changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain import webhooks as rules
from giftledger.domain.catalogue import CURRENCIES
from giftledger.domain.ledger import LineItemType
from giftledger.storage.clock import as_utc
from giftledger.storage.outbox import FAILED, QUEUED, SENT, WEBHOOK, outbox_messages
from giftledger.storage.tables import Id, metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("url", String(300), nullable=False),
    Column("events", ARRAY(String(40)), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100)),  # during a rotation's overlap
    Column("previous_secret_until", DateTime(timezone=True)),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("failing_since", DateTime(timezone=True)),  # the first failed attempt since the last success
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("cardinality(events) > 0", name="events_chosen"),
    CheckConstraint("(previous_secret IS NULL) = (previous_secret_until IS NULL)", name="previous_together"),
    Index("ix_webhook_endpoints_account", "account_id"),
)

# -- the objects, in SQL ----------------------------------------------------------------------------------


def _time(expression: str) -> str:
    """A timestamp as Toggle writes it: 2021-04-11T16:01:27.000000Z (NULL stays null)."""
    return f"""to_char({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


_TYPE_NAME = (
    "CASE {t} " + " ".join(f"WHEN {int(t)} THEN '{t.label}'" for t in LineItemType) + " END"
)  # domain.ledger's labels


def _line_item_type(expression: str) -> str:
    return f"json_build_object('id', {expression}, 'name', {_TYPE_NAME.format(t=expression)})"


def _currency(expression: str) -> str:
    known = " ".join(
        f"WHEN '{code}' THEN json_build_object('object', 'currency', 'id', {cid}, 'name', '{name}', "
        f"'denomination', {denomination}, 'iso_currency_code', '{code}')"
        for code, (cid, name, denomination) in CURRENCIES.items()
    )
    return (
        f"CASE {expression} {known} ELSE json_build_object('object', 'currency', 'iso_currency_code', {expression}) END"
    )


def _contact(alias: str) -> str:
    return (
        f"json_build_object('object', 'contact', 'id', {alias}.id, 'email', {alias}.email, 'first_name', "
        f"{alias}.first_name, 'last_name', {alias}.last_name, 'phone_number', NULL, 'marketing_opt_in_at', NULL)"
    )


_PRODUCT_TYPE = "json_build_object('id', 1, 'name', 'Gift Card')"


def _product(alias: str) -> str:
    return (
        f"json_build_object('object', 'product', 'id', {alias}.id, 'name', {alias}.name, 'short_description', NULL, "
        f"'long_description', NULL, 'image', NULL, 'product_type', {_PRODUCT_TYPE})"
    )


def card_object(c: str) -> str:
    """The card object of a row `c` with the columns of `cards` (the table, or a movement's `moved`). No PIN:
    giftledger keeps only a PIN's hash. No QR code URL: giftledger serves no public QR image of a card number."""
    return f"""json_build_object(
        'object', 'card', 'id', {c}.id, 'balance', {c}.balance, 'card_reference', {c}.card_reference,
        'pin', NULL, 'expiry_time', {_time(f"{c}.expiry_time")},
        'validity_start_time', {_time(f"{c}.validity_start_time")}, 'personal_message', {c}.message,
        'qr_code_url', NULL, 'account_id', {c}.account_id,
        'purchaser_contact', (
            SELECT {_contact("pc")} FROM line_items AS pli
            JOIN orders AS po ON po.account_id = pli.account_id AND po.id = pli.order_id
            JOIN contacts AS pc ON pc.account_id = po.account_id AND pc.id = po.receipt_contact_id
            WHERE pli.account_id = {c}.account_id AND pli.card_id = {c}.id AND pli.type_id = {int(LineItemType.SALE)}
            ORDER BY pli.id DESC LIMIT 1),
        'product', (SELECT {_product("cp")} FROM products AS cp
                    WHERE cp.account_id = {c}.account_id AND cp.id = {c}.product_id),
        'contact', (SELECT {_contact("cc")} FROM contacts AS cc
                    WHERE cc.account_id = {c}.account_id AND cc.id = {c}.contact_id),
        'currency', {_currency(f"{c}.currency")},
        'line_item_fulfilment', NULL,
        'card_alias', CASE WHEN {c}.alias IS NULL THEN NULL
                      ELSE json_build_object('object', 'card_alias', 'card_alias', {c}.alias, 'card_alias_pin', NULL)
                      END)"""


def order_object(o: str) -> str:
    """The order object of a row `o` of `orders`: its value is the cards' worth (what was paid plus discounts),
    its transaction's value what was paid; no postage (giftledger posts nothing)."""
    return f"""json_build_object(
        'object', 'order', 'id', {o}.id, 'postage_value', 0, 'value', {o}.total + {o}.discount_total,
        'account_id', {o}.account_id, 'status', {o}.status, 'created_at', {_time(f"{o}.created_at")},
        'transaction', json_build_object(
            'object', 'transaction', 'id', {o}.transaction_id, 'value', {o}.total,
            'transaction_discount_value', {o}.discount_total, 'account_id', {o}.account_id,
            'currency', {_currency(f"{o}.currency")},
            'unit', (SELECT json_build_object('object', 'unit', 'id', os.id, 'name', os.name) FROM sites AS os
                     WHERE os.account_id = {o}.account_id AND os.id = {o}.site_id)),
        'receipt_contact', (SELECT {_contact("oc")} FROM contacts AS oc
                            WHERE oc.account_id = {o}.account_id AND oc.id = {o}.receipt_contact_id),
        'line_items', coalesce((
            SELECT json_agg(json_build_object(
                'object', 'line_item', 'id', oli.id, 'value', oli.value, 'personalised_message', ocard.message,
                'line_item_type', {_line_item_type("oli.type_id")},
                'product', (SELECT {_product("op")} FROM products AS op
                            WHERE op.account_id = oli.account_id AND op.id = oli.product_id),
                'product_type', {_PRODUCT_TYPE}, 'card', {card_object("ocard")}) ORDER BY oli.id)
            FROM line_items AS oli
            JOIN cards AS ocard ON ocard.account_id = oli.account_id AND ocard.id = oli.card_id
            WHERE oli.account_id = {o}.account_id AND oli.order_id = {o}.id AND oli.type_id = {int(LineItemType.SALE)}
        ), '[]'::json))"""


def _envelope(event_id: str, event_type: str, now: str, data: str) -> str:
    return (
        f"convert_to(json_build_object('id', {event_id}, 'object', 'event', 'api_version', '{rules.API_VERSION}', "
        f"'webhook_version', '{rules.WEBHOOK_VERSION}', 'created_at', {_time(now)}, 'type', {event_type}, "
        f"'data', {data})::text, 'UTF8')"
    )


def _subscribed(account: str, event_type: str, alias: str = "e") -> str:
    return f"{alias}.account_id = {account} AND {alias}.enabled AND {event_type} = ANY ({alias}.events)"


_COLUMNS = (
    "account_id, channel, kind, recipient, subject, message_id, content, card_id, order_id, endpoint_id, event_id, "
    "state, attempts, next_attempt_at, created_at"
)


def _row(account: str, event_type: str, content: str, card: str, order: str, now: str) -> str:
    return (
        f"{account}, '{WEBHOOK}', {event_type}, e.url, {event_type}, 'webhook-' || ev.id || '-' || e.id, {content}, "
        f"{card}, {order}, e.id, ev.id, '{QUEUED}', 0, {now}, {now}"
    )


def balance_event_wanted(*, account: str, type: str) -> str:
    """Whether a movement of line-item type {type} on {account} has a `card.balance_adjusted` event to write
    (`balance_event` writes one exactly then): a statement that moves money without `balance_event` refuses
    to move when this holds (storage/tills.py)."""
    event = f"'{rules.BALANCE_ADJUSTED}'"
    return (
        f"({type} <> {int(LineItemType.SALE)} "
        f"AND EXISTS (SELECT 1 FROM webhook_endpoints AS e WHERE {_subscribed(account, event)}))"
    )


def balance_event(*, account: str, type: str, now: str, reference: str) -> str:
    """CTEs that follow `ledger.MOVEMENT`'s: a `card.balance_adjusted` event for each endpoint of the account
    subscribed to it, for each line item other than a sale appended (`item`, and `moved`: its card after; a
    movement of many cards at once, breakage, gives one event per card). Without a subscribed endpoint they
    cost two look-ups of an index and write nothing."""
    event = f"'{rules.BALANCE_ADJUSTED}'"
    line_item = f"""json_build_object(
        'object', 'line_item', 'id', item.id, 'value', item.tender + item.discount,
        'line_item_type', {_line_item_type(type)}, 'tender', item.tender, 'discount', item.discount,
        'merchant_transaction_reference', {reference}, 'created_at', {_time("item.created_at")})"""
    data = f"json_build_object('object', {card_object('moved')}, 'line_item', {line_item})"
    content = _envelope("ev.id", event, now, data)
    return f""",
webhook_event AS (
    SELECT item.id AS item_id, nextval('webhook_event_ids') AS id FROM item
    WHERE {balance_event_wanted(account=account, type=type)}
),
webhook_deliveries AS (
    INSERT INTO outbox_messages ({_COLUMNS})
    SELECT {_row(account, event, content, "moved.id", "NULL::bigint", now)}
    FROM webhook_event AS ev
    JOIN item ON item.id = ev.item_id
    JOIN moved ON moved.id = item.card_id
    CROSS JOIN webhook_endpoints AS e
    WHERE {_subscribed(account, event)}
)"""


def _queue_statement(data: str, *, source: str, card: str, order: str, match: str = "true") -> str:
    """One event (`:type`) about a card (`:card`) or an order (`:order`), for every subscribed endpoint of the
    account (`:endpoint` not null: that endpoint only, subscribed or not: the test event)."""
    who = (
        "e.account_id = CAST(:account AS bigint) AND (e.id = CAST(:endpoint AS bigint) OR "
        "(CAST(:endpoint AS bigint) IS NULL AND e.enabled AND CAST(:type AS text) = ANY (e.events)))"
    )
    content = _envelope("ev.id", "CAST(:type AS text)", "CAST(:now AS timestamptz)", data)
    return f"""
WITH ev AS (
    SELECT nextval('webhook_event_ids') AS id WHERE EXISTS (SELECT 1 FROM webhook_endpoints AS e WHERE {who})
)
INSERT INTO outbox_messages ({_COLUMNS})
SELECT {_row("CAST(:account AS bigint)", "CAST(:type AS text)", content, card, order, "CAST(:now AS timestamptz)")}
FROM ev, webhook_endpoints AS e {source}
WHERE {who} AND {match}
RETURNING event_id"""


_CARD_MATCH = "c.account_id = CAST(:account AS bigint) AND c.id = CAST(:card AS bigint)"
_CARD_EVENT = _queue_statement(
    f"json_build_object('object', {card_object('c')})",
    source=", cards AS c",
    card="c.id",
    order="CAST(:order AS bigint)",
    match=_CARD_MATCH,
)
_CARD_EMAIL_AGAIN = _queue_statement(
    "json_build_object('object', json_build_object('object', 'resend_recipient_email', 'mail_to_address', "
    f"CAST(:mail_to AS text), 'card', {card_object('c')}))",
    source=", cards AS c",
    card="c.id",
    order="NULL::bigint",
    match=_CARD_MATCH,
)
_CARD_REPLACED = _queue_statement(
    f"json_build_object('object', {card_object('c')}, 'previous_card', ("
    "SELECT json_build_object('object', 'card', 'id', pc.id, 'card_reference', pc.card_reference) FROM cards AS pc "
    "WHERE pc.account_id = CAST(:account AS bigint) AND pc.id = CAST(:previous AS bigint)))",
    source=", cards AS c",
    card="c.id",
    order="NULL::bigint",
    match=_CARD_MATCH,
)
_ORDER_EVENT = _queue_statement(
    f"json_build_object('object', {order_object('o')})",
    source=", orders AS o",
    card="NULL::bigint",
    order="o.id",
    match="o.account_id = CAST(:account AS bigint) AND o.id = CAST(:order AS bigint)",
)
_TEST_EVENT = _queue_statement(
    "json_build_object('object', json_build_object('object', 'webhook_endpoint', 'id', e.id, 'url', e.url))",
    source="",
    card="NULL::bigint",
    order="NULL::bigint",
)


# -- an account's endpoints and their logs -------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointRow:
    id: int
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_until: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    event_id: int
    event_type: str
    card_id: int | None
    order_id: int | None
    state: str
    attempts: int
    last_status: int | None
    last_response: str | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None


def _when(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


_ENDPOINT_COLUMNS = (
    webhook_endpoints.c.id,
    webhook_endpoints.c.url,
    webhook_endpoints.c.events,
    webhook_endpoints.c.enabled,
    webhook_endpoints.c.disabled_reason,
    webhook_endpoints.c.failing_since,
    webhook_endpoints.c.previous_secret_until,
    webhook_endpoints.c.created_at,
)


def _endpoint(row: Any) -> EndpointRow:
    return EndpointRow(
        id=int(row.id),
        url=row.url,
        events=list(row.events),
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        failing_since=_when(row.failing_since),
        previous_secret_until=_when(row.previous_secret_until),
        created_at=as_utc(row.created_at),
    )


class Endpoints:
    """An account's webhook endpoints (every query scoped by the account)."""

    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self._conn = conn
        self._account_id = account_id

    def _mine(self, endpoint_id: int) -> Any:
        return (webhook_endpoints.c.account_id == self._account_id) & (webhook_endpoints.c.id == endpoint_id)

    async def add(self, url: str, events: list[str], secret: str, now: datetime) -> int:
        result = await self._conn.execute(
            webhook_endpoints.insert()
            .values(
                account_id=self._account_id,
                url=url,
                events=events,
                secret=secret,
                enabled=True,
                created_at=now,
                updated_at=now,
            )
            .returning(webhook_endpoints.c.id)
        )
        return int(result.scalar_one())

    async def listed(self) -> list[EndpointRow]:
        rows = await self._conn.execute(
            select(*_ENDPOINT_COLUMNS)
            .where(webhook_endpoints.c.account_id == self._account_id)
            .order_by(webhook_endpoints.c.id)
        )
        return [_endpoint(r) for r in rows]

    async def get(self, endpoint_id: int, *, lock: bool = False) -> EndpointRow | None:
        query = select(*_ENDPOINT_COLUMNS).where(self._mine(endpoint_id))
        row = (await self._conn.execute(query.with_for_update() if lock else query)).first()
        return _endpoint(row) if row is not None else None

    async def set_enabled(self, endpoint_id: int, enabled: bool, reason: str | None, now: datetime) -> None:
        """Enable (its failures forgotten) or disable (with the reason shown); disabling fails its queued
        deliveries, which "Redeliver" can queue again."""
        await self._conn.execute(
            update(webhook_endpoints)
            .where(self._mine(endpoint_id))
            .values(enabled=enabled, disabled_reason=reason, failing_since=None, updated_at=now)
        )
        if not enabled:
            await _fail_queued(self._conn, endpoint_id, reason or "The endpoint was disabled.")

    async def rotate(self, endpoint_id: int, secret: str, overlap_until: datetime, now: datetime) -> None:
        """A new secret; the current one becomes the previous, signed with too until `overlap_until`."""
        await self._conn.execute(
            update(webhook_endpoints)
            .where(self._mine(endpoint_id))
            .values(
                previous_secret=webhook_endpoints.c.secret,
                previous_secret_until=overlap_until,
                secret=secret,
                updated_at=now,
            )
        )

    async def deliveries(self, endpoint_id: int, limit: int) -> list[DeliveryRow]:
        m = outbox_messages.c
        rows = await self._conn.execute(
            select(
                m.id,
                m.event_id,
                m.kind,
                m.card_id,
                m.order_id,
                m.state,
                m.attempts,
                m.last_status,
                m.last_response,
                m.last_error,
                m.next_attempt_at,
                m.created_at,
                m.sent_at,
            )
            .where(m.account_id == self._account_id, m.endpoint_id == endpoint_id)
            .order_by(m.id.desc())
            .limit(limit)
        )
        return [
            DeliveryRow(
                id=int(r.id),
                event_id=int(r.event_id),
                event_type=r.kind,
                card_id=r.card_id,
                order_id=r.order_id,
                state=r.state,
                attempts=int(r.attempts),
                last_status=r.last_status,
                last_response=r.last_response,
                last_error=r.last_error,
                next_attempt_at=as_utc(r.next_attempt_at),
                created_at=as_utc(r.created_at),
                sent_at=_when(r.sent_at),
            )
            for r in rows
        ]

    async def redeliver(self, endpoint_id: int, delivery_id: int, now: datetime) -> bool:
        """Queue a sent or failed delivery again, due now, its attempts counted afresh (the same body and event
        id); False when it is not one of this endpoint's, or is still queued."""
        m = outbox_messages.c
        result = await self._conn.execute(
            update(outbox_messages)
            .where(
                m.account_id == self._account_id,
                m.endpoint_id == endpoint_id,
                m.id == delivery_id,
                m.state != QUEUED,
            )
            .values(state=QUEUED, attempts=0, next_attempt_at=now, locked_until=None, sent_at=None)
            .returning(m.id)
        )
        return result.first() is not None

    async def queue_event(
        self,
        event_type: str,
        now: datetime,
        *,
        card_id: int | None = None,
        order_id: int | None = None,
        mail_to: str | None = None,
        previous_card_id: int | None = None,
        endpoint_id: int | None = None,
    ) -> int | None:
        """Write one event for every subscribed endpoint (`endpoint_id`: that one only); its id (None: no endpoint
        wants it, nothing written). `previous_card_id`: the card `card_id` replaced (`data.previous_card`)."""
        if endpoint_id is not None:
            statement = _TEST_EVENT
        elif previous_card_id is not None:
            statement = _CARD_REPLACED
        elif mail_to is not None:
            statement = _CARD_EMAIL_AGAIN
        elif card_id is not None:
            statement = _CARD_EVENT
        else:
            statement = _ORDER_EVENT
        rows = await self._conn.execute(
            text(statement),
            {
                "account": self._account_id,
                "endpoint": endpoint_id,
                "card": card_id,
                "order": order_id,
                "type": event_type,
                "mail_to": mail_to,
                "previous": previous_card_id,
                "now": now,
            },
        )
        ids = {int(r.event_id) for r in rows}
        return ids.pop() if ids else None


async def _fail_queued(conn: AsyncConnection, endpoint_id: int, reason: str) -> None:
    m = outbox_messages.c
    await conn.execute(
        update(outbox_messages)
        .where(m.endpoint_id == endpoint_id, m.state == QUEUED)
        .values(state=FAILED, locked_until=None, last_error=reason[:2000])
    )


# -- the sender's side ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedWebhook:
    """A delivery leased to one sender: the body, where it goes, and the secrets it is signed with."""

    id: int
    account_id: int
    endpoint_id: int
    event_id: int
    url: str
    content: bytes
    attempts: int  # including this one
    secret: str
    previous_secret: str | None  # during a rotation's overlap


# :busy_*: what this sender has in flight to each endpoint and account (those at their limit are skipped at once).
# Each enabled endpoint with room is looked at in turn (its due rows by ix_outbox_messages_webhooks_due), so the
# work is bounded by the room, not by a backlog; a backlog of an endpoint at its limit is not read at all. The
# candidates are read without locks, ranked, then locked with SKIP LOCKED and checked again (another sender may
# have taken one meanwhile).
_CLAIM_SQL = f"""
WITH room AS (
    SELECT e.id, e.account_id,
           CAST(:per_endpoint AS integer) - coalesce(busy_endpoint.n, 0) AS room,
           coalesce(busy_account.n, 0) AS account_busy
    FROM webhook_endpoints AS e
    LEFT JOIN unnest(CAST(:busy_endpoints AS bigint[]), CAST(:busy_endpoint_counts AS integer[]))
              AS busy_endpoint (id, n) ON busy_endpoint.id = e.id
    LEFT JOIN unnest(CAST(:busy_accounts AS bigint[]), CAST(:busy_account_counts AS integer[]))
              AS busy_account (id, n) ON busy_account.id = e.account_id
    WHERE e.enabled AND e.id <> ALL (CAST(:full_endpoints AS bigint[]))
      AND e.account_id <> ALL (CAST(:full_accounts AS bigint[]))
),
candidates AS (
    SELECT room.account_id, room.account_busy, due.id, due.next_attempt_at
    FROM room
    CROSS JOIN LATERAL (
        SELECT m.id, m.next_attempt_at
        FROM outbox_messages AS m
        WHERE m.endpoint_id = room.id AND m.state = '{QUEUED}' AND m.channel = '{WEBHOOK}'
          AND m.next_attempt_at <= CAST(:now AS timestamptz)
          AND (m.locked_until IS NULL OR m.locked_until < CAST(:now AS timestamptz))
          AND (m.card_id IS NULL OR NOT EXISTS (
              SELECT 1 FROM outbox_messages AS earlier
              WHERE earlier.endpoint_id = m.endpoint_id AND earlier.card_id = m.card_id AND earlier.id < m.id
                AND earlier.state = '{QUEUED}'))
          AND (m.order_id IS NULL OR NOT EXISTS (
              SELECT 1 FROM outbox_messages AS earlier
              WHERE earlier.endpoint_id = m.endpoint_id AND earlier.order_id = m.order_id AND earlier.id < m.id
                AND earlier.state = '{QUEUED}'))
        ORDER BY m.next_attempt_at, m.id
        LIMIT room.room
    ) AS due
),
ranked AS (
    SELECT id, next_attempt_at,
           account_busy + row_number() OVER (PARTITION BY account_id ORDER BY next_attempt_at, id) AS in_account
    FROM candidates
),
chosen AS (
    SELECT m.id FROM outbox_messages AS m
    WHERE m.id = ANY (ARRAY(
        SELECT id FROM ranked WHERE in_account <= CAST(:per_account AS integer)
        ORDER BY next_attempt_at, id LIMIT CAST(:limit AS integer)))
      AND m.state = '{QUEUED}' AND (m.locked_until IS NULL OR m.locked_until < CAST(:now AS timestamptz))
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox_messages AS m SET locked_until = CAST(:lease_end AS timestamptz), attempts = m.attempts + 1
FROM chosen, webhook_endpoints AS e
WHERE m.id = chosen.id AND e.id = m.endpoint_id
RETURNING m.id, m.account_id, m.endpoint_id, m.event_id, e.url, m.content, m.attempts, e.secret,
          CASE WHEN e.previous_secret_until > CAST(:now AS timestamptz) THEN e.previous_secret END AS previous_secret
"""


_CLAIM = text(_CLAIM_SQL).bindparams(
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("lease_end", type_=DateTime(timezone=True)),
    *(
        bindparam(name, type_=ARRAY(Id))
        for name in ("full_endpoints", "full_accounts", "busy_endpoints", "busy_accounts")
    ),
    *(bindparam(name, type_=ARRAY(Integer)) for name in ("busy_endpoint_counts", "busy_account_counts")),
)


_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")  # until the claim's transaction ends


@dataclass(frozen=True)
class Delivered:
    """A delivery the receiver took (a 2xx reply): its status, the start of its reply, and when."""

    id: int
    status: int
    excerpt: str
    at: datetime


_DELIVERED = text(f"""
WITH done AS (
    SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS integer[]), CAST(:excerpts AS text[]),
                         CAST(:at AS timestamptz[])) AS d (id, status, excerpt, at)
),
sent AS (
    UPDATE outbox_messages AS m
    SET state = '{SENT}', sent_at = done.at, locked_until = NULL, last_error = NULL, last_status = done.status,
        last_response = done.excerpt
    FROM done WHERE m.id = done.id
    RETURNING m.endpoint_id
)
UPDATE webhook_endpoints SET failing_since = NULL
WHERE id IN (SELECT endpoint_id FROM sent) AND failing_since IS NOT NULL
""").bindparams(
    bindparam("ids", type_=ARRAY(Id)),
    bindparam("statuses", type_=ARRAY(Integer)),
    bindparam("excerpts", type_=ARRAY(Text)),
    bindparam("at", type_=ARRAY(DateTime(timezone=True))),
)


class WebhookQueue:
    """The webhook sender's operations, across accounts."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(
        self,
        now: datetime,
        lease: timedelta,
        limit: int,
        *,
        in_flight_endpoints: dict[int, int],
        in_flight_accounts: dict[int, int],
        per_endpoint: int,
        per_account: int,
    ) -> list[ClaimedWebhook]:
        """Lease up to `limit` due deliveries of enabled endpoints, so that, with those the caller has in flight,
        at most `per_endpoint` go to one endpoint and `per_account` to one account, and none waiting behind an
        earlier one of its card or order (the module's docstring)."""
        endpoints, accounts = in_flight_endpoints, in_flight_accounts
        # Planned for its values every time: the generic plan PostgreSQL turns to after five executions of a
        # prepared statement read the whole backlog (2-3 s a claim with 4,000 deliveries queued, in `make bench`),
        # where the plan for the values reads only the room's worth (0.6 ms).
        await self._conn.execute(_CUSTOM_PLANS)
        rows = await self._conn.execute(
            _CLAIM,
            {
                "now": now,
                "lease_end": now + lease,
                "limit": limit,
                "full_endpoints": [k for k, n in endpoints.items() if n >= per_endpoint],
                "full_accounts": [k for k, n in accounts.items() if n >= per_account],
                "busy_endpoints": list(endpoints),
                "busy_endpoint_counts": list(endpoints.values()),
                "busy_accounts": list(accounts),
                "busy_account_counts": list(accounts.values()),
                "per_endpoint": per_endpoint,
                "per_account": per_account,
            },
        )
        claimed = [
            ClaimedWebhook(
                id=int(r.id),
                account_id=int(r.account_id),
                endpoint_id=int(r.endpoint_id),
                event_id=int(r.event_id),
                url=r.url,
                content=bytes(r.content),
                attempts=int(r.attempts),
                secret=r.secret,
                previous_secret=r.previous_secret,
            )
            for r in rows
        ]
        return sorted(claimed, key=lambda c: c.id)

    async def delivered(self, done: list[Delivered]) -> None:
        """Mark deliveries delivered, at once (one statement), and their endpoints no longer failing."""
        if not done:
            return
        await self._conn.execute(
            _DELIVERED,
            {
                "ids": [d.id for d in done],
                "statuses": [d.status for d in done],
                "excerpts": [d.excerpt for d in done],
                "at": [d.at for d in done],
            },
        )

    async def not_delivered(
        self,
        delivery_id: int,
        endpoint_id: int,
        *,
        status: int | None,
        excerpt: str | None,
        error: str,
        retry_at: datetime | None,
        now: datetime,
        disable_after: timedelta,
    ) -> bool:
        """A failed attempt: due again at `retry_at`, or failed for good (None). The endpoint is marked failing
        since now (unless it already was) and, failing for `disable_after` or longer, disabled: True then."""
        m = outbox_messages.c
        values: dict[str, Any] = {
            "locked_until": None,
            "last_error": error[:2000],
            "last_status": status,
            "last_response": excerpt,
        }
        if retry_at is None:
            values["state"] = FAILED
        else:
            values["next_attempt_at"] = retry_at
        await self._conn.execute(update(outbox_messages).where(m.id == delivery_id).values(**values))
        e = webhook_endpoints.c
        since = (
            await self._conn.execute(
                update(webhook_endpoints)
                .where(e.id == endpoint_id)
                .values(failing_since=text("coalesce(failing_since, :now)").bindparams(bindparam("now", now)))
                .returning(e.failing_since, e.enabled)
            )
        ).first()
        if since is None or not since.enabled or as_utc(since.failing_since) > now - disable_after:
            return False
        reason = (
            f"Disabled automatically: every delivery failed from {as_utc(since.failing_since):%Y-%m-%d %H:%M} UTC "
            f"to {now:%Y-%m-%d %H:%M} UTC (last: {error[:200]})."
        )
        await self._conn.execute(
            update(webhook_endpoints)
            .where(e.id == endpoint_id)
            .values(enabled=False, disabled_reason=reason, updated_at=now)
        )
        await _fail_queued(self._conn, endpoint_id, reason)
        return True

    async def endpoint_enabled(self, endpoint_id: int) -> bool:
        found = await self._conn.execute(
            select(webhook_endpoints.c.enabled).where(webhook_endpoints.c.id == endpoint_id)
        )
        return bool(found.scalar())
