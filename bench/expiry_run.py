"""The expiry's share of the benchmark (bench/run.py's `expiry` part): an expiry run over many due cards (cards
per second), while tills keep redeeming other cards of the same account (their rate beside the same without).

    python bench/run.py --only expiry [--due 100000] [--duration 10]
    python bench/expiry_run.py DATABASE_URL [--due 20000]   # the run alone, on a fresh database of its own

The due cards ("E000000000001"...) are written straight into the account, each with its sale line item and an
expiry an hour ago, in one statement; the run is `services.expiry.expire_due` in this process (the same code
`giftledger expire` and each server's background run call), and its rate is the due cards over the time until
none is left (a server's own background run may take some batches: SKIP LOCKED shares them out).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from giftledger.app import build_services  # noqa: E402
from giftledger.config import Settings  # noqa: E402
from giftledger.services.expiry import BATCH, expire_due  # noqa: E402

TENDER, DISCOUNT = 1500, 500

_DUE = """
WITH tx AS (
    INSERT INTO transactions (account_id, kind, created_at) VALUES ($1, 'order', now()) RETURNING id
),
made AS (
    INSERT INTO cards (account_id, card_reference, currency, status, balance, tender_balance, discount_balance,
                       initial_balance, expiry_time, created_at, updated_at)
    SELECT $1, 'E' || lpad(n::text, 12, '0'), 'GBP', 'active', $3::bigint + $4::bigint, $3, $4, $3::bigint + $4::bigint,
           now() - interval '1 hour', now(), now()
    FROM generate_series(1, $2::bigint) AS n
    RETURNING id
)
INSERT INTO line_items (account_id, card_id, transaction_id, type_id, value, tender, discount, created_at)
SELECT $1, made.id, tx.id, 1, $3::bigint + $4::bigint, $3, $4, now() FROM made, tx
"""


@dataclass(frozen=True)
class Expired:
    cards: int  # due cards at the start
    seconds: float  # until none was left
    broken: int  # breakage line items written (each card once: equals `cards`)

    @property
    def rate(self) -> float:
        return self.cards / self.seconds if self.seconds else 0.0


async def make_due(database_url: str, account_id: int, n: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(_DUE, account_id, n, TENDER, DISCOUNT)
        await conn.execute("ANALYZE cards")
    finally:
        await conn.close()


async def _counts(database_url: str, account_id: int) -> tuple[int, int]:
    """(cards of the account still due, breakage line items of the account)."""
    conn = await asyncpg.connect(database_url)
    try:
        due = await conn.fetchval(
            "SELECT count(*) FROM cards WHERE account_id = $1 AND expiry_time <= now() AND status = 'active'"
            " AND balance > 0",
            account_id,
        )
        broken = await conn.fetchval(
            "SELECT count(*) FROM line_items WHERE account_id = $1 AND type_id = 3", account_id
        )
        return int(due), int(broken)
    finally:
        await conn.close()


async def expire(database_url: str, secret: str, account_id: int, batch: int = BATCH) -> Expired:
    """Run the expiry until none of the account's cards is due; how long it took."""
    due, broken_before = await _counts(database_url, account_id)
    services = build_services(Settings(database_url=database_url, secret_key=secret, environment="test"))
    try:
        began = time.perf_counter()
        while True:
            await expire_due(services, batch=batch)
            left, broken = await _counts(database_url, account_id)
            if not left:
                break
            await asyncio.sleep(0.05)  # a server's background run holds the rest: it finishes them
        return Expired(due, time.perf_counter() - began, broken - broken_before)
    finally:
        await services.db.dispose()


def main() -> None:
    """The run alone: a fresh account of its own in the database named, `--due` due cards, one run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url", help="a migrated giftledger database (postgresql://...)")
    parser.add_argument("--due", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()

    async def run() -> Expired:
        conn = await asyncpg.connect(args.database_url)
        try:
            account_id = await conn.fetchval(
                "INSERT INTO accounts (name, created_at) VALUES ('expiry bench', now()) RETURNING id"
            )
        finally:
            await conn.close()
        await make_due(args.database_url, account_id, args.due)
        return await expire(args.database_url, "bench-secret-key-" + "x" * 40, account_id, args.batch)

    done = asyncio.run(run())
    print(f"{done.cards:,} due cards expired in {done.seconds:.2f} s: {done.rate:,.0f} cards/s ({done.broken:,} "
          f"breakage line items, batch {args.batch})")  # fmt: skip


if __name__ == "__main__":
    main()
