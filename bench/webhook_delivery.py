"""Webhooks' share of the benchmark (bench/run.py's `webhooks` part): till redemptions per second with one
endpoint subscribed to `card.balance_adjusted` (a local receiver, bench/webhook_receiver.py, checking every
signature), beside the same without: the cost of writing an event with each redemption, and of the server's
sender posting it meanwhile. Runs alternate, without, with, without, with, ..., so that a drift of the
machine's speed cancels out of the ratio; between runs the deliveries drain.

    python bench/run.py --only webhooks [--repeat 2] [--duration 10]

Both ways of running the deliveries are measured, each with its own server: in a `giftledger work` process of
their own (GIFTLEDGER_BACKGROUND=separate, at its default niceness), then in the serving processes (serve).

The server runs with GIFTLEDGER_ENV=test rather than production: in production a webhook to this machine's own
address is refused (server-side request forgery), and the receiver is on 127.0.0.1. Every other setting is the
bench's."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg  # type: ignore[import-untyped]

from giftledger.app import build_services
from giftledger.config import Settings
from giftledger.services import webhooks
from giftledger.services.context import operator

ENV = {"GIFTLEDGER_ENV": "test"}
# Where the deliveries are sent from (GIFTLEDGER_BACKGROUND), in the order measured.
MODES = {
    "separate": "sent by `giftledger work`, niceness 10",
    "serve": "sent by the serving processes",
}


@dataclass(frozen=True)
class Endpoint:
    id: int
    secret: str


async def subscribe(database_url: str, secret_key: str, account_id: int, url: str) -> Endpoint:
    settings = Settings(database_url=database_url, secret_key=secret_key, environment="test")
    services = build_services(settings)
    try:
        created = await webhooks.add_endpoint(services, operator(account_id), url, ["card.balance_adjusted"])
        return Endpoint(created.id, created.secret)
    finally:
        await services.db.dispose()


async def switch(database_url: str, secret_key: str, account_id: int, endpoint_id: int, enabled: bool) -> None:
    services = build_services(Settings(database_url=database_url, secret_key=secret_key, environment="test"))
    try:
        await webhooks.set_enabled(services, operator(account_id), endpoint_id, enabled)
    finally:
        await services.db.dispose()


@dataclass(frozen=True)
class Delivered:
    sent: int  # deliveries sent between the two moments
    queued: int  # still queued at the end
    failed: int  # failed or retried, ever (each should take one attempt)


async def forget(database_url: str, endpoint_id: int) -> int:
    """Delete the endpoint's deliveries (the dead endpoint's, queued for retries long after the run): how many
    had been attempted."""
    conn = await asyncpg.connect(database_url)
    try:
        attempted: int = await conn.fetchval(
            "WITH gone AS (DELETE FROM outbox_messages WHERE endpoint_id = $1 RETURNING attempts) "
            "SELECT count(*) FILTER (WHERE attempts > 0) FROM gone",
            endpoint_id,
        )
        return attempted
    finally:
        await conn.close()


async def now(database_url: str) -> datetime:
    conn = await asyncpg.connect(database_url)
    try:
        found: datetime = await conn.fetchval("SELECT now()")
        return found
    finally:
        await conn.close()


async def delivered(database_url: str, start: datetime, end: datetime) -> Delivered:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE state = 'sent' AND sent_at >= $1 AND sent_at < $2) AS sent,
                   count(*) FILTER (WHERE state = 'queued') AS queued,
                   count(*) FILTER (WHERE state = 'failed' OR attempts > 1) AS failed
            FROM outbox_messages WHERE channel = 'webhook'
            """,
            start,
            end,
        )
        return Delivered(int(row["sent"]), int(row["queued"]), int(row["failed"]))
    finally:
        await conn.close()


async def wait_drained(database_url: str, timeout: float = 600) -> float:
    """Seconds until no webhook delivery is queued."""
    conn = await asyncpg.connect(database_url)
    try:
        began = time.monotonic()
        deadline = began + timeout
        while await conn.fetchval(
            "SELECT count(*) FROM outbox_messages WHERE channel = 'webhook' AND state = 'queued'"
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"the webhook deliveries did not drain within {timeout:.0f} s")
            await asyncio.sleep(0.2)
        return time.monotonic() - began
    finally:
        await conn.close()
