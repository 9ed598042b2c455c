"""Crash soak: kill -9 the server at random moments during a stream of sales, redemptions, top-ups and
reversals from several tills, KILLS times; after every restart `ledger verify` must pass and every request
a till saw succeed must be in the ledger (a request whose reply never came: applied whole or not at all).

    python bench/crash_soak.py [--kills 50] [--tills 3] [--seed 1] [--database-url URL]

Runs on a fresh database, created and dropped, on the PostgreSQL server named by --database-url (default:
TEST_DATABASE_URL, else the local postgresql://postgres@127.0.0.1:5432/test). The test suite runs 5 kills
(tests/safety/test_crashes.py).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    from tests.safety.crash_stream import Stream, check_after_restart, kill_during_traffic
    from tests.safety.helpers import start_safety_server, verify_ledger
    from tests.support import (
        fresh_database,
        logged_in,
        new_demo,
        server_url_option,
    )

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--tills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    server_url_option(parser)
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="giftledger-crash-"))
    with fresh_database(options.database_url) as url:
        rng = random.Random(options.seed)
        began = time.monotonic()
        server = None
        try:
            account = new_demo(url)
            server = start_safety_server(url, work)
            stream = Stream(account, logged_in(server, account).token or "", seed=options.seed)
            checked = 0
            for kill in range(1, options.kills + 1):
                server = kill_during_traffic(
                    stream,
                    server,
                    lambda: start_safety_server(url, work),
                    tills=options.tills,
                    more=rng.randint(1, 40),
                    within=120,
                )
                verify_ledger(url, account.account_id)
                check_after_restart(server, stream.token, stream.attempts[checked:])
                checked = len(stream.attempts)
                outcomes = {o: sum(1 for a in stream.attempts if a.outcome == o) for o in ("ok", "refused", "unknown")}
                print(f"kill {kill}/{options.kills}: ledger verify OK; requests so far {outcomes}", flush=True)
            print(
                f"{options.kills} kills in {time.monotonic() - began:.0f}s: no violation, every success in the ledger"
            )
            return 0
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    sys.exit(main())
