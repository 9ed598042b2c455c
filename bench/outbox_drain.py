"""The outbox's share of the benchmark (bench/run.py's `outbox` part): how fast a server drains a backlog of
queued e-gifts to an SMTP server, what its processes' RSS peaks at meanwhile, and what the backlog costs the
tills (redemptions with it draining, beside the same without one). Beside the drain, its floor: aiosmtplib
alone sending the same message to the same SMTP server, a connection per message (as `SmtpMailer` does) and
one connection for 50 (a sender's batch), so the table shows what the connection per message costs.

    python bench/run.py --only outbox [--messages 10000] [--cards 10000] [--duration 10]

The SMTP server is aiosmtpd's `Sink` (it takes and discards every message) in a process of its own: bench/run.py
starts it for the whole run, since the production settings the bench server runs with need an SMTP URL. The
backlog is written straight into `outbox_messages` (one real e-gift, built by outbound/emails.py, under a new
Message-ID per row), in one transaction, so the senders find it all at once; the rate is taken from the rows'
own `sent_at` (first to last), not from polling.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import asyncpg  # type: ignore[import-untyped]
from tests.support import free_port

from giftledger.outbound import emails
from giftledger.outbound.mailers import SmtpMailer
from giftledger.services.outbox import BATCH, CONCURRENCY

SENDER = "bench@giftledger.test"
RECIPIENT = "guest@bench.test"


class Sink:
    """An SMTP server that accepts and discards every message (aiosmtpd's `Sink`), in a process of its own."""

    def __init__(self, log: Path) -> None:
        port = free_port()
        self.url = f"smtp://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the SMTP sink exited: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("the SMTP sink did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def e_gift() -> emails.Built:
    """One real e-gift (QR code, both parts), as a sale queues it."""
    card = emails.EGift("B000000000001", 2500, "Happy birthday!", None, "https://gift.bench.test/c/token")
    return emails.e_gift(emails.Brand("Bench"), card, sender=SENDER, recipient=RECIPIENT, now=datetime.now(UTC))


def copies(n: int) -> list[tuple[str, bytes]]:
    """`n` copies of the e-gift, each under a Message-ID of its own: (Message-ID, content)."""
    built = e_gift()
    out = []
    for _ in range(n):
        message_id = make_msgid(domain="bench.test")
        out.append((message_id, built.content.replace(built.message_id.encode(), message_id.encode())))
    return out


async def queue(database_url: str, account_id: int, n: int) -> None:
    """Queue `n` e-gifts at once (one transaction)."""
    conn = await asyncpg.connect(database_url)
    try:
        now = await conn.fetchval("SELECT now()")
        rows = [
            (account_id, "card.e_gift", RECIPIENT, "Your £25.00 Bench gift card", mid, content, "queued", 0, now, now)
            for mid, content in copies(n)
        ]
        await conn.copy_records_to_table(
            "outbox_messages",
            records=rows,
            columns=[
                "account_id",
                "kind",
                "recipient",
                "subject",
                "message_id",
                "content",
                "state",
                "attempts",
                "next_attempt_at",
                "created_at",
            ],
        )
    finally:
        await conn.close()


async def database_now(database_url: str) -> datetime:
    conn = await asyncpg.connect(database_url)
    try:
        now: datetime = await conn.fetchval("SELECT now()")
        return now
    finally:
        await conn.close()


@dataclass(frozen=True)
class Drained:
    messages: int  # sent since `since`
    seconds: float  # from the first one sent to the last
    failed: int
    retried: int  # messages sent at more than one attempt (to the sink, each should take one)

    @property
    def rate(self) -> float:
        return (self.messages - 1) / self.seconds if self.seconds > 0 else 0.0


async def wait_drained(database_url: str, since: datetime, timeout: float = 600) -> Drained:
    """Wait until nothing is queued; what was sent after `since`."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT count(*) FROM outbox_messages WHERE state = 'queued'"):
            if time.monotonic() > deadline:
                raise SystemExit(f"the outbox did not drain within {timeout:.0f} s")
            await asyncio.sleep(0.2)
        row = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE state = 'sent') AS sent, count(*) FILTER (WHERE state = 'failed') AS failed,
                   count(*) FILTER (WHERE attempts > 1) AS retried,
                   extract(epoch FROM max(sent_at) - min(sent_at)) AS seconds
            FROM outbox_messages WHERE created_at >= $1
            """,
            since,
        )
        return Drained(int(row["sent"]), float(row["seconds"] or 0), int(row["failed"]), int(row["retried"]))
    finally:
        await conn.close()


async def sent_between(database_url: str, start: datetime, end: datetime) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM outbox_messages WHERE state = 'sent' AND sent_at >= $1 AND sent_at < $2",
                start,
                end,
            )
        )
    finally:
        await conn.close()


async def queued(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox_messages WHERE state = 'queued'"))
    finally:
        await conn.close()


async def per_message(url: str, messages: list[tuple[str, bytes]], concurrency: int) -> None:
    """What `SmtpMailer` does: `aiosmtplib.send`, a connection per message, `concurrency` at a time."""
    mailer = SmtpMailer(url)
    slots = asyncio.Semaphore(concurrency)

    async def one(message_id: str, content: bytes) -> None:
        async with slots:
            await mailer.deliver(content, sender=SENDER, recipient=RECIPIENT, message_id=message_id)

    await asyncio.gather(*(one(mid, content) for mid, content in messages))


async def per_batch(url: str, messages: list[tuple[str, bytes]], concurrency: int, batch: int = BATCH) -> None:
    """`concurrency` connections at a time, each sending `batch` messages one after another."""
    host, port = url.removeprefix("smtp://").rsplit(":", 1)
    slots = asyncio.Semaphore(concurrency)

    async def one(chunk: list[tuple[str, bytes]]) -> None:
        async with slots:
            client = aiosmtplib.SMTP(hostname=host, port=int(port), start_tls=False)
            async with client:
                for _, content in chunk:
                    await client.sendmail(SENDER, [RECIPIENT], content)

    await asyncio.gather(*(one(messages[i : i + batch]) for i in range(0, len(messages), batch)))


@dataclass(frozen=True)
class Floor:
    rate: float  # messages a second
    client_cpu_ms: float  # this process's CPU time per message
    sink_cpu_ms: float  # the SMTP server's


def floor(url: str, sink_pid: int, n: int, reuse: bool, measure: Callable[[list[int]], float]) -> Floor:
    """aiosmtplib alone sending `n` e-gifts to the sink, `CONCURRENCY` at a time, without a database. `measure`:
    the CPU seconds processes have used (bench/run.py's reader of /proc)."""
    messages = copies(n)
    work = per_batch if reuse else per_message
    sink_before, client_before, started = measure([sink_pid]), time.process_time(), time.perf_counter()
    asyncio.run(work(url, messages, CONCURRENCY))
    elapsed = time.perf_counter() - started
    return Floor(
        n / elapsed,
        (time.process_time() - client_before) * 1000 / n,
        (measure([sink_pid]) - sink_before) * 1000 / n,
    )
