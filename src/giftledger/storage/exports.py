"""Finance reads over the ledger: the data exports, read in keyset-paginated chunks, the liability at a moment,
the per-site reconciliation and the trends; and the queue of exports prepared in the background.

Every export chunk is one statement of its own (`Database.fetch`: autocommit, no transaction left open between
chunks), ordered by a key and resumed after the last key seen, so an export of any size holds one chunk in
memory and never a long transaction: on the primary a read blocks no till (PostgreSQL's readers take no row
locks), and with a read replica configured (`Services.reporting_db`) the primary does not see it at all.

Times are turned into the account's wall-clock time by PostgreSQL (`AT TIME ZONE`, the zone's IANA name);
money stays integer pence. Every statement filters by account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.domain.ledger import LineItemType
from giftledger.storage.clock import as_utc
from giftledger.storage.database import Database, Record
from giftledger.storage.tables import Id, metadata

QUEUED, RUNNING, DONE, FAILED, EXPIRED = "queued", "running", "done", "failed", "expired"

export_jobs = Table(
    "export_jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("starts_on", Date),  # local dates in the account's zone, both included (NULL for the liability)
    Column("ends_on", Date),
    Column("at", DateTime(timezone=True)),  # the liability's moment
    Column("user_id", Id, ForeignKey("users.id")),
    Column("state", String(10), nullable=False),
    Column("rows_expected", BigInteger),
    Column("rows_written", BigInteger, nullable=False, server_default="0"),
    Column("file_name", String(200)),
    Column("error", Text),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    # expired: done, and its file deleted after the retention (migration 0014)
    CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'expired')", name="state_known"),
    Index("ix_export_jobs_account_created", "account_id", "created_at"),
    Index("ix_export_jobs_due", "id", postgresql_where=text("state IN ('queued', 'running')")),
    Index("ix_export_jobs_done", "finished_at", postgresql_where=text("state = 'done'")),
)

# The key every chunk resumes after: (time, id) for exports in time order, (None, id) for those in id order.
Key = tuple[datetime | None, int]
FIRST: Key = (datetime(1, 1, 1, tzinfo=UTC), 0)

LOCAL = "to_char({column} AT TIME ZONE $4, 'YYYY-MM-DD HH24:MI:SS')"
SALE, REDEMPTION, BREAKAGE, REVERSAL = (
    int(LineItemType.SALE),
    int(LineItemType.REDEMPTION),
    int(LineItemType.BREAKAGE),
    int(LineItemType.REVERSAL),
)
ISSUED = (int(LineItemType.SALE), int(LineItemType.INBOUND_BALANCE_TRANSFER))  # how a card gets its first value

# $1 account, $2 from (UTC), $3 before (UTC), $4 zone, $5/$6 the key resumed after, $7 rows
LINE_ITEMS = f"""
SELECT li.id, li.created_at AS key_at, {LOCAL.format(column="li.created_at")} AS local_at,
       li.card_id, c.card_reference, li.type_id, li.value, li.tender, li.discount,
       p.name AS product_name, s.name AS site_name, m.name AS merchant_name, li.order_id,
       o.sales_channel_id, o.total AS order_total, o.discount_total AS order_discount, o.status AS order_status,
       li.fulfilment_method_id, li.note, coalesce(u.email, au.username) AS actor, li.transaction_id,
       t.merchant_transaction_reference, li.reverses_line_item_id, r.id AS reversed_by,
       (SELECT sum(x.value)::bigint FROM line_items x
         WHERE x.account_id = li.account_id AND x.transaction_id = li.transaction_id) AS transaction_value
