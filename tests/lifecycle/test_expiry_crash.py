"""kill -9 in the middle of `giftledger expire` over many due cards: what it did holds (the ledger verifies),
and the run again finishes the rest, so that every card's balance moved out by exactly one Breakage line
item."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select

from giftledger.domain.ledger import LineItemType
from giftledger.services.context import Services
from giftledger.services.expiry import expire_due
from giftledger.services.verification import verify_ledger
from giftledger.storage.clock import utcnow
from giftledger.storage.tables import cards, line_items
from tests.lifecycle.helpers import due_cards
from tests.support import SECRET, Demo

CARDS = 2000
BATCH = "2"  # cards per statement: 1,000 statements, each committed, so the kill lands in the middle (with 20, and
# with 5 once the ledger's inserts lost their foreign keys, a loaded machine saw the whole run end between the
# first batch seen and the kill)


def _expire(database_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET}
    command = [sys.executable, "-m", "giftledger", "--database-url", database_url, "expire", "--batch", BATCH]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def _broken(services: Services, account_id: int) -> tuple[int, int, int]:
    """(breakage line items, cards with more than one, cards still holding something) of the account."""
    async with services.db.engine.connect() as conn:
        per_card = (
            select(line_items.c.card_id, func.count().label("n"))
            .where(line_items.c.account_id == account_id, line_items.c.type_id == int(LineItemType.BREAKAGE))
            .group_by(line_items.c.card_id)
            .subquery()
        )
        total = (await conn.execute(select(func.coalesce(func.sum(per_card.c.n), 0)))).scalar_one()
        twice = (await conn.execute(select(func.count()).select_from(per_card).where(per_card.c.n > 1))).scalar_one()
        holding = (
            await conn.execute(
                select(func.count()).select_from(cards).where(cards.c.account_id == account_id, cards.c.balance > 0)
            )
        ).scalar_one()
        return int(total), int(twice), int(holding)


async def _any_broken(services: Services, account_id: int) -> bool:
    """Whether the run has committed its first batch (one index probe: the wait for it must be short)."""
    async with services.db.engine.connect() as conn:
        found = select(line_items.c.id).where(
            line_items.c.account_id == account_id, line_items.c.type_id == int(LineItemType.BREAKAGE)
        )
        return (await conn.execute(found.limit(1))).first() is not None


async def test_kill_9_during_an_expiry_run_then_again_expires_each_card_once(
    services: Services, demo: Demo, database_url: str
) -> None:
    await due_cards(services, demo.account_id, CARDS, tender=700, discount=300, expiry=utcnow() - timedelta(hours=1))
    running = _expire(database_url)
    deadline = time.monotonic() + 60
    while not await _any_broken(services, demo.account_id):
        assert running.poll() is None, running.stderr.read() if running.stderr else b""
        assert time.monotonic() < deadline, "the expiry run did not start"
        await asyncio.sleep(0.005)
    running.send_signal(signal.SIGKILL)
    running.wait(10)
    done, twice, holding = await _broken(services, demo.account_id)
    assert 0 < done < CARDS and twice == 0 and holding == CARDS - done  # part done, whole batches only
    assert done % int(BATCH) == 0
    assert (await verify_ledger(services, demo.account_id)).ok

    assert await expire_due(services) >= CARDS - done  # the run again (the same code `giftledger expire` runs)
    assert await _broken(services, demo.account_id) == (CARDS, 0, 0)
    report = await verify_ledger(services, demo.account_id)
    assert report.ok, report.violations
    [breakage] = [c for c in report.accounts[0].checks if c.name == "breakage"]
    assert breakage.examined == CARDS
