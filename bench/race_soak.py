"""Race soak: the issue's races, many more rounds than the suite runs, against a live server.

    python bench/race_soak.py [--rounds 200] [--database-url URL]

Each round: 64 concurrent 1p redemptions on a 50p card (exactly 50 succeed, 14 are refused with the
negative-balance error), 16 concurrent reversals of one line item (exactly one succeeds), and every tenth
round 200 +7p top-ups with 200 -5p redemptions on a 1,000p card (exactly 1,400p at the end). Ends with
`ledger verify`. Runs on a fresh database, created and dropped, on the PostgreSQL server named by
--database-url (default: TEST_DATABASE_URL, else the local postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    from tests.safety.helpers import post_concurrently, start_safety_server, verify_ledger
    from tests.safety.tills import adjustment, balance, reversal, sell_new, send
    from tests.support import (
        fresh_database,
        logged_in,
        new_demo,
        server_url_option,
    )

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    server_url_option(parser)
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="giftledger-races-"))
    with fresh_database(options.database_url) as url:
        server = None
        failures = 0
        began = time.monotonic()
        try:
            server = start_safety_server(url, work)
            account = new_demo(url)
            till = logged_in(server, account)
            token = till.token or ""
            for round_number in range(1, options.rounds + 1):
                card, _ = sell_new(till, account, 50)
                replies = post_concurrently(server, token, [adjustment(account, card, -1) for _ in range(64)])
                outcomes = Counter("ok" if r.ok else r.code for r in replies)
                if outcomes != {"ok": 50, "NEGATIVE_BALANCE": 14} or balance(till, card) != 0:
                    failures += 1
                    print(
                        f"round {round_number}: 64 redemptions on 50p: {dict(outcomes)}, balance {balance(till, card)}"
                    )

                card, _ = sell_new(till, account, 1000)
                item = send(till, adjustment(account, card, -300))["data"]["createBalanceAdjustment"]["LineItem"]["id"]
                replies = post_concurrently(server, token, [reversal(account, [item]) for _ in range(16)])
                outcomes = Counter("ok" if r.ok else r.code for r in replies)
                if outcomes != {"ok": 1, "ALREADY_REVERSED": 15} or balance(till, card) != 1000:
                    failures += 1
                    print(f"round {round_number}: 16 reversals: {dict(outcomes)}")

                if round_number % 10 == 0:
                    card, _ = sell_new(till, account, 1000)
                    requests = [adjustment(account, card, 7) for _ in range(200)]
                    requests += [adjustment(account, card, -5) for _ in range(200)]
                    random.Random(round_number).shuffle(requests)
                    replies = post_concurrently(server, token, requests)
                    refused = Counter(r.code for r in replies if not r.ok)
                    if refused or balance(till, card) != 1400:
                        failures += 1
                        print(f"round {round_number}: 200 top-ups and 200 redemptions: {dict(refused)}")
                    print(f"round {round_number}/{options.rounds}: {failures} failure(s) so far", flush=True)
            verify_ledger(url, account.account_id)
            print(
                f"{options.rounds} rounds in {time.monotonic() - began:.0f}s, {failures} failure(s); ledger verify OK"
            )
            return 1 if failures else 0
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    sys.exit(main())
