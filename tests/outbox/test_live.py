"""The outbox over the real server: a till's order over HTTP becomes one email at an SMTP server (its QR code
the card number createOrder returned), a mail server that is down delays messages without losing or
doubling any, and a refusal for good, or too many temporary ones, stops a message as failed with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.outbox.live import (
    MAIL_FROM,
    PUBLIC_URL,
    card_page_link,
    e_gift_order,
    grouped,
    message_ids,
    outbox_rows,
    qr_code,
    sold_card,
    start_mailing_server,
    states,
    text_of,
    wait_for_rows,
)
from tests.outbox.smtp import Inbox, nothing_listening, smtp_server
from tests.safety.helpers import wait_for
from tests.safety.tills import send
from tests.support import free_port, fresh_database, new_demo, signed_in


@pytest.fixture
def isolated(pg_base_url: str) -> Iterator[str]:
    """A database of its own: no other server sends its messages."""
    with fresh_database(pg_base_url) as url:
        yield url


def test_a_till_order_over_http_sends_one_e_gift_whose_qr_code_is_the_card_sold(isolated: str, tmp_path: Path) -> None:
    demo = new_demo(isolated)
    with smtp_server() as (inbox, url):
        server = start_mailing_server(isolated, tmp_path, url)
        try:
            till = signed_in(server, demo)
            card = sold_card(send(till, e_gift_order(demo, "ann@example.com", 2500, "Happy birthday, Ann!")))
            wait_for(lambda: states(outbox_rows(isolated)) == {"sent": 1}, 30, "the e-gift to be sent")
            [row] = outbox_rows(isolated)
            # one attempt, one message: nothing sent twice
            assert (row.attempts, row.card_reference, row.recipient) == (1, card, "ann@example.com")
            [got] = inbox.snapshot()
            assert (got.sender, got.recipients, got.message_id) == (MAIL_FROM, ["ann@example.com"], row.message_id)
            message = got.message
            assert message["To"] == "ann@example.com" and MAIL_FROM in message["From"]
            assert grouped(card) in text_of(message) and "Happy birthday, Ann!" in text_of(message)
            assert qr_code(message) == card
            # the link, {public_url}/c/<token>, leads to the card's own page
            page = httpx.get(server.url + card_page_link(message).removeprefix(PUBLIC_URL), timeout=10)
            assert page.status_code == 200 and grouped(card) in page.text, page.text
        finally:
            server.stop()


def test_a_mail_server_down_for_a_while_delays_every_message_and_loses_or_doubles_none(
    isolated: str, tmp_path: Path
) -> None:
    demo = new_demo(isolated)
    inbox = Inbox(refuse="451 try later")
    port = free_port()
    recipients = [f"guest{n}@example.com" for n in range(3)]
    with smtp_server(inbox, port) as (_, url):
        server = start_mailing_server(isolated, tmp_path, url)
        till = signed_in(server, demo)
        sold = {to: sold_card(send(till, e_gift_order(demo, to))) for to in recipients}
        refused = wait_for_rows(
            isolated,
            lambda rows: all(r.attempts >= 1 and r.last_error == "451 try later" for r in rows),
            30,
            "every message to be refused once",
        )
        assert states(refused) == {"queued": 3} and inbox.received == []
    try:
        with nothing_listening(port):  # the server is gone: connections are refused
            before = {r.id: r.attempts for r in outbox_rows(isolated)}
            waiting = wait_for_rows(
                isolated,
                lambda rows: all(r.attempts > before[r.id] and "451" not in (r.last_error or "") for r in rows),
                30,
                "every message to be tried again with the server gone",
            )
        assert states(waiting) == {"queued": 3} and all(r.last_error for r in waiting), waiting
        inbox.refuse = None
        with smtp_server(inbox, port):
            rows = wait_for_rows(
                isolated, lambda rows: states(rows) == {"sent": 3}, 30, "the messages once the server is back"
            )
            received = inbox.snapshot()
    finally:
        server.stop()
    # none lost, none twice: one message per row, by Message-ID and by card
    assert message_ids(received) == {r.message_id: 1 for r in rows}
    assert sorted(r.recipients[0] for r in received) == recipients
    assert {r.recipient: r.card_reference for r in rows} == sold
    assert all(r.attempts >= 3 and r.last_error is None for r in rows), rows
    for got in received:
        assert qr_code(got.message) == sold[got.recipients[0]]


def test_a_refusal_for_good_fails_at_once_and_too_many_temporary_ones_fail_in_the_end(
    isolated: str, tmp_path: Path
) -> None:
    demo = new_demo(isolated)
    inbox = Inbox(
        refuse_for={"gone@example.com": "550 5.1.1 No such mailbox here", "busy@example.com": "451 4.3.2 Try later"},
        refuse_rcpt={"nobody@example.com": "550 5.1.1 Unknown user"},
    )
    with smtp_server(inbox) as (_, url):
        server = start_mailing_server(isolated, tmp_path, url, MAIL_MAX_ATTEMPTS="2")
        try:
            till = signed_in(server, demo)
            for to in ("gone", "nobody", "josé", "busy", "fine"):
                sold_card(send(till, e_gift_order(demo, f"{to}@example.com")))

            def by_recipient() -> dict[str, tuple[str, int, str | None]]:
                return {r.recipient: (r.state, r.attempts, r.last_error) for r in outbox_rows(isolated)}

            # a 5xx reply, to the data or to the recipient, fails the message at its first attempt; so does an
            # address beyond ASCII at a server without SMTPUTF8 (no retry can mend that either)
            refused = ("gone@example.com", "nobody@example.com", "josé@example.com")
            wait_for(lambda: all(by_recipient()[to][0] == "failed" for to in refused), 30, "the refused to fail")
            assert by_recipient()["gone@example.com"] == ("failed", 1, "550 5.1.1 No such mailbox here")
            assert by_recipient()["nobody@example.com"] == ("failed", 1, "550 5.1.1 Unknown user")
            # a 4xx reply is tried again a second later, and the second refusal (MAIL_MAX_ATTEMPTS) is the last
            wait_for(lambda: by_recipient()["busy@example.com"][0] == "failed", 30, "the busy message to fail")
            final = by_recipient()
        finally:
            server.stop()
    assert final == {
        "gone@example.com": ("failed", 1, "550 5.1.1 No such mailbox here"),
        "nobody@example.com": ("failed", 1, "550 5.1.1 Unknown user"),
        "josé@example.com": ("failed", 1, "SMTPNotSupported: SMTPUTF8 is not supported by this server"),
        "busy@example.com": ("failed", 2, "451 4.3.2 Try later"),
        "fine@example.com": ("sent", 1, None),
    }
    [delivered] = inbox.snapshot()
    assert delivered.recipients == ["fine@example.com"]
    assert inbox.refused == 1 + 1 + 2  # each refusal once: a failed message is never tried again
