"""kill -9 of the server with messages queued and in the middle of sending: after a restart every message is
delivered, and a message the SMTP server had already taken when its sender died is sent again whole, with the
same Message-ID (at least once, and a repeat is recognisable)."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.outbox.live import (
    Row,
    e_gift_order,
    message_ids,
    outbox_rows,
    qr_code,
    sold_card,
    start_mailing_server,
    states,
)
from tests.outbox.smtp import Inbox, smtp_server
from tests.safety.helpers import wait_for
from tests.safety.tills import send
from tests.support import LiveServer, fresh_database, new_demo, signed_in

LEASE = "1"  # seconds a dead sender's messages stay leased (GIFTLEDGER_MAIL_LEASE_SECONDS; 120 by default)
STUCK = 60.0  # the SMTP server's reply delay while a sender is to die in the middle of sending


@pytest.fixture
def isolated(pg_base_url: str) -> Iterator[str]:
    with fresh_database(pg_base_url) as url:
        yield url


def kill(server: LiveServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)


def unmarked(rows: list[Row], received: Counter[str]) -> set[str]:
    """Message-IDs the SMTP server has taken but whose rows do not say sent: each is to be sent again."""
    return {r.message_id for r in rows if r.state != "sent" and received[r.message_id]}


def test_kill_9_while_queued_and_while_sending_loses_nothing_and_repeats_only_in_flight_with_one_message_id(
    isolated: str, tmp_path: Path
) -> None:
    demo = new_demo(isolated)
    inbox = Inbox(delay=STUCK)  # every message is taken at once and answered only after STUCK seconds
    with smtp_server(inbox) as (_, url):

        def start() -> LiveServer:
            return start_mailing_server(isolated, tmp_path, url, MAIL_LEASE_SECONDS=LEASE)

        # 1. The first message is in flight (the SMTP server has it, the sender waits for the reply) when the other
        # twelve are ordered: the sender is busy, so they wait in the outbox, unclaimed. kill -9.
        first = start()
        till = signed_in(first, demo)
        sold = [sold_card(send(till, e_gift_order(demo, "first@example.com")))]
        wait_for(lambda: len(inbox.snapshot()) == 1, 30, "the first message to reach the SMTP server")
        sold += [sold_card(send(till, e_gift_order(demo, f"guest{n}@example.com"))) for n in range(12)]
        kill(first)
        rows = outbox_rows(isolated)
        assert states(rows) == {"queued": 13}
        assert [(r.attempts, r.locked_until is not None) for r in rows] == [(1, True)] + [(0, False)] * 12
        again = [unmarked(rows, message_ids(inbox.snapshot()))]
        assert again == [{rows[0].message_id}]

        # 2. A restarted server claims the twelve (and the first, once its lease ran out) in one batch and sends
        # eight at a time: kill -9 with eight in flight and the rest claimed, waiting for a free slot.
        second = start()
        wait_for(lambda: len(inbox.snapshot()) == 1 + 8, 30, "eight messages in flight")
        kill(second)
        rows = outbox_rows(isolated)
        assert states(rows) == {"queued": 13} and all(r.locked_until is not None for r in rows)
        again.append(unmarked(rows, message_ids(inbox.snapshot())))
        assert len(again[1]) == 8

        # 3. The SMTP server answers at once again: a third server, once the leases ran out, sends every message.
        inbox.delay = 0
        third = start()
        try:
            wait_for(lambda: states(outbox_rows(isolated)) == {"sent": 13}, 30, "every message to be sent")
            rows = outbox_rows(isolated)
            received = inbox.snapshot()
        finally:
            third.stop()

    # Nothing lost: every message arrived, for every card sold. Nothing twice, but for the repeats of messages
    # the SMTP server had taken when their sender died: each once more per such death, with the same Message-ID.
    expected = Counter({r.message_id: 1 + sum(r.message_id in died for died in again) for r in rows})
    assert message_ids(received) == expected
    assert sum(expected.values()) == 13 + 1 + 8
    assert sorted(r.card_reference or "" for r in rows) == sorted(sold)
    by_id = {r.message_id: r for r in rows}
    for got in received:
        assert qr_code(got.message) == by_id[got.message_id].card_reference
    # a repeat is the same message, byte for byte
    contents: dict[str, set[bytes]] = {}
    for got in received:
        contents.setdefault(got.message_id, set()).add(got.content)
    assert all(len(versions) == 1 for versions in contents.values())