FROM line_items li
JOIN cards c ON c.id = li.card_id
JOIN transactions t ON t.id = li.transaction_id
LEFT JOIN orders o ON o.id = li.order_id
LEFT JOIN products p ON p.id = coalesce(li.product_id, c.product_id)
LEFT JOIN sites s ON s.id = li.site_id
LEFT JOIN merchants m ON m.id = li.merchant_id
LEFT JOIN users u ON u.id = li.user_id
LEFT JOIN api_users au ON au.id = li.api_user_id
LEFT JOIN line_items r ON r.account_id = li.account_id AND r.reverses_line_item_id = li.id
WHERE li.account_id = $1 AND li.created_at >= $2 AND li.created_at < $3
  AND li.created_at >= $5 AND (li.created_at, li.id) > ($5, $6)
ORDER BY li.created_at, li.id
LIMIT $7
"""

DISCOUNTS = f"""
SELECT li.id, li.created_at AS key_at, {LOCAL.format(column="li.created_at")} AS local_at,
       li.discount, li.order_id, li.transaction_id
FROM line_items li
WHERE li.account_id = $1 AND li.type_id = {SALE} AND li.discount <> 0
  AND li.created_at >= $2 AND li.created_at < $3 AND li.created_at >= $5 AND (li.created_at, li.id) > ($5, $6)
ORDER BY li.created_at, li.id
LIMIT $7
"""

ORDERS = f"""
SELECT o.id, o.created_at AS key_at, {LOCAL.format(column="o.created_at")} AS local_at,
       rc.first_name, rc.last_name, rc.email, t.merchant_transaction_reference, m.name AS merchant_name,
       o.total, o.discount_total, o.sales_channel_id, o.status,
       EXISTS (SELECT 1 FROM consents k WHERE k.account_id = o.account_id AND k.contact_id = o.receipt_contact_id)
         AS consented
FROM orders o
JOIN transactions t ON t.id = o.transaction_id
LEFT JOIN contacts rc ON rc.id = o.receipt_contact_id
LEFT JOIN merchants m ON m.id = o.merchant_id
WHERE o.account_id = $1 AND o.created_at >= $2 AND o.created_at < $3
  AND o.created_at >= $5 AND (o.created_at, o.id) > ($5, $6)
ORDER BY o.created_at, o.id
LIMIT $7
"""

ORDER_LINE_ITEMS = f"""
SELECT li.id, o.created_at AS key_at, {LOCAL.format(column="o.created_at")} AS local_at, o.id AS order_id,
       rc.first_name, rc.last_name, rc.email, li.value, p.name AS product_name, pm.description AS product_option,
       li.fulfilment_method_id, fc.first_name AS recipient_first_name, fc.last_name AS recipient_last_name,
       fc.email AS recipient_email, c.message, o.status
FROM line_items li
JOIN orders o ON o.id = li.order_id
JOIN cards c ON c.id = li.card_id
LEFT JOIN contacts rc ON rc.id = o.receipt_contact_id
LEFT JOIN contacts fc ON fc.id = c.contact_id
LEFT JOIN products p ON p.id = li.product_id
LEFT JOIN price_modifiers pm ON pm.id = li.price_modifier_id
WHERE li.account_id = $1 AND li.type_id = {SALE}
  AND o.created_at >= $2 AND o.created_at < $3 AND o.created_at >= $5 AND (o.created_at, li.id) > ($5, $6)
ORDER BY o.created_at, li.id
LIMIT $7
"""

_FIRST_ITEM = f"""
JOIN LATERAL (
    SELECT x.id, x.created_at, x.order_id, x.value, x.discount, x.site_id FROM line_items x
    WHERE x.account_id = c.account_id AND x.card_id = c.id AND x.type_id IN {ISSUED}
    ORDER BY x.id LIMIT 1
) f ON true
"""

# $1 account, $2 from, $3 before, $4 zone, $5 the card id resumed after, $6 rows
CARDS = f"""
SELECT c.id, {LOCAL.format(column="f.created_at")} AS local_at, c.card_reference, c.alias,
       p.name AS product_name, f.order_id, c.balance, rcp.first_name, rcp.last_name, rcp.email,
       f.value AS first_value, (r.id IS NOT NULL) AS first_reversed, fs.name AS sold_site,
       {LOCAL.format(column="lr.created_at")} AS last_redeemed_at, lr.value AS last_redeemed_value,
       lr.site_name AS last_redeemed_site, f.discount AS first_discount, o.discount_total,
       EXISTS (SELECT 1 FROM consents k WHERE k.account_id = c.account_id AND k.contact_id = o.receipt_contact_id)
         AS consented
