"""What the metrics (metrics.py) cost a request: paired runs with them on and off, in one process.

    python bench/metrics_overhead.py [--pairs 10] [--block 200]

Metrics are kept as a several-worker server keeps them (prometheus-client's multiprocess mode: every change is a
write to a memory-mapped file). Two measurements:
- the instrumentation alone: the calls one redemption makes (the request's counters and histogram, the pool's
  gauges at checkout and checkin and while waiting, the money moved), timed in a loop;
- end to end: redemptions through the whole app in-process (httpx's ASGI transport, a real PostgreSQL), in
  alternating blocks with the metrics on and off (off: no observer on the request log, and the pool's and the
  money's instruments swapped for ones that do nothing), the median of each block's time per request.
Both are this process's CPU time (`time.process_time`: the app and the in-process client; PostgreSQL's work is
not in it, and the metrics cost none there), which a machine busy with other work disturbs far less than the
wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
METRICS_DIR = tempfile.mkdtemp(prefix="giftledger-overhead-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR  # before prometheus-client is imported
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.api import documents  # noqa: E402
from tests.api.till import adjustment_variables, order_variables  # noqa: E402
from tests.support import Demo, fresh_database, new_demo, test_settings  # noqa: E402

from giftledger import metrics  # noqa: E402
from giftledger.app import create_app  # noqa: E402
from giftledger.request_log import RequestLog  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from metrics_scrape import postgres  # noqa: E402

SWAPPED = ("POOL_IN_USE", "POOL_WAITING", "MOVEMENTS", "MOVED")


class Nothing:
    """An instrument that records nothing."""

    def labels(self, *_: Any) -> Nothing:
        return self

    def inc(self, *_: Any) -> None:
        pass

    def dec(self, *_: Any) -> None:
        pass


def hooks_alone(rounds: int) -> float:
    """Microseconds of CPU for the metrics calls of one redemption."""
    noted = {"operation": "createBalanceAdjustment", "outcome": "accepted"}
    started = time.process_time()
    for _ in range(rounds):
        metrics.POOL_WAITING.inc()
        metrics.POOL_WAITING.dec()
        metrics.connection_checked_out()
        metrics.connection_checked_in()
        metrics.money_moved([("redemption", -1)])
        metrics.observe_request(noted, 200, 0.004)
    return (time.process_time() - started) / rounds * 1e6


async def end_to_end(url: str, demo: Demo, pairs: int, block: int) -> tuple[list[float], list[float]]:
    inner = create_app(test_settings(url, cost_maximum=0))
    on, off = RequestLog(inner, observe=metrics.observe_request), RequestLog(inner)
    kept = {name: getattr(metrics, name) for name in SWAPPED}
    card = demo.card_references[0]
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        clients = {
            flag: httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.1", 1)), base_url="http://b")
            for flag, app in ((True, on), (False, off))
        }
        login = await clients[True].post(
            "/graphql",
            json={
                "query": documents.LOGIN,
                "variables": {"username": demo.api_username, "password": demo.api_password},
            },
        )
        headers = {"Authorization": login.headers["X-Authorization"]}
        sale = await clients[True].post(
            "/graphql",
            json={"query": documents.CREATE_ORDER, "variables": order_variables(demo, card, 1_000_000)},
            headers=headers,
        )
        assert "errors" not in sale.json(), sale.text

        async def run(flag: bool, count: int) -> float:
            for name, instrument in kept.items():
                setattr(metrics, name, instrument if flag else Nothing())
            started = time.process_time()
            for _ in range(count):
                variables = adjustment_variables(demo, card, -1, merchant_transaction_reference=uuid.uuid4().hex)
                reply = await clients[flag].post(
                    "/graphql", json={"query": documents.ADJUSTMENT, "variables": variables}, headers=headers
                )
                assert reply.status_code == 200 and "errors" not in reply.json(), reply.text
            return (time.process_time() - started) / count * 1e6

        await run(True, block)  # warm-up: the document cache, the pool, the statement caches
        await run(False, block)
        for pair in range(pairs):
            for flag in (True, False) if pair % 2 == 0 else (False, True):
                times[flag].append(await run(flag, block))
    finally:
        for name, instrument in kept.items():
            setattr(metrics, name, instrument)
        for client in clients.values():
            await client.aclose()
        await inner.state.services.dispose()
    return times[True], times[False]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--block", type=int, default=200)
    args = parser.parse_args()
    try:
        alone = [hooks_alone(20_000) for _ in range(5)]
        print(
            f"instrumentation of one redemption, alone: {statistics.median(alone):.1f} us of CPU (median of 5 x 20,000)"
        )
        with postgres() as base, fresh_database(base) as url:
            demo = new_demo(url, "Overhead bench")
            on, off = asyncio.run(end_to_end(url, demo, args.pairs, args.block))
        differences = sorted(a - b for a, b in zip(on, off, strict=True))
        print(
            f"redemption in-process, {args.pairs} pairs of {args.block}: metrics on {statistics.median(on):.0f} us, "
            f"off {statistics.median(off):.0f} us of CPU per request; on - off, pair by pair: median "
            f"{statistics.median(differences):+.0f} us (min {differences[0]:+.0f}, max {differences[-1]:+.0f})"
        )
    finally:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
