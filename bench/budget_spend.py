"""Cost budget spends per second on one caller (an API user, as all of a merchant's tills share), 8 concurrent
tasks in one process, alternating:

- `row`: every spend a statement on the caller's row (`storage.throttle.Buckets.take` asked for exactly the
  cost: what every request did before leases);
- `lease`: `services.throttle.Budget.spend`, spending from this process's lease (its refresh task running).

A database of its own on the server GIFTLEDGER_DATABASE_URL names (default: the local PostgreSQL), dropped
afterwards. Usage: .venv/bin/python bench/budget_spend.py [--seconds 5] [--rounds 3]"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from giftledger.app import build_services
from giftledger.config import Settings
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.permissions import Role
from giftledger.services import setup, throttle
from giftledger.services.context import Principal, Services
from giftledger.storage import migrate
from giftledger.storage.throttle import Buckets

SECRET = "budget-bench-" + "x" * 40
TASKS = 8
COST = 14  # a redemption's


def _url(base: str, database: str) -> str:
    return make_url(base).set(database=database).render_as_string(hide_password=False)


class _Counted:
    """Counts the statements a `Database` runs (the bench wraps `fetch`, which `fetchrow` runs through)."""

    def __init__(self, services: Services) -> None:
        self.statements = 0
        fetch = services.db.fetch

        async def counted(sql: str, *args: object) -> list[object]:
            self.statements += 1
            return await fetch(sql, *args)

        services.db.fetch = counted  # type: ignore[method-assign]


async def _rate(seconds: float, spend: Callable[[], Awaitable[bool]]) -> tuple[float, int]:
    """Spends per second, and how many were made."""
    count = 0
    stop = time.perf_counter() + seconds

    async def task() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            if not await spend():
                raise RuntimeError("a spend was refused: the budget is meant to be large enough")
            count += 1
            await asyncio.sleep(0)  # a request yields to the event loop (the lease's refresh task runs there)

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    return count / (time.perf_counter() - started), count


async def _run(services: Services, caller: Principal, seconds: float, rounds: int) -> None:
    settings = services.settings
    subject = throttle.subject_of(caller, "127.0.0.1")
    buckets = Buckets(services.db)
    rate = settings.cost_restore / settings.cost_restore_seconds

    async def by_row() -> bool:
        took = await buckets.take(
            subject,
            returned=0,
            need=COST,
            want=COST,
            maximum=settings.cost_maximum,
            per_second=rate,
            now=time.time(),
            credential=caller.credential,
        )
        return took is not None and took.granted >= COST

    budget = throttle.Budget(services)
    counted = _Counted(services)

    async def by_lease() -> bool:
        return (await budget.spend(subject, COST, caller=caller)).charged

    try:
        for round_ in range(1, rounds + 1):
            for name, spend in (("row", by_row), ("lease", by_lease)):
                before = counted.statements
                per_second, spends = await _rate(seconds, spend)
                statements = counted.statements - before
                print(
                    f"round {round_} {name:>5}: {per_second:>9,.0f} spends/s, {statements:,} statements for {spends:,}",
                    flush=True,
                )
    finally:
        await budget.close()


async def main(seconds: float, rounds: int) -> None:
    base = os.environ.get("GIFTLEDGER_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"budget_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(make_url(base).set(drivername="postgresql").render_as_string(hide_password=False))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = Settings(
            database_url=_url(base, name),
            secret_key=SECRET,
            environment="test",
            cost_maximum=10**12,  # refuses nothing (bench/run.py's HUGE_BUDGET)
            cost_restore=10**12,
            database_pool_size=TASKS,
        )
        services = build_services(settings)
        try:
            await migrate.upgrade(services.db.engine)
            account = await setup.create_account(services, "Budget bench")
            new = await setup.create_api_user(services, setup.operator(account), POINTONE)
            caller = Principal("api_user", new.id, account, Role.API_USER, POINTONE, new.username)
            await _run(services, caller, seconds, rounds)
        finally:
            await services.db.dispose()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="each run's length")
    parser.add_argument("--rounds", type=int, default=3, help="row/lease pairs")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.rounds))
