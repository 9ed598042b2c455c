"""A real SMTP server for the tests (aiosmtpd on a free loopback port) that keeps what it receives."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from functools import cached_property
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    content: bytes  # as received

    @cached_property
    def message(self) -> EmailMessage:
        """The message, parsed (when first asked for: parsing hundreds in the server's thread would slow it)."""
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @cached_property
    def message_id(self) -> str:
        return str(BytesHeaderParser(policy=email.policy.default).parsebytes(self.content)["Message-ID"])


@dataclass
class Inbox:
    """What the server has accepted, in order. `refuse` makes it answer every message with that reply;
    `refuse_for` answers the messages to one recipient so (recipient -> reply) after their data, `refuse_rcpt`
    at that recipient's RCPT TO, before any data. With `delay`, a message is kept at once and the reply comes
    `delay` seconds later: a client that dies meanwhile has delivered a message without knowing it (aiosmtpd
    cancels the handler when the connection drops; the message is kept)."""

    received: list[Received] = field(default_factory=list)
    refuse: str | None = None
    refuse_for: dict[str, str] = field(default_factory=dict)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    refused: int = 0  # replies other than 250 given
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse_rcpt:
            with self.lock:
                self.refused += 1
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self.refuse or next((self.refuse_for[r] for r in envelope.rcpt_tos if r in self.refuse_for), None)
        if reply is not None:
            with self.lock:
                self.refused += 1
            return reply
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 OK"

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)


@contextmanager
def nothing_listening(port: int) -> Iterator[None]:
    """The port held with nothing listening on it (a connection is refused), so that no other process takes it
    while an SMTP server on it is down."""
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", port))
        yield


@contextmanager
def smtp_server(
    inbox: Inbox | None = None, port: int | None = None, *, utf8: bool = False
) -> Iterator[tuple[Inbox, str]]:
    """A running SMTP server and its URL (smtp://127.0.0.1:PORT); given `inbox` and `port`, the same server
    started again after a stop. `utf8`: it offers SMTPUTF8 (addresses beyond ASCII)."""
    inbox = inbox if inbox is not None else Inbox()
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=utf8)
    controller.start()
    try:
        yield inbox, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()
