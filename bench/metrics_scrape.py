"""/metrics after a bench run on a two-worker server: do its counters match the requests the bench made?

    python bench/metrics_scrape.py [--requests 2000] [--connections 8] [--workers 2]

Starts `giftledger serve --workers N` on a fresh database (TEST_DATABASE_URL's server, or an embedded one made
for the run), sells one card, then sends `--requests` requests from `--connections` keep-alive connections, half
redemptions of 1p and half balance checks, counting what the tills saw. Then it scrapes /metrics once and prints,
for each counter, the bench's count beside the scrape's total and each worker's share (read from that worker's own
files in the run's metrics directory). Exits non-zero when a counter does not match.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry, multiprocess  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from standalone import postgres  # noqa: E402
from tests.api import documents  # noqa: E402
from tests.api.till import adjustment_variables, order_variables  # noqa: E402
from tests.support import fresh_database, new_demo, start_server  # noqa: E402

Key = tuple[str, tuple[tuple[str, str], ...]]


def samples(families: Any) -> dict[Key, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}


def per_worker(directory: Path) -> dict[str, dict[Key, float]]:
    """Each worker's counters, from its own files alone (copied aside: prometheus-client reads a directory)."""
    found = {}
    for pid in sorted({f.stem.rsplit("_", 1)[1] for f in directory.glob("counter_*.db")}):
        alone = Path(tempfile.mkdtemp(prefix="giftledger-metrics-"))
        try:
            for f in directory.glob(f"*_{pid}.db"):
                shutil.copy(f, alone / f.name)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
            found[pid] = samples(registry.collect())
        finally:
            shutil.rmtree(alone, ignore_errors=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="giftledger-bench-metrics-"))
    try:
        with postgres() as base, fresh_database(base) as url:
            demo = new_demo(url, "Metrics bench")
            server = start_server(url, work, {"GIFTLEDGER_COST_MAXIMUM": "0"}, workers=args.workers)
            try:
                return measure(server, demo, args, work)
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(server: Any, demo: Any, args: argparse.Namespace, work: Path) -> int:
    login = httpx.post(
        server.graphql_url,
        json={"query": documents.LOGIN, "variables": {"username": demo.api_username, "password": demo.api_password}},
    )
    headers = {"Authorization": login.headers["X-Authorization"]}
    card = demo.card_references[0]
    sale = httpx.post(
        server.graphql_url,
        json={"query": documents.CREATE_ORDER, "variables": order_variables(demo, card, 100_000)},
        headers=headers,
    ).json()
    assert "errors" not in sale, sale
    seen: Counter[tuple[str, str]] = Counter({("loginUser", "accepted"): 1, ("createOrder", "accepted"): 1})
    lock = threading.Lock()
    redeem = {"query": documents.ADJUSTMENT}
    balance = {"query": documents.CARD_BALANCE, "variables": {"card_reference": card, "page": 1, "limit": 1}}

    def till(share: int) -> None:
        mine: Counter[tuple[str, str]] = Counter()
        with httpx.Client(headers=headers, timeout=60) as http:
            for i in range(share):
                if i % 2 == 0:
                    variables = adjustment_variables(demo, card, -1, merchant_transaction_reference=uuid.uuid4().hex)
                    body = http.post(server.graphql_url, json={**redeem, "variables": variables}).json()
                    operation = "createBalanceAdjustment"
                else:
                    body = http.post(server.graphql_url, json=balance).json()
                    operation = "Cards"
                mine[(operation, "refused" if body.get("errors") else "accepted")] += 1
        with lock:
            seen.update(mine)

    shares = [
        args.requests // args.connections + (i < args.requests % args.connections) for i in range(args.connections)
    ]
    started = time.perf_counter()
    threads = [threading.Thread(target=till, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    scrape = httpx.get(f"{server.url}/metrics", timeout=60)
    assert scrape.status_code == 200, scrape.text
    total = samples(text_string_to_metric_families(scrape.text))
    workers = per_worker(next((work / "var" / "metrics").iterdir()))

    redemptions = seen[("createBalanceAdjustment", "accepted")]
    expected: dict[Key, float] = {
        ("giftledger_requests_total", (("operation", op), ("outcome", outcome))): n for (op, outcome), n in seen.items()
    }
    expected[("giftledger_money_movements_total", (("kind", "redemption"),))] = redemptions
    expected[("giftledger_money_moved_pence_total", (("kind", "redemption"),))] = redemptions
    expected[("giftledger_money_movements_total", (("kind", "sale"),))] = 1
    expected[("giftledger_money_moved_pence_total", (("kind", "sale"),))] = 100_000

    print(
        f"{args.requests:,} requests from {args.connections} connections to {args.workers} workers in "
        f"{elapsed:.1f} s ({args.requests / elapsed:,.0f}/s); then one scrape of /metrics "
        f"({len(scrape.content):,} bytes)"
    )
    pids = list(workers)
    print(f"| counter | bench | /metrics | {' | '.join(f'worker {p}' for p in pids)} | match |")
    print(f"|---|---:|---:|{'---:|' * len(pids)}---|")
    mismatches = 0
    for key, want in expected.items():
        got = total.get(key, 0.0)
        shares_text = " | ".join(f"{workers[p].get(key, 0.0):,.0f}" for p in pids)
        label = key[0] + "{" + ",".join(f'{k}="{v}"' for k, v in key[1]) + "}"
        ok = got == want
        mismatches += not ok
        print(f"| `{label}` | {want:,.0f} | {got:,.0f} | {shares_text} | {'yes' if ok else 'NO'} |")
    duration = ("giftledger_request_duration_seconds_count", (("operation", "createBalanceAdjustment"),))
    print(f"latency histogram count (createBalanceAdjustment): {total.get(duration, 0):,.0f}")
    print(
        f"pool in use / waiting at the scrape: {total.get(('giftledger_db_pool_in_use', ()), 0):.0f} / "
        f"{total.get(('giftledger_db_pool_waiting', ()), 0):.0f}"
    )
    print("counters match the bench" if not mismatches else f"{mismatches} counters do NOT match the bench")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
