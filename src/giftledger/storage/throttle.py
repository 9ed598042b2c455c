"""Cost budgets (token buckets), one row per caller, spent and refilled in one conditional statement.

A bucket holds `available` credits (a float, so slow refill rates lose nothing to rounding) and the time
it was last touched (`updated_epoch`, seconds since the epoch, UTC). Callers are API users and dashboard
users (`api_user:7`, `user:3`) or, before they authenticate, client addresses (`addr:203.0.113.9`), so
the table is global, not account-owned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, String, Table, bindparam, case, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.storage.native import NativePool
from giftledger.storage.tables import metadata
from giftledger.storage.tills import CALLER, PendingCaller, token_check

throttle_buckets = Table(
    "throttle_buckets",
    metadata,
    Column("subject", String(200), primary_key=True),
    Column("available", Float, nullable=False),
    Column("last_charge", Float, nullable=False),  # what the latest spend took: 0 when it was refused
    Column("updated_epoch", Float, nullable=False),
)


@dataclass(frozen=True)
class Spend:
    charged: bool  # False: not enough credits, nothing taken
    available: float  # after the spend (or the refusal)


def _float(name: str, value: float) -> Any:
    return bindparam(name, float(value), type_=Float)


# `Buckets.spend` as fixed SQL text for PostgreSQL's native pool (storage/native.py): the budget is charged
# on every request, and SQLAlchemy's statement building costs more than the rest of a balance check.
# It commits without waiting for the disk (`synchronous_commit` off for this statement's own transaction
# only: PostgreSQL applies the setting in effect when a transaction commits, and `set_config(..., true)`
# lasts until then): a caller's requests all update its one row, so a durable commit here would hold that
# row's lock through a WAL flush and queue the caller's requests behind each other. A crash can lose the
# last few hundred milliseconds of spends (wal_writer_delay), which only gives callers credits back;
# money is never written here. It is also the first statement of a request with the budget on, so it
# confirms a pending caller's token (storage/tills.CALLER): a revoked token spends nothing and gets no row.
# $1 subject, $2 maximum, $3 now, $4 credits restored per second, $5 a new caller's first charge, $6 cost,
# $7 the caller's account, $8 API user, $9 its token version while unconfirmed (NULL: confirmed).
_REFILLED = "least($2::float8, t.available + greatest($3::float8 - t.updated_epoch, 0) * $4::float8)"
_SPEND = f"""
WITH {CALLER.format(account="$7", api_user="$8", version="$9").strip()}
INSERT INTO throttle_buckets AS t (subject, available, last_charge, updated_epoch)
SELECT $1::text, $2::float8 - $5::float8, $5::float8, $3::float8
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed, caller
WHERE caller.live
ON CONFLICT (subject) DO UPDATE SET
    available = CASE WHEN {_REFILLED} >= $6::float8 THEN {_REFILLED} - $6::float8 ELSE {_REFILLED} END,
    last_charge = CASE WHEN {_REFILLED} >= $6::float8 THEN $6::float8 ELSE 0 END,
    updated_epoch = greatest(t.updated_epoch, $3::float8)
RETURNING available, last_charge
"""


class NativeBuckets:
    """`Buckets.spend` on PostgreSQL in one prepared statement (the same rule; tests hold both to it)."""

    def __init__(self, native: NativePool) -> None:
        self._native = native

    async def spend(
        self,
        subject: str,
        cost: float,
        *,
        maximum: float,
        per_second: float,
        now: float,
        pending: PendingCaller | None = None,
    ) -> Spend | None:
        """None: `pending`'s token is revoked, and nothing was spent."""
        first_charge = cost if cost <= maximum else 0.0
        row = await self._native.fetchrow(
            _SPEND,
            subject,
            float(maximum),
            float(now),
            float(per_second),
            float(first_charge),
            float(cost),
            pending.account_id if pending is not None else None,
            *token_check(pending),
        )
        if row is None:
            return None
        return Spend(charged=float(row["last_charge"]) > 0, available=float(row["available"]))


class Buckets:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def spend(self, subject: str, cost: float, *, maximum: float, per_second: float, now: float) -> Spend:
        """Refill for the time elapsed (never above `maximum`), then take `cost` if there is that much.
        A new caller starts full. One INSERT ... ON CONFLICT DO UPDATE, so concurrent requests of one caller
        (several workers, several tills) never both spend the same credits."""
        t = throttle_buckets
        now_p, cost_p, max_p, rate_p = (
            _float("now", now),
            _float("cost", cost),
            _float("maximum", maximum),
            _float("per_second", per_second),
        )
        elapsed = case((t.c.updated_epoch < now_p, now_p - t.c.updated_epoch), else_=_float("zero", 0.0))
        grown = t.c.available + elapsed * rate_p
        refilled = case((grown > max_p, max_p), else_=grown)
        enough = refilled >= cost_p
        first_charge = cost if cost <= maximum else 0.0
        insert = sqlite.insert(t)  # PostgreSQL runs the same rule through NativeBuckets
        statement = (
            insert.values(
                subject=subject, available=maximum - first_charge, last_charge=first_charge, updated_epoch=now
            )
            .on_conflict_do_update(
                index_elements=[t.c.subject],
                set_={
                    "available": case((enough, refilled - cost_p), else_=refilled),
                    "last_charge": case((enough, cost_p), else_=_float("nothing", 0.0)),
                    "updated_epoch": case((t.c.updated_epoch < now_p, now_p), else_=t.c.updated_epoch),
                },
            )
            .returning(t.c.available, t.c.last_charge)
        )
        row = (await self._conn.execute(statement)).one()
        return Spend(charged=float(row.last_charge) > 0, available=float(row.available))

    async def refund(self, subject: str, amount: float, *, maximum: float) -> float | None:
        """Give back credits a request was charged but did not use. The new balance, or None if unknown."""
        t = throttle_buckets
        grown = t.c.available + _float("amount", amount)
        result = await self._conn.execute(
            update(t)
            .where(t.c.subject == subject)
            .values(available=case((grown > _float("maximum", maximum), _float("cap", maximum)), else_=grown))
            .returning(t.c.available)
        )
        value = result.scalar_one_or_none()
        return float(value) if value is not None else None

    async def available(self, subject: str) -> float | None:
        value = (
            await self._conn.execute(select(throttle_buckets.c.available).where(throttle_buckets.c.subject == subject))
        ).scalar_one_or_none()
        return float(value) if value is not None else None
