"""Importing cards (`giftledger cards import`): a CSV file of N cards (100,000 by default) imported by the
command line as an operator would, timed from the command's start to its exit, with the command's peak RSS.

Every row carries an old supplier's number (kept as the alias, a new 19-digit number issued), a 4-digit PIN,
a balance with a discount part, an expiry date and a recipient email on every other row: the slowest shape a
file can have. `make bench` adds it as a row (bench/run.py, part "import"); on its own:

    python bench/card_import.py [--rows 100000]        # on TEST_DATABASE_URL's server, or an embedded one
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from standalone import SECRET, new_account, postgres  # noqa: E402

HEADER = (
    "card_number,pin,balance,discount,expiry_date,purchaser_name,purchaser_email,recipient_name,recipient_email,notes"
)
TARGET_SECONDS = 60


@dataclass(frozen=True)
class Imported:
    rows: int
    seconds: float
    peak_rss_mb: float
    exit_code: int
    cpu_seconds: float = 0.0  # the command's own (user + system); the rest of the wall time is PostgreSQL's

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write(HEADER + "\n")
        for n in range(rows):
            recipient = f"holder{n}@example.com" if n % 2 else ""
            out.write(
                f"SW{n:010d},{n % 10_000:04d},{25 + n % 75}.50,5,2028-12-31,Buyer {n},,Holder {n},{recipient},"
                f"imported card {n}\n"
            )


def run_import(database_url: str, account_id: int, path: Path, rows: int) -> Imported:
    env = {
        **os.environ,
        "GIFTLEDGER_ENV": "test",
        "GIFTLEDGER_SECRET_KEY": SECRET,
        "GIFTLEDGER_DATABASE_URL": database_url,
        "GIFTLEDGER_STATEMENT_TIMEOUT_MS": "60000",
    }
    command = [sys.executable, "-m", "giftledger", "cards", "import", str(path), "--account-id", str(account_id)]
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.communicate()
    if process.returncode != 0:
        sys.stderr.write(out.decode()[-2000:] + err.decode()[-2000:])
    cpu = usage.ru_utime + usage.ru_stime
    return Imported(rows, seconds, usage.ru_maxrss / 1024, process.returncode, cpu)


def measure(database_url: str, rows: int) -> Imported:
    account_id = asyncio.run(new_account(database_url, "Import bench"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cards.csv"
        write_csv(path, rows)
        return run_import(database_url, account_id, path, rows)


def describe(result: Imported) -> str:
    verdict = "within" if result.seconds < TARGET_SECONDS else "OVER"
    return (
        f"{result.rows:,} cards in {result.seconds:.1f} s ({verdict} the {TARGET_SECONDS} s target): "
        f"{result.rows_per_second:,.0f} rows/s, peak RSS {result.peak_rss_mb:.0f} MB, the command's CPU "
        f"{result.cpu_seconds:.1f} s, exit {result.exit_code}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with postgres() as url:
        print(describe(measure(url, args.rows)))


if __name__ == "__main__":
    main()
