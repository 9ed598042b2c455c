"""The PostgreSQL pool behind the tills' hot statements (storage/native.py): bounded, never leaking a
connection or a slot, telling callers to retry when the database is away or the pool stays busy."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]
import pytest

from giftledger.domain.errors import Retryable
from giftledger.storage import native
from giftledger.storage.native import NativePool


def _state(pool: NativePool) -> tuple[int, int, int]:
    return pool._open, len(pool._idle), len(pool._waiters)


def test_a_busy_pool_queues_callers_and_never_opens_more_than_its_size(postgres_base: str) -> None:
    async def work() -> None:
        pool = NativePool(postgres_base, size=2)
        try:
            results = await asyncio.gather(
                *(pool.fetchrow("SELECT $1::int AS n, pg_sleep(0.05)", i) for i in range(10))
            )
            assert [r["n"] for r in results] == list(range(10))
            assert _state(pool) == (2, 2, 0)
        finally:
            await pool.close()
        assert _state(pool) == (0, 0, 0)

    asyncio.run(work())


def test_waiting_too_long_for_a_connection_is_retryable_and_leaks_nothing(
    postgres_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(native, "ACQUIRE_TIMEOUT_S", 0.2)

    async def work() -> None:
        pool = NativePool(postgres_base, size=1)
        try:
            slow = asyncio.create_task(pool.fetchrow("SELECT pg_sleep(1)"))
            await asyncio.sleep(0.1)
            with pytest.raises(Retryable):
                await pool.fetchrow("SELECT 1")
            await slow
            assert _state(pool) == (1, 1, 0)
            assert (await pool.fetchrow("SELECT 2 AS n"))["n"] == 2
        finally:
            await pool.close()

    asyncio.run(work())


def test_a_caller_cancelled_mid_statement_gives_its_slot_back(postgres_base: str) -> None:
    async def work() -> None:
        pool = NativePool(postgres_base, size=1)
        try:
            task = asyncio.create_task(pool.fetchrow("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert _state(pool) == (0, 0, 0)  # its connection, in an unknown state, was closed
            assert (await pool.fetchrow("SELECT 3 AS n"))["n"] == 3
            assert _state(pool) == (1, 1, 0)
        finally:
            await pool.close()

    asyncio.run(work())


def test_a_connection_the_server_dropped_while_idle_is_replaced(postgres_base: str) -> None:
    """The server's goodbye closes the idle connection; the next caller gets a new one, not an error.
    (A connection lost in the middle of a statement is `Retryable`: tests/safety/test_postgres_restart.py.)"""

    async def work() -> None:
        pool = NativePool(postgres_base, size=1)
        admin = await asyncpg.connect(postgres_base)
        try:
            pid = (await pool.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"]
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True
            await asyncio.sleep(0.2)
            assert (await pool.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"] != pid
            assert _state(pool) == (1, 1, 0)
        finally:
            await admin.close()
            await pool.close()

    asyncio.run(work())


def test_a_refused_statement_keeps_its_connection(postgres_base: str) -> None:
    async def work() -> None:
        pool = NativePool(postgres_base, size=1)
        try:
            pid = (await pool.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"]
            with pytest.raises(asyncpg.DivisionByZeroError):
                await pool.fetchrow("SELECT 1 / $1::int", 0)
            assert (await pool.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"] == pid
            assert _state(pool) == (1, 1, 0)
        finally:
            await pool.close()

    asyncio.run(work())
