"""Shared by the outbox's live tests: a `giftledger serve` that mails through a test SMTP server, the e-gift
order a till sends, and what the outbox table says about each message."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

from giftledger.services.context import Services
from giftledger.storage.outbox import outbox_messages
from giftledger.storage.tables import cards
from tests.api.documents import CREATE_ORDER
from tests.outbox.smtp import Received
from tests.safety.helpers import start_safety_server
from tests.safety.tills import ref
from tests.support import Demo, LiveServer, qr_text, with_services

MAIL_FROM = "cards@giftledger.test"
PUBLIC_URL = "https://gift.example.test"
EMAIL = 1  # fulfilment_method_id: the card is emailed to fulfilment_email


def start_mailing_server(database_url: str, log_dir: Path, smtp_url: str, **env: str) -> LiveServer:
    """A server whose outbox sends through `smtp_url`, retrying after 1 s (then 2, 4, ...). `env` adds to or
    overrides the GIFTLEDGER_ variables (MAIL_MAX_ATTEMPTS="3" sets GIFTLEDGER_MAIL_MAX_ATTEMPTS)."""
    mail = {
        "SMTP_URL": smtp_url,
        "MAIL_FROM": MAIL_FROM,
        "PUBLIC_URL": PUBLIC_URL,
        "MAIL_RETRY_SECONDS": "1",
        **env,
    }
    return start_safety_server(database_url, log_dir, {f"GIFTLEDGER_{k}": v for k, v in mail.items()})


def e_gift_order(demo: Demo, to: str, value: int = 2500, message: str | None = None) -> dict[str, Any]:
    """createOrder selling one new card, emailed to `to` (a generated card number)."""
    item = {
        "product_id": demo.product_id,
        "custom_price_modifier_value": value,
        "fulfilment_method_id": EMAIL,
        "fulfilment_email": to,
        "message": message,
        "card_reference": None,
        "generate_card_reference": True,
    }
    variables = {
        "account_id": demo.account_id,
        "merchant_id": demo.merchant_id,
        "order_items": [item],
        "currency": "GBP",
        "group_fulfilment": True,
        "total": value,
        "sales_channel_id": 3,
        "unit_epos_reference": demo.epos,
        "merchant_transaction_reference": ref("egift"),
    }
    return {"query": CREATE_ORDER, "variables": variables}


def sold_card(body: dict[str, Any]) -> str:
    """The card number a createOrder reply gives (one line item)."""
    assert "errors" not in body, body
    [line] = body["data"]["createOrder"]["LineItems"]
    card: str = line["Card"]["card_reference"]
    return card


@dataclass(frozen=True)
class Row:
    id: int
    recipient: str
    message_id: str
    card_reference: str | None
    state: str
    attempts: int
    last_error: str | None
    locked_until: datetime | None


def outbox_rows(database_url: str) -> list[Row]:
    """Every message in the database's outbox, by id, with its card's number."""

    async def work(services: Services) -> list[Row]:
        m = outbox_messages.c
        query = (
            select(m.id, m.recipient, m.message_id, cards.c.card_reference, m.state, m.attempts, m.last_error)
            .add_columns(m.locked_until)
            .select_from(outbox_messages.outerjoin(cards, cards.c.id == m.card_id))
            .order_by(m.id)
        )
        async with services.db.read() as conn:
            return [Row(*r) for r in await conn.execute(query)]

    rows: list[Row] = with_services(database_url, work)
    return rows


def wait_for_rows(database_url: str, condition: Callable[[list[Row]], bool], timeout: float, what: str) -> list[Row]:
    """Poll the outbox until `condition` holds for its rows (returned); fails after `timeout`, listing them."""
    deadline = time.monotonic() + timeout
    while True:
        rows = outbox_rows(database_url)
        if condition(rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {rows}")
        time.sleep(0.05)


def states(rows: Iterable[Row]) -> Counter[str]:
    return Counter(r.state for r in rows)


def message_ids(received: Iterable[Received]) -> Counter[str]:
    """How many times the SMTP server received each Message-ID."""
    return Counter(r.message_id for r in received)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def qr_code(message: EmailMessage) -> str:
    """The text of the e-gift's QR code (its one PNG image), read back from the pixels."""
    [png] = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert isinstance(png, EmailMessage)
    return qr_text(png.get_content())


def card_page_link(message: EmailMessage) -> str:
    """The link to the card's own page in the text part: {public_url}/c/<token>."""
    [link] = set(re.findall(rf"{re.escape(PUBLIC_URL)}/c/[A-Za-z0-9_-]+", text_of(message)))
    return str(link)


def grouped(card: str) -> str:
    """A card number as the e-gift prints it, in groups of four."""
    return " ".join(card[i : i + 4] for i in range(0, len(card), 4))
