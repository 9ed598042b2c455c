"""Crashes and restarts: kill -9 in the middle of till traffic, graceful shutdown, health and readiness
probes, and bounded waits when another process holds a lock."""

from __future__ import annotations

import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from giftledger.storage.migrate import head_revision
from tests.safety.crash_stream import Stream, check_after_restart, kill_during_traffic
from tests.safety.helpers import (
    HeldLock,
    execute_sql,
    start_safety_server,
    unrecorded_movements,
    verify_ledger,
    wait_for,
)
from tests.safety.raw_http import read_response, send_request
from tests.safety.tills import adjustment, balance, sell_new, send
from tests.support import Api, Demo, LiveServer, signed_in, unchanged

KILLS = 3  # in the suite (its time budget); bench/crash_soak.py runs 50 (and more with --kills)
TILLS = 3


def test_kill_9_during_till_traffic_loses_and_half_writes_nothing_and_leaves_no_movement_unaudited(
    database_url: str, account: Demo, tmp_path: Path
) -> None:
    rng = random.Random(20261122)
    server = start_safety_server(database_url, tmp_path)
    stream = Stream(account, signed_in(server, account).token or "", seed=1)
    checked = 0
    try:
        for cycle in range(KILLS):
            server = kill_during_traffic(
                stream,
                server,
                lambda: start_safety_server(database_url, tmp_path),
                tills=TILLS,
                more=rng.randint(2, 25),
                within=60,
            )
            verify_ledger(database_url, account.account_id)
            # every accepted movement committed with its audit record, whenever the kill came
            assert unrecorded_movements(database_url, account.account_id) == {
                "without a record": [],
                "without a movement": [],
            }
            check_after_restart(server, stream.token, stream.attempts[checked:])
            checked = len(stream.attempts)  # line items are append-only: what was checked stays true
            assert server.process.poll() is None, cycle
    finally:
        server.stop()
    outcomes = {a.outcome for a in stream.attempts}
    assert {"ok", "unknown"} <= outcomes, outcomes  # the kills did land in the middle of requests


def test_graceful_shutdown_finishes_in_flight_requests_and_refuses_new_ones(
    database_url: str, account: Demo, tmp_path: Path
) -> None:
    server = start_safety_server(database_url, tmp_path)
    port = urlparse(server.url).port or 0
    till = signed_in(server, account)
    card, _ = sell_new(till, account, 1000)
    with HeldLock(database_url, card) as lock:
        in_flight = send_request(port, adjustment(account, card, -400), till.token)
        # the server's event loop answers requests in arrival order: once this is answered, the
        # redemption above has been read and is waiting for the lock inside the server
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)

        def refuses_connections() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return False
            except ConnectionRefusedError:
                return True

        wait_for(refuses_connections, 10, "the server to stop accepting connections")
        assert server.process.poll() is None  # still finishing the redemption
        lock.release()
        status, body = read_response(in_flight)
    assert status == 200 and "errors" not in body, body
    assert body["data"]["createBalanceAdjustment"]["LineItem"]["Card"]["balance"] == 600
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught so the exit status says so
    assert server.process.wait(25) in (0, -signal.SIGTERM)
    assert time.monotonic() - began < 25
    assert "Traceback" not in server.log_path.read_text()
    verify_ledger(database_url, account.account_id)


def test_healthz_and_readyz(safety_server: LiveServer, database_url: str) -> None:
    assert httpx.get(f"{safety_server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{safety_server.url}/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "revision": head_revision()})
    execute_sql(database_url, "UPDATE alembic_version SET version_num = '0000'")  # a revision before ours
    try:
        pending = httpx.get(f"{safety_server.url}/readyz")
        assert httpx.get(f"{safety_server.url}/healthz").status_code == 200
    finally:
        execute_sql(database_url, f"UPDATE alembic_version SET version_num = '{head_revision()}'")
    assert (pending.status_code, pending.json()) == (
        503,
        {"status": "migrations pending", "current": "0000", "head": head_revision()},
    )
    assert httpx.get(f"{safety_server.url}/readyz").status_code == 200


@pytest.fixture
def impatient_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose statements (and so lock waits) are bounded at 1 second."""
    live = start_safety_server(database_url, tmp_path, {"GIFTLEDGER_STATEMENT_TIMEOUT_MS": "1000"})
    yield live
    live.stop()


def test_a_stuck_lock_never_hangs_a_till(impatient_server: LiveServer, account: Demo) -> None:
    till = signed_in(impatient_server, account)
    card, _ = sell_new(till, account, 1000)
    request = adjustment(account, card, -100)
    # (unchanged reads before taking and after releasing the lock: on SQLite it blocks readers too)
    with unchanged(impatient_server.database_url, account.account_id), HeldLock(impatient_server.database_url, card):
        began = time.monotonic()
        response = till.post(request["query"], request["variables"])
        waited = time.monotonic() - began
    assert response.status_code == 503
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "RETRYABLE"}
    assert error["message"] == "The service is temporarily unavailable. Nothing was applied; retry."
    assert "locked" not in response.text
    assert waited < 5
    retried = send(till, request)  # the same request, once the lock is gone
    assert "errors" not in retried, retried
    assert balance(till, card) == 900


def test_verify_runs_while_tills_write(safety_server: LiveServer, account: Demo, till: Api, database_url: str) -> None:
    """`ledger verify` reads one consistent view per check: it passes in the middle of traffic."""
    stream = Stream(account, till.token or "", seed=7)
    stop = threading.Event()
    tills = [threading.Thread(target=stream.run_till, args=(safety_server, n, stop)) for n in range(TILLS)]
    for thread in tills:
        thread.start()
    try:
        for _ in range(5):
            wait_for(lambda: stream.ok_count() >= 5, 30, "till traffic")
            verify_ledger(database_url, account.account_id)
    finally:
        stop.set()
        for thread in tills:
            thread.join(30)
    check_after_restart(safety_server, stream.token, stream.attempts)
