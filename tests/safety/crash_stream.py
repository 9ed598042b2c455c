"""A stream of till traffic (sales, redemptions, top-ups, reversals) from a few tills at once, recording
what each till saw, and the checks that must hold after the server was killed in the middle of it."""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.safety.helpers import wait_for
from tests.safety.tills import adjustment, new_card, reversal, sale
from tests.support import Demo, LiveServer, tls

LINE_ITEMS = """query($r:String!){LineItems(page:1,limit:10,merchant_transaction_reference:$r){
  data{ id value Card{ card_reference } } total }}"""


@dataclass
class Attempt:
    kind: str
    reference: str
    outcome: str  # "ok": the till saw it succeed; "refused": an error reply; "unknown": no reply
    line_item_ids: list[int] = field(default_factory=list)
    expected_items: int = 1


@dataclass
class Stream:
    """Shared by the tills of one stream; survives server restarts (cards and line items carry over)."""

    account: Demo
    token: str
    seed: int
    cards: list[str] = field(default_factory=list)
    reversible: list[int] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _next(self, rng: random.Random) -> tuple[str, dict[str, Any], int]:
        with self.lock:
            roll = rng.random()
            if not self.cards or roll < 0.25:
                cards = {new_card(): rng.randint(500, 5000) for _ in range(rng.choice([1, 1, 2]))}
                return "sale", sale(self.account, cards), len(cards)
            if self.reversible and roll < 0.45:
                target = self.reversible.pop(rng.randrange(len(self.reversible)))
                return "reversal", reversal(self.account, [target]), 1
            card = rng.choice(self.cards)
            value = rng.randint(-300, -1) if roll < 0.8 else rng.randint(1, 200)
            return "adjustment", adjustment(self.account, card, value), 1

    def _record(self, kind: str, request: dict[str, Any], expected: int, response: httpx.Response | None) -> None:
        reference = request["variables"]["merchant_transaction_reference"]
        if response is None:
            attempt = Attempt(kind, reference, "unknown", expected_items=expected)
        else:
            body = response.json()
            if response.status_code == 200 and "errors" not in body:
                data = body["data"]
                items = (
                    [data["createBalanceAdjustment"]["LineItem"]]
                    if kind == "adjustment"
                    else data["createOrder" if kind == "sale" else "createReversal"]["LineItems"]
                )
                attempt = Attempt(kind, reference, "ok", [i["id"] for i in items], expected)
            else:
                attempt = Attempt(kind, reference, "refused", expected_items=expected)
        with self.lock:
            self.attempts.append(attempt)
            if attempt.outcome == "ok":
                if kind == "sale":
                    self.cards.extend(i["Card"]["card_reference"] for i in items)
                if kind != "reversal":
                    self.reversible.extend(attempt.line_item_ids)

    def run_till(self, server: LiveServer, till_number: int, stop: threading.Event) -> None:
        """One till sending one request after another until told to stop or the server goes away."""
        rng = random.Random(self.seed * 100 + till_number)
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {self.token}"}, verify=tls()) as client:
            while not stop.is_set():
                kind, request, expected = self._next(rng)
                try:
                    response = client.post(server.graphql_url, json=request)
                except httpx.TransportError:
                    self._record(kind, request, expected, None)
                    return
                self._record(kind, request, expected, response)

    def ok_count(self) -> int:
        with self.lock:
            return sum(1 for a in self.attempts if a.outcome == "ok")


def kill_during_traffic(
    stream: Stream, server: LiveServer, restart: Callable[[], LiveServer], *, tills: int, more: int, within: float
) -> LiveServer:
    """Run `tills` tills of `stream` against `server` until `more` more requests succeeded (within `within`
    seconds), kill -9 the server in the middle of their traffic and start it again: the restarted server."""
    stop = threading.Event()
    threads = [threading.Thread(target=stream.run_till, args=(server, n, stop)) for n in range(tills)]
    for thread in threads:
        thread.start()
    target = stream.ok_count() + more
    wait_for(lambda: stream.ok_count() >= target, within, "till traffic")
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    for thread in threads:
        thread.join(30)
    return restart()


def check_after_restart(server: LiveServer, token: str, attempts: list[Attempt]) -> None:
    """Every success the tills saw is in the ledger with the same line items; every refusal left
    nothing; a request whose reply never came was applied whole or not at all."""
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}, verify=tls()) as client:
        for attempt in attempts:
            response = client.post(
                server.graphql_url, json={"query": LINE_ITEMS, "variables": {"r": attempt.reference}}
            )
            assert response.status_code == 200, response.text
            found = [item["id"] for item in response.json()["data"]["LineItems"]["data"]]
            if attempt.outcome == "ok":
                assert found == attempt.line_item_ids, attempt
            elif attempt.outcome == "refused":
                assert found == [], attempt
            else:
                assert len(found) in (0, attempt.expected_items), (attempt, found)