FROM cards c
{_FIRST_ITEM}
LEFT JOIN line_items r ON r.account_id = c.account_id AND r.reverses_line_item_id = f.id
LEFT JOIN sites fs ON fs.id = f.site_id
LEFT JOIN orders o ON o.id = f.order_id
LEFT JOIN contacts rcp ON rcp.id = c.contact_id
LEFT JOIN products p ON p.id = c.product_id
LEFT JOIN LATERAL (
    SELECT y.created_at, y.value, ys.name AS site_name FROM line_items y LEFT JOIN sites ys ON ys.id = y.site_id
    WHERE y.account_id = c.account_id AND y.card_id = c.id AND y.type_id = {REDEMPTION}
    ORDER BY y.id DESC LIMIT 1
) lr ON true
WHERE c.account_id = $1 AND c.status = 'active' AND f.created_at >= $2 AND f.created_at < $3 AND c.id > $5
ORDER BY c.id
LIMIT $6
"""

# $1 account, $2 the moment, $4 zone, $5 the card id resumed after, $6 rows ($3 is unused: the moment again)
LIABILITY = f"""
SELECT c.id, c.card_reference, p.name AS product_name, fs.name AS sold_site,
       {LOCAL.format(column="f.created_at")} AS local_at, {LOCAL.format(column="c.expiry_time")} AS expiry,
       f.value AS first_value, f.discount AS first_discount, b.value, b.tender, b.discount, b.breakage
FROM cards c
JOIN LATERAL (
    SELECT coalesce(sum(x.value), 0)::bigint AS value, coalesce(sum(x.tender), 0)::bigint AS tender,
           coalesce(sum(x.discount), 0)::bigint AS discount,
           coalesce(-sum(x.value) FILTER (WHERE x.type_id = {BREAKAGE}), 0)::bigint AS breakage
    FROM line_items x WHERE x.account_id = c.account_id AND x.card_id = c.id AND x.created_at <= $2
) b ON b.value <> 0 OR b.breakage <> 0
{_FIRST_ITEM}
LEFT JOIN sites fs ON fs.id = f.site_id
LEFT JOIN products p ON p.id = c.product_id
WHERE c.account_id = $1 AND c.id > $5 AND $3::timestamptz IS NOT NULL
ORDER BY c.id
LIMIT $6
"""

# How many rows each export will have (the progress of a queued one): same filters, no joins.
COUNTS = {
    "line_items": "SELECT count(*) FROM line_items WHERE account_id = $1 AND created_at >= $2 AND created_at < $3",
    "discounts": f"""SELECT count(*) FROM line_items WHERE account_id = $1 AND type_id = {SALE} AND discount <> 0
                     AND created_at >= $2 AND created_at < $3""",
    "orders": "SELECT count(*) FROM orders WHERE account_id = $1 AND created_at >= $2 AND created_at < $3",
    "order_line_items": f"""SELECT count(*) FROM line_items li JOIN orders o ON o.id = li.order_id
                            WHERE li.account_id = $1 AND li.type_id = {SALE}
                            AND o.created_at >= $2 AND o.created_at < $3""",
    "cards": "SELECT count(*) FROM cards WHERE account_id = $1 AND status = 'active' AND $2::timestamptz < $3",
    "liability": "SELECT count(*) FROM cards WHERE account_id = $1 AND status = 'active' AND $2::timestamptz <= $3",
}

TIME_ORDERED = {
    "line_items": LINE_ITEMS,
    "discounts": DISCOUNTS,
    "orders": ORDERS,
    "order_line_items": ORDER_LINE_ITEMS,
}
ID_ORDERED = {"cards": CARDS, "liability": LIABILITY}


class ExportReader:
    """One account's export rows, a chunk at a time, each chunk one statement on `db`."""

    def __init__(self, db: Database, account_id: int, time_zone: str) -> None:
        self._db = db
        self._account_id = account_id
        self._zone = time_zone

    async def chunk(self, source: str, start: datetime, before: datetime, after: Key, size: int) -> list[Record]:
        """Up to `size` rows of `source` in [start, before) (the liability: as of `start`), after key `after`."""
        if source in TIME_ORDERED:
            after_at = after[0] or FIRST[0]
            return await self._db.fetch(
                TIME_ORDERED[source], self._account_id, start, before, self._zone, after_at, after[1], size
            )
        return await self._db.fetch(ID_ORDERED[source], self._account_id, start, before, self._zone, after[1], size)

    @staticmethod
    def key(source: str, row: Record) -> Key:
        return (row["key_at"], int(row["id"])) if source in TIME_ORDERED else (None, int(row["id"]))

    async def count(self, source: str, start: datetime, before: datetime) -> int:
        row = await self._db.fetchrow(COUNTS[source], self._account_id, start, before)
        return int(row[0]) if row is not None else 0


