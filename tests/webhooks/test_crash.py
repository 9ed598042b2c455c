"""kill -9 of the server with webhook deliveries in flight and queued: after a restart every event is delivered,
and one the receiver had already taken when its sender died is sent again whole, with the same event id."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from giftledger.services import webhooks
from giftledger.services.context import operator
from tests.safety.helpers import start_safety_server, wait_for
from tests.safety.tills import adjustment, sell_new, send
from tests.support import LiveServer, fresh_database, new_demo, signed_in, with_services
from tests.webhooks.receiver import receiver

STUCK = 60.0  # the receiver's reply delay while the sender is to die in the middle of posting
IN_FLIGHT = 4  # services/webhook_sender.PER_ENDPOINT: deliveries posted at once to one endpoint


@pytest.fixture
def isolated(pg_base_url: str) -> Iterator[str]:
    with fresh_database(pg_base_url) as url:
        yield url


def kill(server: LiveServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)


def test_kill_9_with_deliveries_in_flight_and_queued_loses_none_and_repeats_carry_the_same_event_id(
    isolated: str, tmp_path: Path
) -> None:
    demo = new_demo(isolated)
    with receiver() as hooks:
        created = with_services(
            isolated,
            lambda s: webhooks.add_endpoint(s, operator(demo.account_id), hooks.url, ["card.balance_adjusted"]),
        )
        hooks.secret = created.secret
        hooks.delay = STUCK

        def start() -> LiveServer:
            return start_safety_server(isolated, tmp_path, {"GIFTLEDGER_WEBHOOK_LEASE_SECONDS": "1"})

        first = start()
        till = signed_in(first, demo)
        cards = [sell_new(till, demo, 1000)[0] for _ in range(IN_FLIGHT + 3)]
        for card in cards:  # one event per card: nothing waits behind another card's
            assert "errors" not in send(till, adjustment(demo, card, -250))
        wait_for(lambda: len(hooks.received()) == IN_FLIGHT, 30, "deliveries in flight")
        kill(first)
        taken = Counter(g.event["id"] for g in hooks.received())
        assert len(taken) == IN_FLIGHT

        hooks.delay = 0
        second = start()
        try:
            hooks.wait_for(
                lambda g: len({x.event["id"] for x in g}) == len(cards) and len(g) == len(cards) + IN_FLIGHT,
                timeout=30,
                what="every event, the interrupted ones twice",
            )
        finally:
            second.stop()
        got = hooks.received()

    by_event: dict[int, set[bytes]] = {}
    for g in got:
        by_event.setdefault(g.event["id"], set()).add(g.body)
    assert all(len(bodies) == 1 for bodies in by_event.values())  # a repeat is the same body, byte for byte
    counts = Counter(g.event["id"] for g in got)
    assert counts == Counter({event: 1 + taken[event] for event in by_event})
    assert sorted(
        g.event["data"]["object"]["card_reference"]
        for g in got
        if counts[g.event["id"]] == 1 or g is next(x for x in got if x.event["id"] == g.event["id"])
    ) == sorted(cards)
    assert all(g.verified for g in got)
    assert {g.event["data"]["object"]["balance"] for g in got} == {750}
