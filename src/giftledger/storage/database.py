"""Engines and transactions. One place decides the driver, the pool and the SQLite locking rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from giftledger.domain.errors import Retryable
from giftledger.storage.native import RETRYABLE_SQLSTATES, NativePool, session_settings


def driver_url(url: str) -> str:
    """Map a plain `postgresql://` or `sqlite:///` URL to the async driver we use for it."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {url!r}: use postgresql://... or sqlite:///...")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


SQLITE_BUSY_TIMEOUT_MS = 10_000


def create_engine(url: str, *, pool_size: int = 10, statement_timeout_ms: int = 10_000) -> AsyncEngine:
    """An async engine for `url`. SQLite runs in WAL mode with every transaction `BEGIN IMMEDIATE`, so
    writers queue on the database lock (bounded by a busy timeout: `statement_timeout_ms`) instead of
    failing half-way. PostgreSQL bounds every statement, every lock wait and idle transactions."""
    async_url = driver_url(url)
    if async_url.startswith("sqlite"):
        engine = create_async_engine(async_url, pool_size=pool_size, max_overflow=0)
        _configure_sqlite(engine, busy_timeout_ms=statement_timeout_ms)
        return engine
    return create_async_engine(
        async_url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_timeout=5,
        connect_args={
            "timeout": 5,
            "server_settings": session_settings(statement_timeout_ms),
        },
    )


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from issuing its own deferred BEGIN; we issue BEGIN IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# How long a SQLite transaction may queue in-process for its turn before the caller is told to retry.
SQLITE_QUEUE_TIMEOUT_S = 20.0


def open_database(url: str, *, pool_size: int = 10, statement_timeout_ms: int = 10_000) -> Database:
    """The database at `url`: SQLAlchemy's engine, and on PostgreSQL the hot statements' own pool."""
    engine = create_engine(url, pool_size=pool_size, statement_timeout_ms=statement_timeout_ms)
    native = None if is_sqlite(engine) else NativePool(url, size=pool_size, statement_timeout_ms=statement_timeout_ms)
    return Database(engine, native=native)


class Database:
    """Hands out transactions. SQLite writers are also queued in-process so a till never sees
    "database is locked": the process holds at most one SQLite transaction at a time, and a request
    that cannot get its turn within `queue_timeout_s` is refused as `Retryable` (nothing applied)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        native: NativePool | None = None,
        queue_timeout_s: float = SQLITE_QUEUE_TIMEOUT_S,
    ) -> None:
        self.engine = engine
        self.native = native  # PostgreSQL: the hot statements' asyncpg pool (storage/native.py)
        self._sqlite_lock = asyncio.Lock() if is_sqlite(engine) else None
        self._queue_timeout_s = queue_timeout_s

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One database transaction: committed when the block ends normally, rolled back otherwise.
        Connection-level failures become `Retryable` (nothing was applied)."""
        if self._sqlite_lock is not None:
            try:
                await asyncio.wait_for(self._sqlite_lock.acquire(), self._queue_timeout_s)
            except TimeoutError as exc:
                raise Retryable() from exc
            try:
                async with self._begin() as conn:
                    yield conn
            finally:
                self._sqlite_lock.release()
        else:
            async with self._begin() as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that need no transaction of their own (one statement, or statements that
        need not agree with each other). On PostgreSQL it runs in autocommit mode: no BEGIN and COMMIT round
        trips on the hot path (the token check on every request). On SQLite it is an ordinary transaction."""
        if self._sqlite_lock is not None:
            async with self.transaction() as conn:
                yield conn
            return
        async with _unavailable_is_retryable(), self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        async with _unavailable_is_retryable(), self.engine.begin() as conn:
            yield conn

    async def dispose(self) -> None:
        if self.native is not None:
            await self.native.close()
        await self.engine.dispose()


@asynccontextmanager
async def _unavailable_is_retryable() -> AsyncIterator[None]:
    """Failures to reach the database (connection lost, server down or starting, pool exhausted, timeouts)
    become `Retryable`: the transaction is gone and nothing was applied."""
    try:
        yield
    except PoolTimeout as exc:
        raise Retryable() from exc
    except OperationalError as exc:
        if _is_unavailable(exc):
            raise Retryable() from exc
        raise
    except DBAPIError as exc:
        if exc.connection_invalidated or _is_unavailable(exc):
            raise Retryable() from exc
        raise
    except (TimeoutError, OSError, ConnectionError) as exc:
        raise Retryable() from exc


_UNAVAILABLE_MARKERS = (
    "database is locked",
    "connection",
    "terminating",
    "shutting down",
    "could not connect",
    "canceling statement due to statement timeout",
    "lock timeout",
    "timeout",
    "too many clients",
    "cannot connect",
)


def _is_unavailable(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str) and state.startswith(RETRYABLE_SQLSTATES):
        return True
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(marker in text for marker in _UNAVAILABLE_MARKERS)