# --- the liability at a moment, per product and site of sale ---------------------------------------------------

LIABILITY_SUMMARY = f"""
WITH held AS (
    SELECT x.card_id, sum(x.value) AS value, sum(x.tender) AS tender, sum(x.discount) AS discount,
           coalesce(-sum(x.value) FILTER (WHERE x.type_id = {BREAKAGE}), 0) AS breakage
    FROM line_items x WHERE x.account_id = $1 AND x.created_at <= $2
    GROUP BY x.card_id
), sold AS (
    SELECT DISTINCT ON (x.card_id) x.card_id, x.site_id FROM line_items x
    WHERE x.account_id = $1 AND x.type_id IN {ISSUED} AND x.created_at <= $2
    ORDER BY x.card_id, x.id
)
SELECT c.product_id, p.name AS product_name, sold.site_id, s.name AS site_name,
       count(*) FILTER (WHERE held.value > 0) AS cards, sum(held.value) AS value, sum(held.tender) AS tender,
       sum(held.discount) AS discount, sum(held.breakage) AS breakage,
       coalesce(sum(held.value) FILTER (WHERE c.expiry_time <= $2), 0) AS expired
FROM held
JOIN cards c ON c.account_id = $1 AND c.id = held.card_id
LEFT JOIN sold ON sold.card_id = held.card_id
LEFT JOIN products p ON p.id = c.product_id
LEFT JOIN sites s ON s.id = sold.site_id
GROUP BY c.product_id, p.name, sold.site_id, s.name
ORDER BY p.name NULLS LAST, s.name NULLS LAST, sold.site_id
"""


@dataclass(frozen=True)
class LiabilityGroup:
    """What the cards of one product sold at one site held at a moment (pence)."""

    product_id: int | None
    product_name: str | None
    site_id: int | None
    site_name: str | None
    cards: int  # holding something
    value: int
    tender: int
    discount: int
    breakage: int  # taken by expiry up to the moment (positive)
    expired: int  # still held by cards whose expiry time had passed (their breakage not yet written)


async def liability_at(db: Database, account_id: int, moment: datetime) -> list[LiabilityGroup]:
    rows = await db.fetch(LIABILITY_SUMMARY, account_id, moment)
    return [
        LiabilityGroup(
            r["product_id"],
            r["product_name"],
            r["site_id"],
            r["site_name"],
            int(r["cards"]),
            int(r["value"]),
            int(r["tender"]),
            int(r["discount"]),
            int(r["breakage"]),
            int(r["expired"]),
        )
        for r in rows
    ]


# --- reconciliation: per local day, site and POS merchant ---------------------------------------------------

