"""Exporting line items (`giftledger export transactions`): an account with N line items (1,000,000 by default:
100,000 cards, each sold then redeemed nine times, one till transaction per line item, spread over the last 12
days) exported by the command line as an operator would, timed from the command's start to its exit, with the
command's peak RSS (the export reads a chunk at a time and writes as it goes: services/exports.py). `make bench`
adds it as a row (bench/run.py, part "export"); on its own:

    python bench/export_stream.py [--rows 1000000]     # on TEST_DATABASE_URL's server, or an embedded one

The ledger is written straight into the tables with `generate_series` (a minute, not hours of till calls); the
cards' balances are set to the sums of their line items, as `ledger verify` requires.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from standalone import SECRET, new_account, postgres  # noqa: E402

TARGET_RSS_MB = 150
POINTONE = 60
SEED = """
WITH site AS (
    INSERT INTO sites (account_id, name, reference, created_at) VALUES ($1, 'Bench', 'bench', now()) RETURNING id
), product AS (
    SELECT id FROM products WHERE account_id = $1 ORDER BY id LIMIT 1
), made AS (
    INSERT INTO cards (account_id, card_reference, currency, status, balance, tender_balance, discount_balance,
                       initial_balance, product_id, created_at, updated_at)
    SELECT $1, 'X' || lpad(g::text, 12, '0'), 'GBP', 'active', 0, 0, 0, 10000, product.id, now(), now()
    FROM generate_series(1, $2::int / 10) g, product
    RETURNING id
)
SELECT (SELECT id FROM site) AS site_id, (SELECT id FROM product) AS product_id, min(id) AS first_card FROM made
"""
TRANSACTIONS = """
INSERT INTO transactions (account_id, merchant_id, merchant_transaction_reference, kind, site_id, created_at)
SELECT $1, $4::bigint, 'bench-' || g, 'till', $2::bigint, $3::timestamptz + interval '1 second' * g
FROM generate_series(1, $5::int) g
"""
LINE_ITEMS = """
INSERT INTO line_items (account_id, card_id, transaction_id, type_id, value, tender, discount, site_id, merchant_id,
                        product_id, created_at)
SELECT t.account_id, $2::bigint + (n - 1) % $3::int, t.id, CASE WHEN n <= $3::int THEN 1 ELSE 2 END,
       CASE WHEN n <= $3::int THEN 10000 ELSE -10 END, CASE WHEN n <= $3::int THEN 10000 ELSE -10 END, 0,
       t.site_id, t.merchant_id, $4::bigint, t.created_at
FROM (SELECT id, account_id, site_id, merchant_id, created_at, row_number() OVER (ORDER BY id) AS n
      FROM transactions WHERE account_id = $1) t
"""
BALANCES = """
UPDATE cards SET balance = s.value, tender_balance = s.value
FROM (SELECT card_id, sum(value) AS value FROM line_items WHERE account_id = $1 GROUP BY card_id) s
WHERE cards.account_id = $1 AND cards.id = s.card_id
"""


@dataclass(frozen=True)
class Exported:
    rows: int
    seconds: float
    peak_rss_mb: float
    exit_code: int
    seed_seconds: float
    cpu_seconds: float  # the command's own (user + system): what a loaded machine's wall clock hides

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


async def seed(database_url: str, rows: int) -> int:
    """A new account holding `rows` line items (a multiple of 10); its id."""
    account_id = await new_account(database_url, "Export bench")
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            made = await conn.fetchrow(SEED, account_id, rows)
            began = datetime.now(UTC) - timedelta(seconds=rows + 60)
            await conn.execute(TRANSACTIONS, account_id, made["site_id"], began, POINTONE, rows)
            cards = rows // 10
            await conn.execute(LINE_ITEMS, account_id, made["first_card"], cards, made["product_id"])
            await conn.execute(BALANCES, account_id)
        await conn.execute("ANALYZE line_items; ANALYZE transactions; ANALYZE cards")
    finally:
        await conn.close()
    return account_id


def run_export(database_url: str, account_id: int, output: Path) -> tuple[float, float, int, float]:
    env = {
        **os.environ,
        "GIFTLEDGER_ENV": "test",
        "GIFTLEDGER_SECRET_KEY": SECRET,
        "GIFTLEDGER_DATABASE_URL": database_url,
    }
    today = datetime.now(UTC).date()
    command = [
        sys.executable, "-m", "giftledger", "export", "transactions", "--account-id", str(account_id),
        "--from", (today - timedelta(days=30)).isoformat(), "--to", (today + timedelta(days=1)).isoformat(),
        "--output", str(output),
    ]  # fmt: skip
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.communicate()
    if process.returncode != 0:
        sys.stderr.write(out.decode()[-2000:] + err.decode()[-2000:])
    return seconds, usage.ru_maxrss / 1024, process.returncode, usage.ru_utime + usage.ru_stime


def measure(database_url: str, rows: int) -> Exported:
    rows = max(10, rows // 10 * 10)
    began = time.perf_counter()
    account_id = asyncio.run(seed(database_url, rows))
    seeded = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "transactions.csv"
        seconds, rss, code, cpu = run_export(database_url, account_id, output)
        with output.open("rb") as handle:
            written = sum(1 for _ in handle) - 1 if code == 0 else 0
    if code == 0 and written != rows:
        sys.stderr.write(f"the export has {written:,} rows, not {rows:,}\n")
        code = 1
    return Exported(written, seconds, rss, code, seeded, cpu)


def describe(result: Exported) -> str:
    verdict = "within" if result.peak_rss_mb < TARGET_RSS_MB else "OVER"
    return (
        f"{result.rows:,} line items exported in {result.seconds:.1f} s: {result.rows_per_second:,.0f} rows/s, "
        f"peak RSS {result.peak_rss_mb:.0f} MB ({verdict} the {TARGET_RSS_MB} MB target), the command's CPU "
        f"{result.cpu_seconds:.1f} s, exit {result.exit_code} "
        f"(seeded in {result.seed_seconds:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with postgres() as url:
        print(describe(measure(url, args.rows)))


if __name__ == "__main__":
    main()
