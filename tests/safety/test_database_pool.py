"""The one connection pool of a process (storage/database.py), as the tills' hot statements use it: bounded,
never leaking a connection, telling callers to retry when the database is away or the pool stays busy, and
swapping a connection the server closed while it was idle for a new one."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]
import pytest

from giftledger.domain.errors import Retryable
from giftledger.storage.database import Database


def _state(db: Database) -> tuple[int, int]:
    """(connections handed out, connections idle in the pool)."""
    pool = db.engine.pool
    return pool.checkedout(), pool.checkedin()  # type: ignore[attr-defined]


def test_a_busy_pool_queues_callers_and_never_opens_more_than_its_size(postgres_base: str) -> None:
    async def work() -> None:
        db = Database(postgres_base, pool_size=2)
        try:
            results = await asyncio.gather(*(db.fetchrow("SELECT $1::int AS n, pg_sleep(0.05)", i) for i in range(10)))
            assert [r["n"] for r in results] == list(range(10))
            assert _state(db) == (0, 2)
        finally:
            await db.dispose()

    asyncio.run(work())


def test_waiting_too_long_for_a_connection_is_retryable_and_leaks_nothing(postgres_base: str) -> None:
    async def work() -> None:
        db = Database(postgres_base, pool_size=1, pool_timeout_s=0.2)
        try:
            slow = asyncio.create_task(db.fetchrow("SELECT pg_sleep(1)"))
            await asyncio.sleep(0.1)
            with pytest.raises(Retryable):
                await db.fetchrow("SELECT 1")
            await slow
            assert _state(db) == (0, 1)
            assert (await db.fetchrow("SELECT 2 AS n"))["n"] == 2
        finally:
            await db.dispose()

    asyncio.run(work())


def test_a_caller_cancelled_mid_statement_gives_its_slot_back(postgres_base: str) -> None:
    async def work() -> None:
        db = Database(postgres_base, pool_size=1)
        try:
            pid = (await db.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"]
            task = asyncio.create_task(db.fetchrow("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert _state(db) == (0, 1)  # the slot is back; its connection, in an unknown state, was closed:
            assert (await db.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"] != pid
            assert _state(db) == (0, 1)
        finally:
            await db.dispose()

    asyncio.run(work())


def test_a_connection_the_server_dropped_while_idle_is_replaced(postgres_base: str) -> None:
    """The server's goodbye closes the idle connection; the next caller gets a new one, not an error, on both
    ways in (a hot statement and a SQLAlchemy transaction). (A connection lost in the middle of a statement
    is `Retryable`: tests/safety/test_postgres_restart.py.)"""

    async def work() -> None:
        db = Database(postgres_base, pool_size=1)
        admin = await asyncpg.connect(postgres_base)
        try:
            for _ in range(2):
                pid = (await db.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"]
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True
                await asyncio.sleep(0.2)
            assert (await db.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"] != pid
            pid = (await db.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"]
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True
            await asyncio.sleep(0.2)
            async with db.transaction() as conn:
                assert (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one() != pid
            assert _state(db) == (0, 1)
        finally:
            await admin.close()
            await db.dispose()

    asyncio.run(work())


def test_a_refused_statement_keeps_its_connection(postgres_base: str) -> None:
    async def work() -> None:
        db = Database(postgres_base, pool_size=1)
        try:
            pid = (await db.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"]
            with pytest.raises(asyncpg.DivisionByZeroError):
                await db.fetchrow("SELECT 1 / $1::int", 0)
            assert (await db.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"] == pid
            assert _state(db) == (0, 1)
        finally:
            await db.dispose()

    asyncio.run(work())