RECONCILIATION = """
SELECT to_char(li.created_at AT TIME ZONE $4, 'YYYY-MM-DD') AS day, li.site_id, s.name AS site_name,
       li.merchant_id, m.name AS merchant_name, li.type_id, count(*) AS items, sum(li.value) AS total
FROM line_items li
LEFT JOIN sites s ON s.id = li.site_id
LEFT JOIN merchants m ON m.id = li.merchant_id
WHERE li.account_id = $1 AND li.created_at >= $2 AND li.created_at < $3
GROUP BY 1, li.site_id, s.name, li.merchant_id, m.name, li.type_id
"""


@dataclass(frozen=True)
class Activity:
    day: str  # YYYY-MM-DD in the account's zone
    site_id: int | None
    site_name: str | None
    merchant_id: int | None
    merchant_name: str | None
    type_id: int
    count: int
    total: int


async def activity_by_day(
    db: Database, account_id: int, start: datetime, before: datetime, zone: str
) -> list[Activity]:
    rows = await db.fetch(RECONCILIATION, account_id, start, before, zone)
    return [
        Activity(
            r["day"],
            r["site_id"],
            r["site_name"],
            r["merchant_id"],
            r["merchant_name"],
            int(r["type_id"]),
            int(r["items"]),
            int(r["total"]),
        )
        for r in rows
    ]


# --- trends: sums per period and per site, POS or product ---------------------------------------------------

_DIMENSIONS = {
    "site": ("li.site_id", "s.name"),
    "pos": ("li.merchant_id", "m.name"),
    "product": ("coalesce(li.product_id, c.product_id)", "p.name"),
}

# A reversal counts with what it reverses (a reversed sale is no sale): `kind` is the reversed item's type.
_TREND = """
SELECT {bucket} AS bucket, {dim_id} AS dim_id, {dim_name} AS dim_name,
       coalesce(target.type_id, li.type_id) AS kind, sum(li.value) AS total
FROM line_items li
JOIN cards c ON c.id = li.card_id
LEFT JOIN line_items target ON target.id = li.reverses_line_item_id
LEFT JOIN sites s ON s.id = li.site_id
LEFT JOIN merchants m ON m.id = li.merchant_id
LEFT JOIN products p ON p.id = coalesce(li.product_id, c.product_id)
WHERE li.account_id = $1 AND li.created_at {range}
GROUP BY 1, 2, 3, 4
"""


@dataclass(frozen=True)
class TrendSum:
    bucket: str | None  # the period's first day (YYYY-MM-DD), None for everything before the first period
    dim_id: int | None
    dim_name: str | None
    kind: int  # the line-item type (a reversal: the type it reverses)
    total: int


async def trend_sums(
    db: Database, account_id: int, dimension: str, weekly: bool, start: datetime, before: datetime, zone: str
) -> list[TrendSum]:
    """Sums per period in [start, before) and, as bucket None, every sum before `start` (the opening balance)."""
    dim_id, dim_name = _DIMENSIONS[dimension]
    bucket = f"to_char(date_trunc('{'week' if weekly else 'day'}', li.created_at AT TIME ZONE $4), 'YYYY-MM-DD')"
    within = _TREND.format(bucket=bucket, dim_id=dim_id, dim_name=dim_name, range=">= $2 AND li.created_at < $3")
    opening = _TREND.format(bucket="NULL::text", dim_id=dim_id, dim_name=dim_name, range="< $2")
    rows = [*await db.fetch(within, account_id, start, before, zone), *await db.fetch(opening, account_id, start)]
    return [TrendSum(r["bucket"], r["dim_id"], r["dim_name"], int(r["kind"]), int(r["total"])) for r in rows]


# --- the queue of exports prepared in the background ----------------------------------------------------------


