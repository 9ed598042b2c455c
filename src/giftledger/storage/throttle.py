"""Cost budgets (token buckets), one row per caller, spent and refilled in one conditional statement.

A bucket holds `available` credits (a float, so slow refill rates lose nothing to rounding) and the time
it was last touched (`updated_epoch`, seconds since the epoch, UTC). Callers are API users and dashboard
users (`api_user:7`, `user:3`) or, before they authenticate, client addresses (`addr:203.0.113.9`), so
the table is global, not account-owned."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Float, String, Table

from giftledger.storage.callers import NOBODY, Credential, caller_statement
from giftledger.storage.database import Database
from giftledger.storage.tables import metadata

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


# The budget is charged on every request: one fixed statement (prepared once per connection), refilling the
# bucket for the time elapsed (never above the maximum; a new caller starts full), then taking the cost if
# there is that much, in one INSERT ... ON CONFLICT DO UPDATE, so concurrent requests of one caller (several
# workers, several tills) never both spend the same credits.
# It commits without waiting for the disk (`synchronous_commit` off for this statement's own transaction
# only: PostgreSQL applies the setting in effect when a transaction commits, and `set_config(..., true)`
# lasts until then): a caller's requests all update its one row, so a durable commit here would hold that
# row's lock through a WAL flush and queue the caller's requests behind each other. A crash can lose the
# last few hundred milliseconds of spends (wal_writer_delay), which only gives callers credits back;
# money is never written here. It checks the caller's credential (storage/callers.py): a revoked token spends
# nothing and gets no row.
# $1 subject, $2 maximum, $3 now, $4 credits restored per second, $5 a new caller's first charge, $6 cost,
# $7 the caller's account, $8-$10 its credential (see CALLER).
_REFILLED = "least($2::float8, t.available + greatest($3::float8 - t.updated_epoch, 0) * $4::float8)"
_SPEND = f"""
WITH {caller_statement(account="$7", kind="$8", id="$9", version="$10")}
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

# $1 subject, $2 credits added (negative: taken), $3 maximum.
_REFUND = """
UPDATE throttle_buckets SET available = least(available + $2::float8, $3::float8) WHERE subject = $1
RETURNING available
"""

_AVAILABLE = "SELECT available FROM throttle_buckets WHERE subject = $1"


class Buckets:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def spend(
        self,
        subject: str,
        cost: float,
        *,
        maximum: float,
        per_second: float,
        now: float,
        credential: Credential | None = None,
    ) -> Spend | None:
        """Refill, then take `cost` if there is that much. None: `credential` is revoked; nothing was spent."""
        first_charge = cost if cost <= maximum else 0.0
        kind, caller_id, version = credential.parameters if credential is not None else NOBODY
        row = await self._db.fetchrow(
            _SPEND,
            subject,
            float(maximum),
            float(now),
            float(per_second),
            float(first_charge),
            float(cost),
            credential.account_id if credential is not None else 0,
            kind,
            caller_id,
            version,
        )
        if row is None:
            return None
        return Spend(charged=float(row["last_charge"]) > 0, available=float(row["available"]))

    async def add(self, subject: str, amount: float, *, maximum: float) -> float | None:
        """Add `amount` credits (a refund of what a request did not use; negative: what it used beyond its
        charge), never above `maximum`. The new balance, or None if the subject has no bucket."""
        row = await self._db.fetchrow(_REFUND, subject, float(amount), float(maximum))
        return float(row["available"]) if row is not None else None

    async def available(self, subject: str) -> float | None:
        row = await self._db.fetchrow(_AVAILABLE, subject)
        return float(row["available"]) if row is not None else None
