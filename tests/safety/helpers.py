"""Shared by the ledger-safety tests: servers without throttles, the ledger check, concurrent tills."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from giftledger.cli import ledger as ledger_cli
from giftledger.cli.main import cli
from tests.support import SECRET, LiveServer, start_server, tls

# The cost budget and card-guessing limits are issue 6's business; they would turn these tests' many
# requests from one API user into THROTTLED replies. These servers switch them off.
NO_THROTTLES = {
    "GIFTLEDGER_COST_MAXIMUM": "0",
    "GIFTLEDGER_CARD_MISS_LIMIT": "100000000",
    "GIFTLEDGER_CARD_MISS_ADDRESS_LIMIT": "100000000",
    "GIFTLEDGER_LOGIN_FAILURE_LIMIT": "100000000",
    "GIFTLEDGER_LOGIN_ADDRESS_FAILURE_LIMIT": "100000000",
}

NEGATIVE = "Applying this transaction would have resulted in a negative balance. Transaction not applied."
DUPLICATE = "Duplicate reference supplied"
CARD_NOT_FOUND = "No card has been found for this account for the card ref supplied. Transaction not applied."
REQUIRED = "This field is required"
NOT_EXPECTED = "This field is not of an expected value"
INVALID_CARD = "Must be a valid card reference."
SITE = "The external_site_id supplied was not recognised for this account."


def start_safety_server(database_url: str, log_dir: Path, env: dict[str, str] | None = None) -> LiveServer:
    return start_server(database_url, log_dir, {**NO_THROTTLES, **(env or {})})


def verify_ledger(database_url: str, account_id: int | None = None) -> dict[str, Any]:
    """Run `giftledger ledger verify --json` (in-process, through click) and assert it passes."""
    ledger_cli.register(cli)
    args = ["--database-url", database_url, "ledger", "verify", "--json"]
    if account_id is not None:
        args += ["--account-id", str(account_id)]
    env = {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET}
    result = CliRunner(env=env).invoke(cli, args, obj={}, catch_exceptions=False)
    report: dict[str, Any] = json.loads(result.stdout)
    violations = [v for a in report["accounts"] for c in a["checks"] for v in c["violations"]]
    assert result.exit_code == 0 and report["ok"] and not violations, violations
    return report


def error_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    if not errors:
        return None
    code: str = errors[0].get("extensions", {}).get("code", "?")
    return code


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]

    @property
    def code(self) -> str | None:
        return error_code(self.body)

    @property
    def ok(self) -> bool:
        return self.status == 200 and "errors" not in self.body


async def _post_all(url: str, token: str, requests: Sequence[dict[str, Any]]) -> list[Reply]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(timeout=120, limits=limits, verify=tls()) as client:
        start = asyncio.Event()

        async def one(body: dict[str, Any]) -> Reply:
            await start.wait()
            response = await client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            return Reply(response.status_code, response.json())

        tasks = [asyncio.create_task(one(body)) for body in requests]
        await asyncio.sleep(0)  # every task is waiting on the event: release them together
        start.set()
        return list(await asyncio.gather(*tasks))


def post_concurrently(server: LiveServer, token: str, requests: Sequence[dict[str, Any]]) -> list[Reply]:
    """Send every request at once, each on its own connection, and return the replies in order."""
    return asyncio.run(_post_all(server.graphql_url, token, requests))


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> float:
    """Poll `condition` until it holds; returns the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class HeldLock:
    """Another process holding the lock a till's write needs: the card's row lock. Held from `__enter__` until
    `release()` (or the block's end)."""

    def __init__(self, database_url: str, card_reference: str) -> None:
        self.database_url = database_url
        self.card_reference = card_reference
        self._release = threading.Event()
        self._locked = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> HeldLock:
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()
        if not self._locked.wait(30):
            raise AssertionError(f"could not take the lock: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        self._release.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _hold(self) -> None:
        try:
            asyncio.run(self._hold_row())
        except BaseException as exc:  # reported by __enter__ when the lock was never taken
            self._error = exc
            self._locked.set()
            raise

    async def _hold_row(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(self.database_url, timeout=5)
        try:
            async with conn.transaction():
                await conn.execute("SELECT id FROM cards WHERE card_reference = $1 FOR UPDATE", self.card_reference)
                self._locked.set()
                await asyncio.get_running_loop().run_in_executor(None, self._release.wait, 120)
                raise _Rollback
        except _Rollback:
            pass
        finally:
            await conn.close()


class _Rollback(Exception):
    pass


def line_items_by_reference(database_url: str, account_id: int) -> dict[str, list[int]]:
    """merchant_transaction_reference -> the values of its line items, for a whole account in one read."""
    from sqlalchemy import select

    from giftledger.storage.tables import line_items, transactions
    from tests.support import with_services

    async def work(services: Any) -> dict[str, list[int]]:
        async with services.db.transaction() as conn:
            rows = await conn.execute(
                select(transactions.c.merchant_transaction_reference, line_items.c.value)
                .select_from(line_items.join(transactions, transactions.c.id == line_items.c.transaction_id))
                .where(line_items.c.account_id == account_id)
                .order_by(line_items.c.id)
            )
            found: dict[str, list[int]] = {}
            for reference, value in rows:
                found.setdefault(reference, []).append(int(value))
            return found

    result: dict[str, list[int]] = with_services(database_url, work)
    return result


def execute_sql(database_url: str, sql: str) -> None:
    """Raw SQL on a connection of its own (DDL for fault injection, stamping the schema version)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(database_url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def unrecorded_movements(database_url: str, account_id: int) -> dict[str, list[int]]:
    """The account's money movements without exactly one accepted audit record, and accepted records without
    their movement: a sale's record names its order, a redemption's or top-up's its line item, a reversal's its
    transaction (`result_id`). Empty lists when every movement committed with its record."""
    import asyncpg

    async def read() -> tuple[list[Any], list[Any]]:
        conn = await asyncpg.connect(database_url, timeout=5)
        try:
            movements = await conn.fetch(
                """
                SELECT CASE t.kind WHEN 'order' THEN 'createOrder' WHEN 'adjustment' THEN 'createBalanceAdjustment'
                           ELSE 'createReversal' END AS operation,
                       CASE t.kind WHEN 'order' THEN (SELECT o.id FROM orders o WHERE o.transaction_id = t.id)
                           WHEN 'adjustment' THEN (SELECT min(l.id) FROM line_items l WHERE l.transaction_id = t.id)
                           ELSE t.id END AS result_id
                FROM transactions t WHERE t.account_id = $1 AND t.kind IN ('order', 'adjustment', 'reversal')
                """,
                account_id,
            )
            records = await conn.fetch(
                "SELECT operation, (detail::jsonb ->> 'result_id')::bigint AS result_id FROM audit_events"
                " WHERE account_id = $1 AND outcome = 'accepted'",
                account_id,
            )
        finally:
            await conn.close()
        return list(movements), list(records)

    movements, records = asyncio.run(read())
    moved = Counter((m["operation"], m["result_id"]) for m in movements)
    recorded = Counter((r["operation"], r["result_id"]) for r in records)
    return {
        "without a record": sorted(str(k) for k in moved if recorded[k] != 1),
        "without a movement": sorted(str(k) for k in recorded if k not in moved),
    }
