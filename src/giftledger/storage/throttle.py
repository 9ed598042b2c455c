"""Cost budgets (token buckets), one row per caller, refilled and drawn on in one conditional statement.

A bucket holds `available` credits (a float, so slow refill rates lose nothing to rounding) and the time
it was last touched (`updated_epoch`, seconds since the epoch, UTC). Callers are API users and dashboard
users (`api_user:7`, `user:3`) or, before they authenticate, client addresses (`addr:203.0.113.9`), so
the table is global, not account-owned.

The row is the budget's one truth across processes. A serving process takes credits out of it in shares
(`take`) and spends them without a statement of its own per request (services/throttle.py says how): the
row never hands out more than it holds, so no credit is ever created outside it."""

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
    Column("last_charge", Float, nullable=False),  # what the latest `take` handed out: 0 when it was refused
    Column("updated_epoch", Float, nullable=False),
)


@dataclass(frozen=True)
class Take:
    granted: float  # credits handed out (0: the row held fewer than asked for; nothing was taken)
    available: float  # what the row holds after it


# One fixed statement (prepared once per connection): refill the bucket for the time elapsed (never above the
# maximum; a new caller starts full), add what the caller's process gives back (`returned`: credits it took
# earlier and did not spend, or, below zero, what it spent beyond them), then hand out up to `want` credits if
# the row holds at least `need` (otherwise nothing), in one INSERT ... ON CONFLICT DO UPDATE, so that
# concurrent takes (several workers, several servers) never hand out the same credits.
# It commits without waiting for the disk (`synchronous_commit` off for this statement's own transaction
# only: PostgreSQL applies the setting in effect when a transaction commits, and `set_config(..., true)`
# lasts until then): every process serving a caller updates the caller's one row, so a durable commit here
# would hold that row's lock through a WAL flush and queue them behind each other. A crash can lose the last
# few hundred milliseconds of takes, which only gives callers credits back; money is never written here.
# It checks the caller's credential (storage/callers.py): for a revoked token it takes, gives back and
# changes nothing, and returns no row.
# $1 subject, $2 maximum, $3 now, $4 credits restored per second, $5 returned, $6 need, $7 want (>= need),
# $8 the caller's account, $9-$11 its credential (see CALLER).
_REFILLED = "least($2::float8, t.available + greatest($3::float8 - t.updated_epoch, 0) * $4::float8)"
_HELD = f"least($2::float8, {_REFILLED} + $5::float8)"
_HELD_NEW = "least($2::float8, $2::float8 + $5::float8)"


def _granted(held: str) -> str:
    return f"CASE WHEN {held} >= $6::float8 THEN least({held}, $7::float8) ELSE 0 END"


_TAKE = f"""
WITH {caller_statement(account="$8", kind="$9", id="$10", version="$11")}
INSERT INTO throttle_buckets AS t (subject, available, last_charge, updated_epoch)
SELECT $1::text, {_HELD_NEW} - {_granted(_HELD_NEW)}, {_granted(_HELD_NEW)}, $3::float8
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed, caller
WHERE caller.live
ON CONFLICT (subject) DO UPDATE SET
    available = {_HELD} - {_granted(_HELD)},
    last_charge = {_granted(_HELD)},
    updated_epoch = greatest(t.updated_epoch, $3::float8)
RETURNING available, last_charge
"""


class Buckets:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def take(
        self,
        subject: str,
        *,
        returned: float,
        need: float,
        want: float,
        maximum: float,
        per_second: float,
        now: float,
        credential: Credential | None = None,
    ) -> Take | None:
        """Refill, add `returned`, then hand out up to `want` credits if at least `need` are there.
        None: `credential` is revoked; nothing was taken or given back."""
        kind, caller_id, version = credential.parameters if credential is not None else NOBODY
        row = await self._db.fetchrow(
            _TAKE,
            subject,
            float(maximum),
            float(now),
            float(per_second),
            float(returned),
            float(need),
            float(max(want, need)),
            credential.account_id if credential is not None else 0,
            kind,
            caller_id,
            version,
        )
        if row is None:
            return None
        return Take(granted=float(row["last_charge"]), available=float(row["available"]))
