"""GIFTLEDGER_BACKGROUND=separate: the serving processes send nothing, and `giftledger work`, a process of its
own, delivers what they queued, then stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from giftledger.config import ConfigurationError, load_settings
from giftledger.services import webhooks
from giftledger.services.context import operator
from tests.safety.helpers import start_safety_server
from tests.safety.tills import adjustment, sell_new, send
from tests.support import SECRET, fresh_database, new_demo, signed_in, with_services
from tests.webhooks.receiver import receiver

SEPARATE = {"GIFTLEDGER_BACKGROUND": "separate"}
IDLE_ROUNDS_S = 2.0  # four of the webhook sender's idle polls (services/webhook_sender.POLL_S)


@pytest.fixture
def isolated(pg_base_url: str) -> Iterator[str]:
    with fresh_database(pg_base_url) as url:
        yield url


async def _deliveries(database_url: str) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT state, attempts FROM outbox_messages WHERE channel = 'webhook' ORDER BY id")
        return [(r["state"], r["attempts"]) for r in rows]
    finally:
        await conn.close()


def deliveries(database_url: str) -> list[tuple[str, int]]:
    return asyncio.run(_deliveries(database_url))


def test_with_background_separate_the_server_queues_and_giftledger_work_delivers(isolated: str, tmp_path: Path) -> None:
    demo = new_demo(isolated)
    with receiver() as hooks:
        created = with_services(
            isolated,
            lambda s: webhooks.add_endpoint(s, operator(demo.account_id), hooks.url, ["card.balance_adjusted"]),
        )
        hooks.secret = created.secret
        server = start_safety_server(isolated, tmp_path, SEPARATE)
        try:
            till = signed_in(server, demo)
            card, _ = sell_new(till, demo, 1000)
            assert "errors" not in send(till, adjustment(demo, card, -250))
            time.sleep(IDLE_ROUNDS_S)
            assert deliveries(isolated) == [("queued", 0)]  # the server did not touch it
            assert hooks.received() == []

            worker = subprocess.Popen(
                [sys.executable, "-m", "giftledger", "work", "--nice", "0"],
                env={
                    **os.environ,
                    "GIFTLEDGER_ENV": "test",
                    "GIFTLEDGER_SECRET_KEY": SECRET,
                    "GIFTLEDGER_DATABASE_URL": isolated,
                    **SEPARATE,
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=str(tmp_path),
            )
            try:
                [got] = hooks.wait_for(lambda g: len(g) == 1, timeout=30, what="the redemption's event")
            finally:
                worker.send_signal(signal.SIGTERM)
                _, log = worker.communicate(timeout=30)
        finally:
            server.stop()
    assert got.verified
    assert got.event["type"] == "card.balance_adjusted"
    assert got.event["data"]["object"]["card_reference"] == card
    assert got.event["data"]["line_item"]["value"] == -250
    assert deliveries(isolated) == [("sent", 1)]
    assert worker.returncode == 0, log.decode()
    assert b'"event": "working"' in log and b'"niceness": 0' in log


def test_background_must_be_serve_or_separate() -> None:
    base = {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET, "GIFTLEDGER_DATABASE_URL": "postgresql://x/y"}
    assert load_settings(base).background == "serve"
    assert load_settings({**base, "GIFTLEDGER_BACKGROUND": " Separate "}).background == "separate"
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**base, "GIFTLEDGER_BACKGROUND": "elsewhere"})
    assert str(refused.value) == (
        "GIFTLEDGER_BACKGROUND must be serve (each serving process also sends the outbox, runs the expiry and the "
        "exports) or separate (`giftledger work` does)"
    )
