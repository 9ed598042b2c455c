"""PostgreSQL restarted under load (a private PostgreSQL server of this test's own: the shared one is
never touched). While it is down requests fail fast with a retryable error; once it is back the server
recovers by itself within 5 seconds; nothing is half-written."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.safety.helpers import line_items_by_reference, start_safety_server, verify_ledger, wait_for
from tests.safety.private_postgres import PrivatePostgres, available
from tests.safety.tills import adjustment, balance, sell_new
from tests.support import create_postgres_database, migrate_database, new_demo, signed_in

TILLS = 4


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@dataclass(frozen=True)
class Seen:
    reference: str
    value: int
    status: int | None  # None: no HTTP reply at all
    code: str | None
    sent: float
    took: float


def test_postgres_restarted_under_load(private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    url = create_postgres_database(private_postgres.url)
    migrate_database(url)
    server = start_safety_server(url, tmp_path)
    try:
        demo = new_demo(url)
        till = signed_in(server, demo)
        card, _ = sell_new(till, demo, 1_000_000)
        seen: list[Seen] = []
        lock = threading.Lock()
        stop = threading.Event()

        def run_till() -> None:
            with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {till.token}"}) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    value = -1 - n % 7 if n % 3 else 1 + n % 5
                    request = adjustment(demo, card, value)
                    sent = time.monotonic()
                    try:
                        response = client.post(server.graphql_url, json=request)
                        status: int | None = response.status_code
                        body = response.json()
                        code = body["errors"][0]["extensions"]["code"] if "errors" in body else None
                    except httpx.TransportError:
                        status, code = None, None
                    with lock:
                        seen.append(
                            Seen(
                                request["variables"]["merchant_transaction_reference"],
                                value,
                                status,
                                code,
                                sent,
                                time.monotonic() - sent,
                            )
                        )

        def count(predicate: Callable[[Seen], bool]) -> int:
            with lock:
                return sum(1 for s in seen if predicate(s))

        tills = [threading.Thread(target=run_till) for _ in range(TILLS)]
        for thread in tills:
            thread.start()
        try:
            wait_for(lambda: count(lambda s: s.code is None and s.status == 200) >= 40, 60, "traffic")
            stopped_at = time.monotonic()
            private_postgres.stop("immediate")
            down_since = time.monotonic()
            wait_for(lambda: count(lambda s: s.sent > down_since) >= 40, 30, "requests while PostgreSQL is down")
            readyz_down = httpx.get(f"{server.url}/readyz", timeout=10)
            healthz_down = httpx.get(f"{server.url}/healthz", timeout=10)
            starting = time.monotonic()
            private_postgres.start()
            back_at = time.monotonic()
            recovery = wait_for(
                lambda: count(lambda s: s.sent > back_at and s.status == 200 and s.code is None) >= 1,
                30,
                "the first success after PostgreSQL is back",
            )
            wait_for(
                lambda: count(lambda s: s.sent > back_at and s.status == 200 and s.code is None) >= 40, 60, "traffic"
            )
        finally:
            stop.set()
            for thread in tills:
                thread.join(30)

        assert (readyz_down.status_code, readyz_down.json()["status"]) == (503, "unavailable")
        assert healthz_down.status_code == 200
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        assert recovery < 5, recovery

        # while it was down: every till got a prompt, retryable refusal, never a 500 and never a hang
        while_down = [s for s in seen if down_since < s.sent and s.sent + s.took < starting]
        assert len(while_down) >= 40
        assert {(s.status, s.code) for s in while_down} == {(503, "RETRYABLE")}
        assert max(s.took for s in while_down) < 1.0
        # around the stop: a request either succeeded, was refused as retryable, or (for one cut off
        # exactly at the stop) got no reply at all; nothing else
        assert {(s.status, s.code) for s in seen} <= {(200, None), (503, "RETRYABLE"), (None, None)}
        assert all(s.status is not None for s in seen if s.sent > stopped_at + 1)

        # nothing half-written: each reference has one line item or none, the balance is the sum of
        # what was applied, and every success the tills saw is there
        verify_ledger(url, demo.account_id)
        ledger = line_items_by_reference(url, demo.account_id)
        applied = 0
        for s in seen:
            found = ledger.get(s.reference, [])
            if s.status == 200 and s.code is None:
                assert found == [s.value], s
            else:
                assert found in ([], [s.value]), s
            applied += sum(found)
        assert applied == sum(sum(values) for values in ledger.values()) - 1_000_000  # plus the sale
        assert balance(till, card) == 1_000_000 + applied
    finally:
        server.stop()
