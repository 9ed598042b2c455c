"""PostgreSQL's hot statements straight through asyncpg (the tills' requests: the token check, a balance
check, a redemption, a `LineItems` look-up, the audit batch).

SQLAlchemy Core costs 0.3-0.6 ms of Python per statement here (building the expression, its cache key, the
compiled-cache look-up, the greenlet hop); a till's redemption is a handful of statements, and that was the
whole budget. These statements are fixed SQL text: asyncpg prepares each one once per connection (its
statement cache) and every call only binds and executes. One pool per process, beside SQLAlchemy's (which
serves everything else); the same session settings bound every statement and lock wait.

Failures to reach the database become `Retryable`, exactly as `database.Database` does for SQLAlchemy."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from giftledger.domain.errors import Retryable

Record = Any  # asyncpg.Record: read by column name
ACQUIRE_TIMEOUT_S = 5.0  # connecting, or waiting for a busy pool: then the caller is told to retry


def _dsn(url: str) -> str:
    """A plain `postgresql://` URL for asyncpg (whatever driver suffix the configured URL carries)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# PostgreSQL error classes after which the transaction is gone and nothing was applied: connection
# exceptions (08), shutdown and start-up (57P01-57P03), too many clients, lock and statement timeouts,
# serialization failures and deadlocks. (Both pools, this one and SQLAlchemy's in database.py.)
RETRYABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "55P03", "57014", "40001", "40P01")


def session_settings(statement_timeout_ms: int) -> dict[str, str]:
    """What every PostgreSQL connection of ours is bounded by (both pools)."""
    return {
        "statement_timeout": str(statement_timeout_ms),
        "lock_timeout": str(statement_timeout_ms // 2),
        "idle_in_transaction_session_timeout": str(statement_timeout_ms * 3),
        "application_name": "giftledger",
    }


# What a statement through this pool may raise besides `Retryable` (a refused write, a bad value).
DATABASE_ERRORS: tuple[type[Exception], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError)


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, asyncpg.PostgresError):
        state = getattr(error, "sqlstate", None)
        return isinstance(state, str) and state.startswith(RETRYABLE_SQLSTATES)
    return isinstance(error, asyncpg.InterfaceError | asyncpg.PostgresConnectionError | OSError | TimeoutError)


class NativePool:
    """Up to `size` asyncpg connections, opened on demand inside the running event loop.

    A small pool of our own rather than asyncpg's: taking a connection and giving it back costs a few
    microseconds here, against ~50 us of CPU for asyncpg's pool (its reset query on every release, its
    timeouts and bookkeeping) next to ~30 us for the statement itself. Our statements leave no session
    state behind (no SET, LISTEN, cursors or open transactions), so a connection goes back as it came; one
    that broke, or was left inside a transaction by a cancelled caller, is closed instead."""

    def __init__(self, url: str, *, size: int = 10, statement_timeout_ms: int = 10_000) -> None:
        self._dsn = _dsn(url)
        self._size = size
        self._settings = session_settings(statement_timeout_ms)
        self._idle: list[asyncpg.Connection] = []
        self._open = 0  # connections open or being opened, idle or in use
        # Callers waiting for a connection: each gets an idle connection, or None (a free slot: open one).
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    async def _acquire(self) -> asyncpg.Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._open -= 1
        if self._open >= self._size:
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await asyncio.wait_for(waiter, ACQUIRE_TIMEOUT_S)
            except BaseException:
                if waiter.done() and not waiter.cancelled():  # handed over just as we gave up: pass it on
                    self._give_back(waiter.result())
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
            if handed is not None:
                return handed
        else:
            self._open += 1
        try:
            opened: asyncpg.Connection = await asyncpg.connect(
                self._dsn, timeout=ACQUIRE_TIMEOUT_S, server_settings=self._settings
            )
        except BaseException:
            self._give_back(None)
            raise
        return opened

    def _give_back(self, conn: asyncpg.Connection | None) -> None:
        """Return a connection (None: the slot of one that was closed or never opened)."""
        if conn is not None and (self._closed or conn.is_closed() or conn.is_in_transaction()):
            conn.terminate()
            conn = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            self._open -= 1
        else:
            self._idle.append(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for statements that each commit on their own (autocommit)."""
        if self._closed:
            raise Retryable()
        try:
            conn = await self._acquire()
        except Exception as error:
            if is_unavailable(error):
                raise Retryable() from error
            raise
        try:
            yield conn
        except asyncpg.PostgresError as error:  # the server answered: the connection itself is fine
            self._give_back(conn)
            if is_unavailable(error):
                raise Retryable() from error
            raise
        except BaseException as error:  # lost, cancelled or timed out mid-statement: its state is unknown
            conn.terminate()
            self._give_back(None)
            if isinstance(error, Exception) and is_unavailable(error):
                raise Retryable() from error
            raise
        else:
            self._give_back(conn)

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        async with self.connection() as conn:
            return list(await conn.fetch(sql, *args))

    async def close(self) -> None:
        """Close the idle connections now, and the others as they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open -= 1
            try:
                await asyncio.wait_for(conn.close(), ACQUIRE_TIMEOUT_S)
            except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError):
                conn.terminate()
