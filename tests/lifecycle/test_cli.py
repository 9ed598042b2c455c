"""`giftledger product validity` and `giftledger expire` at the command line (in-process, through click)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from click.testing import CliRunner, Result

from giftledger.cli import admin, expiry
from giftledger.cli.main import cli
from giftledger.services.context import Services
from giftledger.storage.clock import utcnow
from tests.lifecycle.helpers import Till, line_item_types, set_card, state
from tests.support import SECRET, Demo


def _run(database_url: str, *args: str) -> Result:
    admin.register(cli)
    expiry.register(cli, admin.product)
    env = {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET}
    return CliRunner(env=env).invoke(cli, ["--database-url", database_url, *args], obj={})


async def test_product_validity_is_shown_and_set_and_a_bad_one_is_refused_unchanged(
    services: Services, demo: Demo, database_url: str
) -> None:
    product = ["product", "validity", "--account-id", str(demo.account_id), "--product-id", str(demo.product_id)]
    shown: dict[str, Any] = json.loads((await _cli(database_url, *product)).stdout)
    assert shown["summary"] == ["Card becomes active immediately", "Never expires"]
    held = await state(services, demo.account_id)
    refused = await _cli(database_url, *product, "--expires", "period", "--reminder-days", "3")
    assert refused.exit_code == 1
    assert "expiry_period_days: Enter the number of days after purchase." in refused.output
    assert await state(services, demo.account_id) == held
    done = await _cli(database_url, *product, "--active-after-days", "2", "--expiry-days", "90", "--reminder-days", "3")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["summary"] == [
        "Card becomes active 2 days after purchase",
        "Expires 90 days after purchase",
        "Reminder email 3 days before expiry",
    ]


async def test_giftledger_expire_breaks_the_due_cards(
    services: Services, demo: Demo, till: Till, database_url: str
) -> None:
    card = (await till.sell(1200, discount=200))["Card"]["card_reference"]
    await set_card(services, demo.account_id, card, expiry_time=utcnow() - timedelta(seconds=1))
    done = await _cli(database_url, "expire")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["expired"] >= 1
    assert (await line_item_types(services, demo.account_id, card))[-1] == (3, -1200, -1000, -200)


async def _cli(database_url: str, *args: str) -> Result:
    return await asyncio.to_thread(_run, database_url, *args)