@dataclass(frozen=True)
class ExportJob:
    id: int
    account_id: int
    kind: str
    starts_on: Any  # date | None
    ends_on: Any
    at: datetime | None
    user_id: int | None
    state: str
    rows_expected: int | None
    rows_written: int
    file_name: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def _job(row: Any) -> ExportJob:
    data = dict(row._mapping)
    del data["locked_until"]
    for name in ("at", "created_at", "finished_at"):
        if data[name] is not None:
            data[name] = as_utc(data[name])
    return ExportJob(**data)


class ExportQueue:
    """Jobs across accounts (the worker's side) and one account's jobs (the dashboard's side)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, account_id: int, kind: str, starts_on: Any, ends_on: Any, at: datetime | None,
                  user_id: int | None, now: datetime) -> int:  # fmt: skip
        result = await self._conn.execute(
            export_jobs.insert()
            .values(
                account_id=account_id,
                kind=kind,
                starts_on=starts_on,
                ends_on=ends_on,
                at=at,
                user_id=user_id,
                state=QUEUED,
                created_at=now,
            )
            .returning(export_jobs.c.id)
        )
        return int(result.scalar_one())

    async def claim(self, now: datetime, lease: timedelta) -> ExportJob | None:
        """The oldest queued job, or a running one whose worker's lease ran out (it died), leased to the caller."""
        due = or_(export_jobs.c.state == QUEUED, and_(export_jobs.c.state == RUNNING, export_jobs.c.locked_until < now))
        found = (
            await self._conn.execute(
                select(export_jobs.c.id)
                .where(due)
                .order_by(export_jobs.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if found is None:
            return None
        row = (
            await self._conn.execute(
                update(export_jobs)
                .where(export_jobs.c.id == found)
                .values(state=RUNNING, locked_until=now + lease, rows_written=0, error=None)
                .returning(*export_jobs.c)
            )
        ).one()
        return _job(row)

    async def progress(
        self, job_id: int, *, rows_written: int, rows_expected: int | None, locked_until: datetime
    ) -> None:
        values: dict[str, Any] = {"rows_written": rows_written, "locked_until": locked_until}
        if rows_expected is not None:
            values["rows_expected"] = rows_expected
        await self._conn.execute(
            update(export_jobs).where(export_jobs.c.id == job_id, export_jobs.c.state == RUNNING).values(**values)
        )

    async def finish(self, job_id: int, *, file_name: str | None, error: str | None, rows_written: int,
                     now: datetime) -> None:  # fmt: skip
        await self._conn.execute(
            update(export_jobs)
            .where(export_jobs.c.id == job_id)
            .values(
                state=FAILED if error else DONE,
                file_name=file_name,
                error=error,
                rows_written=rows_written,
                finished_at=now,
                locked_until=None,
            )
        )

    async def written_before(self, moment: datetime, limit: int = 100) -> list[ExportJob]:
        """Finished exports (across accounts) whose file was written before `moment`, oldest first."""
        rows = await self._conn.execute(
            select(*export_jobs.c)
            .where(export_jobs.c.state == DONE, export_jobs.c.finished_at < moment)
            .order_by(export_jobs.c.finished_at)
            .limit(limit)
        )
        return [_job(r) for r in rows.all()]

    async def expire(self, job_ids: list[int]) -> None:
        """These finished exports' files are gone."""
        await self._conn.execute(
            update(export_jobs).where(export_jobs.c.id.in_(job_ids), export_jobs.c.state == DONE).values(state=EXPIRED)
        )

    async def for_account(self, account_id: int, limit: int = 50) -> list[ExportJob]:
        rows = await self._conn.execute(
            select(*export_jobs.c)
            .where(export_jobs.c.account_id == account_id)
            .order_by(export_jobs.c.id.desc())
            .limit(limit)
        )
        return [_job(r) for r in rows.all()]

    async def get(self, account_id: int, job_id: int) -> ExportJob | None:
        row = (
            await self._conn.execute(
                select(*export_jobs.c).where(export_jobs.c.account_id == account_id, export_jobs.c.id == job_id)
            )
        ).one_or_none()
        return _job(row) if row is not None else None
